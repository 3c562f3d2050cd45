//! The `/env/v1` handlers, except imports ([`super::imports`]).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, OriginalUri, Path, Request, State as With};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use super::blobs::is_sha256;
use super::errors::{self, EnvServerError, OrInternal, Result, bad_package, refused};
use super::store::{self, ConnectionRow, now};
use super::{EnvInfo, State, imports, solutions, token_sha256};
use crate::environment::link::{link_secret_sha256, new_link_secret};
use crate::environment::wire::{
    ConnectionDoc, Items, LinkAnswer, LinkRequest, PackageDoc, Report, ValidateRequest,
};
use crate::solution::{Manifest, PackageError, PackageInfo};

type Shared = Arc<State>;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/env/v1/info", get(info))
        .route("/env/v1/link", post(link))
        .route("/env/v1/solutions", get(solutions::list))
        .route(
            "/env/v1/solutions/{name}",
            get(solutions::get).put(solutions::push),
        )
        .route("/env/v1/solutions/{name}/export", post(solutions::export))
        .route("/env/v1/packages/{sha256}", get(download).put(upload))
        .route("/env/v1/validate", post(validate))
        .route("/env/v1/imports", post(imports::start))
        .route("/env/v1/imports/{*operation_id}", get(imports::get))
        .route(
            "/env/v1/connections",
            get(list_connections).post(add_connection),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Every route needs `Authorization: Bearer <token>`.
async fn authenticate(With(state): With<Shared>, request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return EnvServerError::unauthorized(
            "this call needs `Authorization: Bearer <token>`, with the token the environment \
             printed at its first start or was given in GATEHOUSE_ENV_TOKEN",
            errors::CHALLENGE,
        )
        .into_response();
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let known = token.is_some_and(|t| {
        let hash = token_sha256(t);
        state.token_hashes.contains(&hash)
    });
    if !known {
        return EnvServerError::unauthorized(
            "the bearer token is not this environment's; check that it was copied whole",
            errors::CHALLENGE_INVALID,
        )
        .into_response();
    }
    next.run(request).await
}

/// The path prefix the router is mounted under (`""` at the root, `/envs/qa` when nested),
/// for the links the answers carry.
pub(super) struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Base, Infallible> {
        let inner = parts.uri.path();
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(inner, |o| o.0.path());
        Ok(Base(original.strip_suffix(inner).unwrap_or("").to_owned()))
    }
}

impl Base {
    pub fn package(&self, sha256: &str) -> String {
        format!("{}/env/v1/packages/{sha256}", self.0)
    }
}

/// A JSON body; `None` when it is empty.
pub(super) fn parse_json<T: DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Option<T>> {
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            EnvServerError::too_large(format!("{}; JSON bodies are small", r.body_text()))
        }
        _ => EnvServerError::bad_request(r.body_text()),
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        EnvServerError::bad_request(format!(
            "the body is not the JSON this call takes: {e}; see docs/environment-api.md"
        ))
    })
}

pub(super) fn required<T>(body: Option<T>) -> Result<T> {
    body.ok_or_else(|| EnvServerError::bad_request("this call needs a JSON body"))
}

/// Reads and checks a package on disk, off the async threads.
pub(super) async fn read_package(
    state: &Shared,
    path: PathBuf,
) -> Result<std::result::Result<PackageInfo, PackageError>> {
    let limits = state.limits;
    tokio::task::spawn_blocking(move || crate::solution::read_package_file(&path, &limits))
        .await
        .or_500()
}

async fn info(With(state): With<Shared>) -> Json<EnvInfo> {
    Json(state.info())
}

/// Links the environment to a host and answers a new link secret, which every import
/// must then present; each link, forced or not, rotates it. Only its SHA-256 is kept.
async fn link(
    With(state): With<Shared>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<LinkAnswer>> {
    let body: LinkRequest = required(parse_json(body)?)?;
    let host_id = body.host_id.trim();
    if host_id.is_empty() {
        return Err(EnvServerError::bad_request("host_id may not be empty"));
    }
    // One transaction reads and writes the row, so concurrent links cannot both win.
    let mut tx = state.store.begin().await.or_500()?;
    let mut settings = store::settings_in(&mut *tx)
        .await
        .or_500()?
        .ok_or_else(|| errors::internal("the settings row is missing"))?;
    match settings.linked_host.as_deref() {
        Some(linked) if linked == host_id || body.force => {}
        Some(linked) => {
            return Err(EnvServerError::conflict(format!(
                "this environment is linked to host {linked}; link with \"force\": true to \
                 move it to host {host_id}"
            ))
            .with("linked_host", linked));
        }
        _ => {}
    }
    let secret = new_link_secret().or_500()?;
    let previous = settings.linked_host.replace(host_id.to_owned());
    settings.link_secret_sha256 = Some(link_secret_sha256(&secret));
    store::save_settings_in(&mut *tx, &settings)
        .await
        .or_500()?;
    tx.commit().await.or_500()?;
    *state.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    // Said once per change of host: a host that links again (at each of its starts) only
    // rotates the secret.
    match previous.as_deref() {
        None => tracing::info!(host_id, "environment linked to a host"),
        Some(linked) if linked == host_id => tracing::debug!(host_id, "link secret rotated"),
        Some(linked) => {
            tracing::info!(
                host_id,
                previous_host = linked,
                "environment moved to another host"
            )
        }
    }
    Ok(Json(LinkAnswer {
        info: state.info(),
        link_secret: Some(secret),
    }))
}

/// Downloads a package, streamed from disk.
async fn download(With(state): With<Shared>, Path(sha256): Path<String>) -> Result<Response> {
    check_sha(&sha256)?;
    let Some((file, size)) = state.blobs.open_blob(&sha256).await.or_500()? else {
        return Err(EnvServerError::not_found(format!(
            "this environment has no package {sha256}"
        )));
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Uploads a package under its SHA-256, streamed to disk.
async fn upload(
    With(state): With<Shared>,
    Path(sha256): Path<String>,
    base: Base,
    body: Body,
) -> Result<Response> {
    check_sha(&sha256)?;
    let href = base.package(&sha256);
    if let Some((_, size)) = state.blobs.open_blob(&sha256).await.or_500()? {
        // Already here: answer without reading the body.
        let doc = PackageDoc { sha256, size, href };
        return Ok((StatusCode::OK, Json(doc)).into_response());
    }
    let written = state
        .blobs
        .write_body(body, state.limits.max_package_bytes)
        .await
        .map_err(errors::write_error)?;
    if written.sha256 != sha256 {
        return Err(refused(
            "sha256_mismatch",
            format!(
                "the body's SHA-256 is {}, not {sha256}; the upload was cut short or changed \
                 on the way, so send it again",
                written.sha256
            ),
        ));
    }
    read_package(&state, written.temp.path().to_owned())
        .await?
        .map_err(|e| bad_package(&e))?;
    let size = written.size;
    written.temp.persist(&state.blobs, &sha256).await.or_500()?;
    let doc = PackageDoc { sha256, size, href };
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

pub(super) fn check_sha(sha256: &str) -> Result<()> {
    if is_sha256(sha256) {
        Ok(())
    } else {
        Err(EnvServerError::bad_request(format!(
            "`{}` is not a SHA-256: packages are named by 64 lower-case hex digits",
            sha256.chars().take(80).collect::<String>()
        )))
    }
}

/// Whether an import would succeed, without importing.
async fn validate(
    With(state): With<Shared>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Report>> {
    let body: ValidateRequest = required(parse_json(body)?)?;
    let manifest = match (&body.package_sha256, body.manifest) {
        (Some(sha256), _) => {
            check_sha(sha256)?;
            if !state.blobs.exists(sha256).await {
                return Err(EnvServerError::not_found(format!(
                    "this environment has no package {sha256}; upload it with PUT \
                     /env/v1/packages/{sha256}"
                )));
            }
            read_package(&state, state.blobs.path(sha256))
                .await?
                .map_err(|e| bad_package(&e))?
                .manifest
        }
        (None, Some(manifest)) => {
            let bytes = serde_json::to_vec(&manifest).or_500()?;
            Manifest::from_json(&bytes).map_err(|e| bad_package(&e))?
        }
        (None, None) => {
            return Err(EnvServerError::bad_request(
                "give the package to check, as package_sha256, or its manifest",
            ));
        }
    };
    let mut conn = state.store.acquire().await.or_500()?;
    let report = imports::check_in(
        &state,
        &mut conn,
        &manifest,
        &body.settings,
        body.allow_downgrade,
    )
    .await
    .or_500()?;
    Ok(Json(report))
}

async fn list_connections(With(state): With<Shared>) -> Result<Json<Items<ConnectionDoc>>> {
    let rows = state.store.connections().await.or_500()?;
    let items = rows
        .into_iter()
        .map(|c| ConnectionDoc {
            name: c.name,
            connector: c.connector,
            created_at: c.created_at,
        })
        .collect();
    Ok(Json(Items { items }))
}

async fn add_connection(
    With(state): With<Shared>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body: ConnectionDoc = required(parse_json(body)?)?;
    let (name, connector) = (body.name.trim(), body.connector.trim());
    if name.is_empty() || connector.is_empty() {
        return Err(EnvServerError::bad_request(
            "a connection needs a name and a connector, neither empty",
        ));
    }
    let row = ConnectionRow {
        name: name.to_owned(),
        connector: connector.to_owned(),
        created_at: now(),
    };
    if !state.store.add_connection(&row).await.or_500()? {
        return Err(EnvServerError::conflict(format!(
            "a connection named {name} exists already; pick another name"
        )));
    }
    let doc = ConnectionDoc {
        name: row.name,
        connector: row.connector,
        created_at: row.created_at,
    };
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}
