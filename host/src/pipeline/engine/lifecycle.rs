//! What the requester or an admin does to a deployment's course: cancel, retry,
//! reschedule.

use super::*;

impl Engine {
    pub async fn cancel(&self, actor: &User, id: &str) -> EngineResult<DeploymentRecord> {
        let (d, _) = self.visible_deployment(actor, id).await?;
        if d.requested_by != actor.id && !actor.is_admin() {
            return Err(EngineError::Forbidden(
                "only the requester or an admin may cancel a deployment".into(),
            ));
        }
        let entry = audit(&actor.id, "deployment.cancel", id, serde_json::json!({}));
        let d = self
            .modify(id, Some(&entry), |d| {
                if !d.status.is_cancelable() {
                    return Err(EngineError::Conflict(format!(
                        "deployment is {}; it can be canceled only until deploying starts",
                        d.status
                    )));
                }
                let now = now_ms();
                let mut events = Vec::new();
                if gate_round::approval_open(d) {
                    events.push(event(
                        d,
                        DeploymentEvent::ApprovalCompleted {
                            approved: false,
                            canceled: Some(true),
                            by_override: None,
                            reason: None,
                        },
                        Some(&actor.id),
                    ));
                }
                d.status = DeploymentStatus::Canceled;
                d.status_reason = format!("canceled by {}", actor.display_name);
                d.next_run_at = None;
                d.finished_at = Some(now);
                events.push(event(d, DeploymentEvent::Canceled {}, Some(&actor.id)));
                let completed = DeploymentEvent::DeploymentCompleted {
                    status: DeploymentStatus::Canceled,
                    reason: Some(d.status_reason.clone()),
                };
                events.push(event(d, completed, None));
                Ok(events)
            })
            .await?;
        Ok(mask_secrets(d))
    }

    /// Runs a failed, rejected or canceled deployment again from the start, as a new
    /// attempt of the same deployment.
    pub async fn retry(&self, actor: &User, id: &str) -> EngineResult<DeploymentRecord> {
        let (d, _) = self.visible_deployment(actor, id).await?;
        if d.requested_by != actor.id && !actor.is_admin() {
            return Err(EngineError::Forbidden(
                "only the requester or an admin may retry a deployment".into(),
            ));
        }
        let entry = audit(&actor.id, "deployment.retry", id, serde_json::json!({}));
        let d = self
            .modify(id, Some(&entry), |d| {
                if !matches!(
                    d.status,
                    DeploymentStatus::Failed | DeploymentStatus::Rejected | DeploymentStatus::Canceled
                ) {
                    return Err(EngineError::Conflict(format!(
                        "deployment is {}; only failed, rejected or canceled deployments can be retried",
                        d.status
                    )));
                }
                let now = now_ms();
                d.attempt += 1;
                d.attempt_started_at = now;
                d.status = DeploymentStatus::Queued;
                d.status_reason = format!("retry {} requested by {}", d.attempt, actor.display_name);
                d.pre_deployment_status = None;
                d.pre_deployment_override = None;
                d.gate_bindings.clear();
                d.gates.clear();
                d.validation.clear();
                d.environment_attempts = 0;
                d.import_started = false;
                d.next_run_at = Some(now);
                d.finished_at = None;
                let retried = DeploymentEvent::Retried { attempt: d.attempt };
                Ok(vec![event(d, retried, Some(&actor.id))])
            })
            .await?;
        self.wake();
        Ok(mask_secrets(d))
    }

    /// Moves a deployment that has not started to another time, or to now (`None`).
    pub async fn reschedule(
        &self,
        actor: &User,
        id: &str,
        scheduled_for: Option<Timestamp>,
    ) -> EngineResult<DeploymentRecord> {
        let (d, _) = self.visible_deployment(actor, id).await?;
        if d.requested_by != actor.id && !actor.is_admin() {
            return Err(EngineError::Forbidden(
                "only the requester or an admin may reschedule a deployment".into(),
            ));
        }
        if let Some(at) = scheduled_for {
            crate::pipeline::rules::check_time("scheduled_for", at)
                .map_err(EngineError::Invalid)?;
        }
        let now = now_ms();
        if scheduled_for.is_some_and(|at| at + 1000 < now) {
            return Err(EngineError::Conflict(
                "scheduled_for is in the past; send null to deploy now".into(),
            ));
        }
        let entry = audit(
            &actor.id,
            "deployment.reschedule",
            id,
            serde_json::json!({ "scheduled_for": scheduled_for }),
        );
        let d = self
            .modify(id, Some(&entry), |d| {
                if !matches!(
                    d.status,
                    DeploymentStatus::Queued | DeploymentStatus::Scheduled
                ) {
                    return Err(EngineError::Conflict(format!(
                        "deployment is {}; only queued or scheduled deployments can be rescheduled",
                        d.status
                    )));
                }
                let at = scheduled_for.filter(|at| *at > now);
                d.scheduled_for = at;
                d.status = if at.is_some() {
                    DeploymentStatus::Scheduled
                } else {
                    DeploymentStatus::Queued
                };
                d.status_reason = at
                    .map(|t| format!("scheduled for {}", format_time(t)))
                    .unwrap_or_default();
                d.next_run_at = Some(at.unwrap_or(now));
                Ok(vec![event(
                    d,
                    DeploymentEvent::Rescheduled { at },
                    Some(&actor.id),
                )])
            })
            .await?;
        self.wake();
        Ok(mask_secrets(d))
    }
}
