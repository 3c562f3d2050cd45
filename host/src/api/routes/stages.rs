//! A pipeline's stages with their gates, and its validators.
//!
//! Binding a plugin checks, in order: that it exists, that it is enabled, that its world
//! fits (an approver for a gate, a validator for a validator), and that its own
//! `check-config` accepts the configuration. Each refusal is a 422 that says which.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, present};
use crate::api::{ApiError, AppState};
use crate::pipeline::PluginWorld;
use crate::pipeline::bindings::assign_gate_ids;
use crate::pipeline::catalog::check_stage_name;
use crate::pipeline::model::{GateBinding, Id, PipelineRecord, PluginBinding, StageRecord, new_id};
use crate::pipeline::store::DeploymentFilter;

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
    Json(mut body): Json<NewStage>,
) -> Result<(StatusCode, Json<StageRecord>), ApiError> {
    let actor = actor.require_admin("adding a stage")?;
    let mut pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    check_stage_name(&body.name)?;
    state.catalog().check_gates(&pipeline, &body.gates).await?;
    assign_gate_ids(&pipeline, None, &mut body.gates);
    let stage = StageRecord {
        id: new_id(),
        name: body.name,
        description: body.description,
        previous_stage_id: body.previous_stage_id,
        target_environment_id: body.target_environment_id,
        pre_deployment_step_required: body.pre_deployment_step_required,
        gates: body.gates,
    };
    pipeline.stages.push(stage.clone());
    let detail = json!({ "stage": stage });
    state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.stage.create", detail)
        .await?;
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
    Json(mut patch): Json<StagePatch>,
) -> Result<Json<StageRecord>, ApiError> {
    let actor = actor.require_admin("changing a stage")?;
    let mut pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    if let Some(gates) = &mut patch.gates {
        state.catalog().check_gates(&pipeline, gates).await?;
        assign_gate_ids(&pipeline, Some(&stage_id), gates);
    }
    let stage = stage_mut(&mut pipeline, &stage_id)?;
    if let Some(name) = patch.name {
        check_stage_name(&name)?;
        stage.name = name;
    }
    if let Some(description) = patch.description {
        stage.description = description;
    }
    if let Some(previous) = patch.previous_stage_id {
        stage.previous_stage_id = previous;
    }
    if let Some(target) = patch.target_environment_id {
        stage.target_environment_id = target;
    }
    if let Some(required) = patch.pre_deployment_step_required {
        stage.pre_deployment_step_required = required;
    }
    if let Some(gates) = patch.gates {
        stage.gates = gates;
    }
    let stage = stage.clone();
    let detail = json!({ "stage": stage });
    state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.stage.update", detail)
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
    let mut pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let name = stage_mut(&mut pipeline, &stage_id)?.name.clone();
    if let Some(next) = pipeline
        .stages
        .iter()
        .find(|s| s.previous_stage_id.as_deref() == Some(&stage_id))
    {
        return Err(ApiError::conflict(format!(
            "stage {:?} follows stage {name:?}; delete it, or make it follow another stage, \
             first",
            next.name
        ))
        .with("next_stage_id", next.id.clone()));
    }
    let in_flight = DeploymentFilter {
        stage_id: Some(stage_id.clone()),
        ..DeploymentFilter::default()
    };
    if let Some((id, status)) = state.catalog().first_in_flight(in_flight).await? {
        return Err(ApiError::conflict(format!(
            "stage {name:?} has deployment {id} in flight ({status}); wait for it to finish or \
             cancel it first"
        )));
    }
    pipeline.stages.retain(|s| s.id != stage_id);
    let detail = json!({ "stage_id": stage_id, "name": name });
    state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.stage.delete", detail)
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
    let mut pipeline = state.store.get_pipeline(&pipeline_id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let catalog = state.catalog();
    for binding in &body.validators {
        catalog
            .check_binding(
                &pipeline,
                &binding.plugin_id,
                &binding.config,
                PluginWorld::Validator,
            )
            .await?;
    }
    let detail = json!({ "before": pipeline.validators, "after": body.validators });
    pipeline.validators = body.validators;
    let saved = catalog
        .save_pipeline(actor, pipeline, "pipeline.set_validators", detail)
        .await?;
    Ok(Json(saved))
}

fn stage_mut<'a>(
    pipeline: &'a mut PipelineRecord,
    stage_id: &str,
) -> Result<&'a mut StageRecord, ApiError> {
    let name = pipeline.name.clone();
    pipeline
        .stages
        .iter_mut()
        .find(|s| s.id == stage_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "pipeline {name:?} has no stage {stage_id}; its stages are listed in GET \
                 /api/v1/pipelines/{{id}}"
            ))
        })
}
