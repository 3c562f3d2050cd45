//! Pipelines: creating, saving and removing them, and finding the ones that use an
//! environment or a plugin. Every save checks the pipeline's rules first.

use serde_json::json;

use super::Catalog;
use crate::pipeline::access::require_admin;
use crate::pipeline::accounts::existing_grantees;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::model::{
    DeploymentStatus, Grantee, Id, PipelineRecord, PipelineSettings, User, new_id,
};
use crate::pipeline::rules::check_pipeline;
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{DeploymentFilter, Page, StoreResult, scan_all};

/// A new pipeline, as an admin describes it; stages are added afterwards.
#[derive(Debug, Clone)]
pub struct PipelineDraft {
    pub name: String,
    pub description: String,
    pub development_environment_ids: Vec<Id>,
    pub settings: PipelineSettings,
    /// Who may see and run it.
    pub shares: Vec<Grantee>,
}

impl Catalog<'_> {
    /// Creates a pipeline without stages.
    pub async fn create_pipeline(
        &self,
        actor: &User,
        draft: PipelineDraft,
    ) -> ServiceResult<PipelineRecord> {
        let actor = require_admin(actor, "creating a pipeline")?;
        if crate::pipeline::rules::is_blank(&draft.name) {
            return Err(ServiceError::invalid("the pipeline needs a name"));
        }
        existing_grantees(self.store, &draft.shares).await?;
        let at = now();
        let mut shares = draft.shares;
        shares.sort();
        shares.dedup();
        let pipeline = PipelineRecord {
            id: new_id(),
            name: draft.name,
            description: draft.description,
            development_environment_ids: draft.development_environment_ids,
            stages: Vec::new(),
            validators: Vec::new(),
            settings: draft.settings,
            shares,
            created_at: at,
            updated_at: at,
            revision: 0,
        };
        check_pipeline(&pipeline, &self.environment_map().await?)?;
        let detail = json!({
            "name": pipeline.name,
            "development_environment_ids": pipeline.development_environment_ids,
            "settings": pipeline.settings,
            "shares": pipeline.shares,
        });
        self.store
            .insert_pipeline(
                &pipeline,
                &audit(actor, "pipeline.create", &pipeline.id, detail),
            )
            .await?;
        Ok(pipeline)
    }

    /// Checks the pipeline's rules, then stores it with its audit line.
    pub async fn save_pipeline(
        &self,
        actor: &User,
        mut pipeline: PipelineRecord,
        action: &str,
        detail: serde_json::Value,
    ) -> ServiceResult<PipelineRecord> {
        check_pipeline(&pipeline, &self.environment_map().await?)?;
        pipeline.updated_at = now();
        self.store
            .update_pipeline(&pipeline, &audit(actor, action, &pipeline.id, detail))
            .await?;
        pipeline.revision += 1;
        Ok(pipeline)
    }

    /// Deletes a pipeline with no deployment in flight.
    pub async fn delete_pipeline(&self, actor: &User, id: &str) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting a pipeline")?;
        let pipeline = self.store.get_pipeline(id).await?;
        let in_flight = DeploymentFilter {
            pipeline_id: Some(id.to_owned()),
            ..DeploymentFilter::default()
        };
        if let Some(deployment) = self.first_in_flight(in_flight).await? {
            return Err(ServiceError::conflict(format!(
                "pipeline {:?} has deployment {} in flight ({}); wait for it to finish or cancel \
                 it first",
                pipeline.name, deployment.0, deployment.1
            )));
        }
        let detail = json!({ "name": pipeline.name });
        self.store
            .delete_pipeline(id, &audit(actor, "pipeline.delete", id, detail))
            .await?;
        Ok(())
    }

    async fn all_pipelines(&self) -> StoreResult<Vec<PipelineRecord>> {
        let store = self.store;
        scan_all(
            move |p| async move { store.list_pipelines(&p).await },
            |p| p.id.clone(),
        )
        .await
    }

    /// Pipelines with the environment as a development environment or a stage's target.
    pub async fn pipelines_using_environment(
        &self,
        env_id: &str,
    ) -> StoreResult<Vec<PipelineRecord>> {
        let mut pipelines = self.all_pipelines().await?;
        pipelines.retain(|p| {
            p.development_environment_ids.iter().any(|d| d == env_id)
                || p.stages.iter().any(|s| s.target_environment_id == env_id)
        });
        Ok(pipelines)
    }

    /// Pipelines that bind the plugin as a gate or a validator.
    pub async fn pipelines_using_plugin(
        &self,
        plugin_id: &str,
    ) -> StoreResult<Vec<PipelineRecord>> {
        let mut pipelines = self.all_pipelines().await?;
        pipelines.retain(|p| p.uses_plugin(plugin_id));
        Ok(pipelines)
    }

    /// The id and status of one unfinished deployment that matches, if any.
    pub async fn first_in_flight(
        &self,
        mut filter: DeploymentFilter,
    ) -> StoreResult<Option<(Id, DeploymentStatus)>> {
        filter.statuses = DeploymentStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect();
        let page = Page {
            after: None,
            limit: 1,
        };
        let found = self.store.list_deployments(&filter, &page).await?;
        Ok(found.into_iter().next().map(|d| (d.id, d.status)))
    }
}
