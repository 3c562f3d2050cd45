//! Deployments, their timelines and votes, and the leases the engine works them under.
//!
//! A deployment is stored whole as a JSON `document`, beside copies of the fields that are
//! filtered, claimed or constrained. Every write checks and bumps `revision`, and numbers
//! the timeline events it adds.

mod rows;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::Backend;
use super::SqlStore;
use super::db::{SqlxResult, int, uint};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{DeploymentRecord, DeploymentStatus, TimelineEvent, VoteRecord};
use crate::pipeline::store::{
    Audit, DeploymentFilter, DeploymentStore, HandOver, Page, StoreError, StoreResult, TargetClaim,
};
use rows::{
    INSERT_DEPLOYMENT, Saved, append_events, bind_deployment, deployment_from_row, event_count,
    is_target_busy, revision_or_busy, save,
};

/// The statuses the engine still has work for; the text matches the partial index
/// `deployments_due`, which SQLite uses only for a WHERE that repeats it.
const UNFINISHED: &str =
    "status IN ('queued', 'scheduled', 'validating', 'pending_approval', 'deploying')";

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
