//! A small client for the host's REST API: bearer auth, JSON in and out, problem+json
//! errors turned into [`CliError::Api`], transport failures into [`CliError::Connection`],
//! and lists followed through their `next` cursors.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde_json::{Map, Value};

use super::CliError;

/// Where the REST API lives under the server's address.
pub const API_PREFIX: &str = "/api/v1";

/// Most items the API gives in one page.
const MAX_PAGE: usize = 200;

/// How long one ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an upload may take: the server compiles the component before it answers.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a download may take, a package of many megabytes included.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The refusal of a call, as the server's problem document tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProblem {
    /// What was asked, such as `POST /api/v1/deployments`.
    pub request: String,
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// The members besides `type`, `title`, `status` and `detail`.
    pub extensions: Map<String, Value>,
}

impl ServerProblem {
    /// Reads an error answer: a problem document when it is one, else its text.
    pub fn from_answer(request: String, status: u16, body: &str) -> ServerProblem {
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(mut members)) => {
                let mut text = |key: &str| match members.remove(key) {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                };
                let title = text("title").unwrap_or(reason);
                let detail = text("detail").unwrap_or_else(|| "(the server gave no detail)".into());
                members.remove("type");
                members.remove("status");
                ServerProblem {
                    request,
                    status,
                    title,
                    detail,
                    extensions: members,
                }
            }
            _ => {
                let text: String = body.trim().chars().take(300).collect();
                ServerProblem {
                    request,
                    status,
                    title: reason,
                    detail: if text.is_empty() {
                        "(the server gave no detail)".into()
                    } else {
                        text
                    },
                    extensions: Map::new(),
                }
            }
        }
    }
}

/// Items gathered from one or more pages, and the cursor of the rest, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

impl Collected {
    /// The API's own page shape, for `--output json`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "items": self.items, "next": self.next })
    }
}

/// One server, one token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    server: String,
    token: String,
}

/// A server address as the user wrote it, made into `scheme://host[:port][/path]` with no
/// trailing slash and without the API prefix: `localhost:8080` becomes
/// `http://localhost:8080`.
pub fn normalize_server(text: &str) -> Result<String, CliError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CliError::Usage(
            "the server address is empty; give one such as http://127.0.0.1:8080".into(),
        ));
    }
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        CliError::Usage(format!(
            "{text:?} is not a server address ({e}); give one such as http://127.0.0.1:8080"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::Usage(format!(
            "{text:?} is not an http:// or https:// address; give one such as \
             http://127.0.0.1:8080"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::Usage(format!(
            "{text:?} has a query or fragment; give only the server's address"
        )));
    }
    let mut out = url.as_str().trim_end_matches('/').to_owned();
    if let Some(base) = out.strip_suffix(API_PREFIX) {
        out = base.trim_end_matches('/').to_owned();
    }
    Ok(out)
}

impl Api {
    pub fn new(server: &str, token: &str) -> Result<Api, CliError> {
        let server = normalize_server(server)?;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CliError::Usage(
                "the token must be printable ASCII without spaces, as `gatehouse` issues them"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Api {
            http,
            server,
            token: token.to_owned(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{API_PREFIX}{path}", self.server))
            .bearer_auth(&self.token)
            .timeout(CALL_TIMEOUT)
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.get_query(path, &[]).await
    }

    pub async fn get_query(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        let request = self.request(Method::GET, path).query(query);
        Ok(self.send("GET", path, request).await?.1)
    }

    /// A POST with a JSON body, or none.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        Ok(self.post_with(path, body, &[]).await?.1)
    }

    /// A POST with extra headers, such as `Idempotency-Key`; returns the status too.
    pub async fn post_with(
        &self,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), CliError> {
        let mut request = self.request(Method::POST, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send("POST", path, request).await
    }

    /// Uploads raw bytes with a media type, such as a component as `application/wasm`.
    pub async fn upload(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, CliError> {
        let request = self
            .request(Method::POST, path)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(UPLOAD_TIMEOUT)
            .body(bytes);
        Ok(self.send("POST", path, request).await?.1)
    }

    /// A GET whose answer is a file: the response, to read as it arrives, once the status
    /// says it is there; a [`ServerProblem`] otherwise.
    pub async fn download(&self, path: &str) -> Result<reqwest::Response, CliError> {
        let label = format!("GET {API_PREFIX}{path}");
        let response = self
            .request(Method::GET, path)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        Err(CliError::Api(ServerProblem::from_answer(
            label, status, &text,
        )))
    }

    /// Up to `limit` items of a list, following `next` from page to page.
    pub async fn list(
        &self,
        path: &str,
        filters: &[(&str, String)],
        limit: usize,
    ) -> Result<Collected, CliError> {
        let limit = limit.max(1);
        let mut items: Vec<Value> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query: Vec<(&str, String)> = filters.to_vec();
            query.push(("limit", (limit - items.len()).min(MAX_PAGE).to_string()));
            if let Some(cursor) = &after {
                query.push(("after", cursor.clone()));
            }
            let page = self.get_query(path, &query).await?;
            let Some(page_items) = page.get("items").and_then(Value::as_array) else {
                return Err(CliError::Connection(format!(
                    "GET {API_PREFIX}{path} on {} did not answer with a page of items; is it \
                     a Gatehouse server of the same version as this client?",
                    self.server
                )));
            };
            items.extend(page_items.iter().cloned());
            let next = page.get("next").and_then(Value::as_str).map(str::to_owned);
            if items.len() > limit {
                items.truncate(limit);
                let last = items
                    .last()
                    .and_then(|i| i["id"].as_str())
                    .map(str::to_owned);
                return Ok(Collected { items, next: last });
            }
            match next {
                Some(cursor) if items.len() < limit && after.as_deref() != Some(&cursor) => {
                    after = Some(cursor);
                }
                next => return Ok(Collected { items, next }),
            }
        }
    }

    /// Sends, and reads the answer: JSON on success, a [`ServerProblem`] otherwise.
    async fn send(
        &self,
        method: &str,
        path: &str,
        request: RequestBuilder,
    ) -> Result<(u16, Value), CliError> {
        let label = format!("{method} {API_PREFIX}{path}");
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        if !(200..300).contains(&status) {
            return Err(CliError::Api(ServerProblem::from_answer(
                label, status, &text,
            )));
        }
        if text.trim().is_empty() {
            return Ok((status, Value::Null));
        }
        serde_json::from_str(&text)
            .map(|v| (status, v))
            .map_err(|_| {
                CliError::Connection(format!(
                    "{label} on {} answered {status} with {}, not JSON; is it a Gatehouse server?",
                    self.server,
                    if content_type.is_empty() {
                        "no content type"
                    } else {
                        &content_type
                    }
                ))
            })
    }
}

/// Says why a request got no answer, in words a person can act on.
pub fn transport_error(server: &str, error: &reqwest::Error) -> CliError {
    let cause = root_cause(error);
    if error.is_connect() {
        CliError::Connection(format!(
            "cannot reach {server}: {cause}; is `gatehouse serve` running?"
        ))
    } else if error.is_timeout() {
        CliError::Connection(format!(
            "{server} did not answer in time; the request may or may not have been done"
        ))
    } else {
        CliError::Connection(format!("the request to {server} failed: {cause}"))
    }
}

/// The innermost cause, with the common socket errors in plain words.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                _ => io.to_string(),
            };
        }
        match current.source() {
            Some(source) => current = source,
            None => return current.to_string(),
        }
    }
}
