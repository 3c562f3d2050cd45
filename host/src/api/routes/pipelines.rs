//! Pipelines and their shares. Stages, gates and validators are in [`super::stages`].
//!
//! A pipeline is visible only to admins and to the users and groups it is shared with.
//! To everyone else it answers 404, the same as a pipeline that does not exist, so that
//! its existence does not leak.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::environments::environment_map;
use super::users::existing_grantees;
use crate::api::auth::{CurrentUser, can_see_pipeline};
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, Query, etag};
use crate::api::pagination::{PageQuery, Paged, collect_all, page_of};
use crate::api::{ApiError, AppState, audit, now};
use crate::pipeline::model::{
    DeploymentStatus, Grantee, Id, PipelineRecord, PipelineSettings, User, new_id,
};
use crate::pipeline::rules::check_pipeline;
use crate::pipeline::store::{DeploymentFilter, Page, StoreError};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_pipeline, list_pipelines))
        .routes(routes!(get_pipeline, update_pipeline, delete_pipeline))
        .routes(routes!(add_share, remove_share))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewPipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// At least one is needed before the pipeline can run.
    #[serde(default)]
    pub development_environment_ids: Vec<Id>,
    #[serde(default)]
    pub settings: PipelineSettings,
    /// Who may see and run it: `user:<id>` or `group:<name>`.
    #[serde(default)]
    pub shares: Vec<Grantee>,
}

/// Changes to a pipeline; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PipelinePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub development_environment_ids: Option<Vec<Id>>,
    pub settings: Option<PipelineSettings>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Share {
    /// `user:<id>` or `group:<name>`.
    pub grantee: Grantee,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareQuery {
    /// The share to remove: `user:<id>` or `group:<name>`.
    #[param(value_type = String)]
    pub grantee: Grantee,
}

/// Creates a pipeline. Add stages with POST /pipelines/{id}/stages.
#[utoipa::path(post, path = "/pipelines", tag = "pipelines", request_body = NewPipeline,
    responses(
        (status = 201, body = PipelineRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule"),
    ))]
async fn create_pipeline(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewPipeline>,
) -> Result<(StatusCode, Json<PipelineRecord>), ApiError> {
    let actor = actor.require_admin("creating a pipeline")?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("the pipeline needs a name"));
    }
    existing_grantees(&state, &body.shares).await?;
    let at = now();
    let mut shares = body.shares;
    shares.sort();
    shares.dedup();
    let pipeline = PipelineRecord {
        id: new_id(),
        name: body.name,
        description: body.description,
        development_environment_ids: body.development_environment_ids,
        stages: Vec::new(),
        validators: Vec::new(),
        settings: body.settings,
        shares,
        created_at: at,
        updated_at: at,
        revision: 0,
    };
    check_pipeline(&pipeline, &environment_map(&state).await?)?;
    let detail = json!({
        "name": pipeline.name,
        "development_environment_ids": pipeline.development_environment_ids,
        "settings": pipeline.settings,
        "shares": pipeline.shares,
    });
    state
        .store
        .insert_pipeline(
            &pipeline,
            &audit(actor, "pipeline.create", &pipeline.id, detail),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(pipeline)))
}

/// The pipelines the caller may see: all for an admin, those shared with them otherwise.
#[utoipa::path(get, path = "/pipelines", tag = "pipelines", params(PageQuery),
    responses((status = 200, body = Paged<PipelineRecord>)))]
async fn list_pipelines(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<PipelineRecord>>, ApiError> {
    let page = query.page()?;
    let store = &state.store;
    let pipelines = page_of(
        &page,
        move |p| async move { store.list_pipelines(&p).await },
        |p| p.id.clone(),
        |p| can_see_pipeline(&actor, p),
    )
    .await?;
    Ok(Json(pipelines))
}

#[utoipa::path(get, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = PipelineRecord, headers(("ETag" = String, description = "the revision, for If-Match"))),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or not shared with the caller"),
    ))]
async fn get_pipeline(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let pipeline = visible_pipeline(&state, &actor, &id).await?;
    Ok((etag(pipeline.revision), Json(pipeline)))
}

#[utoipa::path(patch, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path)), request_body = PipelinePatch,
    responses(
        (status = 200, body = PipelineRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule"),
    ))]
async fn update_pipeline(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<PipelinePatch>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("changing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    if let Some(name) = patch.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid("the pipeline needs a name"));
        }
        pipeline.name = name;
    }
    if let Some(description) = patch.description {
        pipeline.description = description;
    }
    if let Some(ids) = patch.development_environment_ids {
        pipeline.development_environment_ids = ids;
    }
    if let Some(settings) = patch.settings {
        pipeline.settings = settings;
    }
    let detail = json!({
        "name": pipeline.name,
        "description": pipeline.description,
        "development_environment_ids": pipeline.development_environment_ids,
        "settings": pipeline.settings,
    });
    save_pipeline(&state, actor, pipeline, "pipeline.update", detail)
        .await
        .map(Json)
}

/// Deletes a pipeline with no deployment in flight.
#[utoipa::path(delete, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a deployment is in flight"),
    ))]
async fn delete_pipeline(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    let actor = actor.require_admin("deleting a pipeline")?;
    let pipeline = state.store.get_pipeline(&id).await?;
    let in_flight = DeploymentFilter {
        pipeline_id: Some(id.clone()),
        ..DeploymentFilter::default()
    };
    if let Some(deployment) = first_in_flight(&state, in_flight).await? {
        return Err(ApiError::conflict(format!(
            "pipeline {:?} has deployment {} in flight ({}); wait for it to finish or cancel it \
             first",
            pipeline.name, deployment.0, deployment.1
        )));
    }
    let detail = json!({ "name": pipeline.name });
    state
        .store
        .delete_pipeline(&id, &audit(actor, "pipeline.delete", &id, detail))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shares the pipeline with a user or group, who may then see and run it.
#[utoipa::path(post, path = "/pipelines/{id}/shares", tag = "pipelines",
    params(("id" = String, Path)), request_body = Share,
    responses(
        (status = 200, body = PipelineRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "the grantee does not exist"),
    ))]
async fn add_share(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<Share>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("sharing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    if pipeline.shares.contains(&body.grantee) {
        return Ok(Json(pipeline));
    }
    existing_grantees(&state, std::slice::from_ref(&body.grantee)).await?;
    pipeline.shares.push(body.grantee.clone());
    pipeline.shares.sort();
    let detail = json!({ "grantee": body.grantee });
    save_pipeline(&state, actor, pipeline, "pipeline.share", detail)
        .await
        .map(Json)
}

/// Stops sharing the pipeline with a user or group.
#[utoipa::path(delete, path = "/pipelines/{id}/shares", tag = "pipelines",
    params(("id" = String, Path), ShareQuery),
    responses(
        (status = 200, body = PipelineRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or not shared with the grantee"),
    ))]
async fn remove_share(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Query(query): Query<ShareQuery>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("unsharing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let before = pipeline.shares.len();
    pipeline.shares.retain(|g| *g != query.grantee);
    if pipeline.shares.len() == before {
        return Err(ApiError::not_found(format!(
            "pipeline {:?} is not shared with {}; its shares are listed in GET \
             /api/v1/pipelines/{id}",
            pipeline.name, query.grantee
        )));
    }
    let detail = json!({ "grantee": query.grantee });
    save_pipeline(&state, actor, pipeline, "pipeline.unshare", detail)
        .await
        .map(Json)
}

/// The pipeline, if the user may see it; otherwise 404 whether or not it exists.
pub(super) async fn visible_pipeline(
    state: &AppState,
    user: &User,
    id: &str,
) -> Result<PipelineRecord, ApiError> {
    let hidden = || {
        ApiError::not_found(format!(
            "pipeline {id} does not exist or is not shared with you; GET /api/v1/pipelines \
             lists the ones you can see"
        ))
    };
    match state.store.get_pipeline(id).await {
        Ok(p) if can_see_pipeline(user, &p) => Ok(p),
        Ok(_) | Err(StoreError::NotFound(_)) => Err(hidden()),
        Err(error) => Err(error.into()),
    }
}

/// Checks the pipeline's rules, then stores it with its audit line.
pub(super) async fn save_pipeline(
    state: &AppState,
    actor: &User,
    mut pipeline: PipelineRecord,
    action: &str,
    detail: serde_json::Value,
) -> Result<PipelineRecord, ApiError> {
    check_pipeline(&pipeline, &environment_map(state).await?)?;
    pipeline.updated_at = now();
    state
        .store
        .update_pipeline(&pipeline, &audit(actor, action, &pipeline.id, detail))
        .await?;
    pipeline.revision += 1;
    Ok(pipeline)
}

/// Every pipeline the user may see, as `GET /pipelines` lists them, by id.
pub(crate) async fn visible_pipelines(
    state: &AppState,
    user: &User,
) -> Result<Vec<PipelineRecord>, ApiError> {
    let mut pipelines = all_pipelines(state).await?;
    pipelines.retain(|p| can_see_pipeline(user, p));
    Ok(pipelines)
}

async fn all_pipelines(state: &AppState) -> Result<Vec<PipelineRecord>, ApiError> {
    let store = &state.store;
    collect_all(
        move |p| async move { store.list_pipelines(&p).await },
        |p| p.id.clone(),
    )
    .await
}

/// Pipelines with the environment as a development environment or a stage's target.
pub(super) async fn pipelines_using_environment(
    state: &AppState,
    env_id: &str,
) -> Result<Vec<PipelineRecord>, ApiError> {
    let mut pipelines = all_pipelines(state).await?;
    pipelines.retain(|p| {
        p.development_environment_ids.iter().any(|d| d == env_id)
            || p.stages.iter().any(|s| s.target_environment_id == env_id)
    });
    Ok(pipelines)
}

/// Pipelines that bind the plugin as a gate or a validator.
pub(super) async fn pipelines_using_plugin(
    state: &AppState,
    plugin_id: &str,
) -> Result<Vec<PipelineRecord>, ApiError> {
    let mut pipelines = all_pipelines(state).await?;
    pipelines.retain(|p| p.uses_plugin(plugin_id));
    Ok(pipelines)
}

/// The id and status of one unfinished deployment that matches, if any.
pub(super) async fn first_in_flight(
    state: &AppState,
    mut filter: DeploymentFilter,
) -> Result<Option<(Id, DeploymentStatus)>, ApiError> {
    filter.statuses = DeploymentStatus::ALL
        .into_iter()
        .filter(|s| !s.is_final())
        .collect();
    let page = Page {
        after: None,
        limit: 1,
    };
    let found = state.store.list_deployments(&filter, &page).await?;
    Ok(found.into_iter().next().map(|d| (d.id, d.status)))
}
