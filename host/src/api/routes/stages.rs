//! A pipeline's stages with their gates, and its validators.
//!
//! Binding a plugin checks, in order: that it exists, that it is enabled, that its world
//! fits (an approver for a gate, a validator for a validator), and that its own
//! `check-config` accepts the configuration. A plugin that does not exist is a 404, one
//! that is disabled or of the wrong world a 409, and the plugin's own refusal a 422.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, present};
use crate::api::problems::{Forbidden, NotFound, PluginRefused, StaleRevision};
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
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
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
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
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
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412")), request_body = NewStage,
    responses(
        (status = 201, body = StageRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline or stage, or a referenced environment, stage or plugin does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule, or a gate's plugin is disabled or not an approver"),
        StaleRevision,
        PluginRefused,
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
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412"), ("sid" = String, Path, description = "the stage's id")),
    request_body = StagePatch,
    responses(
        (status = 200, body = StageRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline or stage, or a referenced environment, stage or plugin does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule, or a gate's plugin is disabled or not an approver"),
        StaleRevision,
        PluginRefused,
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
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412"), ("sid" = String, Path, description = "the stage's id")),
    responses(
        (status = 204),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "another stage follows it, or a deployment is in flight"),
        StaleRevision,
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
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412")), request_body = Validators,
    responses(
        (status = 200, body = PipelineRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or a validator's plugin does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a validator's plugin is disabled or not a validator"),
        StaleRevision,
        PluginRefused,
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
