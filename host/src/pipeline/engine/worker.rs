//! The worker: claims due deployments and moves each through its states, one committed
//! step at a time, until it waits for something or ends.

use std::sync::Arc;

use super::environment_steps::Stop;
use super::*;

impl Engine {
    /// The worker: claims due deployments and advances each until it waits or ends.
    /// Returns when `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut running = tokio::task::JoinSet::new();
        loop {
            let now = now_ms();
            let claimed = match self
                .store
                .claim_due(
                    now,
                    &self.owner,
                    now + LEASE.as_millis() as u64,
                    CLAIM_BATCH,
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::error!(error = %err, "could not claim due deployments");
                    Vec::new()
                }
            };
            let idle = claimed.is_empty();
            for d in claimed {
                let engine = self.clone();
                running.spawn(async move { engine.work(d).await });
            }
            while running.try_join_next().is_some() {}
            if idle {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            // A claim is a write: let requests that arrive together share one.
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(CLAIM_COALESCE) => {}
            }
        }
        // Let in-flight steps commit; what they did not finish resumes after restart.
        while running.join_next().await.is_some() {}
    }

    /// Advances a claimed deployment and releases its lease. When it frees its target, the
    /// oldest deployment waiting for that target is claimed and advanced next, in this
    /// task: the target is handed over without a trip through the work queue.
    async fn work(&self, first: DeploymentRecord) {
        let mut next = Some(first);
        let mut looked_again = false;
        while let Some(d) = next.take() {
            let id = d.id.clone();
            let target = d.target_environment_id.clone();
            let outcome = self.advance(d).await;
            // A finished deployment is never claimed again, so its lease needs no release.
            if !matches!(outcome, Advanced::FreedTarget(_) | Advanced::Finished)
                && let Err(err) = self.store.release_lease(&id, &self.owner).await
            {
                tracing::warn!(deployment = %id, error = %err, "could not release a lease; it lapses by itself");
            }
            next = match outcome {
                // Claimed in the same write that freed the target.
                Advanced::FreedTarget(handed_over) => handed_over.map(|d| *d),
                // The deployment that held the target may have finished between this one's
                // attempt and its lease's release, and skipped it as leased: look once.
                Advanced::WaitingForTarget if !std::mem::replace(&mut looked_again, true) => {
                    self.claim_waiting(&target).await
                }
                _ => None,
            };
        }
    }

    /// Leases the oldest deployment waiting for the target, if any.
    async fn claim_waiting(&self, target_id: &str) -> Option<DeploymentRecord> {
        let now = now_ms();
        let lease_until = now + LEASE.as_millis() as u64;
        match self
            .store
            .claim_waiting_for_target(target_id, &self.owner, lease_until, now)
            .await
        {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(target = %target_id, error = %err, "could not hand the target on; the next deployment finds it free by its timer");
                None
            }
        }
    }

    /// Moves one claimed deployment forward until it waits for something or ends.
    async fn advance(&self, d: DeploymentRecord) -> Advanced {
        let span = tracing::info_span!("deployment", deployment = %d.id);
        let _enter = span.enter();
        let mut round = Round::default();
        let (outcome, mut d) = self.steps(d, &mut round).await;
        if round.dirty
            && let Err(err) = self.save_round(&mut d, &mut round, Vec::new()).await
        {
            tracing::debug!(error = %err, "deployment step not saved; will look again");
            self.wake();
            return Advanced::Other;
        }
        outcome
    }

    /// The steps of one advance; the caller saves what they deferred.
    async fn steps(
        &self,
        mut d: DeploymentRecord,
        round: &mut Round,
    ) -> (Advanced, DeploymentRecord) {
        for _ in 0..16 {
            let before = (d.status, d.revision);
            let current = d.clone();
            let step = match d.status {
                DeploymentStatus::Queued
                | DeploymentStatus::Scheduled
                | DeploymentStatus::Validating => self.validate(d, round).await,
                DeploymentStatus::PendingApproval => self.pre_deployment(d, round).await,
                DeploymentStatus::Deploying => self.deploy(d, round).await,
                _ => return (Advanced::Finished, d),
            };
            match step {
                Ok(next) => d = next,
                Err(err) => {
                    // Lost a race (a vote, a cancel) or the store failed: look again soon.
                    tracing::debug!(error = %err, "deployment step not saved; will look again");
                    round.dirty = false;
                    self.wake();
                    return (Advanced::Other, current);
                }
            }
            if before.0 == DeploymentStatus::Deploying && d.status.is_final() {
                return (
                    Advanced::FreedTarget(round.handed_over.take().map(Box::new)),
                    d,
                );
            }
            if round.target_busy {
                return (Advanced::WaitingForTarget, d);
            }
            if d.status.is_final() {
                return (Advanced::Finished, d);
            }
            let waiting = d.next_run_at.is_none_or(|at| at > now_ms());
            if waiting || (d.status, d.revision) == before {
                return (Advanced::Other, d);
            }
        }
        (Advanced::Other, d)
    }

    /// The deployment's pipeline, read once per advance.
    pub(super) async fn round_pipeline(
        &self,
        d: &DeploymentRecord,
        round: &mut Round,
    ) -> Result<Arc<PipelineRecord>, StoreError> {
        if let Some(p) = &round.pipeline {
            return Ok(p.clone());
        }
        let p = Arc::new(self.store.get_pipeline(&d.pipeline_id).await?);
        round.pipeline = Some(p.clone());
        Ok(p)
    }

    /// The deployment's source and target with their credentials, read once per advance.
    pub(super) async fn round_environments(
        &self,
        d: &DeploymentRecord,
        round: &mut Round,
    ) -> Result<Arc<Environments>, StoreError> {
        if let Some(envs) = &round.environments {
            return Ok(envs.clone());
        }
        let ids = [&d.source_environment_id, &d.target_environment_id];
        let envs = Arc::new(Environments::load(self.store.as_ref(), ids).await?);
        round.environments = Some(envs.clone());
        Ok(envs)
    }

    /// The pipeline and the plugins' view of the deployment, read once per advance.
    async fn round_context(
        &self,
        d: &DeploymentRecord,
        round: &mut Round,
    ) -> Result<(Arc<PipelineRecord>, Arc<gate::Deployment>), StoreError> {
        let pipeline = self.round_pipeline(d, round).await?;
        let view = match &round.view {
            Some(v) => v.clone(),
            None => {
                let environments = self.round_environments(d, round).await?;
                let v = Arc::new(self.gate_view(d, &pipeline, &environments).await?);
                round.view = Some(v.clone());
                v
            }
        };
        Ok((pipeline, view))
    }

    pub(super) async fn save(
        &self,
        d: &mut DeploymentRecord,
        events: &[TimelineEvent],
    ) -> Result<(), StoreError> {
        d.updated_at = now_ms();
        d.revision = self.store.save_deployment(d, events, None).await?;
        Ok(())
    }

    /// Saves with the events this advance deferred before `events`.
    async fn save_round(
        &self,
        d: &mut DeploymentRecord,
        round: &mut Round,
        events: Vec<TimelineEvent>,
    ) -> Result<(), StoreError> {
        let mut all = std::mem::take(&mut round.unsaved);
        all.extend(events);
        round.dirty = false;
        self.save(d, &all).await
    }

    pub(super) fn finish(
        d: &mut DeploymentRecord,
        status: DeploymentStatus,
        reason: String,
    ) -> TimelineEvent {
        let now = now_ms();
        d.status = status;
        d.status_reason = reason.clone();
        d.next_run_at = None;
        d.finished_at = Some(now);
        event(
            d,
            "deployment_completed",
            None,
            serde_json::json!({ "status": status, "reason": reason }),
        )
    }

    /// The plugin's view of a deployment.
    pub(super) async fn gate_view(
        &self,
        d: &DeploymentRecord,
        pipeline: &PipelineRecord,
        environments: &Environments,
    ) -> Result<gate::Deployment, StoreError> {
        let stage = pipeline
            .stage(&d.stage_id)
            .ok_or_else(|| StoreError::NotFound(format!("stage {}", d.stage_id)))?;
        let target = environments.get(&d.target_environment_id)?;
        let source = environments.get(&d.source_environment_id)?;
        let requester = self.store.get_user(&d.requested_by).await?;
        let env = |e: &EnvironmentRecord| gate::Environment {
            id: e.id.clone(),
            name: e.name.clone(),
            kind: e.kind,
        };
        Ok(gate::Deployment {
            id: d.id.clone(),
            pipeline_id: pipeline.id.clone(),
            pipeline_name: pipeline.name.clone(),
            stage: gate::Stage {
                id: stage.id.clone(),
                name: stage.name.clone(),
                depth: pipeline.depth(&stage.id),
                target: env(target),
            },
            source: env(source),
            solution_name: d.solution_name.clone(),
            solution_version: d.version.clone(),
            publisher_prefix: d.artifact.publisher_prefix.clone(),
            managed: true,
            package_size: d.artifact.package_size,
            package_sha256: d.artifact.package_sha256.clone(),
            components: d.artifact.components.clone(),
            installed_version: d.installed_version.clone(),
            requested_by: gate::Principal {
                id: requester.id.clone(),
                display_name: requester.display_name.clone(),
                groups: requester.groups.clone(),
            },
            requested_at: d.requested_at,
            scheduled_for: d.scheduled_for,
            notes: d.notes.clone(),
            environment_variables: d
                .settings
                .environment_variables
                .iter()
                .map(|v| gate::EnvironmentVariable {
                    name: v.name.clone(),
                    value: v.value.clone(),
                    secret: v.secret,
                })
                .collect(),
            connection_references: d.settings.connection_references.clone(),
        })
    }

    /// `validating`: every validator of the pipeline runs; an error finding, or a validator
    /// that fails, fails the deployment.
    async fn validate(
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
            events.push(event(&d, "validation_started", None, serde_json::json!({})));
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
        events.push(event(
            &d,
            "validation_completed",
            None,
            serde_json::json!({
                "errors": errors.len(),
                "findings": reports.iter().map(|r| r.findings.len()).sum::<usize>(),
            }),
        ));
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
            d.gates = Vec::new();
            events.push(event(
                &d,
                "pre_deployment_started",
                None,
                serde_json::json!({ "gates": stage.gates.len() }),
            ));
            if stage.gates.is_empty() {
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

    fn plugin_names(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        // The map holds only finished inserts, so a poisoned lock still holds good data.
        self.plugin_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A plugin's name, for reports. A plugin id always names the same upload, so names
    /// are cached for the life of the process.
    pub(super) async fn plugin_name(&self, plugin_id: &str) -> String {
        if let Some(name) = self.plugin_names().get(plugin_id) {
            return name.clone();
        }
        match self.store.get_plugin(plugin_id).await {
            Ok(p) => {
                self.plugin_names()
                    .insert(plugin_id.to_owned(), p.name.clone());
                p.name
            }
            Err(_) => plugin_id.to_owned(),
        }
    }

    /// `pending_approval`: a round of the gates, in order, or the move to deploying once
    /// the step is complete.
    async fn pre_deployment(
        &self,
        mut d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let (pipeline, view) = self.round_context(&d, round).await?;
        let stage = pipeline
            .stage(&d.stage_id)
            .ok_or_else(|| StoreError::NotFound(format!("stage {}", d.stage_id)))?
            .clone();
        if d.pre_deployment_status == Some(PreDeploymentStatus::Pending) && !stage.gates.is_empty()
        {
            let now = now_ms();
            if d.next_run_at.is_some_and(|at| at > now) {
                return Ok(d);
            }
            let mut events = Vec::new();
            let approval_was_open = approval_open(&d);
            let mut approval_started = None;
            let votes = self.gate_votes(&d).await?;
            let mut verdict: Option<(DeploymentStatus, String)> = None;
            let mut wait_until: Option<Timestamp> = None;
            let mut all_approved = true;
            for (index, binding) in stage.gates.iter().enumerate() {
                if d.gates.len() <= index {
                    d.gates.push(GateProgress {
                        plugin_id: binding.plugin_id.clone(),
                        plugin_name: self.plugin_name(&binding.plugin_id).await,
                        approved: false,
                        decision: None,
                        error: None,
                        log: Vec::new(),
                        started_at: None,
                        evaluated_at: None,
                        evaluations: 0,
                        duration_us: 0,
                        fuel_used: 0,
                    });
                }
                if d.gates[index].approved {
                    continue;
                }
                all_approved = false;
                let progress = &mut d.gates[index];
                let started_at = *progress.started_at.get_or_insert(now);
                if let Some(timeout) = binding.approval_timeout_seconds {
                    let deadline = started_at + timeout * 1000;
                    if now >= deadline {
                        verdict = Some((
                            DeploymentStatus::Rejected,
                            format!(
                                "gate {} did not approve within {timeout} s",
                                progress.plugin_name
                            ),
                        ));
                        break;
                    }
                    wait_until = Some(deadline);
                }
                let outcome = self
                    .gates
                    .evaluate(
                        &binding.plugin_id,
                        view.clone(),
                        &votes,
                        &binding.config,
                        now,
                    )
                    .await;
                progress.evaluations += 1;
                progress.evaluated_at = Some(now);
                progress.log = outcome.log;
                progress.duration_us = outcome.duration_us;
                progress.fuel_used = outcome.fuel_used;
                match outcome.result {
                    Err(cause) => {
                        progress.error = Some(cause.clone());
                        progress.decision = None;
                        verdict = Some((
                            DeploymentStatus::Rejected,
                            format!(
                                "gate {} failed, so the deployment is rejected: {cause}",
                                progress.plugin_name
                            ),
                        ));
                        break;
                    }
                    Ok(decision) => {
                        progress.error = None;
                        events.push(event(&d, "gate_decision", None, serde_json::json!({
                            "gate": index, "plugin": d.gates[index].plugin_name, "decision": decision,
                        })));
                        let progress = &mut d.gates[index];
                        match &decision {
                            Decision::Approve { .. } => {
                                progress.approved = true;
                                progress.decision = Some(decision);
                                all_approved = true;
                                continue;
                            }
                            Decision::Reject { reason } => {
                                verdict = Some((
                                    DeploymentStatus::Rejected,
                                    format!("gate {} rejected: {reason}", progress.plugin_name),
                                ));
                                progress.decision = Some(decision);
                                break;
                            }
                            Decision::Pending {
                                message,
                                recheck_after_seconds,
                                ..
                            } => {
                                d.status_reason =
                                    format!("waiting for gate {}: {message}", progress.plugin_name);
                                if !approval_was_open {
                                    approval_started = Some(serde_json::json!({
                                        "gate": index, "plugin": progress.plugin_name, "message": message,
                                    }));
                                }
                                if let Some(secs) = recheck_after_seconds {
                                    let at = now + u64::from(*secs) * 1000;
                                    wait_until = Some(wait_until.map_or(at, |w| w.min(at)));
                                }
                                progress.decision = Some(decision);
                                all_approved = false;
                                break;
                            }
                        }
                    }
                }
            }
            if let Some(detail) = approval_started {
                events.push(event(&d, "approval_started", None, detail));
            }
            if let Some((status, reason)) = verdict {
                if approval_was_open {
                    events.push(event(
                        &d,
                        "approval_completed",
                        None,
                        serde_json::json!({ "approved": false, "reason": reason }),
                    ));
                }
                d.pre_deployment_status = Some(PreDeploymentStatus::Rejected);
                events.push(event(
                    &d,
                    "pre_deployment_completed",
                    None,
                    serde_json::json!({ "status": 30, "reason": reason }),
                ));
                events.push(Self::finish(&mut d, status, reason));
                self.save_round(&mut d, round, events).await?;
                return Ok(d);
            }
            if !all_approved {
                d.next_run_at = wait_until;
                self.save_round(&mut d, round, events).await?;
                return Ok(d);
            }
            if approval_was_open {
                events.push(event(
                    &d,
                    "approval_completed",
                    None,
                    serde_json::json!({ "approved": true }),
                ));
            }
            d.pre_deployment_status = Some(PreDeploymentStatus::Completed);
            d.status_reason = "every gate approved".into();
            events.push(event(
                &d,
                "pre_deployment_completed",
                None,
                serde_json::json!({ "status": 20 }),
            ));
            d.next_run_at = Some(now_ms());
            // Saved with the move to deploying, or with the wait for the target.
            round.defer(events);
        }
        if d.pre_deployment_status == Some(PreDeploymentStatus::Pending) {
            // A step without gates waits for an admin or an external system.
            return Ok(d);
        }
        self.start_deploying(d, round).await
    }

    /// The votes that count for the gates: the store keeps only counted votes.
    async fn gate_votes(&self, d: &DeploymentRecord) -> Result<Vec<gate::Vote>, StoreError> {
        let votes = self.store.votes(&d.id).await?;
        let mut out = Vec::with_capacity(votes.len());
        for v in votes.into_iter().filter(|v| v.at >= d.attempt_started_at) {
            let voter = self.store.get_user(&v.voter_id).await?;
            out.push(gate::Vote {
                voter: gate::Principal {
                    id: voter.id,
                    display_name: voter.display_name,
                    groups: voter.groups,
                },
                approve: v.approve,
                comment: v.comment,
                at: v.at,
            });
        }
        Ok(out)
    }

    /// The deployment moved to `deploying`, and the event that says so.
    pub(super) fn deploying(d: &DeploymentRecord) -> (DeploymentRecord, TimelineEvent) {
        let mut next = d.clone();
        next.status = DeploymentStatus::Deploying;
        next.status_reason = String::new();
        next.next_run_at = Some(now_ms());
        next.updated_at = now_ms();
        let started = event(
            &next,
            "deployment_started",
            None,
            serde_json::json!({ "operation": next.operation_id() }),
        );
        (next, started)
    }

    /// What a deployment handed a free target becomes: `deploying`, when its
    /// pre-deployment step is done, as [`Self::start_deploying`] would make it.
    pub(super) fn start_on_hand_over(
        d: &DeploymentRecord,
    ) -> Option<(DeploymentRecord, Vec<TimelineEvent>)> {
        let step_done = d.pre_deployment_status != Some(PreDeploymentStatus::Pending);
        (d.status == DeploymentStatus::PendingApproval && step_done).then(|| {
            let (next, started) = Self::deploying(d);
            (next, vec![started])
        })
    }

    /// Takes the target if no other deployment is deploying to it; otherwise waits.
    async fn start_deploying(
        &self,
        d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let (mut next, started) = Self::deploying(&d);
        let mut events = round.unsaved.clone();
        events.push(started);
        // If the target is busy, the deployment waits, saved in the same write when it
        // has something to save: the first wait, or steps deferred in this advance. The
        // deployment that holds the target hands it over when it finishes; the timer is
        // only a backstop.
        let wait = format!(
            "waiting for another deployment to {} to finish",
            d.target_environment_id
        );
        let mut waiting = d.clone();
        waiting.status_reason = wait.clone();
        waiting.next_run_at = Some(now_ms() + BUSY_TARGET_RECHECK.as_millis() as u64);
        waiting.updated_at = now_ms();
        let save_wait =
            round.dirty || d.status_reason != wait || d.next_run_at.is_none_or(|at| at <= now_ms());
        let otherwise = save_wait.then_some((&waiting, round.unsaved.as_slice()));
        match self
            .store
            .save_deployment_if_target_free(&next, &events, otherwise)
            .await?
        {
            TargetClaim::Taken(revision) => {
                round.unsaved.clear();
                round.dirty = false;
                next.revision = revision;
                Ok(next)
            }
            TargetClaim::Busy(saved) => {
                round.target_busy = true;
                if let Some(revision) = saved {
                    round.unsaved.clear();
                    round.dirty = false;
                    waiting.revision = revision;
                    return Ok(waiting);
                }
                Ok(d)
            }
        }
    }
}

/// Whether a gate of the deployment's current attempt waits for approvers: between the
/// `approval_started` and `approval_completed` events.
pub(super) fn approval_open(d: &DeploymentRecord) -> bool {
    d.status == DeploymentStatus::PendingApproval
        && d.gates
            .iter()
            .any(|g| matches!(g.decision, Some(Decision::Pending { .. })))
}

/// How an advance left its deployment, which decides what the worker does next.
enum Advanced {
    /// It left `deploying`, and handed the target to this deployment, if one waited.
    FreedTarget(Option<Box<DeploymentRecord>>),
    /// It is ready to deploy, but another deployment holds the target.
    WaitingForTarget,
    /// It ended without holding the target.
    Finished,
    Other,
}

/// What one advance reads once and reuses across its steps.
#[derive(Default)]
pub(super) struct Round {
    pipeline: Option<Arc<PipelineRecord>>,
    environments: Option<Arc<Environments>>,
    view: Option<Arc<gate::Deployment>>,
    target_busy: bool,
    /// The deployment this one's end handed the target to.
    pub(super) handed_over: Option<DeploymentRecord>,
    /// The deployment changed without a save, and these events wait for the next one.
    /// Only steps that touch nothing outside the host are deferred this way.
    dirty: bool,
    unsaved: Vec<TimelineEvent>,
}

impl Round {
    fn defer(&mut self, events: Vec<TimelineEvent>) {
        self.dirty = true;
        self.unsaved.extend(events);
    }
}
