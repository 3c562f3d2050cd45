//! One deployment row: its columns, the revision-checked write every save goes through,
//! and the numbering of the timeline events a write adds.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::super::db::{SqlxResult, document, int, opt_int, to_json, uint, unique_violation};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{
    DeploymentRecord, DeploymentStatus, PreDeploymentStatus, TimelineEvent,
};
use crate::pipeline::store::{StoreError, StoreResult};

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// Binds `$1`..`$15` in this order, then the number of events as `$16`.
pub(super) const INSERT_DEPLOYMENT: &str = "INSERT INTO deployments (id, pipeline_id, stage_id, \
     target_environment_id, solution_name, version, requested_by, requested_at, status, \
     finished_at, next_run_at, idempotency_key, revision, document, waiting_since, \
     event_count) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Binds `$1`..`$15` like [`INSERT_DEPLOYMENT`], then the expected revision as `$16` and
/// the number of events the save adds as `$17`; returns the new event count, from which
/// those events are numbered. A finished deployment (`finished_at` set) drops its lease in
/// the same write; otherwise leases are left as they are, for the engine to release.
const UPDATE_DEPLOYMENT: &str = "UPDATE deployments SET pipeline_id = $2, stage_id = $3, \
     target_environment_id = $4, solution_name = $5, version = $6, requested_by = $7, \
     requested_at = $8, status = $9, finished_at = $10, next_run_at = $11, \
     idempotency_key = $12, revision = $13, document = $14, waiting_since = $15, \
     event_count = event_count + $17, \
     lease_owner = CASE WHEN $10 IS NULL THEN lease_owner ELSE NULL END, \
     lease_until = CASE WHEN $10 IS NULL THEN lease_until ELSE NULL END \
     WHERE id = $1 AND revision = $16 RETURNING event_count";

/// The partial unique index that keeps one deployment `deploying` per target.
const ONE_DEPLOYING_PER_TARGET: &str = "deployments_one_deploying_per_target";

pub(super) fn bind_deployment<'q>(
    query: AnyQuery<'q>,
    deployment: &DeploymentRecord,
    revision: u64,
) -> StoreResult<AnyQuery<'q>> {
    let stored = DeploymentRecord {
        revision,
        ..deployment.clone()
    };
    Ok(query
        .bind(stored.id.clone())
        .bind(stored.pipeline_id.clone())
        .bind(stored.stage_id.clone())
        .bind(stored.target_environment_id.clone())
        .bind(stored.solution_name.clone())
        .bind(stored.version.clone())
        .bind(stored.requested_by.clone())
        .bind(int(stored.requested_at, "requested_at")?)
        .bind(stored.status.as_str())
        .bind(opt_int(stored.finished_at, "finished_at")?)
        .bind(opt_int(stored.next_run_at, "next_run_at")?)
        .bind(stored.idempotency_key.clone())
        .bind(int(revision, "revision")?)
        .bind(to_json(&stored)?)
        .bind(opt_int(waiting_since(&stored), "requested_at")?))
}

/// When a deployment has finished its pre-deployment step and waits only for its target
/// to be free: its request time, which orders the queue for the target.
fn waiting_since(deployment: &DeploymentRecord) -> Option<Timestamp> {
    let step_done = deployment.pre_deployment_status != Some(PreDeploymentStatus::Pending);
    (deployment.status == DeploymentStatus::PendingApproval && step_done)
        .then_some(deployment.requested_at)
}

/// A record from a row with `document` and `revision`.
pub(super) fn deployment_from_row(row: &AnyRow) -> StoreResult<DeploymentRecord> {
    let mut deployment: DeploymentRecord = document(row, "deployment")?;
    deployment.revision = uint(row.try_get("revision").store()?, "revision")?;
    Ok(deployment)
}

/// Whether a unique violation is the one-deploying-per-target rule (SQLite names the
/// indexed column, PostgreSQL the index).
pub(super) fn is_target_busy(constraint: &str) -> bool {
    constraint.contains(ONE_DEPLOYING_PER_TARGET)
        || constraint.ends_with("deployments.target_environment_id")
}

/// Appends `events` to the deployment's timeline, numbered from `first`; the `seq` they
/// carry is ignored. Callers take the numbers from the deployment's row, which they write
/// first in the same transaction, so two writers never take the same numbers.
pub(super) async fn append_events(
    conn: &mut AnyConnection,
    deployment_id: &str,
    first: i64,
    events: &[TimelineEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    // One statement for all the events: a step often records several at once.
    let rows: Vec<String> = (0..events.len())
        .map(|i| {
            let p = 2 + i * 5;
            format!("($1, ${p}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
        })
        .collect();
    let sql = format!(
        "INSERT INTO deployment_events (deployment_id, seq, at, kind, actor, detail) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(deployment_id);
    for (i, event) in events.iter().enumerate() {
        query = query
            .bind(first + i as i64)
            .bind(int(event.at, "event time")?)
            .bind(event.kind.as_str())
            .bind(event.actor.as_deref())
            .bind(to_json(&event.detail)?);
    }
    query.execute(&mut *conn).await.store()?;
    Ok(())
}

pub(super) fn event_count(events: &[TimelineEvent]) -> i64 {
    i64::try_from(events.len()).unwrap_or(i64::MAX)
}

/// Why a conditional update changed nothing: the deployment is gone, or someone else
/// wrote it first.
async fn explain_stale(conn: &mut AnyConnection, deployment: &DeploymentRecord) -> StoreError {
    let stored: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT revision FROM deployments WHERE id = $1")
            .bind(deployment.id.as_str())
            .fetch_optional(conn)
            .await;
    match stored {
        Ok(None) => StoreError::NotFound(format!("deployment {}", deployment.id)),
        Ok(Some(revision)) => StoreError::Conflict(format!(
            "deployment {} is at revision {revision}, not {}: someone else changed it; reload \
             it and try again",
            deployment.id, deployment.revision
        )),
        Err(e) => StoreError::Backend(e.to_string()),
    }
}

/// The outcome of a revision-checked write.
pub(super) enum Saved {
    Revision(u64),
    TargetBusy,
}

/// Writes the deployment with its events inside `conn`'s transaction.
pub(super) async fn save(
    conn: &mut AnyConnection,
    deployment: &DeploymentRecord,
    events: &[TimelineEvent],
) -> StoreResult<Saved> {
    let revision = deployment.revision + 1;
    let added = event_count(events);
    let result = bind_deployment(sqlx::query(UPDATE_DEPLOYMENT), deployment, revision)?
        .bind(int(deployment.revision, "revision")?)
        .bind(added)
        .fetch_optional(&mut *conn)
        .await;
    let row = match result {
        Ok(row) => row,
        Err(e) => {
            return match unique_violation(&e) {
                Some(c) if is_target_busy(&c) => Ok(Saved::TargetBusy),
                Some(_) => Err(StoreError::Conflict(format!(
                    "user {} already requested a deployment with idempotency key {}",
                    deployment.requested_by,
                    deployment.idempotency_key.as_deref().unwrap_or_default()
                ))),
                None => Err(StoreError::Backend(e.to_string())),
            };
        }
    };
    let Some(row) = row else {
        return Err(explain_stale(conn, deployment).await);
    };
    let count: i64 = row.try_get("event_count").store()?;
    append_events(conn, &deployment.id, count - added + 1, events).await?;
    Ok(Saved::Revision(revision))
}

/// The new revision, or a conflict when the deployment may not deploy now.
pub(super) fn revision_or_busy(saved: Saved, deployment: &DeploymentRecord) -> StoreResult<u64> {
    match saved {
        Saved::Revision(revision) => Ok(revision),
        Saved::TargetBusy => Err(StoreError::Conflict(format!(
            "another deployment is already deploying to environment {}: wait for it to finish",
            deployment.target_environment_id
        ))),
    }
}
