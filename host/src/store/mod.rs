//! Persistence: [`SqlStore`] implements the domain's storage traits on SQLite, the
//! embedded default, and on PostgreSQL, which several `serve` replicas can share. Each
//! `crate::pipeline::store::<area>` trait is implemented in the file of the same name here.
//!
//! One body of SQL serves both, through sqlx's runtime `Any` driver: statements use `$1`
//! placeholders, which both accept, and ask [`Backend`] where the dialects differ. Each
//! backend has its own numbered migrations under `migrations/`, applied by
//! [`SqlStore::connect`].

mod accounts;
mod artifacts;
mod audit;
mod binding_ids;
mod catalog;
mod db;
mod deployments;
mod events;
mod migrate;
mod reports;
mod retention;
mod sessions;
#[cfg(test)]
mod tests;
mod webhooks;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::pipeline::store::{StoreError, StoreResult};
use db::Db;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Set on every SQLite connection. WAL lets readers work beside the one writer, NORMAL
/// sync is durable across process crashes in WAL mode, and the busy timeout covers
/// another process (such as a second `gatehouse` command) holding the lock briefly.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

/// SQLite readers. Reads never wait for the writer in WAL mode, and the machines we run
/// on have few cores.
const SQLITE_READERS: u32 = 4;

/// PostgreSQL connections per replica; the server's default `max_connections` is 100.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The [`crate::pipeline::store::Store`] on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    /// Opens `sqlite://<path>` (created when missing, with its folder) or
    /// `postgres://…`, and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Backend(format!(
                "database URLs with scheme {scheme:?} are not supported: use \
                 sqlite://<path> or postgres://<user>@<host>/<database>"
            )));
        };
        let db = match backend {
            Backend::Sqlite => open_sqlite(url).await?,
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(|e| {
                        StoreError::Backend(format!("cannot connect to PostgreSQL: {e}"))
                    })?;
                Db {
                    backend,
                    writer: pool.clone(),
                    reader: pool,
                    queue: Default::default(),
                }
            }
        };
        migrate::migrate(&db.writer, backend).await?;
        tracing::info!(?backend, "database ready");
        Ok(SqlStore { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// Waits for calls in flight, then closes every connection.
    pub async fn close(&self) {
        self.db.writer.close().await;
        self.db.reader.close().await;
    }
}

async fn open_sqlite(url: &str) -> StoreResult<Db> {
    let (location, query) = url.split_once('?').unwrap_or((url, ""));
    let path = location
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Err(StoreError::Backend(
            "an in-memory SQLite database cannot be shared by the store's connections: use \
             sqlite://<path to a file>"
                .into(),
        ));
    }
    if let Some(folder) = std::path::Path::new(path).parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create the folder {} for the database: {e}",
                folder.display()
            ))
        })?;
    }
    let url = if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{location}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    let open = |connections: u32| {
        AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            })
            .connect(&url)
    };
    let cannot_open = |e: sqlx::Error| {
        StoreError::Backend(format!("cannot open the SQLite database at {path}: {e}"))
    };
    let writer: AnyPool = open(1).await.map_err(cannot_open)?;
    let reader: AnyPool = open(SQLITE_READERS).await.map_err(cannot_open)?;
    Ok(Db {
        backend: Backend::Sqlite,
        writer,
        reader,
        queue: Default::default(),
    })
}
