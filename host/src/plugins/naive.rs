//! The naive way to call a gate, kept as the benchmark's baseline: the component is
//! linked and type-checked on every call instead of once, into a fresh allocation.

use std::sync::Arc;
use std::time::Instant;

use super::Runtime;
use super::bindings::{approver::Approver, wit};
use super::call::{Invocation, PluginError, finish};
use super::load::{LoadedPlugin, Prepared};
use crate::pipeline::{Config, Decision, DeploymentFacts, PluginWorld, Timestamp, Vote};

impl Runtime {
    /// Like [`Runtime::evaluate`], without the `InstancePre` that makes it fast. Pair it with
    /// an on-demand [`super::Allocator`] for the full naive baseline.
    #[doc(hidden)]
    pub async fn evaluate_naively(
        &self,
        plugin: &LoadedPlugin,
        deployment: Arc<DeploymentFacts>,
        votes: &[Vote],
        config: &Config,
        now: Timestamp,
    ) -> Invocation<Decision> {
        let Prepared::Approver(pre) = &plugin.prepared else {
            return Invocation {
                result: Err(PluginError::WrongWorld {
                    expected: PluginWorld::Approver,
                    actual: plugin.world(),
                }),
                duration: Default::default(),
                fuel_used: 0,
                log: Vec::new(),
            };
        };
        let component = pre.instance_pre().component().clone();
        let limits = plugin.limits();
        let mut store = self.store(limits, config.clone(), now);
        let started = Instant::now();
        let votes: Vec<wit::Vote> = votes.iter().map(Into::into).collect();
        let outcome = tokio::time::timeout(limits.wall_time, async {
            let instance =
                Approver::instantiate_async(&mut store, &component, &self.linker).await?;
            let handle = store.data_mut().push_deployment(deployment)?;
            instance
                .gatehouse_plugin_approval()
                .call_evaluate(&mut store, handle, &votes)
                .await
        })
        .await;
        finish(store, started, limits, outcome, |decision| {
            Ok(decision.into())
        })
    }
}
