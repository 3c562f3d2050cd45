//! The composition root: the one place that knows every part of the host. It holds the
//! app state both surfaces share, the router that merges the API, the console, health and
//! metrics, host start-up, and the background tasks.
//!
//! Data flows one way: `app` → `api` / `web` → `pipeline` (the domain) → its ports, which
//! `store`, `plugins` and `environment` implement. The API and the console never import
//! each other; both call the domain services reached through [`AppState`].

pub mod host;
pub mod metrics;
mod router;
mod tasks;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::pipeline::accounts::Accounts;
use crate::pipeline::catalog::Catalog;
use crate::pipeline::engine::Engine;
use crate::pipeline::operations::Operations;
use crate::pipeline::plugin_admin::PluginAdmin;
use crate::pipeline::ports::EnvironmentClient;
use crate::pipeline::store::Store;

pub use host::{Host, HostOptions};
pub use router::router;

/// Everything a handler or a page may use. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub plugins: Arc<dyn PluginAdmin>,
    pub environments: Arc<dyn EnvironmentClient>,
    /// Renders `/metrics`; from [`metrics::install`].
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// The catalog service over this host's store, plugins and environments.
    pub fn catalog(&self) -> Catalog<'_> {
        Catalog {
            store: self.store.as_ref(),
            plugins: self.plugins.as_ref(),
            environments: self.environments.as_ref(),
        }
    }

    /// The accounts service over this host's store.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            store: self.store.as_ref(),
        }
    }

    /// The operations service (webhooks, retention, the audit log, the event feed).
    pub fn operations(&self) -> Operations<'_> {
        Operations {
            store: self.store.as_ref(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
