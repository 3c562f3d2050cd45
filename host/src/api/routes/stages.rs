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

use super::pipelines::{first_in_flight, save_pipeline};
use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, present};
use crate::api::{ApiError, AppState};
use crate::pipeline::bindings::assign_gate_ids;
use crate::pipeline::model::{
    GateBinding, Id, PipelineRecord, PluginBinding, PluginRecord, StageRecord, new_id,
};
use crate::pipeline::store::{DeploymentFilter, StoreError};
use crate::pipeline::{Config, PluginWorld};

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
    check_gates(&state, &pipeline, &body.gates).await?;
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
    save_pipeline(&state, actor, pipeline, "pipeline.stage.create", detail).await?;
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
        check_gates(&state, &pipeline, gates).await?;
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
    save_pipeline(&state, actor, pipeline, "pipeline.stage.update", detail).await?;
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
    if let Some((id, status)) = first_in_flight(&state, in_flight).await? {
        return Err(ApiError::conflict(format!(
            "stage {name:?} has deployment {id} in flight ({status}); wait for it to finish or \
             cancel it first"
        )));
    }
    pipeline.stages.retain(|s| s.id != stage_id);
    let detail = json!({ "stage_id": stage_id, "name": name });
    save_pipeline(&state, actor, pipeline, "pipeline.stage.delete", detail).await?;
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
    for binding in &body.validators {
        check_binding(
            &state,
            &pipeline,
            &binding.plugin_id,
            &binding.config,
            PluginWorld::Validator,
        )
        .await?;
    }
    let detail = json!({ "before": pipeline.validators, "after": body.validators });
    pipeline.validators = body.validators;
    save_pipeline(&state, actor, pipeline, "pipeline.set_validators", detail)
        .await
        .map(Json)
}

fn check_stage_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("the stage needs a name"));
    }
    Ok(())
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

async fn check_gates(
    state: &AppState,
    pipeline: &PipelineRecord,
    gates: &[GateBinding],
) -> Result<(), ApiError> {
    for gate in gates {
        if gate.approval_timeout_seconds == Some(0) {
            return Err(ApiError::invalid(
                "approval_timeout_seconds must be at least 1; leave it out for no timeout",
            ));
        }
        check_binding(
            state,
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
async fn check_binding(
    state: &AppState,
    pipeline: &PipelineRecord,
    plugin_id: &str,
    config: &Config,
    wanted: PluginWorld,
) -> Result<PluginRecord, ApiError> {
    let plugin = match state.store.get_plugin(plugin_id).await {
        Ok(plugin) => plugin,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::invalid(format!(
                "plugin {plugin_id} does not exist; upload it with POST /api/v1/plugins, or \
                 pick one from GET /api/v1/plugins"
            ))
            .with("plugin_id", plugin_id));
        }
        Err(error) => return Err(error.into()),
    };
    let named = format!("{} {}", plugin.name, plugin.version);
    if !plugin.enabled {
        return Err(ApiError::invalid(format!(
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
        let mut error = ApiError::invalid(detail)
            .with("plugin_id", plugin.id.clone())
            .with("plugin_world", plugin.world.to_string());
        error.kind = "wrong-plugin-world";
        return Err(error);
    }
    match state.plugins.check_config(&plugin.id, config).await {
        Ok(Ok(())) => Ok(plugin),
        Ok(Err(message)) => {
            let mut error = ApiError::invalid(format!(
                "plugin {named} refused its configuration: {message}"
            ))
            .with("plugin_id", plugin.id.clone())
            .with("plugin_message", message);
            error.kind = "plugin-config-refused";
            error.title = "The plugin refused its configuration";
            Err(error)
        }
        Err(cause) => {
            let mut error = ApiError::invalid(format!(
                "plugin {named} failed while checking its configuration: {cause}; check the \
                 plugin's limits and stats (GET /api/v1/plugins/{}/stats)",
                plugin.id
            ))
            .with("plugin_id", plugin.id.clone());
            error.kind = "plugin-failed";
            Err(error)
        }
    }
}
