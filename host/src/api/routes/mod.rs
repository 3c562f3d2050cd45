//! The routes, one file per resource, and the router that joins them.

pub mod artifacts;
pub mod audit;
pub mod deployments;
pub mod environments;
pub mod events;
pub mod metrics_summary;
pub mod pipelines;
pub mod plugins;
pub mod retention;
pub mod stages;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::openapi::ApiDoc;
use super::{ApiError, AppState};

/// Where the REST API lives.
pub const API_PREFIX: &str = "/api/v1";

pub(super) fn router(state: AppState) -> Router {
    let api = OpenApiRouter::new()
        .merge(users::routes())
        .merge(environments::routes())
        .merge(pipelines::routes())
        .merge(stages::routes())
        .merge(plugins::routes())
        .merge(deployments::routes())
        .merge(artifacts::routes())
        .merge(audit::routes())
        .merge(metrics_summary::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(retention::routes());
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(API_PREFIX, api)
        .split_for_parts();
    // Rendered once: the document is fixed for the life of the process.
    let openapi: Arc<str> = openapi
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        .into();

    Router::new()
        .merge(api)
        .route(
            &format!("{API_PREFIX}/openapi.json"),
            get(move || serve_openapi(openapi.clone())),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::metrics::scrape))
        .merge(crate::web::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(super::metrics::track_http))
        .with_state(state)
}

/// Largest JSON body accepted; plugin uploads have their own, larger limit.
const JSON_BODY_LIMIT: usize = 2 << 20;

async fn serve_openapi(document: Arc<str>) -> Response {
    let mut response = document.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /healthz`: the process is up and answering.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers, so requests can be served.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.store.count_users().await {
        Ok(_) => Ok("ready"),
        Err(error) => {
            tracing::warn!(%error, "readiness check: the store did not answer");
            Err(ApiError::unavailable(
                "the database does not answer; the server is up but cannot serve requests \
                 until it does",
            ))
        }
    }
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "there is no route {}; the routes are listed in {API_PREFIX}/openapi.json",
        uri.path()
    ))
}

async fn wrong_method(uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} does not take this method; the methods it takes are listed in \
             {API_PREFIX}/openapi.json",
            uri.path()
        ),
    )
}
