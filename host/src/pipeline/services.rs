//! The domain's services over one host's ports: what the API's handlers and the console's
//! pages are given. Cheap to clone: every field is shared.

use std::sync::Arc;

use super::accounts::Accounts;
use super::backups::Backups;
use super::catalog::Catalog;
use super::engine::Engine;
use super::operations::Operations;
use super::plugin_admin::PluginAdmin;
use super::ports::EnvironmentClient;
use super::store::Store;

/// The ports and the deployment engine of one host, and the services built over them.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub plugins: Arc<dyn PluginAdmin>,
    pub environments: Arc<dyn EnvironmentClient>,
}

impl Services {
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

    /// The backups: exported packages, to download.
    pub fn backups(&self) -> Backups<'_> {
        Backups {
            store: self.store.as_ref(),
            engine: self.engine.as_ref(),
        }
    }

    /// The operations service (webhooks, retention, the audit log, the event feed).
    pub fn operations(&self) -> Operations<'_> {
        Operations {
            store: self.store.as_ref(),
        }
    }
}
