//! Plugins: loading an uploaded component, enabling, disabling and re-limiting it, and
//! removing it, all through the plugin-admin port. An upload is checked whole before
//! anything is stored: the size, the component itself, the name and version the uploader
//! expected, and that no plugin has the same name and version.

use serde_json::{Value, json};

use super::Catalog;
use crate::pipeline::access::require_admin;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::model::{PluginRecord, User, new_id};
use crate::pipeline::plugin_admin::{MAX_COMPONENT_BYTES, PluginLoadError};
use crate::pipeline::plugin_limits::PluginLimits;
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::scan_all;

/// What the uploader expects the component to report; a difference refuses the upload.
#[derive(Debug, Clone, Default)]
pub struct ExpectedPlugin {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Changes to a plugin; fields left `None` stay as they are.
#[derive(Debug, Clone, Default)]
pub struct PluginChange {
    /// A disabled plugin cannot be bound, and gates bound to it fail closed.
    pub enabled: Option<bool>,
    /// Limits to override, such as `{"fuel": 5000000, "wall_time": 250}`.
    pub limits: Option<Value>,
}

impl Catalog<'_> {
    /// Checks, stores and activates an uploaded component, as `POST /plugins` and the web
    /// console's upload both do: nothing is kept unless every check passes.
    pub async fn load_plugin(
        &self,
        actor: &User,
        bytes: Vec<u8>,
        query: &ExpectedPlugin,
    ) -> ServiceResult<PluginRecord> {
        let actor = require_admin(actor, "uploading a plugin")?;
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(too_large(bytes.len()));
        }
        let inspected = match self.plugins.inspect(bytes.clone()).await {
            Ok(inspected) => inspected,
            Err(PluginLoadError::TooLarge(message)) => {
                return Err(
                    ServiceError::too_large(message).with("limit_bytes", MAX_COMPONENT_BYTES)
                );
            }
            Err(PluginLoadError::Refused(message)) => {
                return Err(
                    ServiceError::invalid(format!("the component was refused: {message}"))
                        .with("runtime_message", message)
                        .coded("plugin-refused", Some("The component was refused")),
                );
            }
        };
        let info = inspected.info;
        for (field, expected, actual) in [
            ("name", &query.name, &info.name),
            ("version", &query.version, &info.version),
        ] {
            if let Some(expected) = expected.as_ref().filter(|e| *e != actual) {
                return Err(ServiceError::invalid(format!(
                    "the component's describe() reports {field} {actual:?}, but the upload asked \
                     for {expected:?}; upload the right file, or leave `{field}` out of the query"
                )));
            }
        }
        let store = self.store;
        let existing = scan_all(
            move |p| async move { store.list_plugins(&p).await },
            |p| p.id.clone(),
        )
        .await?;
        if let Some(same) = existing
            .iter()
            .find(|p| p.name == info.name && p.version == info.version)
        {
            return Err(ServiceError::conflict(format!(
                "plugin {} {} is already loaded as {}; bump the version in the plugin's describe() \
                 to upload a new build",
                info.name, info.version, same.id
            ))
            .with("plugin_id", same.id.clone()));
        }
        let record = PluginRecord {
            id: new_id(),
            name: info.name,
            version: info.version,
            world: inspected.world,
            description: info.description,
            config_keys: info.config_keys,
            sha256: inspected.sha256,
            size: inspected.size,
            enabled: true,
            limits: Default::default(),
            created_at: now(),
        };
        let detail = json!({
            "name": record.name, "version": record.version, "world": record.world,
            "sha256": record.sha256, "size": record.size,
        });
        self.store
            .insert_plugin(
                &record,
                &bytes,
                &audit(actor, "plugin.upload", &record.id, detail),
            )
            .await?;
        if let Err(cause) = self.plugins.activate(&record, bytes.clone()).await {
            // Stored but not callable is worse than not stored: take it back out.
            let detail = json!({ "reason": "activation failed", "cause": cause });
            self.store
                .delete_plugin(
                    &record.id,
                    &audit(actor, "plugin.delete", &record.id, detail),
                )
                .await?;
            return Err(ServiceError::failed(format!(
                "the component passed its checks but could not be activated: {cause}; it was not \
                 kept, so the upload can be retried"
            ))
            .coded(
                "plugin-activation-failed",
                Some("The plugin could not be activated"),
            ));
        }
        Ok(record)
    }

    /// Enables, disables or re-limits a plugin, as `PATCH /plugins/{id}` and the web
    /// console's toggle both do.
    pub async fn change_plugin(
        &self,
        actor: &User,
        id: &str,
        patch: PluginChange,
    ) -> ServiceResult<PluginRecord> {
        let actor = require_admin(actor, "changing a plugin")?;
        let before = self.store.get_plugin(id).await?;
        let mut record = before.clone();
        if let Some(enabled) = patch.enabled {
            record.enabled = enabled;
        }
        if let Some(overrides) = &patch.limits {
            record.limits = merge_fields(&record.limits, overrides)?;
            record.limits.validate().map_err(|e| {
                ServiceError::invalid(format!("{e}; pick a value within the ceiling"))
            })?;
        }
        if record.enabled {
            // Activate first, so a plugin that cannot run with its new limits changes nothing.
            let bytes = self.store.blob(&record.sha256).await?;
            self.plugins
                .activate(&record, bytes)
                .await
                .map_err(|cause| {
                    ServiceError::conflict(format!(
                        "the plugin could not be activated with these settings: {cause}"
                    ))
                })?;
        }
        let detail = json!({
            "enabled": record.enabled,
            "limits_before": before.limits,
            "limits_after": record.limits,
        });
        self.store
            .update_plugin(&record, &audit(actor, "plugin.update", id, detail))
            .await?;
        if !record.enabled {
            self.plugins.deactivate(id);
        }
        Ok(record)
    }

    /// Removes a plugin that no stage or pipeline binds.
    pub async fn delete_plugin(&self, actor: &User, id: &str) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting a plugin")?;
        let plugin = self.store.get_plugin(id).await?;
        let users = self.pipelines_using_plugin(id).await?;
        if !users.is_empty() {
            let names: Vec<&str> = users.iter().map(|p| p.name.as_str()).collect();
            return Err(ServiceError::conflict(format!(
                "plugin {} {} is bound in the pipeline(s) {}; remove it from their stages' gates \
                 and validators first",
                plugin.name,
                plugin.version,
                names.join(", ")
            ))
            .with(
                "pipelines",
                users.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            ));
        }
        let detail = json!({ "name": plugin.name, "version": plugin.version });
        self.store
            .delete_plugin(id, &audit(actor, "plugin.delete", id, detail))
            .await?;
        self.plugins.deactivate(id);
        Ok(())
    }
}

/// An upload over the size cap, with the cap for programs.
fn too_large(size: usize) -> ServiceError {
    ServiceError::too_large(format!(
        "the upload is {size} bytes, over the limit of {MAX_COMPONENT_BYTES} bytes ({} MiB)",
        MAX_COMPONENT_BYTES >> 20
    ))
    .with("limit_bytes", MAX_COMPONENT_BYTES)
}

/// The current limits with the given fields replaced; the caller checks the result
/// against the ceilings.
fn merge_fields(current: &PluginLimits, overrides: &Value) -> ServiceResult<PluginLimits> {
    let Value::Object(overrides) = overrides else {
        return Err(ServiceError::invalid(
            "limits must be an object such as {\"fuel\": 5000000, \"wall_time\": 250}",
        ));
    };
    let mut merged =
        serde_json::to_value(current).map_err(|e| ServiceError::Internal(e.to_string()))?;
    if let Value::Object(fields) = &mut merged {
        fields.extend(overrides.clone());
    }
    serde_json::from_value(merged).map_err(|e| {
        ServiceError::invalid(format!(
            "the limits are not usable: {e}; the fields are fuel, wall_time (ms), \
             memory_bytes, table_elements, instances, tables, memories, log_bytes and \
             output_bytes"
        ))
    })
}
