//! The whole HTTP surface: the API, the console, health, readiness and metrics, under one
//! body limit and one latency middleware.

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;

use metrics_exporter_prometheus::PrometheusHandle;

use super::{Services, metrics};
use crate::api::{self, ApiError};
use crate::web;

/// Largest JSON body accepted; plugin uploads have their own, larger limit.
const JSON_BODY_LIMIT: usize = 2 << 20;

/// Every route of the host, ready to serve: the API and the console over `services`,
/// and `/metrics` rendered by `metrics`.
pub fn router(services: Services, metrics: PrometheusHandle) -> Router {
    let scraped = services.clone();
    Router::new()
        .merge(api::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(web::router())
        .with_state(services)
        .route(
            "/metrics",
            get(move || metrics::scrape(scraped.clone(), metrics.clone())),
        )
        .fallback(api::unknown_route)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(metrics::track_http))
}

/// `GET /healthz`: the process is up and answering.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers, so requests can be served.
async fn readyz(State(state): State<Services>) -> Result<&'static str, ApiError> {
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
