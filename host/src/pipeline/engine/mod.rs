//! The deployment engine: what makers, approvers and admins ask of deployments, and the
//! worker that moves each deployment through its states.
//!
//! Every transition is written to the store before it takes effect, so a restart resumes
//! each deployment from its last committed step. Work is claimed with leases, so several
//! replicas can share one PostgreSQL database.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use crate::pipeline::gate::{self, Decision, Severity, Timestamp};
use crate::pipeline::model::*;
use crate::pipeline::ports::{EnvironmentClient, GateRunner, SolutionVersion};
use crate::pipeline::rules;
use crate::pipeline::store::{
    Audit, DeploymentFilter, Page, Store, StoreError, TargetClaim, scan_all, scan_pages,
};

mod environment_steps;
mod environments;
mod worker;

use environments::Environments;

/// How long a claimed deployment stays leased to this replica without renewal.
const LEASE: Duration = Duration::from_secs(30);
/// Deployments claimed per round.
const CLAIM_BATCH: u32 = 64;
/// How long the worker lets new work gather before it claims it.
const CLAIM_COALESCE: Duration = Duration::from_millis(3);
/// How often the worker looks for due timers when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How soon a deployment waiting for its busy target looks again, in case the one
/// deploying died before it could wake the next.
const BUSY_TARGET_RECHECK: Duration = Duration::from_secs(5);
/// Attempts at a read-modify-write that keeps losing to concurrent writers.
const SAVE_ATTEMPTS: usize = 8;

/// Why a request was refused. The API maps each to its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// Something the request depends on, such as an environment, did not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => EngineError::NotFound(what),
            other => EngineError::Store(other),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// What a maker asks for in `POST /deployments`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DeploymentRequest {
    pub pipeline_id: Id,
    pub stage_id: Id,
    /// Needed when the pipeline has more than one development environment.
    pub source_environment_id: Option<Id>,
    pub solution_name: String,
    /// Four-part; the source's current version when omitted.
    pub version: Option<String>,
    /// Run later, at this time (ms since the epoch, UTC).
    pub scheduled_for: Option<Timestamp>,
    pub notes: String,
    pub settings: DeploymentSettings,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// What a request passed its checks with.
struct Prepared {
    pipeline: PipelineRecord,
    stage: StageRecord,
    source_id: Id,
    artifact: SolutionVersion,
    target: EnvironmentRecord,
    /// Every environment of the pipeline, with its credential.
    environments: Environments,
}

/// A finding of a preflight, and who found it: a validator plugin or the target.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PreflightFinding {
    pub source: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub finding: gate::Finding,
}

/// What `POST /deployments/validate` answers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Preflight {
    /// True when nothing found is an error.
    pub ok: bool,
    pub solution_name: String,
    pub version: String,
    pub installed_version: Option<String>,
    pub findings: Vec<PreflightFinding>,
    /// Environment variables that need a value in `settings`.
    pub missing_environment_variables: Vec<crate::pipeline::ports::MissingVariable>,
    /// Connection references that need a connection in `settings`.
    pub missing_connection_references: Vec<crate::pipeline::ports::MissingConnection>,
}

/// Marks the variables the manifest types as `secret`, whatever the maker said, so the
/// API never shows their values.
fn mark_secrets(
    settings: &mut DeploymentSettings,
    manifest: Option<&crate::pipeline::ports::Manifest>,
) {
    let Some(manifest) = manifest else { return };
    for v in &mut settings.environment_variables {
        if manifest
            .environment_variables
            .iter()
            .any(|d| d.schema_name == v.name && d.kind == crate::solution::VariableType::Secret)
        {
            v.secret = true;
        }
    }
}

/// A deployment with its votes and timeline.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    pub deployment: DeploymentRecord,
    pub votes: Vec<VoteRecord>,
    pub timeline: Vec<TimelineEvent>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    gates: Arc<dyn GateRunner>,
    environments: Arc<dyn EnvironmentClient>,
    /// This replica's name on the leases it takes.
    owner: String,
    /// Where exported packages are kept, each named by its SHA-256.
    artifacts_dir: std::path::PathBuf,
    wake: Notify,
    /// Plugin names by id, for reports; an id never changes its name.
    plugin_names: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or_default()
}

fn audit(actor: &str, action: &str, target: &str, detail: serde_json::Value) -> Audit {
    Audit {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        at: now_ms(),
    }
}

fn event(
    d: &DeploymentRecord,
    kind: &str,
    actor: Option<&str>,
    detail: serde_json::Value,
) -> TimelineEvent {
    TimelineEvent {
        deployment_id: d.id.clone(),
        seq: 0,
        at: now_ms(),
        kind: kind.to_owned(),
        actor: actor.map(str::to_owned),
        detail,
    }
}

/// Whether the user may see and run the pipeline.
/// The answer to a request whose Idempotency-Key already made `existing`: that deployment,
/// unless the request asks for something else, which is refused rather than answered
/// with a deployment it did not ask for.
fn repeated(
    key: &str,
    req: &DeploymentRequest,
    existing: DeploymentRecord,
) -> EngineResult<(DeploymentRecord, bool)> {
    let differs = existing.pipeline_id != req.pipeline_id
        || existing.stage_id != req.stage_id
        || existing.solution_name != req.solution_name
        || req.version.as_ref().is_some_and(|v| *v != existing.version)
        || req
            .source_environment_id
            .as_ref()
            .is_some_and(|s| *s != existing.source_environment_id);
    if differs {
        return Err(EngineError::Invalid(format!(
            "Idempotency-Key {key:?} was already used for deployment {} ({} {} to stage {}), \
             a different request; use a new key for a new request",
            existing.id, existing.solution_name, existing.version, existing.stage_id
        )));
    }
    Ok((mask_secrets(existing), false))
}

/// Running a pipeline needs access to every environment in it.
fn check_environment_access(
    actor: &User,
    pipeline: &PipelineRecord,
    environments: &Environments,
) -> EngineResult<()> {
    let ids = pipeline
        .development_environment_ids
        .iter()
        .chain(pipeline.stages.iter().map(|s| &s.target_environment_id));
    for id in ids {
        let env = environments.get(id)?;
        if !env.access.iter().any(|g| actor.matches(g)) {
            return Err(EngineError::Forbidden(format!(
                "you have no access to environment {}, which pipeline {} uses; an admin can grant it with PUT /api/v1/environments/{}/access",
                env.name, pipeline.name, env.id
            )));
        }
    }
    Ok(())
}

pub fn can_use_pipeline(user: &User, pipeline: &PipelineRecord) -> bool {
    user.is_admin() || pipeline.shares.iter().any(|g| user.matches(g))
}

/// Secret values are never shown once stored.
pub fn mask_secrets(mut d: DeploymentRecord) -> DeploymentRecord {
    for v in &mut d.settings.environment_variables {
        if v.secret {
            v.value = None;
        }
    }
    d
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        gates: Arc<dyn GateRunner>,
        environments: Arc<dyn EnvironmentClient>,
        owner: String,
        artifacts_dir: std::path::PathBuf,
    ) -> Engine {
        Engine {
            store,
            gates,
            environments,
            owner,
            artifacts_dir,
            wake: Notify::new(),
            plugin_names: Default::default(),
        }
    }

    /// The file of a stored package.
    pub fn package_path(&self, sha256: &str) -> Option<std::path::PathBuf> {
        let well_formed = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| self.artifacts_dir.join(sha256.to_ascii_lowercase()))
    }

    /// Makes the worker look for due work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn visible_pipeline(&self, actor: &User, id: &str) -> EngineResult<PipelineRecord> {
        let pipeline = self.store.get_pipeline(id).await?;
        if !can_use_pipeline(actor, &pipeline) {
            // Not 403: a pipeline that is not shared with you does not exist for you.
            return Err(EngineError::NotFound(format!("pipeline {id}")));
        }
        Ok(pipeline)
    }

    async fn visible_deployment(
        &self,
        actor: &User,
        id: &str,
    ) -> EngineResult<(DeploymentRecord, PipelineRecord)> {
        let d = self.store.get_deployment(id).await?;
        let pipeline = self
            .store
            .get_pipeline(&d.pipeline_id)
            .await
            .map_err(|_| EngineError::NotFound(format!("deployment {id}")))?;
        if !can_use_pipeline(actor, &pipeline) {
            return Err(EngineError::NotFound(format!("deployment {id}")));
        }
        Ok((d, pipeline))
    }

    /// Starts a deployment, or returns the one this idempotency key already started.
    pub async fn request(
        &self,
        actor: &User,
        req: DeploymentRequest,
    ) -> EngineResult<(DeploymentRecord, bool)> {
        if let Some(key) = &req.idempotency_key
            && let Some(existing) = self
                .store
                .deployment_by_idempotency_key(&actor.id, key)
                .await?
        {
            return repeated(key, &req, existing);
        }
        let now = now_ms();
        if let Some(at) = req.scheduled_for
            && at + 1000 < now
        {
            return Err(EngineError::Invalid(
                "scheduled_for is in the past; omit it to deploy now".into(),
            ));
        }
        let Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
        } = self.prepare(actor, &req).await?;
        let installed_version = self
            .environments
            .solution(&target, environments.credential(&target.id), &artifact.name)
            .await
            .ok()
            .flatten()
            .map(|s| s.version);
        let mut settings = req.settings.clone();
        mark_secrets(&mut settings, artifact.manifest.as_ref());

        let scheduled = req.scheduled_for.filter(|at| *at > now);
        let mut d = DeploymentRecord {
            id: new_id(),
            pipeline_id: pipeline.id.clone(),
            stage_id: stage.id.clone(),
            source_environment_id: source_id,
            target_environment_id: stage.target_environment_id.clone(),
            solution_name: artifact.name.clone(),
            version: artifact.version.clone(),
            requested_by: actor.id.clone(),
            requested_at: now,
            scheduled_for: scheduled,
            notes: req.notes.clone(),
            settings,
            status: if scheduled.is_some() {
                DeploymentStatus::Scheduled
            } else {
                DeploymentStatus::Queued
            },
            status_reason: String::new(),
            pre_deployment_status: None,
            pre_deployment_override: None,
            gates: Vec::new(),
            validation: Vec::new(),
            attempt: 1,
            attempt_started_at: now,
            next_run_at: Some(scheduled.unwrap_or(now)),
            idempotency_key: req.idempotency_key.clone(),
            installed_version,
            artifact,
            environment_attempts: 0,
            import_started: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            revision: 0,
        };
        if let Some(at) = scheduled {
            d.status_reason = format!("scheduled for {}", format_time(at));
        }
        let mut events = vec![event(
            &d,
            "requested",
            Some(&actor.id),
            serde_json::json!({
                "solution": d.solution_name, "version": d.version, "stage": stage.name,
            }),
        )];
        if let Some(at) = scheduled {
            events.push(event(
                &d,
                "scheduled",
                Some(&actor.id),
                serde_json::json!({ "for": at }),
            ));
        }
        let entry = audit(
            &actor.id,
            "deployment.request",
            &d.id,
            serde_json::json!({
                "pipeline": pipeline.id, "stage": stage.id, "solution": d.solution_name, "version": d.version,
            }),
        );
        match self.store.insert_deployment(&d, &events, &entry).await {
            Ok(()) => {}
            Err(StoreError::Conflict(msg)) => {
                if let Some(key) = &req.idempotency_key
                    && let Some(existing) = self
                        .store
                        .deployment_by_idempotency_key(&actor.id, key)
                        .await?
                {
                    return repeated(key, &req, existing);
                }
                return Err(EngineError::Conflict(msg));
            }
            Err(err) => return Err(err.into()),
        }
        self.wake();
        Ok((mask_secrets(d), true))
    }

    /// The checks a deployment request passes before anything is stored: the pipeline
    /// and stage, the source, access to every environment, the version rules.
    async fn prepare(&self, actor: &User, req: &DeploymentRequest) -> EngineResult<Prepared> {
        let pipeline = self.visible_pipeline(actor, &req.pipeline_id).await?;
        rules::check_runnable(&pipeline).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let stage = pipeline
            .stage(&req.stage_id)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "stage {} of pipeline {}",
                    req.stage_id, pipeline.name
                ))
            })?
            .clone();
        let source_id = match (
            &req.source_environment_id,
            pipeline.development_environment_ids.as_slice(),
        ) {
            (Some(id), ids) if ids.contains(id) => id.clone(),
            (Some(id), _) => {
                return Err(EngineError::Invalid(format!(
                    "environment {id} is not a development environment of pipeline {}",
                    pipeline.name
                )));
            }
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(EngineError::Invalid(format!(
                    "pipeline {} has several development environments; name one as source_environment_id",
                    pipeline.name
                )));
            }
        };
        let environments = Environments::load(
            self.store.as_ref(),
            pipeline
                .development_environment_ids
                .iter()
                .chain(pipeline.stages.iter().map(|s| &s.target_environment_id)),
        )
        .await?;
        check_environment_access(actor, &pipeline, &environments)?;
        if req.solution_name.trim().is_empty() {
            return Err(EngineError::Invalid("solution_name is required".into()));
        }
        let artifact = self
            .artifact_for(&pipeline, &stage, &source_id, req, &environments)
            .await?;
        self.check_version_order(&pipeline, &stage, &artifact)
            .await?;
        let target = environments.get(&stage.target_environment_id)?.clone();
        Ok(Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
        })
    }

    /// `POST /deployments/validate`: what a deployment would meet, without starting one.
    /// Runs the request's checks, the pipeline's validators, and the target's own check
    /// of the package with these settings, and says which settings are still missing.
    pub async fn preflight(&self, actor: &User, req: DeploymentRequest) -> EngineResult<Preflight> {
        let Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
        } = self.prepare(actor, &req).await?;
        let mut manifest = match artifact.manifest.clone() {
            Some(m) => m,
            None => {
                let source = environments.get(&source_id)?;
                self.environments
                    .export(
                        source,
                        environments.credential(&source_id),
                        &artifact.name,
                        &artifact.version,
                    )
                    .await
                    .map_err(|e| {
                        EngineError::Invalid(format!(
                            "cannot read {} from {}: {e}",
                            artifact.name, source.name
                        ))
                    })?
                    .manifest
            }
        };
        if let Ok(version) = artifact.version.parse() {
            manifest.version = version;
        }
        manifest.managed = true;
        let mut settings = req.settings.clone();
        mark_secrets(&mut settings, Some(&manifest));
        let credential = environments.credential(&target.id);
        let check = self
            .environments
            .check(
                &target,
                credential,
                &manifest,
                &settings,
                pipeline.settings.allow_redeploy_older_versions,
            )
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!("cannot check with {}: {e}", target.name))
            })?;
        let mut findings: Vec<PreflightFinding> = check
            .findings
            .iter()
            .map(|f| PreflightFinding {
                source: format!("environment {}", target.name),
                finding: f.clone(),
            })
            .collect();
        let now = now_ms();
        let draft = DeploymentRecord {
            id: "preflight".into(),
            pipeline_id: pipeline.id.clone(),
            stage_id: stage.id.clone(),
            source_environment_id: source_id.clone(),
            target_environment_id: target.id.clone(),
            solution_name: artifact.name.clone(),
            version: artifact.version.clone(),
            requested_by: actor.id.clone(),
            requested_at: now,
            scheduled_for: req.scheduled_for,
            notes: req.notes.clone(),
            settings,
            status: DeploymentStatus::Validating,
            status_reason: String::new(),
            pre_deployment_status: None,
            pre_deployment_override: None,
            gates: Vec::new(),
            validation: Vec::new(),
            attempt: 1,
            attempt_started_at: now,
            next_run_at: None,
            idempotency_key: None,
            installed_version: check.installed_version.clone(),
            artifact: artifact.clone(),
            environment_attempts: 0,
            import_started: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            revision: 0,
        };
        let view = Arc::new(self.gate_view(&draft, &pipeline, &environments).await?);
        for binding in &pipeline.validators {
            let outcome = self
                .gates
                .validate(&binding.plugin_id, view.clone(), &binding.config, now)
                .await;
            let source = self.plugin_name(&binding.plugin_id).await;
            match outcome.result {
                Ok(found) => findings.extend(found.into_iter().map(|finding| PreflightFinding {
                    source: source.clone(),
                    finding,
                })),
                Err(cause) => findings.push(PreflightFinding {
                    source: source.clone(),
                    finding: gate::Finding {
                        severity: Severity::Error,
                        code: "validator_failed".into(),
                        message: format!("validator {source} failed: {cause}"),
                        component: None,
                    },
                }),
            }
        }
        Ok(Preflight {
            ok: findings
                .iter()
                .all(|f| f.finding.severity != Severity::Error),
            solution_name: artifact.name,
            version: artifact.version,
            installed_version: check.installed_version,
            findings,
            missing_environment_variables: check.missing_environment_variables,
            missing_connection_references: check.missing_connection_references,
        })
    }

    /// The first stage takes the solution from the source; later stages reuse the
    /// artifact that succeeded in the previous stage.
    async fn artifact_for(
        &self,
        pipeline: &PipelineRecord,
        stage: &StageRecord,
        source_id: &str,
        req: &DeploymentRequest,
        environments: &Environments,
    ) -> EngineResult<SolutionVersion> {
        if let Some(version) = &req.version
            && rules::compare_versions(version, version).is_none()
        {
            return Err(EngineError::Invalid(format!(
                "version {version:?} is not a four-part version such as 1.0.0.0"
            )));
        }
        match &stage.previous_stage_id {
            Some(previous) => {
                let prev_name = pipeline
                    .stage(previous)
                    .map_or(previous.as_str(), |s| s.name.as_str());
                let succeeded = self
                    .store
                    .succeeded_versions(previous, &req.solution_name)
                    .await?;
                let version = match &req.version {
                    Some(v) => v.clone(),
                    None => succeeded.last().cloned().ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "{} has not succeeded in stage {prev_name} yet; deploy it there first",
                            req.solution_name
                        ))
                    })?,
                };
                if !succeeded.contains(&version) {
                    return Err(EngineError::Invalid(format!(
                        "version {version} of {} has not succeeded in stage {prev_name}; a stage only receives versions its previous stage succeeded with",
                        req.solution_name
                    )));
                }
                let filter = DeploymentFilter {
                    stage_id: Some(previous.clone()),
                    solution_name: Some(req.solution_name.clone()),
                    version: Some(version.clone()),
                    statuses: vec![DeploymentStatus::Succeeded],
                    ..DeploymentFilter::default()
                };
                let prior = self
                    .store
                    .list_deployments(
                        &filter,
                        &Page {
                            after: None,
                            limit: 1,
                        },
                    )
                    .await?;
                if let Some(stored) = self
                    .store
                    .get_artifact(&req.solution_name, &version)
                    .await?
                {
                    return Ok(stored.solution_version());
                }
                prior.into_iter().next().map(|d| d.artifact).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "no artifact of {} {version} was kept",
                        req.solution_name
                    ))
                })
            }
            None => {
                if let Some(version) = &req.version
                    && let Some(stored) =
                        self.store.get_artifact(&req.solution_name, version).await?
                {
                    // Exported before: every stage deploys the same packages.
                    return Ok(stored.solution_version());
                }
                let source = environments.get(source_id)?;
                let credential = environments.credential(source_id);
                let mut artifact = self
                    .environments
                    .solution(source, credential, &req.solution_name)
                    .await
                    .map_err(|e| {
                        EngineError::Unavailable(format!(
                            "cannot read {} from {}: {e}",
                            req.solution_name, source.name
                        ))
                    })?
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "solution {} is not in development environment {}; push it there first",
                            req.solution_name, source.name
                        ))
                    })?;
                // The export stamps the requested version; the package comes with it.
                if let Some(version) = &req.version {
                    artifact.version = version.clone();
                }
                artifact.package_sha256 = String::new();
                artifact.package_size = 0;
                artifact.unmanaged = None;
                Ok(artifact)
            }
        }
    }

    async fn check_version_order(
        &self,
        pipeline: &PipelineRecord,
        stage: &StageRecord,
        artifact: &SolutionVersion,
    ) -> EngineResult<()> {
        if pipeline.settings.allow_redeploy_older_versions {
            return Ok(());
        }
        let succeeded = self
            .store
            .succeeded_versions(&stage.id, &artifact.name)
            .await?;
        let highest = succeeded
            .iter()
            .filter(|v| rules::compare_versions(v, &artifact.version).is_some())
            .max_by(|a, b| rules::compare_versions(a, b).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(highest) = highest
            && rules::compare_versions(&artifact.version, highest) == Some(std::cmp::Ordering::Less)
        {
            return Err(EngineError::Invalid(format!(
                "stage {} already has {} {highest}; versions only move up unless the pipeline allows redeploying older versions",
                stage.name, artifact.name
            )));
        }
        Ok(())
    }

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

    async fn visible_pipelines(&self, actor: &User) -> EngineResult<Vec<PipelineRecord>> {
        let all = scan_all(
            |page| async move { self.store.list_pipelines(&page).await },
            |p| p.id.clone(),
        )
        .await?;
        Ok(all
            .into_iter()
            .filter(|p| can_use_pipeline(actor, p))
            .collect())
    }

    /// Applies `change` to the stored deployment, retrying when a concurrent writer won.
    async fn modify<F>(
        &self,
        id: &str,
        audit_entry: Option<&Audit>,
        mut change: F,
    ) -> EngineResult<DeploymentRecord>
    where
        F: FnMut(&mut DeploymentRecord) -> EngineResult<Vec<TimelineEvent>>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let mut d = self.store.get_deployment(id).await?;
            let events = change(&mut d)?;
            d.updated_at = now_ms();
            match self.store.save_deployment(&d, &events, audit_entry).await {
                Ok(revision) => {
                    d.revision = revision;
                    return Ok(d);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EngineError::Conflict(format!(
            "deployment {id} is changing too quickly; try again"
        )))
    }

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
                if worker::approval_open(d) {
                    events.push(event(
                        d,
                        "approval_completed",
                        Some(&actor.id),
                        serde_json::json!({ "approved": false, "canceled": true }),
                    ));
                }
                d.status = DeploymentStatus::Canceled;
                d.status_reason = format!("canceled by {}", actor.display_name);
                d.next_run_at = None;
                d.finished_at = Some(now);
                events.push(event(d, "canceled", Some(&actor.id), serde_json::json!({})));
                events.push(event(
                    d,
                    "deployment_completed",
                    None,
                    serde_json::json!({ "status": DeploymentStatus::Canceled, "reason": d.status_reason }),
                ));
                Ok(events)
            })
            .await?;
        Ok(mask_secrets(d))
    }

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
            if d.status != DeploymentStatus::PendingApproval
                || d.pre_deployment_status != Some(PreDeploymentStatus::Pending)
            {
                return Err(EngineError::Conflict(format!(
                    "deployment is {} and is not waiting for approval",
                    d.status
                )));
            }
            if d.requested_by == actor.id {
                return Err(EngineError::Forbidden(
                    "you requested this deployment; your own vote never counts".into(),
                ));
            }
            if !actor.is_admin() && !self.may_vote(actor, &d) {
                return Err(EngineError::Forbidden(
                    "you are not among the approvers the pending gate named".into(),
                ));
            }
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
                "vote",
                Some(&actor.id),
                serde_json::json!({
                    "approve": approve, "comment": comment,
                }),
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

    /// Whether the pending gate named the user (or one of their groups) as an approver.
    fn may_vote(&self, user: &User, d: &DeploymentRecord) -> bool {
        d.gates
            .iter()
            .find(|g| !g.approved)
            .and_then(|g| match &g.decision {
                Some(Decision::Pending { approvers, .. }) => Some(approvers),
                _ => None,
            })
            .is_some_and(|approvers| {
                approvers
                    .iter()
                    .filter_map(|a| a.parse::<Grantee>().ok())
                    .any(|g| user.matches(&g))
            })
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
                    d.pre_deployment_status == Some(PreDeploymentStatus::Pending)
                        && d.requested_by != actor.id
                        && visible.iter().any(|p| p.id == d.pipeline_id)
                        && d.gates.iter().any(|g| !g.approved && g.decision.is_some())
                        && (actor.is_admin() || self.may_vote(actor, d))
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
                "status must be 20 (completed) or 30 (rejected)".into(),
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
                if d.status != DeploymentStatus::PendingApproval
                    || d.pre_deployment_status != Some(PreDeploymentStatus::Pending)
                {
                    return Err(EngineError::Conflict(format!(
                        "deployment is {} and its pre-deployment step is not pending",
                        d.status
                    )));
                }
                let now = now_ms();
                let mut events = Vec::new();
                if worker::approval_open(d) {
                    events.push(event(
                        d,
                        "approval_completed",
                        Some(&actor.id),
                        serde_json::json!({
                            "approved": status == PreDeploymentStatus::Completed, "override": true,
                        }),
                    ));
                }
                d.pre_deployment_status = Some(status);
                d.pre_deployment_override = Some(PreDeploymentOverride {
                    status,
                    by: actor.id.clone(),
                    at: now,
                    comment: comment.clone(),
                });
                events.push(event(
                    d,
                    "pre_deployment_completed",
                    Some(&actor.id),
                    serde_json::json!({
                        "status": status as u16, "override": true, "comment": comment,
                    }),
                ));
                if status == PreDeploymentStatus::Rejected {
                    d.status = DeploymentStatus::Rejected;
                    d.status_reason =
                        format!("pre-deployment step rejected by {}", actor.display_name);
                    d.next_run_at = None;
                    d.finished_at = Some(now);
                    events.push(event(
                        d,
                        "deployment_completed",
                        None,
                        serde_json::json!({ "status": "rejected" }),
                    ));
                } else {
                    d.status_reason =
                        format!("pre-deployment step completed by {}", actor.display_name);
                    d.next_run_at = Some(now);
                }
                Ok(events)
            })
            .await?;
        self.wake();
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
                d.gates.clear();
                d.validation.clear();
                d.environment_attempts = 0;
                d.import_started = false;
                d.next_run_at = Some(now);
                d.finished_at = None;
                Ok(vec![event(d, "retried", Some(&actor.id), serde_json::json!({ "attempt": d.attempt }))])
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
        let now = now_ms();
        if scheduled_for.is_some_and(|at| at + 1000 < now) {
            return Err(EngineError::Invalid(
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
                    "rescheduled",
                    Some(&actor.id),
                    serde_json::json!({ "for": at }),
                )])
            })
            .await?;
        self.wake();
        Ok(mask_secrets(d))
    }
}

/// RFC 3339, for messages.
pub fn format_time(ms: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
