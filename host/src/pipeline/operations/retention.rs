//! Retention jobs: admins schedule the deletion of old finished deployments and old
//! artifacts, or a dry run that only reports what would go.

use serde_json::json;

use super::{Listing, Operations};
use crate::pipeline::Timestamp;
use crate::pipeline::access::require_admin;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::model::{User, new_id};
use crate::pipeline::retention::{ArtifactRule, DeploymentRule, RetentionJob};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::Page;

/// A new retention job, as an admin describes it.
#[derive(Debug, Clone, Default)]
pub struct RetentionJobDraft {
    pub name: String,
    pub deployments: Option<DeploymentRule>,
    pub artifacts: Option<ArtifactRule>,
    /// Once when not given.
    pub every_hours: Option<u32>,
    pub dry_run: bool,
    /// Now when not given.
    pub start_at: Option<Timestamp>,
}

impl Operations<'_> {
    /// Schedules a retention job after checking what it asks for.
    pub async fn create_retention_job(
        &self,
        actor: &User,
        draft: RetentionJobDraft,
    ) -> ServiceResult<RetentionJob> {
        let actor = require_admin(actor, "scheduling a retention job")?;
        if let Some(start_at) = draft.start_at {
            crate::pipeline::rules::check_time("start_at", start_at)
                .map_err(ServiceError::invalid)?;
        }
        let at = now();
        let mut job = RetentionJob {
            id: new_id(),
            name: draft.name,
            deployments: draft.deployments,
            artifacts: draft.artifacts,
            every_hours: draft.every_hours,
            dry_run: draft.dry_run,
            created_by: actor.id.clone(),
            created_at: at,
            next_run_at: Some(draft.start_at.unwrap_or(at)),
            runs: 0,
            last_run: None,
        };
        job.validate().map_err(ServiceError::invalid)?;
        let detail = serde_json::to_value(&job).unwrap_or_default();
        let line = audit(actor, "retention.create", &job.id, detail);
        self.store.insert_retention_job(&job, &line).await?;
        Ok(job)
    }

    /// Retention jobs, newest first.
    pub async fn retention_jobs(
        &self,
        actor: &User,
        page: &Page,
    ) -> ServiceResult<Listing<RetentionJob>> {
        require_admin(actor, "listing retention jobs")?;
        let mut ask = page.clone();
        ask.limit += 1;
        let items = self.store.list_retention_jobs(&ask).await?;
        Ok(Listing::of(items, page.limit as usize, |j| j.id.clone()))
    }

    pub async fn retention_job(&self, actor: &User, id: &str) -> ServiceResult<RetentionJob> {
        require_admin(actor, "reading a retention job")?;
        Ok(self.store.get_retention_job(id).await?)
    }

    /// Unschedules a retention job; what it deleted stays deleted.
    pub async fn delete_retention_job(&self, actor: &User, id: &str) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting a retention job")?;
        let job = self.store.get_retention_job(id).await?;
        let line = audit(actor, "retention.delete", id, json!({ "name": job.name }));
        self.store.delete_retention_job(id, &line).await?;
        Ok(())
    }
}
