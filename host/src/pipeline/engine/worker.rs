//! The worker: claims due deployments and moves each through its states, one committed
//! step at a time, until it waits for something or ends.

use std::sync::Arc;

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
    ) -> Result<Arc<LoadedEnvironments>, StoreError> {
        if let Some(envs) = &round.environments {
            return Ok(envs.clone());
        }
        let ids = [&d.source_environment_id, &d.target_environment_id];
        let envs = Arc::new(LoadedEnvironments::load(self.store.as_ref(), ids).await?);
        round.environments = Some(envs.clone());
        Ok(envs)
    }

    /// The pipeline and the plugins' view of the deployment, read once per advance.
    pub(super) async fn round_context(
        &self,
        d: &DeploymentRecord,
        round: &mut Round,
    ) -> Result<(Arc<PipelineRecord>, Arc<gate::DeploymentFacts>), StoreError> {
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
    pub(super) async fn save_round(
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
        let completed = gate_round::finish(d, status, reason, now_ms());
        event(d, completed, None)
    }

    /// The plugin's view of a deployment.
    pub(super) async fn gate_view(
        &self,
        d: &DeploymentRecord,
        pipeline: &PipelineRecord,
        environments: &LoadedEnvironments,
    ) -> Result<gate::DeploymentFacts, StoreError> {
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
        Ok(gate::DeploymentFacts {
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
    pub(super) pipeline: Option<Arc<PipelineRecord>>,
    pub(super) environments: Option<Arc<LoadedEnvironments>>,
    pub(super) view: Option<Arc<gate::DeploymentFacts>>,
    pub(super) target_busy: bool,
    /// The deployment this one's end handed the target to.
    pub(super) handed_over: Option<DeploymentRecord>,
    /// The deployment changed without a save, and these events wait for the next one.
    /// Only steps that touch nothing outside the host are deferred this way.
    pub(super) dirty: bool,
    pub(super) unsaved: Vec<TimelineEvent>,
}

impl Round {
    pub(super) fn defer(&mut self, events: Vec<TimelineEvent>) {
        self.dirty = true;
        self.unsaved.extend(events);
    }
}
