//! The whole HTTP surface: the API, the console, health, readiness and metrics, under one
//! body limit and one latency middleware.

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;

use super::{AppState, metrics};
use crate::api::{self, ApiError};
use crate::web;

/// Largest JSON body accepted; plugin uploads have their own, larger limit.
const JSON_BODY_LIMIT: usize = 2 << 20;

/// Every route of the host, ready to serve.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .merge(web::router())
        .fallback(api::unknown_route)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(metrics::track_http))
        .with_state(state)
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
