//! A pipeline's stages with their gates, and its validators. Each change checks its
//! bindings, keeps the gates' ids stable, and is saved through the pipeline's rules.

use serde_json::json;

use super::Catalog;
use super::bindings::check_stage_name;
use crate::pipeline::PluginWorld;
use crate::pipeline::access::require_admin;
use crate::pipeline::bindings::assign_gate_ids;
use crate::pipeline::model::{
    GateBinding, Id, PipelineRecord, PluginBinding, StageRecord, User, new_id,
};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::DeploymentFilter;

/// A new stage, as an admin describes it.
#[derive(Debug, Clone)]
pub struct StageDraft {
    pub name: String,
    pub description: String,
    pub previous_stage_id: Option<Id>,
    pub target_environment_id: Id,
    pub pre_deployment_step_required: bool,
    pub gates: Vec<GateBinding>,
}

/// Changes to a stage; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StageChange {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` makes it the first stage.
    pub previous_stage_id: Option<Option<Id>>,
    pub target_environment_id: Option<Id>,
    pub pre_deployment_step_required: Option<bool>,
    /// Replaces the gates; a gate sent back with its id keeps it.
    pub gates: Option<Vec<GateBinding>>,
}

impl Catalog<'_> {
    /// Adds a stage to `pipeline`, the revision the caller read.
    pub async fn add_stage(
        &self,
        actor: &User,
        mut pipeline: PipelineRecord,
        mut draft: StageDraft,
    ) -> ServiceResult<StageRecord> {
        let actor = require_admin(actor, "adding a stage")?;
        check_stage_name(&draft.name)?;
        self.check_gates(&pipeline, &draft.gates).await?;
        assign_gate_ids(&pipeline, None, &mut draft.gates);
        let stage = StageRecord {
            id: new_id(),
            name: draft.name,
            description: draft.description,
            previous_stage_id: draft.previous_stage_id,
            target_environment_id: draft.target_environment_id,
            pre_deployment_step_required: draft.pre_deployment_step_required,
            gates: draft.gates,
        };
        pipeline.stages.push(stage.clone());
        let detail = json!({ "stage": stage });
        self.save_pipeline(actor, pipeline, "pipeline.stage.create", detail)
            .await?;
        Ok(stage)
    }

    /// Changes one stage of `pipeline`, the revision the caller read.
    pub async fn update_stage(
        &self,
        actor: &User,
        mut pipeline: PipelineRecord,
        stage_id: &str,
        mut change: StageChange,
    ) -> ServiceResult<StageRecord> {
        let actor = require_admin(actor, "changing a stage")?;
        if let Some(gates) = &mut change.gates {
            self.check_gates(&pipeline, gates).await?;
            assign_gate_ids(&pipeline, Some(stage_id), gates);
        }
        if let Some(name) = &change.name {
            check_stage_name(name)?;
        }
        let stage = stage_mut(&mut pipeline, stage_id)?;
        if let Some(name) = change.name {
            stage.name = name;
        }
        if let Some(description) = change.description {
            stage.description = description;
        }
        if let Some(previous) = change.previous_stage_id {
            stage.previous_stage_id = previous;
        }
        if let Some(target) = change.target_environment_id {
            stage.target_environment_id = target;
        }
        if let Some(required) = change.pre_deployment_step_required {
            stage.pre_deployment_step_required = required;
        }
        if let Some(gates) = change.gates {
            stage.gates = gates;
        }
        let stage = stage.clone();
        let detail = json!({ "stage": stage });
        self.save_pipeline(actor, pipeline, "pipeline.stage.update", detail)
            .await?;
        Ok(stage)
    }

    /// Removes a stage of `pipeline` that no other stage follows and no deployment is
    /// running in.
    pub async fn delete_stage(
        &self,
        actor: &User,
        mut pipeline: PipelineRecord,
        stage_id: &str,
    ) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting a stage")?;
        let name = stage_mut(&mut pipeline, stage_id)?.name.clone();
        if let Some(next) = pipeline
            .stages
            .iter()
            .find(|s| s.previous_stage_id.as_deref() == Some(stage_id))
        {
            return Err(ServiceError::conflict(format!(
                "stage {:?} follows stage {name:?}; delete it, or make it follow another \
                 stage, first",
                next.name
            ))
            .with("next_stage_id", next.id.clone()));
        }
        let in_flight = DeploymentFilter {
            stage_id: Some(stage_id.to_owned()),
            ..DeploymentFilter::default()
        };
        if let Some((id, status)) = self.first_in_flight(in_flight).await? {
            return Err(ServiceError::conflict(format!(
                "stage {name:?} has deployment {id} in flight ({status}); wait for it to \
                 finish or cancel it first"
            )));
        }
        pipeline.stages.retain(|s| s.id != stage_id);
        let detail = json!({ "stage_id": stage_id, "name": name });
        self.save_pipeline(actor, pipeline, "pipeline.stage.delete", detail)
            .await?;
        Ok(())
    }

    /// Replaces the validators of `pipeline`, the revision the caller read.
    pub async fn set_validators(
        &self,
        actor: &User,
        mut pipeline: PipelineRecord,
        validators: Vec<PluginBinding>,
    ) -> ServiceResult<PipelineRecord> {
        let actor = require_admin(actor, "changing a pipeline's validators")?;
        for binding in &validators {
            self.check_binding(
                &pipeline,
                &binding.plugin_id,
                &binding.config,
                PluginWorld::Validator,
            )
            .await?;
        }
        let detail = json!({ "before": pipeline.validators, "after": validators });
        pipeline.validators = validators;
        self.save_pipeline(actor, pipeline, "pipeline.set_validators", detail)
            .await
    }
}

fn stage_mut<'a>(
    pipeline: &'a mut PipelineRecord,
    stage_id: &str,
) -> ServiceResult<&'a mut StageRecord> {
    let name = pipeline.name.clone();
    pipeline
        .stages
        .iter_mut()
        .find(|s| s.id == stage_id)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "pipeline {name:?} has no stage {stage_id}; its stages are listed in GET \
                 /api/v1/pipelines/{{id}}"
            ))
        })
}
