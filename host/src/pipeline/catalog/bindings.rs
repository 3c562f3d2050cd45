//! Gate and validator bindings. Binding a plugin checks, in order: that it exists, that
//! it is enabled, that its world fits (an approver for a gate, a validator for a
//! validator), and that its own `check-config` accepts the configuration.

use super::Catalog;
use crate::pipeline::model::{GateBinding, PipelineRecord, PluginRecord};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::StoreError;
use crate::pipeline::{Config, PluginWorld};

/// A stage needs a name that is not blank.
pub fn check_stage_name(name: &str) -> ServiceResult<()> {
    if crate::pipeline::rules::is_blank(name) {
        return Err(ServiceError::invalid("the stage needs a name"));
    }
    Ok(())
}

impl Catalog<'_> {
    /// Checks each gate a stage would bind: its timeout, then its plugin.
    pub async fn check_gates(
        &self,
        pipeline: &PipelineRecord,
        gates: &[GateBinding],
    ) -> ServiceResult<()> {
        for gate in gates {
            if gate.approval_timeout_seconds == Some(0) {
                return Err(ServiceError::invalid(
                    "approval_timeout_seconds must be at least 1; leave it out for no timeout",
                ));
            }
            self.check_binding(
                pipeline,
                &gate.plugin_id,
                &gate.config,
                PluginWorld::Approver,
            )
            .await?;
        }
        Ok(())
    }

    /// Whether the plugin can be bound with this configuration where a `wanted` plugin goes.
    pub async fn check_binding(
        &self,
        pipeline: &PipelineRecord,
        plugin_id: &str,
        config: &Config,
        wanted: PluginWorld,
    ) -> ServiceResult<PluginRecord> {
        let plugin = match self.store.get_plugin(plugin_id).await {
            Ok(plugin) => plugin,
            Err(StoreError::NotFound(_)) => {
                return Err(ServiceError::not_found(format!(
                    "plugin {plugin_id} does not exist; upload it with POST /api/v1/plugins, or \
                     pick one from GET /api/v1/plugins"
                ))
                .with("plugin_id", plugin_id));
            }
            Err(error) => return Err(error.into()),
        };
        let named = format!("{} {}", plugin.name, plugin.version);
        if !plugin.enabled {
            return Err(ServiceError::conflict(format!(
                "plugin {named} is disabled; enable it with PATCH /api/v1/plugins/{} before binding \
                 it",
                plugin.id
            ))
            .with("plugin_id", plugin.id.clone()));
        }
        if plugin.world != wanted {
            let detail = match wanted {
                PluginWorld::Approver => format!(
                    "plugin {named} is a validator, so it cannot be a gate of a stage; bind it with \
                     PUT /api/v1/pipelines/{}/validators instead",
                    pipeline.id
                ),
                PluginWorld::Validator => format!(
                    "plugin {named} is an approver, so it cannot be a validator; bind it as a gate \
                     of a stage instead"
                ),
            };
            return Err(ServiceError::conflict(detail)
                .with("plugin_id", plugin.id.clone())
                .with("plugin_world", plugin.world.to_string())
                .coded("wrong-plugin-world", None));
        }
        match self.plugins.check_config(&plugin.id, config).await {
            Ok(Ok(())) => Ok(plugin),
            Ok(Err(message)) => Err(ServiceError::invalid(format!(
                "plugin {named} refused its configuration: {message}"
            ))
            .with("plugin_id", plugin.id.clone())
            .with("plugin_message", message)
            .coded(
                "plugin-config-refused",
                Some("The plugin refused its configuration"),
            )),
            Err(cause) => Err(ServiceError::invalid(format!(
                "plugin {named} failed while checking its configuration: {cause}; check the \
                     plugin's limits and stats (GET /api/v1/plugins/{}/stats)",
                plugin.id
            ))
            .with("plugin_id", plugin.id.clone())
            .coded("plugin-failed", None)),
        }
    }
}
