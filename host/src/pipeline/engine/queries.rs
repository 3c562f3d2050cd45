//! Reading deployments: one with its votes and timeline, or a filtered page.

use super::*;

/// A deployment with its votes and timeline.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    pub deployment: DeploymentRecord,
    pub votes: Vec<VoteRecord>,
    pub timeline: Vec<TimelineEvent>,
    /// The display names of the people the deployment names (its requester, its voters,
    /// who overrode its pre-deployment step, who acted in its timeline), by user id, so
    /// that anyone who may see the deployment can read who did what. A user who no
    /// longer exists is missing.
    pub people: std::collections::BTreeMap<Id, String>,
}

impl Engine {
    pub async fn get(&self, actor: &User, id: &str) -> EngineResult<DeploymentView> {
        let (d, _) = self.visible_deployment(actor, id).await?;
        let votes = self.store.votes(id).await?;
        let timeline = self.store.timeline(id).await?;
        let mut named = std::collections::BTreeSet::new();
        named.insert(d.requested_by.as_str());
        if let Some(o) = &d.pre_deployment_override {
            named.insert(o.by.as_str());
        }
        for v in &votes {
            named.insert(v.voter_id.as_str());
        }
        for actor in timeline.iter().filter_map(|e| e.actor.as_ref()) {
            named.insert(actor.as_str());
        }
        let people = crate::pipeline::accounts::display_names(self.store.as_ref(), named).await?;
        Ok(DeploymentView {
            votes,
            timeline,
            people,
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
