//! Votes, the approvals inbox, and the pre-deployment-status override (20/30).

use std::ops::ControlFlow;

use super::*;
use crate::pipeline::store::scan_pages;

impl Engine {
    /// Records a vote and runs the gates again.
    pub async fn vote(
        &self,
        actor: &User,
        id: &str,
        approve: bool,
        comment: String,
    ) -> EngineResult<DeploymentRecord> {
        self.visible_deployment(actor, id).await?;
        for _ in 0..SAVE_ATTEMPTS {
            let mut d = self.store.get_deployment(id).await?;
            gate_round::may_vote(actor, &d).map_err(|refusal| match refusal {
                gate_round::VoteRefusal::NotWaiting(_) => {
                    EngineError::Conflict(refusal.to_string())
                }
                _ => EngineError::Forbidden(refusal.to_string()),
            })?;
            let now = now_ms();
            let vote = VoteRecord {
                id: new_id(),
                deployment_id: d.id.clone(),
                voter_id: actor.id.clone(),
                approve,
                comment: comment.clone(),
                at: now,
            };
            d.next_run_at = Some(now);
            d.updated_at = now;
            let events = vec![event(
                &d,
                DeploymentEvent::Vote {
                    approve,
                    comment: comment.clone(),
                },
                Some(&actor.id),
            )];
            let entry = audit(
                &actor.id,
                "deployment.vote",
                id,
                serde_json::json!({ "approve": approve }),
            );
            match self.store.insert_vote(&vote, &d, &events, &entry).await {
                Ok(revision) => {
                    d.revision = revision;
                    self.wake();
                    return Ok(mask_secrets(d));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EngineError::Conflict(format!(
            "deployment {id} is changing too quickly; try again"
        )))
    }

    /// What the user may vote on now.
    pub async fn approvals(&self, actor: &User) -> EngineResult<Vec<DeploymentRecord>> {
        let filter = DeploymentFilter {
            statuses: vec![DeploymentStatus::PendingApproval],
            ..DeploymentFilter::default()
        };
        let visible = self.visible_pipelines(actor).await?;
        let mut out = Vec::new();
        scan_pages(
            |page| {
                let filter = &filter;
                async move { self.store.list_deployments(filter, &page).await }
            },
            |d| d.id.clone(),
            |batch| {
                out.extend(batch.into_iter().filter(|d| {
                    visible.iter().any(|p| p.id == d.pipeline_id)
                        && d.gates.iter().any(|g| !g.approved && g.decision.is_some())
                        && gate_round::may_vote(actor, d).is_ok()
                }));
                ControlFlow::Continue(())
            },
        )
        .await?;
        Ok(out.into_iter().map(mask_secrets).collect())
    }

    /// Completes (20) or rejects (30) the pre-deployment step from outside, whatever the
    /// gates say; admins only, and recorded with who did it.
    pub async fn set_pre_deployment_status(
        &self,
        actor: &User,
        id: &str,
        status: PreDeploymentStatus,
        comment: String,
    ) -> EngineResult<DeploymentRecord> {
        if !actor.is_admin() {
            return Err(EngineError::Forbidden(
                "setting the pre-deployment status needs the admin role (use an admin's or an integration's token)".into(),
            ));
        }
        if status == PreDeploymentStatus::Pending {
            return Err(EngineError::Invalid(
                gate_round::OverrideRefusal::NotAnOutcome.to_string(),
            ));
        }
        let _ = self.visible_deployment(actor, id).await?;
        let entry = audit(
            &actor.id,
            "deployment.pre_deployment_status",
            id,
            serde_json::json!({ "status": status as u16 }),
        );
        let d = self
            .modify(id, Some(&entry), |d| {
                let events = gate_round::override_step(d, actor, status, &comment, now_ms())
                    .map_err(|refusal| EngineError::Conflict(refusal.to_string()))?;
                // The deployment's end is the engine's doing; the rest is the admin's.
                Ok(events
                    .into_iter()
                    .map(|e| {
                        let by = match e {
                            DeploymentEvent::DeploymentCompleted { .. } => None,
                            _ => Some(actor.id.as_str()),
                        };
                        event(d, e, by)
                    })
                    .collect())
            })
            .await?;
        self.wake();
        Ok(mask_secrets(d))
    }
}
