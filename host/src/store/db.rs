//! The connection pools, transactions, and the conversions every table shares: errors,
//! integers, JSON documents and audit lines.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use super::Backend;
use crate::pipeline::store::{Audit, Page, StoreError, StoreResult};

/// Both pools are the same pool on PostgreSQL. On SQLite, which allows one writer at a
/// time, `writer` holds a single connection so writes queue in the process instead of
/// spinning on the file lock, and `reader` serves reads beside it (WAL).
#[derive(Clone)]
pub(super) struct Db {
    pub backend: Backend,
    pub writer: AnyPool,
    pub reader: AnyPool,
    /// Where ordinary write transactions queue on SQLite, so that at most one of them
    /// waits for the writer connection at a time: see [`Db::begin_first`].
    pub queue: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that a transaction that reads first can never fail to upgrade later.
    pub async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => {
                let _turn = self.queue.lock().await;
                self.writer.begin_with("BEGIN IMMEDIATE").await.store()
            }
            Backend::Postgres => self.writer.begin().await.store(),
        }
    }

    /// A write transaction that goes ahead of the ordinary ones queued for SQLite's one
    /// writer: it waits for the transaction running and at most one other. For the
    /// writes of a deployment that holds its target, which every deployment waiting for
    /// that target waits on in turn.
    pub async fn begin_first(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await.store(),
            Backend::Postgres => self.writer.begin().await.store(),
        }
    }

    /// A write transaction (see [`Db::begin`]) that writes `audit` as it commits.
    pub async fn audited<'a>(
        &self,
        audit: impl Into<Option<&'a Audit>>,
    ) -> StoreResult<Audited<'a>> {
        Ok(Audited {
            tx: self.begin().await?,
            audit: audit.into().map(Cow::Borrowed),
        })
    }

    /// Like [`Db::audited`], ahead of the queue (see [`Db::begin_first`]).
    pub async fn audited_first<'a>(
        &self,
        audit: impl Into<Option<&'a Audit>>,
    ) -> StoreResult<Audited<'a>> {
        Ok(Audited {
            tx: self.begin_first().await?,
            audit: audit.into().map(Cow::Borrowed),
        })
    }
}

/// A write transaction that commits only together with its audit line, so that no
/// mutation can reach the database without one. It derefs to the connection.
pub(super) struct Audited<'a> {
    tx: Transaction<'static, Any>,
    audit: Option<Cow<'a, Audit>>,
}

impl Audited<'_> {
    /// Adds what the write found, such as a count, to the audit line's detail.
    pub fn detail(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(audit) = &mut self.audit {
            audit.to_mut().detail[key] = value.into();
        }
    }

    /// Appends the audit line and commits.
    pub async fn commit(mut self) -> StoreResult<()> {
        if let Some(audit) = &self.audit {
            write_audit(&mut self.tx, audit).await?;
        }
        self.tx.commit().await.store()
    }
}

impl std::ops::Deref for Audited<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Audited<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Turns sqlx errors into store errors.
pub(super) trait SqlxResult<T> {
    /// Any failure is a backend error.
    fn store(self) -> StoreResult<T>;
    /// A unique violation is a conflict, described by `what` from the name or text of the
    /// violated constraint; any other failure is a backend error.
    fn unique(self, what: impl FnOnce(&str) -> String) -> StoreResult<T>;
}

impl<T> SqlxResult<T> for Result<T, sqlx::Error> {
    fn store(self) -> StoreResult<T> {
        self.map_err(backend_error)
    }

    fn unique(self, what: impl FnOnce(&str) -> String) -> StoreResult<T> {
        self.map_err(|e| match unique_violation(&e) {
            Some(constraint) => StoreError::Conflict(what(&constraint)),
            None => backend_error(e),
        })
    }
}

pub(super) fn backend_error(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The violated constraint's name (PostgreSQL) or the message naming its columns (SQLite).
pub(super) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(
        db.constraint()
            .map_or_else(|| db.message().to_owned(), str::to_owned),
    )
}

/// The column type both backends share: BIGINT and SQLite's INTEGER are 64-bit signed.
pub(super) fn int(value: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| {
        StoreError::Backend(format!(
            "{what} {value} is too large to store: the database keeps 63-bit integers"
        ))
    })
}

pub(super) fn opt_int(value: Option<u64>, what: &str) -> StoreResult<Option<i64>> {
    value.map(|v| int(v, what)).transpose()
}

pub(super) fn uint(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("stored {what} {value} is negative")))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode a record as JSON: {e}")))
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Backend(format!(
            "stored {what} cannot be read ({e}); was the database written by another \
             version of gatehouse?"
        ))
    })
}

/// The `document` column of a row, decoded.
pub(super) fn document<T: DeserializeOwned>(row: &AnyRow, what: &str) -> StoreResult<T> {
    let text: String = row.try_get("document").store()?;
    from_json(&text, what)
}

async fn write_audit(conn: &mut AnyConnection, audit: &Audit) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(int(audit.at, "audit time")?)
    .bind(audit.actor.as_str())
    .bind(audit.action.as_str())
    .bind(audit.target.as_str())
    .bind(to_json(&audit.detail)?)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Milliseconds since the Unix epoch, for the store's own bookkeeping.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `WHERE` text and limit of a newest-first page of a table keyed by `id`, given the
/// number of the first free placeholder; the caller binds `after` (when present), then
/// the limit.
pub(super) fn page_clause(after: Option<&str>, first_param: usize) -> String {
    match after {
        Some(_) => format!(
            "WHERE id < ${first_param} ORDER BY id DESC LIMIT ${}",
            first_param + 1
        ),
        None => format!("ORDER BY id DESC LIMIT ${first_param}"),
    }
}

/// NotFound(`<what> <id>`) unless `sql`, given `id`, returns a row.
pub(super) async fn require(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: &str,
    what: &str,
) -> StoreResult<()> {
    let found = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .store()?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("{what} {id}"))),
    }
}

/// NotFound(`<what> <id>`) when a statement changed no row.
pub(super) fn changed(rows: u64, what: &str, id: &str) -> StoreResult<()> {
    match rows {
        0 => Err(StoreError::NotFound(format!("{what} {id}"))),
        _ => Ok(()),
    }
}

/// The decoded `document` of the row of `table` with this `id`; NotFound(`<what> <id>`)
/// when there is none.
pub(super) async fn get_document<T: DeserializeOwned>(
    db: &Db,
    table: &'static str,
    id: &str,
    what: &str,
) -> StoreResult<T> {
    let sql = format!("SELECT document FROM {table} WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.reader)
        .await
        .store()?
        .ok_or_else(|| StoreError::NotFound(format!("{what} {id}")))?;
    document(&row, what)
}

/// A newest-first page of the decoded documents of `table`.
pub(super) async fn list_documents<T: DeserializeOwned>(
    db: &Db,
    table: &'static str,
    page: &Page,
    what: &str,
) -> StoreResult<Vec<T>> {
    let sql = format!(
        "SELECT document FROM {table} {}",
        page_clause(page.after.as_deref(), 1)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(after) = &page.after {
        query = query.bind(after.clone());
    }
    query
        .bind(i64::from(page.limit))
        .fetch_all(&db.reader)
        .await
        .store()?
        .iter()
        .map(|row| document(row, what))
        .collect()
}
