//! `validating`: the pipeline's validators and the target's own check of the package.

use super::environment_steps::Stop;
use super::worker::Round;
use super::*;

impl Engine {
    /// `validating`: every validator of the pipeline runs; an error finding, or a validator
    /// that fails, fails the deployment.
    pub(super) async fn validate(
        &self,
        mut d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let now = now_ms();
        if d.status == DeploymentStatus::Scheduled && d.next_run_at.is_some_and(|at| at > now) {
            return Ok(d);
        }
        let (pipeline, _) = self.round_context(&d, round).await?;
        let mut events = Vec::new();
        if d.status != DeploymentStatus::Validating {
            d.status = DeploymentStatus::Validating;
            d.status_reason = String::new();
            events.push(event(&d, DeploymentEvent::ValidationStarted {}, None));
        }
        if d.artifact.package().is_none() {
            let environments = self.round_environments(&d, round).await?;
            match self
                .retrieve_artifact(&mut d, &pipeline, &environments)
                .await?
            {
                Ok((retrieved, exported)) => {
                    d.environment_attempts = 0;
                    events.push(retrieved);
                    round.view = None;
                    if exported {
                        // An export is worth keeping even if what follows fails.
                        self.save(&mut d, &std::mem::take(&mut events)).await?;
                    }
                }
                Err((what, err)) => {
                    let Stop::Saved(d) = self.environment_failed(d, &what, err, events).await?;
                    return Ok(d);
                }
            }
        }
        let (_, view) = self.round_context(&d, round).await?;
        let mut reports = Vec::new();
        for binding in &pipeline.validators {
            let outcome = self
                .gates
                .validate(&binding.plugin_id, view.clone(), &binding.config, now)
                .await;
            let name = self.plugin_name(&binding.plugin_id).await;
            let (findings, error) = match outcome.result {
                Ok(findings) => (findings, None),
                Err(cause) => (Vec::new(), Some(cause)),
            };
            reports.push(ValidatorReport {
                plugin_id: binding.plugin_id.clone(),
                plugin_name: name,
                findings,
                error,
                log: outcome.log,
                duration_us: outcome.duration_us,
            });
        }
        let plugins_passed = reports
            .iter()
            .all(|r| r.error.is_none() && r.findings.iter().all(|f| f.severity != Severity::Error));
        if plugins_passed {
            let environments = self.round_environments(&d, round).await?;
            match self.check_with_target(&d, &pipeline, &environments).await? {
                Ok(report) => reports.push(report),
                Err((what, err)) => {
                    d.validation = reports;
                    let Stop::Saved(d) = self.environment_failed(d, &what, err, events).await?;
                    return Ok(d);
                }
            }
        }
        let failed_plugin = reports.iter().find(|r| r.error.is_some());
        let errors: Vec<String> = reports
            .iter()
            .flat_map(|r| {
                r.findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(move |f| format!("{}: {} ({})", r.plugin_name, f.message, f.code))
            })
            .collect();
        let completed = DeploymentEvent::ValidationCompleted {
            errors: errors.len(),
            findings: reports.iter().map(|r| r.findings.len()).sum(),
        };
        events.push(event(&d, completed, None));
        let failure = match failed_plugin {
            Some(r) => Some(format!(
                "validator {} failed: {}",
                r.plugin_name,
                r.error.as_deref().unwrap_or_default()
            )),
            None if !errors.is_empty() => Some(format!(
                "validation found {} error(s): {}",
                errors.len(),
                errors.join("; ")
            )),
            None => None,
        };
        d.validation = reports;
        if let Some(reason) = failure {
            events.push(Self::finish(&mut d, DeploymentStatus::Failed, reason));
            self.save(&mut d, &events).await?;
            return Ok(d);
        }
        let stage = pipeline
            .stage(&d.stage_id)
            .ok_or_else(|| StoreError::NotFound(format!("stage {}", d.stage_id)))?;
        d.status = DeploymentStatus::PendingApproval;
        d.next_run_at = Some(now_ms());
        if stage.pre_deployment_step_required {
            d.pre_deployment_status = Some(PreDeploymentStatus::Pending);
            // From here on the deployment answers to these gates, whatever edits follow.
            d.gate_bindings = bindings::snapshot(stage);
            d.gates = Vec::new();
            let started = DeploymentEvent::PreDeploymentStarted {
                gates: d.gate_bindings.len(),
            };
            events.push(event(&d, started, None));
            if d.gate_bindings.is_empty() {
                d.status_reason = "waiting for the pre-deployment step to be completed (status 20) or rejected (30)".into();
                d.next_run_at = None;
            }
        } else {
            d.pre_deployment_status = None;
        }
        if d.next_run_at.is_some() {
            // The gates run next, in this advance: their save carries these events, since
            // nothing outside the host has been touched in between.
            round.defer(events);
        } else {
            self.save(&mut d, &events).await?;
        }
        Ok(d)
    }
}
