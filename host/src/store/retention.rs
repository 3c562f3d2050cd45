//! Retention jobs on their durable timer, and the batched deletes they run.

use async_trait::async_trait;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Backend;
use super::SqlStore;
use super::db::{
    SqlxResult, changed, document, get_document, int, list_documents, opt_int, to_json, uint,
};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{ArtifactRecord, Id};
use crate::pipeline::retention::{RetentionJob, SweepBatch, SweepQuery};
use crate::pipeline::store::{Audit, Page, RetentionStore, StoreResult};

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn insert_retention_job(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query("INSERT INTO retention_jobs (id, next_run_at, document) VALUES ($1, $2, $3)")
            .bind(job.id.as_str())
            .bind(opt_int(job.next_run_at, "next_run_at")?)
            .bind(to_json(job)?)
            .execute(&mut *tx)
            .await
            .unique(|_| format!("a retention job with id {} already exists", job.id))?;
        tx.commit().await
    }

    async fn get_retention_job(&self, id: &str) -> StoreResult<RetentionJob> {
        get_document(&self.db, "retention_jobs", id, "retention job").await
    }

    async fn list_retention_jobs(&self, page: &Page) -> StoreResult<Vec<RetentionJob>> {
        list_documents(&self.db, "retention_jobs", page, "retention job").await
    }

    async fn delete_retention_job(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let result = sqlx::query("DELETE FROM retention_jobs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .store()?;
        changed(result.rows_affected(), "retention job", id)?;
        tx.commit().await
    }

    async fn claim_retention_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<RetentionJob>> {
        let lock = match self.db.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let due = sqlx::query(
            "SELECT 1 FROM retention_jobs WHERE next_run_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
        )
        .bind(int(now, "now")?)
        .fetch_optional(&self.db.reader)
        .await
        .store()?;
        if due.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "UPDATE retention_jobs SET lease_until = $2 \
             WHERE id = (SELECT id FROM retention_jobs WHERE next_run_at <= $1 \
                 AND (lease_until IS NULL OR lease_until < $1) \
                 ORDER BY next_run_at, id LIMIT 1 {lock}) \
             RETURNING document"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(int(now, "now")?)
            .bind(int(lease_until, "lease_until")?)
            .fetch_optional(&self.db.writer)
            .await
            .store()?
            .map(|row| document(&row, "retention job"))
            .transpose()
    }

    async fn finish_retention_run(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        // A job deleted while it ran stays deleted; its run is still audited.
        sqlx::query(
            "UPDATE retention_jobs SET next_run_at = $2, lease_until = NULL, document = $3 \
             WHERE id = $1",
        )
        .bind(job.id.as_str())
        .bind(opt_int(job.next_run_at, "next_run_at")?)
        .bind(to_json(job)?)
        .execute(&mut *tx)
        .await
        .store()?;
        tx.commit().await
    }

    async fn installed_deployments(&self) -> StoreResult<Vec<Id>> {
        sqlx::query(INSTALLED)
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| row.try_get("id").store())
            .collect()
    }

    /// Candidates are read outside the write transaction, so that SQLite's one writer is held
    /// only for the deletes; the transaction checks them again by id.
    async fn sweep_deployments(&self, query: &SweepQuery) -> StoreResult<SweepBatch> {
        let mut select = sqlx::query(AssertSqlSafe(sweep_sql(self.db.backend, query)))
            .bind(int(query.finished_before, "cutoff")?);
        for status in &query.statuses {
            select = select.bind(status.as_str());
        }
        if let Some((finished_at, id)) = &query.after {
            select = select.bind(int(*finished_at, "cursor")?).bind(id.clone());
        }
        let mut reader = self.db.reader.acquire().await.store()?;
        let rows = select
            .bind(i64::from(query.limit))
            .fetch_all(&mut *reader)
            .await
            .store()?;
        let next = match rows.last() {
            Some(row) if rows.len() as u32 >= query.limit => Some((
                uint(row.try_get("finished_at").store()?, "finished_at")?,
                row.try_get("id").store()?,
            )),
            _ => None,
        };
        let ids: Vec<Id> = rows
            .iter()
            .map(|row| row.try_get::<String, _>("id").store())
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .filter(|id| !query.keep.contains(id))
            .collect();
        let mut batch = SweepBatch {
            next,
            ..SweepBatch::default()
        };
        if ids.is_empty() {
            return Ok(batch);
        }
        if !query.delete {
            let events = "SELECT COUNT(*) FROM deployment_events WHERE deployment_id IN";
            batch.timeline_events = count_in(&mut reader, events, &ids).await?;
            let votes = "SELECT COUNT(*) FROM votes WHERE deployment_id IN";
            batch.votes = count_in(&mut reader, votes, &ids).await?;
            batch.deployments = ids;
            return Ok(batch);
        }
        drop(reader);
        let mut tx = self.db.begin().await?;
        let ids = still_deletable(&mut tx, self.db.backend, query, &ids).await?;
        if !ids.is_empty() {
            batch.timeline_events = delete_in(
                &mut tx,
                "DELETE FROM deployment_events WHERE deployment_id IN",
                &ids,
            )
            .await?;
            batch.votes =
                delete_in(&mut tx, "DELETE FROM votes WHERE deployment_id IN", &ids).await?;
            delete_in(&mut tx, "DELETE FROM deployments WHERE id IN", &ids).await?;
        }
        tx.commit().await.store()?;
        batch.deployments = ids;
        Ok(batch)
    }

    /// Every artifact, and the (solution, version) pairs that must stay: installed in a
    /// target, or carried by an unfinished deployment.
    async fn artifact_retention_facts(
        &self,
    ) -> StoreResult<(Vec<ArtifactRecord>, Vec<(String, String)>)> {
        let artifacts = sqlx::query("SELECT document FROM artifacts")
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| document(row, "artifact"))
            .collect::<StoreResult<Vec<_>>>()?;
        let sql = format!(
            "{INSTALLED} UNION SELECT id, solution_name, version FROM deployments \
             WHERE finished_at IS NULL"
        );
        let protected = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("solution_name").store()?,
                    row.try_get("version").store()?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((artifacts, protected))
    }

    /// Deletes the artifacts and answers the package hashes no artifact refers to any more.
    async fn delete_artifacts(&self, ids: &[Id]) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT managed_sha256, unmanaged_sha256 FROM artifacts WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.clone());
        }
        let mut hashes: Vec<String> = Vec::new();
        for row in query.fetch_all(&mut *tx).await.store()? {
            hashes.push(row.try_get("managed_sha256").store()?);
            hashes.push(row.try_get("unmanaged_sha256").store()?);
        }
        hashes.sort();
        hashes.dedup();
        delete_in(&mut tx, "DELETE FROM artifacts WHERE id IN", ids).await?;
        let mut unreferenced = Vec::new();
        for sha256 in hashes {
            let used = sqlx::query(
                "SELECT 1 FROM artifacts WHERE managed_sha256 = $1 OR unmanaged_sha256 = $1 LIMIT 1",
            )
            .bind(sha256.as_str())
            .fetch_optional(&mut *tx)
            .await
            .store()?;
            if used.is_none() {
                unreferenced.push(sha256);
            }
        }
        tx.commit().await.store()?;
        Ok(unreferenced)
    }

    /// Deletes the audit lines older than `before`, then writes `audit` (with the count) as
    /// the newest line. The log's append-only guard lets this one transaction through.
    async fn purge_audit(&self, before: Timestamp, audit: &Audit) -> StoreResult<u64> {
        let mut tx = self.db.audited(audit).await?;
        let open = match self.db.backend {
            Backend::Sqlite => "UPDATE audit_retention_permit SET open = 1 WHERE id = 1",
            Backend::Postgres => "SELECT set_config('gatehouse.audit_retention', 'on', true)",
        };
        sqlx::query(open).execute(&mut *tx).await.store()?;
        let deleted = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(int(before, "before")?)
            .execute(&mut *tx)
            .await
            .store()?
            .rows_affected();
        let close = match self.db.backend {
            Backend::Sqlite => "UPDATE audit_retention_permit SET open = 0 WHERE id = 1",
            Backend::Postgres => "SELECT set_config('gatehouse.audit_retention', 'off', true)",
        };
        sqlx::query(close).execute(&mut *tx).await.store()?;
        tx.detail("deleted", deleted);
        tx.commit().await?;
        Ok(deleted)
    }
}

/// The newest succeeded deployment per target and solution: what is installed.
const INSTALLED: &str = "SELECT id, solution_name, version FROM ( \
       SELECT id, solution_name, version, ROW_NUMBER() OVER ( \
         PARTITION BY target_environment_id, solution_name \
         ORDER BY finished_at DESC, id DESC) AS rn \
       FROM deployments WHERE status = 'succeeded' AND finished_at IS NOT NULL \
     ) ranked WHERE rn = 1";

/// Candidates of one batch: finished before the cutoff with one of the statuses, after
/// the cursor, and with every lifecycle event numbered (so that none is lost to the
/// feed or to webhooks).
fn sweep_sql(backend: Backend, query: &SweepQuery) -> String {
    let statuses = placeholders(2, query.statuses.len());
    let next = 2 + query.statuses.len();
    // `finished_at >=` bounds the index range; the OR only breaks ties.
    let cursor = match query.after {
        Some(_) => format!(
            "AND finished_at >= ${next} AND (finished_at > ${next} OR id > ${})",
            next + 1
        ),
        None => String::new(),
    };
    let limit = if query.after.is_some() {
        next + 2
    } else {
        next
    };
    let index = match backend {
        Backend::Sqlite => "INDEXED BY deployments_finished",
        Backend::Postgres => "",
    };
    format!(
        "SELECT id, finished_at FROM deployments {index} \
         WHERE finished_at IS NOT NULL AND finished_at < $1 AND status IN ({statuses}) {cursor} \
         AND NOT EXISTS (SELECT 1 FROM deployment_events u WHERE u.deployment_id = deployments.id \
             AND u.position IS NULL AND u.kind IN ('requested', 'approval_started', \
             'approval_completed', 'pre_deployment_started', 'pre_deployment_completed', \
             'deployment_started', 'deployment_completed')) \
         ORDER BY finished_at, id LIMIT ${limit}"
    )
}

async fn count_in(conn: &mut AnyConnection, sql: &str, ids: &[Id]) -> StoreResult<u64> {
    let sql = format!("{sql} ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.clone());
    }
    uint(query.fetch_one(conn).await.store()?, "count")
}

async fn delete_in(conn: &mut AnyConnection, sql: &str, ids: &[Id]) -> StoreResult<u64> {
    let sql = format!("{sql} ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.clone());
    }
    Ok(query.execute(conn).await.store()?.rows_affected())
}

/// The candidates that still qualify, locked: on PostgreSQL a retry may have made one
/// unfinished since the candidates were read, and the lock waits for it and re-checks.
async fn still_deletable(
    conn: &mut AnyConnection,
    backend: Backend,
    query: &SweepQuery,
    ids: &[Id],
) -> StoreResult<Vec<Id>> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE",
    };
    let statuses = placeholders(2, query.statuses.len());
    let sql = format!(
        "SELECT id FROM deployments WHERE finished_at IS NOT NULL AND finished_at < $1 \
         AND status IN ({statuses}) AND id IN ({}) {lock}",
        placeholders(2 + query.statuses.len(), ids.len())
    );
    let mut select = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
        .bind(int(query.finished_before, "cutoff")?);
    for status in &query.statuses {
        select = select.bind(status.as_str());
    }
    for id in ids {
        select = select.bind(id.clone());
    }
    select.fetch_all(conn).await.store()
}
