//! Retention: scheduled jobs that delete finished deployments (with their timelines,
//! votes, findings and logs, which live in the deployment) and old artifacts, in small
//! batches so that no transaction holds its locks for long. The audit log is never
//! touched.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gate::Timestamp;
use super::model::{ArtifactRecord, DeploymentStatus, Id};
use super::rules::compare_versions;
use super::store::{Audit, Store, StoreResult};

/// Deployments deleted per transaction.
pub const BATCH: u32 = 500;
/// How many of what a run deleted (or would delete) it names as examples.
const EXAMPLES: usize = 10;
/// How long a claimed job stays with this runner before another may take it over.
const LEASE: Duration = Duration::from_secs(600);
/// How often the runner looks for due jobs.
const POLL: Duration = Duration::from_secs(1);
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Which finished deployments a job deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentRule {
    /// Finished more than this many days ago: 1 to 36500.
    #[schema(minimum = 1, maximum = 36500)]
    pub older_than_days: u32,
    /// Final statuses only: succeeded, failed, rejected, canceled. All four when empty.
    #[serde(default)]
    #[schema(schema_with = final_statuses)]
    pub statuses: Vec<DeploymentStatus>,
}

/// The schema of `statuses`: a list of final statuses.
fn final_statuses() -> utoipa::openapi::Array {
    let names = DeploymentStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(|s| s.to_string());
    utoipa::openapi::Array::new(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names)),
    )
}

/// Which artifacts a job deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactRule {
    /// The newest versions of each solution that are kept. A version installed in a
    /// target, or in an unfinished deployment, is kept too. 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub keep_versions: u32,
}

/// What one run deleted, or would delete when it was a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionRun {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub dry_run: bool,
    pub deployments: u64,
    pub timeline_events: u64,
    pub votes: u64,
    pub artifacts: u64,
    /// Package files removed from the data dir (none while another artifact uses them).
    pub package_files: u64,
    /// A few of the deployment ids.
    pub example_deployments: Vec<Id>,
    /// A few of the artifacts, as `solution@version`.
    pub example_artifacts: Vec<String>,
    /// Why the run stopped early, when it did; what it deleted before stays deleted.
    pub error: Option<String>,
}

/// A scheduled deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionJob {
    pub id: Id,
    pub name: String,
    pub deployments: Option<DeploymentRule>,
    pub artifacts: Option<ArtifactRule>,
    /// Runs again this many hours after each run; once when absent.
    pub every_hours: Option<u32>,
    /// Reports what would go and deletes nothing.
    pub dry_run: bool,
    pub created_by: Id,
    pub created_at: Timestamp,
    /// When it runs next; none once a one-off job has run.
    pub next_run_at: Option<Timestamp>,
    pub runs: u32,
    pub last_run: Option<RetentionRun>,
}

impl RetentionJob {
    /// Checks what an admin asked for, and fills in the default statuses.
    pub fn validate(&mut self) -> Result<(), String> {
        if super::rules::is_blank(&self.name) || self.name.chars().count() > 200 {
            return Err("name must be 1 to 200 characters".into());
        }
        if self.deployments.is_none() && self.artifacts.is_none() {
            return Err(
                "the job deletes nothing: give `deployments` ({\"older_than_days\": 90}), \
                 `artifacts` ({\"keep_versions\": 10}), or both"
                    .into(),
            );
        }
        if let Some(rule) = &mut self.deployments {
            if !(1..=36_500).contains(&rule.older_than_days) {
                return Err(format!(
                    "deployments.older_than_days is {}, but must be 1 to 36500",
                    rule.older_than_days
                ));
            }
            if let Some(s) = rule.statuses.iter().find(|s| !s.is_final()) {
                return Err(format!(
                    "deployments.statuses names {s}, which is not final; only succeeded, \
                     failed, rejected and canceled deployments may be deleted"
                ));
            }
            if rule.statuses.is_empty() {
                rule.statuses = DeploymentStatus::ALL
                    .into_iter()
                    .filter(|s| s.is_final())
                    .collect();
            }
        }
        if let Some(rule) = &self.artifacts
            && !(1..=10_000).contains(&rule.keep_versions)
        {
            return Err(format!(
                "artifacts.keep_versions is {}, but must be 1 to 10000",
                rule.keep_versions
            ));
        }
        if let Some(hours) = self.every_hours
            && !(1..=8760).contains(&hours)
        {
            return Err(format!("every_hours is {hours}, but must be 1 to 8760"));
        }
        Ok(())
    }

    /// The deployments' cutoff for a run at `now`: finished before it.
    pub fn cutoff(rule: &DeploymentRule, now: Timestamp) -> Timestamp {
        now.saturating_sub(u64::from(rule.older_than_days) * DAY_MS)
    }

    /// When the job runs after a run that finished at `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.every_hours
            .map(|h| now.saturating_add(u64::from(h) * 3600 * 1000))
    }
}

/// One batch of a deployment sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepBatch {
    /// The deployments deleted (or matching, in a dry run).
    pub deployments: Vec<Id>,
    pub timeline_events: u64,
    pub votes: u64,
    /// Where the next batch starts; none when the sweep is done.
    pub next: Option<(Timestamp, Id)>,
}

/// What a sweep looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepQuery {
    pub finished_before: Timestamp,
    pub statuses: Vec<DeploymentStatus>,
    /// Never deleted: the newest succeeded deployment per target and solution, which
    /// records what is installed.
    pub keep: HashSet<Id>,
    pub after: Option<(Timestamp, Id)>,
    pub limit: u32,
    pub delete: bool,
}

/// Which artifacts go: beyond the newest `keep` versions of each solution, and never one
/// whose (solution, version) is in `protected`.
pub fn artifacts_to_delete<'a>(
    artifacts: &'a [ArtifactRecord],
    keep: u32,
    protected: &HashSet<(String, String)>,
) -> Vec<&'a ArtifactRecord> {
    let mut by_solution: BTreeMap<&str, Vec<&ArtifactRecord>> = BTreeMap::new();
    for a in artifacts {
        by_solution.entry(&a.solution_name).or_default().push(a);
    }
    let mut doomed = Vec::new();
    for versions in by_solution.values_mut() {
        versions.sort_by(|a, b| {
            compare_versions(&b.version, &a.version).unwrap_or_else(|| b.version.cmp(&a.version))
        });
        doomed.extend(
            versions
                .iter()
                .skip(keep as usize)
                .filter(|a| !protected.contains(&(a.solution_name.clone(), a.version.clone()))),
        );
    }
    doomed
}

/// Runs due retention jobs until `shutdown` resolves. Package files live in
/// `artifacts_dir`, named by their SHA-256.
pub async fn run_retention(
    store: Arc<dyn Store>,
    artifacts_dir: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let now = super::engine::now_ms();
        match store
            .claim_retention_job(now, now + LEASE.as_millis() as u64)
            .await
        {
            Ok(Some(job)) => {
                let done = run_job(store.as_ref(), &artifacts_dir, job).await;
                if let Err(error) = done {
                    tracing::warn!(%error, "could not record a retention run");
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not look for due retention jobs"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Runs `job` once and records the run, its next time and an audit line.
pub async fn run_job(
    store: &dyn Store,
    artifacts_dir: &std::path::Path,
    mut job: RetentionJob,
) -> StoreResult<RetentionJob> {
    let started_at = super::engine::now_ms();
    let mut run = RetentionRun {
        started_at,
        dry_run: job.dry_run,
        ..RetentionRun::default()
    };
    if let Err(error) = sweep(store, artifacts_dir, &job, started_at, &mut run).await {
        run.error = Some(error.to_string());
    }
    run.finished_at = super::engine::now_ms();
    job.runs += 1;
    job.next_run_at = job.next_after(run.finished_at);
    let audit = Audit {
        actor: "system".into(),
        action: if job.dry_run {
            "retention.dry_run".into()
        } else {
            "retention.run".into()
        },
        target: job.id.clone(),
        detail: serde_json::to_value(&run).unwrap_or_default(),
        at: run.finished_at,
    };
    tracing::info!(
        job = %job.id,
        dry_run = job.dry_run,
        deployments = run.deployments,
        artifacts = run.artifacts,
        "retention run"
    );
    job.last_run = Some(run);
    store.finish_retention_run(&job, &audit).await?;
    Ok(job)
}

async fn sweep(
    store: &dyn Store,
    artifacts_dir: &std::path::Path,
    job: &RetentionJob,
    now: Timestamp,
    run: &mut RetentionRun,
) -> StoreResult<()> {
    let delete = !job.dry_run;
    if let Some(rule) = &job.deployments {
        let keep: HashSet<Id> = store.installed_deployments().await?.into_iter().collect();
        let mut query = SweepQuery {
            finished_before: RetentionJob::cutoff(rule, now),
            statuses: rule.statuses.clone(),
            keep,
            after: None,
            limit: BATCH,
            delete,
        };
        loop {
            let batch = store.sweep_deployments(&query).await?;
            run.deployments += batch.deployments.len() as u64;
            run.timeline_events += batch.timeline_events;
            run.votes += batch.votes;
            let room = EXAMPLES.saturating_sub(run.example_deployments.len());
            run.example_deployments
                .extend(batch.deployments.into_iter().take(room));
            match batch.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
            // Lets the engine's writes in between batches.
            tokio::task::yield_now().await;
        }
    }
    if let Some(rule) = &job.artifacts {
        let (artifacts, protected) = store.artifact_retention_facts().await?;
        let protected: HashSet<(String, String)> = protected.into_iter().collect();
        let doomed = artifacts_to_delete(&artifacts, rule.keep_versions, &protected);
        run.artifacts = doomed.len() as u64;
        run.example_artifacts = doomed
            .iter()
            .take(EXAMPLES)
            .map(|a| format!("{}@{}", a.solution_name, a.version))
            .collect();
        if delete {
            for chunk in doomed.chunks(BATCH as usize) {
                let ids: Vec<Id> = chunk.iter().map(|a| a.id.clone()).collect();
                for sha256 in store.delete_artifacts(&ids).await? {
                    if remove_package(artifacts_dir, &sha256) {
                        run.package_files += 1;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Removes a package file; true when one was there.
fn remove_package(dir: &std::path::Path, sha256: &str) -> bool {
    let well_formed = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return false;
    }
    match std::fs::remove_file(dir.join(sha256.to_ascii_lowercase())) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            tracing::warn!(%error, sha256, "could not remove a package file");
            false
        }
    }
}
