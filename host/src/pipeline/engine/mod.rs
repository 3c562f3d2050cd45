//! The deployment engine: what makers, approvers and admins ask of deployments, and the
//! worker that moves each deployment through its states.
//!
//! Every transition is written to the store before it takes effect, so a restart resumes
//! each deployment from its last committed step. Work is claimed with leases, so several
//! replicas can share one PostgreSQL database.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use crate::pipeline::access::{self, can_use_pipeline, mask_secrets};
use crate::pipeline::gate::{self, Severity, Timestamp};
use crate::pipeline::model::*;
use crate::pipeline::ports::{EnvironmentClient, GateRunner, SolutionVersion};
use crate::pipeline::rules;
use crate::pipeline::store::{Audit, DeploymentFilter, Page, Store, StoreError, TargetClaim};
use crate::pipeline::timeline::DeploymentEvent;
use crate::pipeline::{bindings, gate_round};

mod approvals;
mod environment_steps;
mod environments;
mod lifecycle;
mod pre_deployment;
mod preflight;
mod queries;
mod requests;
mod validation;
mod worker;

use environments::LoadedEnvironments;
pub use preflight::{Preflight, PreflightFinding};
pub use queries::DeploymentView;
pub use requests::DeploymentRequest;

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
    /// A source or target environment is not validated: 409, and a problem type of its own.
    #[error(transparent)]
    NotValidated(crate::pipeline::rules::NotValidated),
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

/// The timeline row of `what`, happening now to `d`.
fn event(d: &DeploymentRecord, what: DeploymentEvent, actor: Option<&str>) -> TimelineEvent {
    what.into_row(&d.id, actor, now_ms())
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

    async fn visible_pipelines(&self, actor: &User) -> EngineResult<Vec<PipelineRecord>> {
        Ok(access::visible_pipelines(self.store.as_ref(), actor).await?)
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
}

/// RFC 3339, for messages.
pub fn format_time(ms: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
