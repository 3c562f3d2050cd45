//! A pipeline's stages with their gates, and its validators.
//!
//! Binding a plugin checks, in order: that it exists, that it is enabled, that its world
//! fits (an approver for a gate, a validator for a validator), and that its own
//! `check-config` accepts the configuration. Each refusal is a 422 that says which.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, present};
use crate::api::{ApiError, AppState};
use crate::pipeline::catalog::{StageChange, StageDraft};
use crate::pipeline::model::{GateBinding, Id, PipelineRecord, PluginBinding, StageRecord};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_stage))
        .routes(routes!(update_stage, delete_stage))
        .routes(routes!(set_validators))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewStage {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The stage this one follows; omit for the first stage.
    #[serde(default)]
    pub previous_stage_id: Option<Id>,
    /// A validated target environment.
    pub target_environment_id: Id,
    #[serde(default)]
    pub pre_deployment_step_required: bool,
    /// Approval gates, evaluated in order.
    #[serde(default)]
    pub gates: Vec<GateBinding>,
}

/// Changes to a stage; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StagePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `null` makes it the first stage.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub previous_stage_id: Option<Option<Id>>,
    pub target_environment_id: Option<Id>,
    pub pre_deployment_step_required: Option<bool>,
    /// Replaces the gates.
    pub gates: Option<Vec<GateBinding>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Validators {
    /// Replaces the pipeline's validators.
    pub validators: Vec<PluginBinding>,
}

/// Adds a stage, with its gates, to a pipeline.
#[utoipa::path(post, path = "/pipelines/{id}/stages", tag = "pipelines",
    params(("id" = String, Path)), request_body = NewStage,
    responses(
        (status = 201, body = StageRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule, or a gate cannot be bound"),
    ))]
async fn add_stage(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(pipeline_id): Path<Id>,
    Json(body): Json<NewStage>,
) -> Result<(StatusCode, Json<StageRecord>), ApiError> {
    let actor = actor.require_admin("adding a stage")?;
    let pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let draft = StageDraft {
        name: body.name,
        description: body.description,
        previous_stage_id: body.previous_stage_id,
        target_environment_id: body.target_environment_id,
        pre_deployment_step_required: body.pre_deployment_step_required,
        gates: body.gates,
    };
    let stage = state.catalog().add_stage(actor, pipeline, draft).await?;
    Ok((StatusCode::CREATED, Json(stage)))
}

#[utoipa::path(patch, path = "/pipelines/{id}/stages/{sid}", tag = "pipelines",
    params(("id" = String, Path), ("sid" = String, Path, description = "the stage's id")),
    request_body = StagePatch,
    responses(
        (status = 200, body = StageRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule, or a gate cannot be bound"),
    ))]
async fn update_stage(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path((pipeline_id, stage_id)): Path<(Id, Id)>,
    Json(patch): Json<StagePatch>,
) -> Result<Json<StageRecord>, ApiError> {
    let actor = actor.require_admin("changing a stage")?;
    let pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let change = StageChange {
        name: patch.name,
        description: patch.description,
        previous_stage_id: patch.previous_stage_id,
        target_environment_id: patch.target_environment_id,
        pre_deployment_step_required: patch.pre_deployment_step_required,
        gates: patch.gates,
    };
    let stage = state
        .catalog()
        .update_stage(actor, pipeline, &stage_id, change)
        .await?;
    Ok(Json(stage))
}

/// Removes a stage that no other stage follows and no deployment is running in.
#[utoipa::path(delete, path = "/pipelines/{id}/stages/{sid}", tag = "pipelines",
    params(("id" = String, Path), ("sid" = String, Path, description = "the stage's id")),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "another stage follows it, or a deployment is in flight"),
    ))]
async fn delete_stage(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path((pipeline_id, stage_id)): Path<(Id, Id)>,
) -> Result<StatusCode, ApiError> {
    let actor = actor.require_admin("deleting a stage")?;
    let pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    state
        .catalog()
        .delete_stage(actor, pipeline, &stage_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the pipeline's validators, which run while each deployment validates.
#[utoipa::path(put, path = "/pipelines/{id}/validators", tag = "pipelines",
    params(("id" = String, Path)), request_body = Validators,
    responses(
        (status = 200, body = PipelineRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a validator cannot be bound"),
    ))]
async fn set_validators(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(pipeline_id): Path<Id>,
    Json(body): Json<Validators>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("changing a pipeline's validators")?;
    let pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let saved = state
        .catalog()
        .set_validators(actor, pipeline, body.validators)
        .await?;
    Ok(Json(saved))
}
