//! The append-only audit log. Mutations write their line through `db::Audited` in
//! their own transaction; this file reads the log and records actions that change nothing.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use super::db::{SqlxResult, from_json, uint};
use crate::pipeline::model::AuditEntry;
use crate::pipeline::store::{Audit, AuditStore, StoreResult};

#[async_trait]
impl AuditStore for SqlStore {
    /// Newest first; `after` is the id of the last entry of the previous page.
    async fn list_audit(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let query = match after {
            Some(after) => sqlx::query(
                "SELECT id, at, actor, action, target, detail FROM audit_log \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(after),
            None => sqlx::query(
                "SELECT id, at, actor, action, target, detail FROM audit_log \
                 ORDER BY id DESC LIMIT $1",
            ),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.db.reader)
            .await
            .store()?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail").store()?;
                Ok(AuditEntry {
                    id: row.try_get("id").store()?,
                    at: uint(row.try_get("at").store()?, "audit time")?,
                    actor: row.try_get("actor").store()?,
                    action: row.try_get("action").store()?,
                    target: row.try_get("target").store()?,
                    detail: from_json(&detail, "audit detail")?,
                })
            })
            .collect()
    }

    async fn append_audit(&self, audit: &Audit) -> StoreResult<()> {
        self.db.audited(audit).await?.commit().await
    }
}
