//! Deployments, their timelines and votes, and the leases the engine works them under.
//!
//! A deployment is stored whole as a JSON `document`, beside copies of the fields that are
//! filtered, claimed or constrained. Every write checks and bumps `revision`, and numbers
//! the timeline events it adds.

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::Backend;
use super::SqlStore;
use super::db::{SqlxResult, document, int, opt_int, to_json, uint, unique_violation};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{
    DeploymentRecord, DeploymentStatus, PreDeploymentStatus, TimelineEvent, VoteRecord,
};
use crate::pipeline::store::{
    Audit, DeploymentFilter, DeploymentStore, HandOver, Page, StoreError, StoreResult, TargetClaim,
};

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// Binds `$1`..`$15` in this order, then the number of events as `$16`.
const INSERT_DEPLOYMENT: &str = "INSERT INTO deployments (id, pipeline_id, stage_id, \
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

/// The statuses the engine still has work for; the text matches the partial index
/// `deployments_due`, which SQLite uses only for a WHERE that repeats it.
const UNFINISHED: &str =
    "status IN ('queued', 'scheduled', 'validating', 'pending_approval', 'deploying')";

/// The partial unique index that keeps one deployment `deploying` per target.
const ONE_DEPLOYING_PER_TARGET: &str = "deployments_one_deploying_per_target";

fn bind_deployment<'q>(
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
fn deployment_from_row(row: &AnyRow) -> StoreResult<DeploymentRecord> {
    let mut deployment: DeploymentRecord = document(row, "deployment")?;
    deployment.revision = uint(row.try_get("revision").store()?, "revision")?;
    Ok(deployment)
}

/// Whether a unique violation is the one-deploying-per-target rule (SQLite names the
/// indexed column, PostgreSQL the index).
fn is_target_busy(constraint: &str) -> bool {
    constraint.contains(ONE_DEPLOYING_PER_TARGET)
        || constraint.ends_with("deployments.target_environment_id")
}

/// Appends `events` to the deployment's timeline, numbered from `first`; the `seq` they
/// carry is ignored. Callers take the numbers from the deployment's row, which they write
/// first in the same transaction, so two writers never take the same numbers.
async fn append_events(
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

#[async_trait]
impl DeploymentStore for SqlStore {
    async fn insert_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        bind_deployment(
            sqlx::query(INSERT_DEPLOYMENT),
            deployment,
            deployment.revision,
        )?
        .bind(event_count(events))
        .execute(&mut *tx)
        .await
        .unique(|c| {
            if c.contains("idempotency_key") {
                format!(
                    "user {} already requested a deployment with idempotency key {}",
                    deployment.requested_by,
                    deployment.idempotency_key.as_deref().unwrap_or_default()
                )
            } else if is_target_busy(c) {
                format!(
                    "another deployment is already deploying to environment {}",
                    deployment.target_environment_id
                )
            } else {
                format!("a deployment with id {} already exists", deployment.id)
            }
        })?;
        append_events(&mut tx, &deployment.id, 1, events).await?;
        tx.commit().await
    }

    async fn deployment_by_idempotency_key(
        &self,
        requested_by: &str,
        key: &str,
    ) -> StoreResult<Option<DeploymentRecord>> {
        sqlx::query(
            "SELECT document, revision FROM deployments \
             WHERE requested_by = $1 AND idempotency_key = $2",
        )
        .bind(requested_by)
        .bind(key)
        .fetch_optional(&self.db.reader)
        .await
        .store()?
        .as_ref()
        .map(deployment_from_row)
        .transpose()
    }

    async fn get_deployment(&self, id: &str) -> StoreResult<DeploymentRecord> {
        let row = sqlx::query("SELECT document, revision FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.reader)
            .await
            .store()?
            .ok_or_else(|| StoreError::NotFound(format!("deployment {id}")))?;
        deployment_from_row(&row)
    }

    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: &Page,
    ) -> StoreResult<Vec<DeploymentRecord>> {
        let mut conditions = Conditions::default();
        let text_filters = [
            ("pipeline_id =", &filter.pipeline_id),
            ("stage_id =", &filter.stage_id),
            ("solution_name =", &filter.solution_name),
            ("version =", &filter.version),
            ("requested_by =", &filter.requested_by),
            ("target_environment_id =", &filter.target_environment_id),
        ];
        for (left, value) in text_filters {
            if let Some(value) = value {
                conditions.add(left, Param::Text(value.clone()));
            }
        }
        if !filter.statuses.is_empty() {
            let placeholders: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| conditions.placeholder(Param::Text(s.as_str().to_owned())))
                .collect();
            conditions
                .clauses
                .push(format!("status IN ({})", placeholders.join(", ")));
        }
        if let Some(after) = filter.requested_after {
            conditions.add(
                "requested_at >=",
                Param::Int(int(after, "requested_after")?),
            );
        }
        if let Some(before) = filter.requested_before {
            conditions.add(
                "requested_at <",
                Param::Int(int(before, "requested_before")?),
            );
        }
        if let Some(after) = &page.after {
            conditions.add("id <", Param::Text(after.clone()));
        }
        let limit = conditions.placeholder(Param::Int(i64::from(page.limit)));
        let sql = format!(
            "SELECT document, revision FROM deployments {} ORDER BY id DESC LIMIT {limit}",
            conditions.sql()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for param in conditions.params {
            query = match param {
                Param::Text(text) => query.bind(text),
                Param::Int(value) => query.bind(value),
            };
        }
        query
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(deployment_from_row)
            .collect()
    }

    async fn save_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: Option<&Audit>,
    ) -> StoreResult<u64> {
        // A deployment that holds its target keeps the others waiting: it writes first.
        let mut tx = if deployment.status == DeploymentStatus::Deploying {
            self.db.audited_first(audit).await?
        } else {
            self.db.audited(audit).await?
        };
        let revision = revision_or_busy(save(&mut tx, deployment, events).await?, deployment)?;
        tx.commit().await?;
        Ok(revision)
    }

    /// A target that another deployment is deploying to is seen first, so that the waiting
    /// deployment's own save goes in the same transaction. The partial unique index still
    /// decides, so two writers racing for one target cannot both win on either backend: on
    /// PostgreSQL the second waits for the first to commit, and its failed transaction saves
    /// `otherwise` in a second one.
    async fn save_deployment_if_target_free(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        otherwise: Option<(&DeploymentRecord, &[TimelineEvent])>,
    ) -> StoreResult<TargetClaim> {
        let mut tx = self.db.begin().await?;
        let busy = sqlx::query(
            "SELECT 1 FROM deployments WHERE target_environment_id = $1 AND status = 'deploying' \
             AND id <> $2",
        )
        .bind(deployment.target_environment_id.as_str())
        .bind(deployment.id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .store()?
        .is_some();
        if !busy {
            match save(&mut tx, deployment, events).await? {
                Saved::Revision(revision) => {
                    tx.commit().await.store()?;
                    return Ok(TargetClaim::Taken(revision));
                }
                Saved::TargetBusy => {
                    // Lost a race; PostgreSQL has aborted this transaction.
                    tx.rollback().await.store()?;
                    tx = self.db.begin().await?;
                }
            }
        }
        let Some((waiting, waiting_events)) = otherwise else {
            tx.rollback().await.store()?;
            return Ok(TargetClaim::Busy(None));
        };
        let revision = revision_or_busy(save(&mut tx, waiting, waiting_events).await?, waiting)?;
        tx.commit().await.store()?;
        Ok(TargetClaim::Busy(Some(revision)))
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>> {
        let sql = claim_sql(self.db.backend);
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(int(lease_until, "lease_until")?)
            .bind(int(now, "now")?)
            .bind(i64::from(limit))
            .fetch_all(&self.db.writer)
            .await
            .store()?;
        let mut claimed = rows
            .iter()
            .map(deployment_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING promises no order.
        claimed.sort_by(|a, b| (a.next_run_at, &a.id).cmp(&(b.next_run_at, &b.id)));
        Ok(claimed)
    }

    async fn claim_waiting_for_target(
        &self,
        target_id: &str,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<DeploymentRecord>> {
        let sql = claim_waiting_sql(self.db.backend);
        sqlx::query(AssertSqlSafe(sql))
            .bind(target_id)
            .bind(owner)
            .bind(int(lease_until, "lease_until")?)
            .bind(int(now, "now")?)
            .fetch_optional(&self.db.writer)
            .await
            .store()?
            .as_ref()
            .map(deployment_from_row)
            .transpose()
    }

    /// Saves a deployment that has just left its target, and in the same transaction leases
    /// the oldest deployment waiting for that target and saves what `start` makes of it, so
    /// the target passes on in one write.
    async fn save_deployment_and_hand_over(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
        start: HandOver<'_>,
    ) -> StoreResult<(u64, Option<DeploymentRecord>)> {
        let mut tx = self.db.begin_first().await?;
        let revision = revision_or_busy(save(&mut tx, deployment, events).await?, deployment)?;
        let waiting = sqlx::query(AssertSqlSafe(claim_waiting_sql(self.db.backend)))
            .bind(deployment.target_environment_id.as_str())
            .bind(owner)
            .bind(int(lease_until, "lease_until")?)
            .bind(int(now, "now")?)
            .fetch_optional(&mut *tx)
            .await
            .store()?
            .as_ref()
            .map(deployment_from_row)
            .transpose()?;
        let next = match waiting {
            Some(waiting) => match start(&waiting) {
                Some((mut started, started_events)) => {
                    // The target was this deployment's until this transaction, so nothing
                    // else can be deploying to it.
                    let saved = save(&mut tx, &started, &started_events).await?;
                    started.revision = revision_or_busy(saved, &started)?;
                    Some(started)
                }
                None => Some(waiting),
            },
            None => None,
        };
        tx.commit().await.store()?;
        Ok((revision, next))
    }

    /// Releasing a lease that has lapsed and passed to another owner changes nothing.
    /// One statement, outside a transaction: it is atomic by itself.
    async fn release_lease(&self, deployment_id: &str, owner: &str) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE deployments SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(deployment_id)
        .bind(owner)
        .execute(&self.db.writer)
        .await
        .store()?;
        if result.rows_affected() == 0 {
            let mut conn = self.db.reader.acquire().await.store()?;
            let sql = "SELECT 1 FROM deployments WHERE id = $1";
            super::db::require(&mut conn, sql, deployment_id, "deployment").await?;
        }
        Ok(())
    }

    async fn release_all_leases(&self) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deployments SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner IS NOT NULL",
        )
        .execute(&self.db.writer)
        .await
        .store()?;
        Ok(())
    }

    /// Each version once, lowest first. Only the covering index is read, so the cost does not
    /// grow with the deployments' documents.
    async fn succeeded_versions(
        &self,
        stage_id: &str,
        solution_name: &str,
    ) -> StoreResult<Vec<String>> {
        let mut versions: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT version FROM deployments \
             WHERE stage_id = $1 AND solution_name = $2 AND status = $3",
        )
        .bind(stage_id)
        .bind(solution_name)
        .bind(DeploymentStatus::Succeeded.as_str())
        .fetch_all(&self.db.reader)
        .await
        .store()?;
        versions.sort_by(|a, b| {
            crate::pipeline::rules::compare_versions(a, b).unwrap_or_else(|| a.cmp(b))
        });
        Ok(versions)
    }

    async fn insert_vote(
        &self,
        vote: &VoteRecord,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<u64> {
        if vote.deployment_id != deployment.id {
            return Err(StoreError::Backend(format!(
                "a vote on deployment {} was given with deployment {}",
                vote.deployment_id, deployment.id
            )));
        }
        let mut tx = self.db.audited(audit).await?;
        let revision = revision_or_busy(save(&mut tx, deployment, events).await?, deployment)?;
        sqlx::query(
            "INSERT INTO votes (id, deployment_id, voter_id, approve, comment, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(vote.id.as_str())
        .bind(vote.deployment_id.as_str())
        .bind(vote.voter_id.as_str())
        .bind(i16::from(vote.approve))
        .bind(vote.comment.as_str())
        .bind(int(vote.at, "vote time")?)
        .execute(&mut *tx)
        .await
        .unique(|_| format!("a vote with id {} already exists", vote.id))?;
        tx.commit().await?;
        Ok(revision)
    }

    async fn votes(&self, deployment_id: &str) -> StoreResult<Vec<VoteRecord>> {
        let rows = sqlx::query(
            "SELECT id, deployment_id, voter_id, approve, comment, at FROM votes \
             WHERE deployment_id = $1 ORDER BY at, id",
        )
        .bind(deployment_id)
        .fetch_all(&self.db.reader)
        .await
        .store()?;
        rows.iter()
            .map(|row| {
                Ok(VoteRecord {
                    id: row.try_get("id").store()?,
                    deployment_id: row.try_get("deployment_id").store()?,
                    voter_id: row.try_get("voter_id").store()?,
                    approve: row.try_get::<i64, _>("approve").store()? != 0,
                    comment: row.try_get("comment").store()?,
                    at: uint(row.try_get("at").store()?, "vote time")?,
                })
            })
            .collect()
    }

    async fn timeline(&self, deployment_id: &str) -> StoreResult<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT deployment_id, seq, at, kind, actor, detail FROM deployment_events \
             WHERE deployment_id = $1 ORDER BY seq",
        )
        .bind(deployment_id)
        .fetch_all(&self.db.reader)
        .await
        .store()?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq").store()?;
                let detail: String = row.try_get("detail").store()?;
                Ok(TimelineEvent {
                    deployment_id: row.try_get("deployment_id").store()?,
                    seq: u32::try_from(seq).map_err(|_| {
                        StoreError::Backend(format!("stored event number {seq} is out of range"))
                    })?,
                    at: uint(row.try_get("at").store()?, "event time")?,
                    kind: row.try_get("kind").store()?,
                    actor: row.try_get("actor").store()?,
                    detail: super::db::from_json(&detail, "event detail")?,
                })
            })
            .collect()
    }
}

fn event_count(events: &[TimelineEvent]) -> i64 {
    i64::try_from(events.len()).unwrap_or(i64::MAX)
}

enum Param {
    Text(String),
    Int(i64),
}

/// A WHERE clause and its parameters, numbered as they are added.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    fn placeholder(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// Adds `<left> <placeholder>`, such as `pipeline_id =` and a value.
    fn add(&mut self, left: &str, param: Param) {
        let placeholder = self.placeholder(param);
        self.clauses.push(format!("{left} {placeholder}"));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
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
enum Saved {
    Revision(u64),
    TargetBusy,
}

/// Writes the deployment with its events inside `conn`'s transaction.
async fn save(
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
fn revision_or_busy(saved: Saved, deployment: &DeploymentRecord) -> StoreResult<u64> {
    match saved {
        Saved::Revision(revision) => Ok(revision),
        Saved::TargetBusy => Err(StoreError::Conflict(format!(
            "another deployment is already deploying to environment {}: wait for it to finish",
            deployment.target_environment_id
        ))),
    }
}

/// Leases due deployments: binds the owner, the lease's end, now, and the limit.
pub(super) fn claim_sql(backend: Backend) -> String {
    // SQLite's planner, without statistics, prefers `deployments_status` and then sorts;
    // the partial index is already in `next_run_at` order and holds only unfinished rows.
    // Replicas sharing PostgreSQL skip the rows another replica is claiming right now.
    let (index, lock) = match backend {
        Backend::Sqlite => ("INDEXED BY deployments_due", ""),
        Backend::Postgres => ("", "FOR UPDATE SKIP LOCKED"),
    };
    format!(
        "UPDATE deployments SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM deployments {index} \
             WHERE {UNFINISHED} AND next_run_at <= $3 \
             AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY next_run_at, id LIMIT $4 {lock}) \
         RETURNING document, revision"
    )
}

/// Leases the oldest deployment that waits for `target_id` to be free, unless another
/// worker holds it: binds the target, the owner, the lease's end and now.
pub(super) fn claim_waiting_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE deployments SET lease_owner = $2, lease_until = $3 \
         WHERE id = (SELECT id FROM deployments \
             WHERE target_environment_id = $1 AND waiting_since IS NOT NULL \
             AND (lease_until IS NULL OR lease_until < $4) \
             ORDER BY waiting_since, id LIMIT 1 {lock}) \
         RETURNING document, revision"
    )
}
