//! The REST API under `/api/v1`.
//!
//! Routes are grouped by resource, one file each under [`routes`]. Every handler gets the
//! app's one [`AppState`], authenticates with [`auth::CurrentUser`], parses its input,
//! calls a domain service, and fails with the one [`ApiError`], which answers as an
//! RFC 9457 `application/problem+json` document. This module never touches wasmtime and
//! never imports the web console; the app merges both into one router.

pub mod auth;
pub mod errors;
pub mod extract;
pub mod openapi;
pub mod pagination;
pub mod problems;
pub mod routes;

#[cfg(test)]
pub(crate) mod tests;

use axum::Router;

pub use crate::app::AppState;
pub use crate::pipeline::plugin_admin::{
    InspectedPlugin, PluginAdmin, PluginLoadError, PluginStats,
};
pub use errors::ApiError;
pub use routes::{unknown_route, wrong_method};

/// The API's routes and its OpenAPI document, for the app to merge.
pub fn routes() -> Router<AppState> {
    routes::routes()
}
