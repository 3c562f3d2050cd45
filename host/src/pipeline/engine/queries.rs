//! Reading deployments: one with its votes and timeline, or a filtered page.

use super::*;

/// A deployment with its votes and timeline.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    pub deployment: DeploymentRecord,
    pub votes: Vec<VoteRecord>,
    pub timeline: Vec<TimelineEvent>,
}

impl Engine {
    pub async fn get(&self, actor: &User, id: &str) -> EngineResult<DeploymentView> {
        let (d, _) = self.visible_deployment(actor, id).await?;
        Ok(DeploymentView {
            votes: self.store.votes(id).await?,
            timeline: self.store.timeline(id).await?,
            deployment: mask_secrets(d),
        })
    }

    pub async fn list(
        &self,
        actor: &User,
        filter: &DeploymentFilter,
        page: &Page,
    ) -> EngineResult<Vec<DeploymentRecord>> {
        if actor.is_admin() {
            let list = self.store.list_deployments(filter, page).await?;
            return Ok(list.into_iter().map(mask_secrets).collect());
        }
        // A user sees the deployments of the pipelines shared with them.
        let visible: Vec<PipelineRecord> = self.visible_pipelines(actor).await?;
        if let Some(pipeline_id) = &filter.pipeline_id {
            if !visible.iter().any(|p| &p.id == pipeline_id) {
                return Ok(Vec::new());
            }
            let list = self.store.list_deployments(filter, page).await?;
            return Ok(list.into_iter().map(mask_secrets).collect());
        }
        let mut out = Vec::new();
        let mut cursor = page.clone();
        // Walk pages until enough visible deployments are found.
        loop {
            let batch = self.store.list_deployments(filter, &cursor).await?;
            let done = (batch.len() as u32) < cursor.limit;
            cursor.after = batch.last().map(|d| d.id.clone());
            out.extend(
                batch
                    .into_iter()
                    .filter(|d| visible.iter().any(|p| p.id == d.pipeline_id)),
            );
            if done || out.len() as u32 >= page.limit {
                break;
            }
        }
        out.truncate(page.limit as usize);
        Ok(out.into_iter().map(mask_secrets).collect())
    }
}
