//! Plugins: WebAssembly components uploaded by admins, bound as gates and validators.
//!
//! An upload is checked whole before anything is stored: the media type, the size, the
//! component itself (through [`crate::pipeline::plugin_admin::PluginAdmin::inspect`]), the name and version
//! the uploader expected, and that no plugin has the same name and version.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{Admin, CurrentUser};
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query};
use crate::api::pagination::{PageQuery, Paged, page_of};
use crate::api::problems::{Forbidden, NotFound};
use crate::api::{ApiError, AppState, PluginStats};
use crate::pipeline::catalog::{ExpectedPlugin, PluginChange};
use crate::pipeline::model::{Id, PluginRecord};
use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;

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
    /// The name the component must report in `describe()`; refused (422) when it differs.
    pub name: Option<String>,
    /// The version the component must report in `describe()`; refused when it differs.
    pub version: Option<String>,
}

/// Changes to a plugin; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PluginPatch {
    /// A disabled plugin cannot be bound, and gates bound to it fail closed.
    pub enabled: Option<bool>,
    /// Limits to override, such as `{"fuel": 5000000, "wall_time": 250}`; the others stay
    /// as they are.
    pub limits: Option<LimitsPatch>,
}

/// Limit overrides: each at least 1, memory and wall time under their ceilings.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// Instructions per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub fuel: Option<u64>,
    /// Milliseconds per call, at most 60000.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 60000)]
    pub wall_time: Option<u64>,
    /// Linear memory, at most 1 GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1073741824)]
    pub memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub table_elements: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub instances: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub tables: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub memories: Option<u64>,
    /// Bytes of log per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub log_bytes: Option<u64>,
    /// Bytes of reasons, messages and findings per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub output_bytes: Option<u64>,
}

/// Uploads a component. Nothing is stored unless every check passes.
#[utoipa::path(post, path = "/plugins", tag = "plugins", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm",
        description = "the component, built for wasm32-wasip2"),
    responses(
        (status = 201, body = PluginRecord),
        Forbidden,
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
    let expected = ExpectedPlugin {
        name: query.name,
        version: query.version,
    };
    let record = state
        .catalog()
        .load_plugin(&actor, body?.to_vec(), &expected)
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
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
    responses((status = 200, body = PluginRecord), NotFound))]
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
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the plugin cannot run with these limits"),
    ))]
async fn update_plugin(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<PluginPatch>,
) -> Result<Json<PluginRecord>, ApiError> {
    let limits = patch
        .limits
        .map(|limits| serde_json::to_value(limits).map_err(ApiError::internal))
        .transpose()?;
    let change = PluginChange {
        enabled: patch.enabled,
        limits,
    };
    let record = state.catalog().change_plugin(&actor.0, &id, change).await?;
    Ok(Json(record))
}

/// Removes a plugin that no stage or pipeline binds.
#[utoipa::path(delete, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    responses(
        (status = 204),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a gate or validator binds it"),
    ))]
async fn delete_plugin(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    state.catalog().delete_plugin(&actor.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls, errors by cause and latency percentiles since the process started.
#[utoipa::path(get, path = "/plugins/{id}/stats", tag = "plugins", params(("id" = String, Path)),
    responses((status = 200, body = PluginStats), NotFound))]
async fn plugin_stats(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<PluginStats>, ApiError> {
    let plugin = state.store.get_plugin(&id).await?;
    Ok(Json(state.plugins.stats(&plugin.id)))
}
