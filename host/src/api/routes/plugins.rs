//! Plugins: WebAssembly components uploaded by admins, bound as gates and validators.
//!
//! An upload is checked whole before anything is stored: the media type, the size, the
//! component itself (through [`crate::api::PluginAdmin::inspect`]), the name and version
//! the uploader expected, and that no plugin has the same name and version.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pipelines::pipelines_using_plugin;
use crate::api::auth::{Admin, CurrentUser, require_admin};
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query};
use crate::api::pagination::{PageQuery, Paged, collect_all, page_of};
use crate::api::{ApiError, AppState, PluginLoadError, PluginStats, audit, now};
use crate::pipeline::model::{Id, PluginRecord, User, new_id};
use crate::plugins::{Limits, MAX_COMPONENT_BYTES};

/// The media type of an upload.
pub const WASM: &str = "application/wasm";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    let (schemas, paths, upload) = routes!(upload_plugin, list_plugins);
    // The component is the body, so this route alone takes bodies up to the plugin limit.
    let upload = upload.layer(axum::extract::DefaultBodyLimit::max(MAX_COMPONENT_BYTES));
    OpenApiRouter::new()
        .routes((schemas, paths, upload))
        .routes(routes!(get_plugin, update_plugin, delete_plugin))
        .routes(routes!(plugin_stats))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The name the component must report in `describe()`; refused when it differs.
    pub name: Option<String>,
    /// The version the component must report in `describe()`; refused when it differs.
    pub version: Option<String>,
}

/// Changes to a plugin; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PluginPatch {
    /// A disabled plugin cannot be bound, and gates bound to it fail closed.
    pub enabled: Option<bool>,
    /// Limits to override, such as `{"fuel": 5000000, "wall_time": 250}` (wall_time in
    /// ms); the others stay as they are.
    #[schema(value_type = Option<Object>)]
    pub limits: Option<Value>,
}

/// Uploads a component. Nothing is stored unless every check passes.
#[utoipa::path(post, path = "/plugins", tag = "plugins", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm",
        description = "the component, built for wasm32-wasip2"),
    responses(
        (status = 201, body = PluginRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a plugin with this name and version exists"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "over 64 MiB"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "not sent as application/wasm"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "not a usable component, or not the name and version expected"),
    ))]
async fn upload_plugin(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PluginRecord>), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(WASM)) {
        return Err(ApiError::unsupported_media_type(format!(
            "a plugin is uploaded as the raw component with `Content-Type: {WASM}`, not {}",
            media_type.map_or("without a Content-Type".to_owned(), |m| format!("as {m}"))
        )));
    }
    let record = load_plugin(&state, &actor, body?, &query).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Checks, stores and activates an uploaded component, as `POST /plugins` and the web
/// console's upload both do: nothing is kept unless every check passes.
pub(crate) async fn load_plugin(
    state: &AppState,
    actor: &User,
    bytes: Bytes,
    query: &UploadQuery,
) -> Result<PluginRecord, ApiError> {
    let actor = require_admin(actor, "uploading a plugin")?;
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(too_large(bytes.len()));
    }
    let inspected = match state.plugins.inspect(bytes.to_vec()).await {
        Ok(inspected) => inspected,
        Err(PluginLoadError::TooLarge(message)) => {
            return Err(ApiError::too_large(message).with("limit_bytes", MAX_COMPONENT_BYTES));
        }
        Err(PluginLoadError::Refused(message)) => {
            let mut error = ApiError::invalid(format!("the component was refused: {message}"))
                .with("runtime_message", message);
            error.kind = "plugin-refused";
            error.title = "The component was refused";
            return Err(error);
        }
    };
    let info = inspected.info;
    for (field, expected, actual) in [
        ("name", &query.name, &info.name),
        ("version", &query.version, &info.version),
    ] {
        if let Some(expected) = expected.as_ref().filter(|e| *e != actual) {
            return Err(ApiError::invalid(format!(
                "the component's describe() reports {field} {actual:?}, but the upload asked \
                 for {expected:?}; upload the right file, or leave `{field}` out of the query"
            )));
        }
    }
    let store = &state.store;
    let existing = collect_all(
        move |p| async move { store.list_plugins(&p).await },
        |p| p.id.clone(),
    )
    .await?;
    if let Some(same) = existing
        .iter()
        .find(|p| p.name == info.name && p.version == info.version)
    {
        return Err(ApiError::conflict(format!(
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
        limits: Limits::default(),
        created_at: now(),
    };
    let detail = json!({
        "name": record.name, "version": record.version, "world": record.world,
        "sha256": record.sha256, "size": record.size,
    });
    state
        .store
        .insert_plugin(
            &record,
            &bytes,
            &audit(actor, "plugin.upload", &record.id, detail),
        )
        .await?;
    if let Err(cause) = state.plugins.activate(&record, bytes.to_vec()).await {
        // Stored but not callable is worse than not stored: take it back out.
        let detail = json!({ "reason": "activation failed", "cause": cause });
        state
            .store
            .delete_plugin(
                &record.id,
                &audit(actor, "plugin.delete", &record.id, detail),
            )
            .await?;
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin-activation-failed",
            "The plugin could not be activated",
            format!(
                "the component passed its checks but could not be activated: {cause}; it was \
                 not kept, so the upload can be retried"
            ),
        ));
    }
    Ok(record)
}

fn too_large(size: usize) -> ApiError {
    ApiError::too_large(format!(
        "the upload is {size} bytes, over the limit of {MAX_COMPONENT_BYTES} bytes ({} MiB)",
        MAX_COMPONENT_BYTES >> 20
    ))
    .with("limit_bytes", MAX_COMPONENT_BYTES)
}

#[utoipa::path(get, path = "/plugins", tag = "plugins", params(PageQuery),
    responses((status = 200, body = Paged<PluginRecord>)))]
async fn list_plugins(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<PluginRecord>>, ApiError> {
    let page = query.page()?;
    let store = &state.store;
    let plugins = page_of(
        &page,
        move |p| async move { store.list_plugins(&p).await },
        |p| p.id.clone(),
        |_| true,
    )
    .await?;
    Ok(Json(plugins))
}

#[utoipa::path(get, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    responses((status = 200, body = PluginRecord), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_plugin(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<PluginRecord>, ApiError> {
    Ok(Json(state.store.get_plugin(&id).await?))
}

/// Enables or disables a plugin, or changes its limits.
#[utoipa::path(patch, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    request_body = PluginPatch,
    responses(
        (status = 200, body = PluginRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a limit is unknown, zero or above the ceiling"),
    ))]
async fn update_plugin(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<PluginPatch>,
) -> Result<Json<PluginRecord>, ApiError> {
    change_plugin(&state, &actor.0, &id, patch).await.map(Json)
}

/// Enables, disables or re-limits a plugin, as `PATCH /plugins/{id}` and the web
/// console's toggle both do.
pub(crate) async fn change_plugin(
    state: &AppState,
    actor: &User,
    id: &str,
    patch: PluginPatch,
) -> Result<PluginRecord, ApiError> {
    let actor = require_admin(actor, "changing a plugin")?;
    let before = state.store.get_plugin(id).await?;
    let mut record = before.clone();
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
    }
    if let Some(overrides) = &patch.limits {
        record.limits = merge_limits(&record.limits, overrides)?;
    }
    if record.enabled {
        // Activate first, so a plugin that cannot run with its new limits changes nothing.
        let bytes = state.store.blob(&record.sha256).await?;
        state
            .plugins
            .activate(&record, bytes)
            .await
            .map_err(|cause| {
                ApiError::invalid(format!(
                    "the plugin could not be activated with these settings: {cause}"
                ))
            })?;
    }
    let detail = json!({
        "enabled": record.enabled,
        "limits_before": before.limits,
        "limits_after": record.limits,
    });
    state
        .store
        .update_plugin(&record, &audit(actor, "plugin.update", id, detail))
        .await?;
    if !record.enabled {
        state.plugins.deactivate(id);
    }
    Ok(record)
}

/// The current limits with the given fields replaced, checked against the ceilings.
fn merge_limits(current: &Limits, overrides: &Value) -> Result<Limits, ApiError> {
    let Value::Object(overrides) = overrides else {
        return Err(ApiError::invalid(
            "limits must be an object such as {\"fuel\": 5000000, \"wall_time\": 250}",
        ));
    };
    let mut merged = serde_json::to_value(current).map_err(ApiError::internal)?;
    if let Value::Object(fields) = &mut merged {
        fields.extend(overrides.clone());
    }
    let limits: Limits = serde_json::from_value(merged).map_err(|e| {
        ApiError::invalid(format!(
            "the limits are not usable: {e}; the fields are fuel, wall_time (ms), \
             memory_bytes, table_elements, instances, tables, memories, log_bytes and \
             output_bytes"
        ))
    })?;
    limits
        .validate()
        .map_err(|e| ApiError::invalid(format!("{e}; pick a value within the ceiling")))?;
    Ok(limits)
}

/// Removes a plugin that no stage or pipeline binds.
#[utoipa::path(delete, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a gate or validator binds it"),
    ))]
async fn delete_plugin(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    let actor = actor.require_admin("deleting a plugin")?;
    let plugin = state.store.get_plugin(&id).await?;
    let users = pipelines_using_plugin(&state, &id).await?;
    if !users.is_empty() {
        let names: Vec<&str> = users.iter().map(|p| p.name.as_str()).collect();
        return Err(ApiError::conflict(format!(
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
    state
        .store
        .delete_plugin(&id, &audit(actor, "plugin.delete", &id, detail))
        .await?;
    state.plugins.deactivate(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Calls, errors by cause and latency percentiles since the process started.
#[utoipa::path(get, path = "/plugins/{id}/stats", tag = "plugins", params(("id" = String, Path)),
    responses((status = 200, body = PluginStats), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn plugin_stats(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<PluginStats>, ApiError> {
    let plugin = state.store.get_plugin(&id).await?;
    Ok(Json(state.plugins.stats(&plugin.id)))
}
