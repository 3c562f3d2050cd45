//! The port through which admins load, enable and ask plugins, so that neither the API
//! nor the web console touches wasmtime. `crate::plugins::registry` implements
//! [`PluginAdmin`]; the API tests use a fake.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::pipeline::model::PluginRecord;
use crate::pipeline::{Config, PluginInfo, PluginWorld};

/// The largest component accepted, a policy both the runtime and the upload forms hold
/// to. A componentize-py plugin is about 18 MB.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// A component the runtime loaded and checked, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedPlugin {
    /// What the component's own `describe()` returned.
    pub info: PluginInfo,
    /// Read from the component's exports, never from a name it claims.
    pub world: PluginWorld,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// Why a component was refused, in the runtime's words (`LoadError`'s text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginLoadError {
    /// Over the size limit: 413.
    #[error("{0}")]
    TooLarge(String),
    /// Not wasm, not a component, a wrong world, a bad `describe()`…: 422.
    #[error("{0}")]
    Refused(String),
}

/// How a plugin's calls have gone since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginStats {
    pub calls: u64,
    /// Failed calls by cause: `timeout`, `out_of_fuel`, `trap`, … (`PluginError::code`).
    pub errors: BTreeMap<String, u64>,
    /// Latency percentiles in microseconds; none before the first call.
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// Loading, enabling and asking plugins, as the admin routes need it.
#[async_trait]
pub trait PluginAdmin: Send + Sync + 'static {
    /// Loads and checks a component without making it callable.
    async fn inspect(&self, bytes: Vec<u8>) -> Result<InspectedPlugin, PluginLoadError>;

    /// Makes a stored plugin callable with the record's limits, replacing any earlier
    /// activation of the same id. `Err` says why it could not be loaded.
    async fn activate(&self, record: &PluginRecord, bytes: Vec<u8>) -> Result<(), String>;

    /// Stops a plugin from being called; gates bound to it then fail closed.
    fn deactivate(&self, plugin_id: &str);

    /// Runs the plugin's `check-config`. `Ok(Err(message))` is the plugin's refusal, to
    /// show to the admin; `Err` is a failed call (a trap, a limit, a plugin not active).
    async fn check_config(
        &self,
        plugin_id: &str,
        config: &Config,
    ) -> Result<Result<(), String>, String>;

    fn stats(&self, plugin_id: &str) -> PluginStats;
}
