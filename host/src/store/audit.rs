//! The append-only audit log. Mutations write their line through `db::write_audit` in
//! their own transaction; this file reads the log and records actions that change nothing.

use sqlx::Row;

use super::db::{Db, SqlxResult, from_json, uint, write_audit};
use crate::pipeline::model::AuditEntry;
use crate::pipeline::store::{Audit, StoreResult};

/// Newest first; `after` is the id of the last entry of the previous page.
pub(super) async fn list_audit(
    db: &Db,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<AuditEntry>> {
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
        .fetch_all(&db.reader)
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

pub(super) async fn append_audit(db: &Db, audit: &Audit) -> StoreResult<()> {
    let mut conn = db.writer.acquire().await.store()?;
    write_audit(&mut conn, audit).await
}
