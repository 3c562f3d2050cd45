//! The plugins the host has loaded, by id: what gates and validators call, and what the
//! admin routes load, activate and inspect.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use super::{Invocation, LoadError, LoadedPlugin, Runtime};
use crate::pipeline::model::PluginRecord;
use crate::pipeline::plugin_admin::{InspectedPlugin, PluginAdmin, PluginLoadError, PluginStats};
use crate::pipeline::ports::{GateOutcome, GateRunner};
use crate::pipeline::store::{Store, scan_all};
use crate::pipeline::{Config, Decision, DeploymentFacts, Finding, Timestamp, Vote};

/// Latencies kept per plugin for its percentiles.
const LATENCY_WINDOW: usize = 1024;

/// Metric names, shared with `/metrics`.
const PLUGIN_CALLS: &str = "gatehouse_plugin_calls_total";
const PLUGIN_CALL_DURATION: &str = "gatehouse_plugin_call_duration_seconds";

pub struct Registry {
    runtime: Runtime,
    active: RwLock<HashMap<String, LoadedPlugin>>,
    /// The plugin the last `inspect` loaded, which the `activate` that follows an upload
    /// takes instead of loading the same bytes again.
    inspected: Mutex<Option<LoadedPlugin>>,
    stats: Mutex<HashMap<String, CallStats>>,
}

#[derive(Default)]
struct CallStats {
    calls: u64,
    errors: BTreeMap<String, u64>,
    latencies_us: VecDeque<u64>,
}

impl Registry {
    pub fn new(runtime: Runtime) -> Registry {
        Registry {
            runtime,
            active: RwLock::new(HashMap::new()),
            inspected: Mutex::new(None),
            stats: Mutex::new(HashMap::new()),
        }
    }

    /// Loads every enabled plugin the store holds; a plugin that no longer loads is
    /// logged and left inactive, so its gates fail closed.
    pub async fn load_all(
        &self,
        store: &dyn Store,
    ) -> Result<usize, crate::pipeline::store::StoreError> {
        let records = scan_all(
            |page| async move { store.list_plugins(&page).await },
            |p| p.id.clone(),
        )
        .await?;
        let mut loaded = 0;
        for record in records.into_iter().filter(|p| p.enabled) {
            let bytes = store.blob(&record.sha256).await?;
            match self.activate(&record, bytes).await {
                Ok(()) => loaded += 1,
                Err(err) => {
                    tracing::error!(plugin = %record.name, error = %err, "stored plugin no longer loads; its gates will fail closed")
                }
            }
        }
        Ok(loaded)
    }

    fn plugin(&self, id: &str) -> Option<LoadedPlugin> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn record<T>(&self, plugin_id: &str, plugin_name: &str, call: &Invocation<T>) {
        let outcome = match &call.result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        };
        metrics::counter!(PLUGIN_CALLS, "plugin" => plugin_name.to_owned(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(PLUGIN_CALL_DURATION, "plugin" => plugin_name.to_owned())
            .record(call.duration.as_secs_f64());
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let entry = stats.entry(plugin_id.to_owned()).or_default();
        entry.calls += 1;
        if outcome != "ok" {
            *entry.errors.entry(outcome.to_owned()).or_default() += 1;
        }
        if entry.latencies_us.len() == LATENCY_WINDOW {
            entry.latencies_us.pop_front();
        }
        entry
            .latencies_us
            .push_back(call.duration.as_micros() as u64);
    }

    fn outcome<T>(
        &self,
        plugin_id: &str,
        plugin_name: &str,
        call: Invocation<T>,
    ) -> GateOutcome<T> {
        self.record(plugin_id, plugin_name, &call);
        GateOutcome {
            result: call.result.map_err(|e| e.to_string()),
            log: call.log,
            duration_us: call.duration.as_micros() as u64,
            fuel_used: call.fuel_used,
        }
    }
}

fn inactive<T>(plugin_id: &str) -> GateOutcome<T> {
    GateOutcome {
        result: Err(format!(
            "plugin {plugin_id} is not active: it is disabled, deleted or failed to load"
        )),
        log: Vec::new(),
        duration_us: 0,
        fuel_used: 0,
    }
}

#[async_trait]
impl GateRunner for Registry {
    async fn evaluate(
        &self,
        plugin_id: &str,
        deployment: Arc<DeploymentFacts>,
        votes: &[Vote],
        config: &Config,
        now: Timestamp,
    ) -> GateOutcome<Decision> {
        let Some(plugin) = self.plugin(plugin_id) else {
            return inactive(plugin_id);
        };
        let span = tracing::info_span!("plugin", plugin = %plugin_id, name = %plugin.info().name);
        let _enter = span.enter();
        let call = self
            .runtime
            .evaluate(&plugin, deployment, votes, config, now)
            .await;
        self.outcome(plugin_id, &plugin.info().name, call)
    }

    async fn validate(
        &self,
        plugin_id: &str,
        deployment: Arc<DeploymentFacts>,
        config: &Config,
        now: Timestamp,
    ) -> GateOutcome<Vec<Finding>> {
        let Some(plugin) = self.plugin(plugin_id) else {
            return inactive(plugin_id);
        };
        let call = self
            .runtime
            .validate(&plugin, deployment, config, now)
            .await;
        self.outcome(plugin_id, &plugin.info().name, call)
    }
}

#[async_trait]
impl PluginAdmin for Registry {
    async fn inspect(&self, bytes: Vec<u8>) -> Result<InspectedPlugin, PluginLoadError> {
        let plugin = self.runtime.load(bytes).await.map_err(|err| match err {
            LoadError::TooLarge { .. } => PluginLoadError::TooLarge(err.to_string()),
            other => PluginLoadError::Refused(other.to_string()),
        })?;
        let inspected = InspectedPlugin {
            info: plugin.info().clone(),
            world: plugin.world(),
            sha256: plugin.sha256().to_owned(),
            size: plugin.size() as u64,
        };
        *self.inspected.lock().unwrap_or_else(|e| e.into_inner()) = Some(plugin);
        Ok(inspected)
    }

    async fn activate(&self, record: &PluginRecord, bytes: Vec<u8>) -> Result<(), String> {
        record.limits.validate().map_err(|e| e.to_string())?;
        let just_inspected = {
            let mut slot = self.inspected.lock().unwrap_or_else(|e| e.into_inner());
            match slot.take() {
                Some(plugin) if plugin.sha256() == record.sha256 => Some(plugin),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        let plugin = match just_inspected {
            Some(plugin) => plugin,
            None => self.runtime.load(bytes).await.map_err(|e| e.to_string())?,
        }
        .with_limits(record.limits);
        self.active
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id.clone(), plugin);
        Ok(())
    }

    fn deactivate(&self, plugin_id: &str) {
        self.active
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(plugin_id);
    }

    async fn check_config(
        &self,
        plugin_id: &str,
        config: &Config,
    ) -> Result<Result<(), String>, String> {
        let plugin = self
            .plugin(plugin_id)
            .ok_or_else(|| format!("plugin {plugin_id} is not active: enable it first"))?;
        let call = self
            .runtime
            .check_config(&plugin, config, super::now_millis())
            .await;
        self.record(plugin_id, &plugin.info().name, &call);
        call.result.map_err(|e| e.to_string())
    }

    fn stats(&self, plugin_id: &str) -> PluginStats {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = stats.get(plugin_id) else {
            return PluginStats::default();
        };
        let mut sorted: Vec<u64> = entry.latencies_us.iter().copied().collect();
        sorted.sort_unstable();
        let pct = |p: usize| -> Option<u64> {
            (!sorted.is_empty()).then(|| sorted[(sorted.len() - 1) * p / 100])
        };
        PluginStats {
            calls: entry.calls,
            errors: entry.errors.clone(),
            p50_us: pct(50),
            p90_us: pct(90),
            p99_us: pct(99),
        }
    }
}
