//! The host's client of the Environment API (`/env/v1`, docs/environment-api.md).
//!
//! Calls that could not reach the environment, timed out, or met a 5xx are
//! [`EnvironmentError::Unreachable`], which the engine retries; a 4xx is
//! [`EnvironmentError::Refused`], with the environment's own explanation. Packages move
//! as streams: a download is hashed as it is written, and appears under its final name
//! only when its SHA-256 matches. A call the outbound allow-list ([`crate::outbound`])
//! refuses is [`EnvironmentError::NotAllowed`], made before any connection.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::to_domain::import_settings;
use super::wire::{
    EnvInfo, ExportDoc, ExportRequest, Items, LINK_SECRET_HEADER, LinkAnswer, LinkRequest,
    OperationDoc, Report, SolutionDoc, StartImportRequest, ValidateRequest,
};
use crate::outbound::{AllowList, SendError};
use crate::pipeline::gate::ComponentRef;
use crate::pipeline::model::DeploymentSettings;
use crate::pipeline::ports::{
    EnvironmentCheck, EnvironmentError, EnvironmentInfo, ExportedSolution, ImportRequest,
    ImportStatus, Linked, Manifest, PackageRef, SolutionVersion,
};

/// How long a JSON call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A transfer may take this long, plus a second per MiB.
const TRANSFER_BASE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpEnvironments {
    client: reqwest::Client,
    allow: AllowList,
}

impl Default for HttpEnvironments {
    /// A client that may call any address.
    fn default() -> Self {
        let allow = AllowList::default();
        let client = Self::builder(&allow).build().unwrap_or_default();
        HttpEnvironments { client, allow }
    }
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
}

fn unreachable(url: &str, err: &reqwest::Error) -> EnvironmentError {
    let what = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        format!("cannot connect ({})", root_cause(err))
    } else {
        root_cause(err)
    };
    EnvironmentError::Unreachable(format!("{url}: {what}"))
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A manifest the environment answered, as the domain reads it.
fn manifest(base: &str, value: serde_json::Value) -> Result<Manifest, EnvironmentError> {
    serde_json::from_value(value).map_err(|e| {
        EnvironmentError::Refused(format!(
            "{base} answered something that is not the Environment API: {e}"
        ))
    })
}

/// A solution the environment described, as the domain reads it.
fn solution_version(base: &str, doc: SolutionDoc) -> Result<SolutionVersion, EnvironmentError> {
    Ok(SolutionVersion {
        name: doc.unique_name,
        version: doc.version,
        publisher_prefix: doc.publisher_prefix,
        components: doc
            .components
            .into_iter()
            .map(|c| ComponentRef {
                kind: c.kind,
                name: c.name,
            })
            .collect(),
        package_size: doc.package_size,
        package_sha256: doc.package_sha256,
        unmanaged: None,
        manifest: doc.manifest.map(|m| manifest(base, m)).transpose()?,
    })
}

fn refused_io(what: &str, err: std::io::Error) -> EnvironmentError {
    EnvironmentError::Refused(format!("{what}: {err}"))
}

impl HttpEnvironments {
    /// A client that calls only what `allow` allows.
    pub fn new(allow: &AllowList) -> reqwest::Result<HttpEnvironments> {
        let client = Self::builder(allow).build()?;
        Ok(HttpEnvironments {
            client,
            allow: allow.clone(),
        })
    }

    fn builder(allow: &AllowList) -> reqwest::ClientBuilder {
        allow
            .client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
    }

    fn request(
        &self,
        method: Method,
        base: &str,
        path: &str,
        credential: Option<&str>,
    ) -> RequestBuilder {
        let url = format!("{}/env/v1/{path}", base.trim_end_matches('/'));
        let builder = self.client.request(method, url);
        match credential {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends where the allow-list lets it; a failure to get an answer is the error the
    /// engine acts on.
    async fn dispatch(
        &self,
        base: &str,
        builder: RequestBuilder,
    ) -> Result<Response, EnvironmentError> {
        match self.allow.send(builder).await {
            Ok(response) => Ok(response),
            Err(SendError::Refused(refused)) => {
                Err(EnvironmentError::NotAllowed(refused.to_string()))
            }
            Err(SendError::Failed(error)) => Err(unreachable(base, &error)),
        }
    }

    /// Sends, and turns a failure into the error the engine acts on.
    async fn send(
        &self,
        base: &str,
        builder: RequestBuilder,
    ) -> Result<Response, EnvironmentError> {
        let response = self.dispatch(base, builder).await?;
        Self::successful(base, response).await
    }

    /// The response, or the error its status means.
    async fn successful(base: &str, response: Response) -> Result<Response, EnvironmentError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let explanation = match serde_json::from_str::<Problem>(&body) {
            Ok(p) if !p.detail.is_empty() => p.detail,
            Ok(p) if !p.title.is_empty() => p.title,
            _ => body.chars().take(300).collect(),
        };
        let message = format!("{base} answered {status}: {explanation}");
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(EnvironmentError::Unreachable(message))
        } else if status == StatusCode::UNAUTHORIZED {
            Err(EnvironmentError::Refused(format!(
                "{message}; check the environment's credential"
            )))
        } else {
            Err(EnvironmentError::Refused(message))
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        base: &str,
        builder: RequestBuilder,
    ) -> Result<T, EnvironmentError> {
        let response = self.send(base, builder.timeout(CALL_TIMEOUT)).await?;
        Self::decode(base, response).await
    }

    async fn decode<T: DeserializeOwned>(
        base: &str,
        response: Response,
    ) -> Result<T, EnvironmentError> {
        response.json::<T>().await.map_err(|e| {
            EnvironmentError::Refused(format!(
                "{base} answered something that is not the Environment API: {}",
                root_cause(&e)
            ))
        })
    }

    pub async fn info(
        &self,
        base: &str,
        credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError> {
        let info: EnvInfo = self
            .json(base, self.request(Method::GET, base, "info", credential))
            .await?;
        Ok(info.into())
    }

    pub async fn link(
        &self,
        base: &str,
        credential: Option<&str>,
        host_id: &str,
        force: bool,
    ) -> Result<Linked, EnvironmentError> {
        let body = LinkRequest {
            force,
            host_id: host_id.to_owned(),
        };
        let answer: LinkAnswer = self
            .json(
                base,
                self.request(Method::POST, base, "link", credential)
                    .json(&body),
            )
            .await?;
        Ok(Linked {
            info: answer.info.into(),
            link_secret: answer.link_secret.filter(|s| !s.is_empty()),
        })
    }

    pub async fn solution(
        &self,
        base: &str,
        credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError> {
        let builder = self
            .request(Method::GET, base, &format!("solutions/{name}"), credential)
            .timeout(CALL_TIMEOUT);
        let response = self.dispatch(base, builder).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let doc: SolutionDoc = Self::decode(base, Self::successful(base, response).await?).await?;
        solution_version(base, doc).map(Some)
    }

    /// `GET /env/v1/solutions`: everything the environment holds, by name.
    pub async fn solutions(
        &self,
        base: &str,
        credential: Option<&str>,
    ) -> Result<Vec<SolutionVersion>, EnvironmentError> {
        let list: Items<SolutionDoc> = self
            .json(
                base,
                self.request(Method::GET, base, "solutions", credential),
            )
            .await?;
        let mut all = list
            .items
            .into_iter()
            .map(|doc| solution_version(base, doc))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub async fn export(
        &self,
        base: &str,
        credential: Option<&str>,
        name: &str,
        version: &str,
    ) -> Result<ExportedSolution, EnvironmentError> {
        let body = ExportRequest {
            version: Some(version.to_owned()),
        };
        let doc: ExportDoc = self
            .json(
                base,
                self.request(
                    Method::POST,
                    base,
                    &format!("solutions/{name}/export"),
                    credential,
                )
                .json(&body),
            )
            .await?;
        Ok(ExportedSolution {
            manifest: manifest(base, doc.manifest)?,
            managed: PackageRef {
                sha256: doc.managed.sha256,
                size: doc.managed.size,
            },
            unmanaged: PackageRef {
                sha256: doc.unmanaged.sha256,
                size: doc.unmanaged.size,
            },
        })
    }

    fn transfer_timeout(size: u64) -> Duration {
        TRANSFER_BASE_TIMEOUT + Duration::from_secs(size / (1024 * 1024))
    }

    pub async fn download(
        &self,
        base: &str,
        credential: Option<&str>,
        package: &PackageRef,
        into: &Path,
    ) -> Result<(), EnvironmentError> {
        let builder = self
            .request(
                Method::GET,
                base,
                &format!("packages/{}", package.sha256),
                credential,
            )
            .timeout(Self::transfer_timeout(package.size));
        let response = self.send(base, builder).await?;
        let temp = into.with_extension(format!("part-{}", crate::pipeline::model::new_id()));
        let result = async {
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(|e| refused_io(&format!("cannot create {}", temp.display()), e))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| unreachable(base, &e))?;
                size += chunk.len() as u64;
                if size > package.size {
                    return Err(EnvironmentError::Refused(format!(
                        "package {} is larger than the {} bytes the export announced",
                        package.sha256, package.size
                    )));
                }
                hasher.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| refused_io(&format!("cannot write {}", temp.display()), e))?;
            }
            file.sync_all()
                .await
                .map_err(|e| refused_io(&format!("cannot write {}", temp.display()), e))?;
            let sha = hex::encode(hasher.finalize());
            if sha != package.sha256 {
                return Err(EnvironmentError::Unreachable(format!(
                    "package {} arrived damaged from {base} (its SHA-256 is {sha})",
                    package.sha256
                )));
            }
            tokio::fs::rename(&temp, into)
                .await
                .map_err(|e| refused_io(&format!("cannot store {}", into.display()), e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    pub async fn upload(
        &self,
        base: &str,
        credential: Option<&str>,
        package: &PackageRef,
        from: &Path,
    ) -> Result<(), EnvironmentError> {
        let file = tokio::fs::File::open(from)
            .await
            .map_err(|e| refused_io(&format!("cannot read {}", from.display()), e))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let builder = self
            .request(
                Method::PUT,
                base,
                &format!("packages/{}", package.sha256),
                credential,
            )
            .header(reqwest::header::CONTENT_TYPE, "application/zip")
            .header(reqwest::header::CONTENT_LENGTH, package.size)
            .body(body)
            .timeout(Self::transfer_timeout(package.size));
        self.send(base, builder).await.map(drop)
    }

    pub async fn check(
        &self,
        base: &str,
        credential: Option<&str>,
        manifest: &Manifest,
        settings: &DeploymentSettings,
        allow_downgrade: bool,
    ) -> Result<EnvironmentCheck, EnvironmentError> {
        let manifest = serde_json::to_value(manifest).map_err(|e| {
            EnvironmentError::Refused(format!("cannot send the manifest to {base}: {e}"))
        })?;
        let body = ValidateRequest {
            allow_downgrade,
            manifest: Some(manifest),
            package_sha256: None,
            settings: import_settings(settings),
        };
        let report: Report = self
            .json(
                base,
                self.request(Method::POST, base, "validate", credential)
                    .json(&body),
            )
            .await?;
        Ok(report.into())
    }

    pub async fn start_import(
        &self,
        base: &str,
        credential: Option<&str>,
        request: &ImportRequest,
    ) -> Result<ImportStatus, EnvironmentError> {
        let body = StartImportRequest {
            allow_downgrade: request.allow_downgrade,
            operation_id: request.operation_id.clone(),
            package_sha256: request.package.sha256.clone(),
            settings: import_settings(&request.settings),
        };
        let mut builder = self.request(Method::POST, base, "imports", credential);
        if let Some(secret) = &request.link_secret {
            builder = builder.header(LINK_SECRET_HEADER, secret.as_str());
        }
        let op: OperationDoc = self.json(base, builder.json(&body)).await?;
        Ok(op.into())
    }

    pub async fn import_status(
        &self,
        base: &str,
        credential: Option<&str>,
        operation_id: &str,
    ) -> Result<ImportStatus, EnvironmentError> {
        let op: OperationDoc = self
            .json(
                base,
                self.request(
                    Method::GET,
                    base,
                    &format!("imports/{operation_id}"),
                    credential,
                ),
            )
            .await?;
        Ok(op.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::tests::Receiver;

    fn environments(allow: &str) -> HttpEnvironments {
        HttpEnvironments::new(&allow.parse().expect("a valid allow-list")).expect("a client")
    }

    #[tokio::test]
    async fn an_environment_outside_the_allow_list_is_refused_without_a_connection() {
        let receiver = Receiver::answering("127.0.0.1", "HTTP/1.1 404 Not Found\r\n".into()).await;
        let port = receiver.addr.port();
        let refused = environments("10.0.0.0/8")
            .info(&format!("http://127.0.0.1:{port}"), None)
            .await
            .expect_err("outside the list");
        assert_eq!(
            refused,
            EnvironmentError::NotAllowed(
                "refused by GATEHOUSE_OUTBOUND_ALLOW: 127.0.0.1 is not in the allowed list".into()
            )
        );
        let by_name = environments("10.0.0.0/8")
            .info(&format!("http://localhost:{port}"), None)
            .await
            .expect_err("localhost resolves outside the list");
        assert!(
            matches!(&by_name, EnvironmentError::NotAllowed(m) if m.contains("localhost resolves to")),
            "{by_name:?}"
        );
        assert_eq!(receiver.connections(), 0);

        // Inside the list, the call reaches the environment, which answers 404.
        let answered = environments("127.0.0.0/8")
            .info(&format!("http://127.0.0.1:{port}"), None)
            .await
            .expect_err("the receiver is no Environment API");
        assert!(
            matches!(&answered, EnvironmentError::Refused(m) if m.contains("answered 404")),
            "{answered:?}"
        );
        assert_eq!(receiver.connections(), 1);
    }
}
