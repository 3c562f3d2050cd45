//! The composition root: the one place that knows every part of the host. It holds the
//! app state both surfaces share, the router that merges the API, the console, health and
//! metrics, host start-up, and the background tasks.
//!
//! Data flows one way: `app` → `api` / `web` → `pipeline` (the domain) → its ports, which
//! `store`, `plugins` and `environment` implement. The API and the console never import
//! each other, nor this module: both are handed the domain's [`Services`], which this
//! module builds from the adapters.

pub mod host;
pub mod metrics;
mod router;
mod tasks;

pub use crate::pipeline::services::Services;
pub use host::{GivenToken, Host, HostOptions};
pub use router::router;

#[cfg(test)]
pub(crate) mod tests;
