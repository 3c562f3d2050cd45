//! The REST API under `/api/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Routes are grouped by resource, one file each under [`routes`]. Every handler gets the
//! one [`AppState`], authenticates with [`auth::CurrentUser`], and fails with the one
//! [`ApiError`], which answers as an RFC 9457 `application/problem+json` document. This
//! module never touches wasmtime: plugins are reached through [`PluginAdmin`] and the
//! engine, environments through [`EnvironmentClient`].

pub mod auth;
pub mod errors;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod routes;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::pipeline::Timestamp;
use crate::pipeline::engine::Engine;
use crate::pipeline::model::User;
use crate::pipeline::ports::EnvironmentClient;
use crate::pipeline::store::{Audit, Store};

pub use crate::pipeline::plugin_admin::{
    InspectedPlugin, PluginAdmin, PluginLoadError, PluginStats,
};
pub use errors::ApiError;

/// Everything a handler may use. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub plugins: Arc<dyn PluginAdmin>,
    pub environments: Arc<dyn EnvironmentClient>,
    /// Renders `/metrics`; from [`metrics::install`].
    pub metrics: PrometheusHandle,
}

/// The whole HTTP surface, ready to serve.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Milliseconds since the Unix epoch, for `created_at` fields and audit lines.
pub(crate) fn now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Timestamp)
}

/// The audit line for a change `actor` makes to `target`.
pub(crate) fn audit(actor: &User, action: &str, target: &str, detail: serde_json::Value) -> Audit {
    Audit {
        actor: actor.id.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        at: now(),
    }
}
