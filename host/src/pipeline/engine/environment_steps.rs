//! The steps that call environments: retrieving the artifact (an export from the source,
//! the first time), checking it against the target, and importing it.
//!
//! A call that could not reach its environment is tried again on a durable timer, with
//! growing pauses, up to [`ENVIRONMENT_ATTEMPTS`] times; then the deployment fails and
//! says why. A refusal fails it at once. Imports carry the deployment's operation id, so
//! a resumed import is never run twice.

use std::time::{Duration, Instant};

use super::environments::LoadedEnvironments;
use super::worker::Round;
use super::*;
use crate::pipeline::ports::{EnvironmentError, ImportRequest, ImportState, PackageRef};

/// Calls to an unreachable environment, per step, before the deployment fails.
pub(super) const ENVIRONMENT_ATTEMPTS: u32 = 5;
/// The pause after the first failed call; it doubles after each.
const FIRST_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long a worker polls a running import before it lets the deployment wait on a timer.
const IMPORT_WAIT: Duration = Duration::from_secs(20);
/// The longest pause between questions about a started import to a target that does not
/// answer.
const IMPORT_ASK_MAX: Duration = Duration::from_secs(30);
/// How often an import that is still running is asked about, at most.
const IMPORT_POLL_MAX: Duration = Duration::from_millis(500);

/// How a step that called an environment ended, when it did not go on.
pub(super) enum Stop {
    /// The deployment was saved waiting (a retry timer) or ended; advance returns it.
    Saved(DeploymentRecord),
}

/// Counts a failed attempt, sets the timer for the next (doubling pauses, at most
/// `longest`), and records the retry in the timeline; answers the pause.
fn retry_later(
    d: &mut DeploymentRecord,
    step: &str,
    cause: &str,
    longest: Duration,
    events: &mut Vec<TimelineEvent>,
) -> Duration {
    d.environment_attempts += 1;
    let doublings = d.environment_attempts.min(16) - 1;
    let pause = (FIRST_RETRY_PAUSE * 2u32.pow(doublings)).min(longest);
    d.next_run_at = Some(now_ms() + pause.as_millis() as u64);
    let retry = DeploymentEvent::EnvironmentRetry {
        step: step.to_string(),
        error: cause.to_string(),
        attempt: d.environment_attempts,
    };
    events.push(event(d, retry, None));
    pause
}

impl Engine {
    /// A failed environment call: a retry on a timer while attempts remain, else the end.
    pub(super) async fn environment_failed(
        &self,
        mut d: DeploymentRecord,
        what: &str,
        err: EnvironmentError,
        mut events: Vec<TimelineEvent>,
    ) -> Result<Stop, StoreError> {
        match err {
            EnvironmentError::Unreachable(cause)
                if d.environment_attempts + 1 < ENVIRONMENT_ATTEMPTS =>
            {
                let pause = retry_later(&mut d, what, &cause, Duration::MAX, &mut events);
                d.status_reason = format!(
                    "{what}: {cause}; attempt {} of {ENVIRONMENT_ATTEMPTS} failed, trying again in {} s",
                    d.environment_attempts,
                    pause.as_secs()
                );
                self.save(&mut d, &events).await?;
            }
            EnvironmentError::Unreachable(cause) => {
                let reason = format!(
                    "{what} failed after {ENVIRONMENT_ATTEMPTS} attempts: {cause}; retry the deployment once the environment is back"
                );
                events.push(Self::finish(&mut d, DeploymentStatus::Failed, reason));
                self.save(&mut d, &events).await?;
            }
            EnvironmentError::Refused(cause) | EnvironmentError::NotAllowed(cause) => {
                events.push(Self::finish(
                    &mut d,
                    DeploymentStatus::Failed,
                    format!("{what} failed: {cause}"),
                ));
                self.save(&mut d, &events).await?;
            }
        }
        Ok(Stop::Saved(d))
    }

    /// Makes sure the deployment carries its artifact: the stored one when this solution
    /// version was exported before, else a fresh export from the source (first stages
    /// only), downloaded and stored. Returns the timeline event of the step and whether
    /// it exported (a step worth committing on its own).
    pub(super) async fn retrieve_artifact(
        &self,
        d: &mut DeploymentRecord,
        pipeline: &PipelineRecord,
        environments: &LoadedEnvironments,
    ) -> Result<Result<(TimelineEvent, bool), (String, EnvironmentError)>, StoreError> {
        let started = Instant::now();
        if let Some(stored) = self
            .store
            .get_artifact(&d.solution_name, &d.version)
            .await?
            && self.has_package(&stored.managed)
        {
            d.artifact = stored.solution_version();
            let retrieved = DeploymentEvent::ArtifactRetrieved {
                exported: false,
                from: None,
                managed: Some(stored.managed.clone()),
                unmanaged: Some(stored.unmanaged.clone()),
                export_ms: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            let done = event(d, retrieved, None);
            return Ok(Ok((done, false)));
        }
        let first_stage = pipeline
            .stage(&d.stage_id)
            .is_some_and(|s| s.previous_stage_id.is_none());
        if !first_stage {
            let what = "retrieving the artifact".to_owned();
            let cause = format!(
                "{} {} has no stored artifact; deploy it through the previous stage first",
                d.solution_name, d.version
            );
            return Ok(Err((what, EnvironmentError::Refused(cause))));
        }
        let source = environments.get(&d.source_environment_id)?;
        let credential = environments.credential(&source.id);
        let what = format!(
            "exporting {} {} from {}",
            d.solution_name, d.version, source.name
        );
        let exported = match self
            .environments
            .export(source, credential, &d.solution_name, &d.version)
            .await
        {
            Ok(exported) => exported,
            Err(err) => return Ok(Err((what, err))),
        };
        let exported_in = started.elapsed();
        for package in [&exported.managed, &exported.unmanaged] {
            if self.has_package(package) {
                continue;
            }
            let Some(path) = self.package_path(&package.sha256) else {
                let cause = format!("{} answered a malformed package address", source.name);
                return Ok(Err((what, EnvironmentError::Refused(cause))));
            };
            if let Err(err) = self
                .environments
                .download(source, credential, package, &path)
                .await
            {
                return Ok(Err((
                    format!(
                        "downloading the package of {} {}",
                        d.solution_name, d.version
                    ),
                    err,
                )));
            }
        }
        let stored = self
            .store
            .insert_artifact(&ArtifactRecord {
                id: new_id(),
                solution_name: d.solution_name.clone(),
                version: d.version.clone(),
                managed: exported.managed.clone(),
                unmanaged: exported.unmanaged.clone(),
                manifest: exported.manifest.clone(),
                source_environment_id: source.id.clone(),
                deployment_id: d.id.clone(),
                created_at: now_ms(),
            })
            .await?;
        d.artifact = stored.solution_version();
        let retrieved = DeploymentEvent::ArtifactRetrieved {
            exported: true,
            from: Some(source.name.clone()),
            managed: Some(stored.managed.clone()),
            unmanaged: Some(stored.unmanaged.clone()),
            export_ms: Some(exported_in.as_millis() as u64),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let done = event(d, retrieved, None);
        Ok(Ok((done, true)))
    }

    /// The target's own check of the package with the deployment's settings: version
    /// order, dependencies, variables, connections. Reported like a validator's.
    pub(super) async fn check_with_target(
        &self,
        d: &DeploymentRecord,
        pipeline: &PipelineRecord,
        environments: &LoadedEnvironments,
    ) -> Result<Result<ValidatorReport, (String, EnvironmentError)>, StoreError> {
        let target = environments.get(&d.target_environment_id)?;
        let what = format!("checking the package with {}", target.name);
        let Some(manifest) = &d.artifact.manifest else {
            let cause = format!("{} {} has no manifest", d.solution_name, d.version);
            return Ok(Err((what, EnvironmentError::Refused(cause))));
        };
        let credential = environments.credential(&target.id);
        let started = Instant::now();
        let check = self
            .environments
            .check(
                target,
                credential,
                manifest,
                &d.settings,
                pipeline.settings.allow_redeploy_older_versions,
            )
            .await;
        Ok(match check {
            Ok(check) => Ok(ValidatorReport {
                plugin_id: format!("environment:{}", target.id),
                plugin_name: format!("environment {}", target.name),
                findings: check.findings,
                error: None,
                log: Vec::new(),
                duration_us: started.elapsed().as_micros() as u64,
            }),
            Err(err) => Err((what, err)),
        })
    }

    /// Whether the package's file is here, whole.
    fn has_package(&self, package: &PackageRef) -> bool {
        self.package_path(&package.sha256)
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == package.size)
    }

    /// `deploying`: uploads the package, starts the import under this attempt's operation
    /// id, and waits for it. An import that runs long is left to a timer, which resumes
    /// the wait without starting anything again.
    pub(super) async fn deploy(
        &self,
        mut d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let environments = self.round_environments(&d, round).await?;
        let target = environments.get(&d.target_environment_id)?.clone();
        let credential = environments.credential(&target.id).map(str::to_owned);
        let pipeline_allows_older = match self.round_pipeline(&d, round).await {
            Ok(p) => p.settings.allow_redeploy_older_versions,
            Err(_) => false,
        };
        let mut events = Vec::new();
        let Some(package) = d.artifact.package() else {
            let reason = format!("{} {} has no package to import", d.solution_name, d.version);
            let done = Self::finish(&mut d, DeploymentStatus::Failed, reason);
            self.save(&mut d, &[done]).await?;
            return Ok(d);
        };
        let operation_id = d.operation_id();
        let mut status = if d.import_started {
            self.environments
                .import_status(&target, credential.as_deref(), &operation_id)
                .await
        } else {
            Err(EnvironmentError::Refused("not started".into()))
        };
        // Not started yet, or the target does not know the operation (an environment that
        // lost its state): start it. Starting is idempotent per operation id.
        if matches!(status, Err(EnvironmentError::Refused(_))) {
            let started = Instant::now();
            let uploaded = match self.package_path(&package.sha256) {
                Some(path) => {
                    self.environments
                        .upload(&target, credential.as_deref(), &package, &path)
                        .await
                }
                None => Err(EnvironmentError::Refused(
                    "the package address is malformed".into(),
                )),
            };
            if let Err(err) = uploaded {
                let what = format!("uploading the package to {}", target.name);
                let Stop::Saved(d) = self.environment_failed(d, &what, err, events).await?;
                return Ok(d);
            }
            let request = ImportRequest {
                operation_id: operation_id.clone(),
                package: package.clone(),
                settings: d.settings.clone(),
                allow_downgrade: pipeline_allows_older,
                link_secret: self.store.environment_link_secret(&target.id).await?,
            };
            let started_import = self
                .environments
                .start_import(&target, credential.as_deref(), &request)
                .await;
            if let Ok(current) = &started_import {
                d.import_started = true;
                let import = DeploymentEvent::ImportStarted {
                    operation: operation_id.to_string(),
                    environment: target.name.clone(),
                    upload_ms: started.elapsed().as_millis() as u64,
                };
                events.push(event(&d, import, None));
                if current.status == ImportState::Running {
                    // The target works on it now: say so before waiting.
                    self.save(&mut d, &std::mem::take(&mut events)).await?;
                }
            }
            status = started_import;
        }
        let waiting_since = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let current = match status {
                Ok(current) => current,
                Err(EnvironmentError::Unreachable(cause)) if d.import_started => {
                    // The import is in the target's hands: its outcome is not known until
                    // the target answers, so keep asking, however long it is down.
                    let pause =
                        retry_later(&mut d, "import status", &cause, IMPORT_ASK_MAX, &mut events);
                    d.status_reason = format!(
                        "{} does not answer about import {operation_id} ({cause}); asking again in {} s",
                        target.name,
                        pause.as_secs()
                    );
                    self.save(&mut d, &events).await?;
                    return Ok(d);
                }
                Err(err) => {
                    let what = format!("importing into {}", target.name);
                    let Stop::Saved(d) = self.environment_failed(d, &what, err, events).await?;
                    return Ok(d);
                }
            };
            d.environment_attempts = 0;
            match current.status {
                ImportState::Succeeded => {
                    let installed = format!(
                        "{} {} is installed in {}",
                        d.solution_name, d.version, target.name
                    );
                    events.push(Self::finish(&mut d, DeploymentStatus::Succeeded, installed));
                    break;
                }
                ImportState::Failed => {
                    let cause = current.error.unwrap_or_else(|| "no reason given".into());
                    events.push(Self::finish(
                        &mut d,
                        DeploymentStatus::Failed,
                        format!("import into {} failed: {cause}", target.name),
                    ));
                    break;
                }
                ImportState::Running if waiting_since.elapsed() >= IMPORT_WAIT => {
                    d.status_reason =
                        format!("importing into {} (operation {operation_id})", target.name);
                    d.next_run_at = Some(now_ms() + IMPORT_POLL_MAX.as_millis() as u64);
                    break;
                }
                ImportState::Running => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(IMPORT_POLL_MAX);
                    status = self
                        .environments
                        .import_status(&target, credential.as_deref(), &operation_id)
                        .await;
                }
            }
        }
        if d.status.is_final() {
            // The target is free: pass it to the oldest deployment waiting for it in the
            // same write.
            d.updated_at = now_ms();
            let now = now_ms();
            let (revision, next) = self
                .store
                .save_deployment_and_hand_over(
                    &d,
                    &events,
                    &self.owner,
                    now + LEASE.as_millis() as u64,
                    now,
                    &Self::start_on_hand_over,
                )
                .await?;
            d.revision = revision;
            round.handed_over = next;
        } else {
            self.save(&mut d, &events).await?;
        }
        Ok(d)
    }
}
