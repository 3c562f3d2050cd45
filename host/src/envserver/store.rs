//! The environment's own SQLite database, `<data_dir>/environment.db` (WAL), and its
//! versioned migrations.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

/// One schema step; a released migration never changes.
struct Migration {
    version: i64,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/0002_link_secret.sql"),
    },
];

pub(super) type Tx = Transaction<'static, Sqlite>;

#[derive(Clone)]
pub(super) struct Store {
    pool: SqlitePool,
}

/// The `settings` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub environment_id: String,
    pub name: String,
    pub kind: String,
    pub managed: bool,
    pub linked_host: Option<String>,
    /// The SHA-256 of the secret the last link issued; imports must present the secret.
    pub link_secret_sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct SolutionRow {
    pub unique_name: String,
    pub display_name: String,
    pub version: String,
    pub managed: bool,
    pub publisher_prefix: String,
    pub manifest: String,
    pub package_sha256: String,
    pub package_size: i64,
    pub installed_at: String,
    pub operation_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct ExportRow {
    pub unique_name: String,
    pub version: String,
    pub manifest: String,
    pub managed_sha256: String,
    pub managed_size: i64,
    pub unmanaged_sha256: String,
    pub unmanaged_size: i64,
}

#[derive(Debug, Clone)]
pub(super) struct ImportRow {
    pub operation_id: String,
    pub package_sha256: String,
    pub settings: String,
    pub allow_downgrade: bool,
    pub status: String,
    pub error: Option<String>,
    pub findings: Option<String>,
    pub unique_name: String,
    pub version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct ConnectionRow {
    pub name: String,
    pub connector: String,
    pub created_at: String,
}

/// Now, as the RFC 3339 text every table stores.
pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating) the database and brings its schema up to date.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("could not open the database {}", path.display()))?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    INTEGER PRIMARY KEY,
                applied_at TEXT NOT NULL
            )",
        )
        .execute(&mut *tx)
        .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await?;
        let current = current.unwrap_or(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > latest {
            bail!(
                "the environment database is at schema version {current}, but this gatehouse \
                 knows versions up to {latest}: run the gatehouse that last used this data dir, \
                 or a newer one"
            );
        }
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")
                .bind(migration.version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction that holds the write lock from its start (`BEGIN IMMEDIATE`),
    /// so what it reads stays true until it commits.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    // --- settings and tokens ---

    pub async fn settings(&self) -> sqlx::Result<Option<Settings>> {
        settings_in(&self.pool).await
    }

    /// Writes the one settings row, inserting it at first start.
    pub async fn save_settings(&self, s: &Settings) -> sqlx::Result<()> {
        save_settings_in(&self.pool, s).await
    }

    /// A connection for reads that must agree with each other.
    pub async fn acquire(&self) -> sqlx::Result<sqlx::pool::PoolConnection<Sqlite>> {
        self.pool.acquire().await
    }

    pub async fn token_hashes(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT token_sha256 FROM tokens")
            .fetch_all(&self.pool)
            .await
    }

    /// Makes `sha256` the only token that opens the API.
    pub async fn replace_tokens(&self, sha256: &str) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM tokens").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO tokens (token_sha256, created_at) VALUES (?, ?)")
            .bind(sha256)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    // --- solutions ---

    pub async fn solutions(&self) -> sqlx::Result<Vec<SolutionRow>> {
        sqlx::query(
            "SELECT unique_name, display_name, version, managed, publisher_prefix, manifest,
                    package_sha256, package_size, installed_at, operation_id
             FROM solutions ORDER BY unique_name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(solution_row)
        .collect()
    }

    pub async fn solution(&self, name: &str) -> sqlx::Result<Option<SolutionRow>> {
        solution_in(&self.pool, name).await
    }

    // --- exports ---

    pub async fn export(&self, name: &str, version: &str) -> sqlx::Result<Option<ExportRow>> {
        export_in(&self.pool, name, version).await
    }

    // --- imports ---

    pub async fn import(&self, operation_id: &str) -> sqlx::Result<Option<ImportRow>> {
        sqlx::query(
            "SELECT operation_id, package_sha256, settings, allow_downgrade, status, error,
                    findings, unique_name, version, started_at, finished_at
             FROM imports WHERE operation_id = ?",
        )
        .bind(operation_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(import_row)
        .transpose()
    }

    /// The operations a restart interrupted, oldest first.
    pub async fn running_imports(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT operation_id FROM imports WHERE status = 'running' ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await
    }

    // --- connections ---

    pub async fn connections(&self) -> sqlx::Result<Vec<ConnectionRow>> {
        sqlx::query("SELECT name, connector, created_at FROM connections ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ConnectionRow {
                    name: row.try_get(0)?,
                    connector: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Registers a connection; `false` when the name is taken.
    pub async fn add_connection(&self, c: &ConnectionRow) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO connections (name, connector, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&c.name)
        .bind(&c.connector)
        .bind(&c.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

// --- statements that run inside a caller's transaction ---

pub(super) async fn settings_in<'e, E>(db: E) -> sqlx::Result<Option<Settings>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "SELECT environment_id, name, kind, managed, linked_host, link_secret_sha256
         FROM settings WHERE id = 1",
    )
    .fetch_optional(db)
    .await?
    .map(|row| {
        Ok(Settings {
            environment_id: row.try_get(0)?,
            name: row.try_get(1)?,
            kind: row.try_get(2)?,
            managed: row.try_get(3)?,
            linked_host: row.try_get(4)?,
            link_secret_sha256: row.try_get(5)?,
        })
    })
    .transpose()
}

pub(super) async fn save_settings_in<'e, E>(db: E, s: &Settings) -> sqlx::Result<()>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO settings (id, environment_id, name, kind, managed, linked_host,
                link_secret_sha256)
         VALUES (1, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET environment_id = excluded.environment_id,
            name = excluded.name, kind = excluded.kind, managed = excluded.managed,
            linked_host = excluded.linked_host,
            link_secret_sha256 = excluded.link_secret_sha256",
    )
    .bind(&s.environment_id)
    .bind(&s.name)
    .bind(&s.kind)
    .bind(s.managed)
    .bind(&s.linked_host)
    .bind(&s.link_secret_sha256)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn solution_in<'e, E>(db: E, name: &str) -> sqlx::Result<Option<SolutionRow>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "SELECT unique_name, display_name, version, managed, publisher_prefix, manifest,
                package_sha256, package_size, installed_at, operation_id
         FROM solutions WHERE unique_name = ?",
    )
    .bind(name)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(solution_row)
    .transpose()
}

/// Every solution's unique name and version.
pub(super) async fn installed_in(db: &mut SqliteConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT unique_name, version FROM solutions")
        .fetch_all(db)
        .await
}

/// Every connection's name and connector.
pub(super) async fn connections_in(
    db: &mut SqliteConnection,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT name, connector FROM connections")
        .fetch_all(db)
        .await
}

/// Inserts or replaces a solution.
pub(super) async fn put_solution(db: &mut SqliteConnection, s: &SolutionRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO solutions (unique_name, display_name, version, managed, publisher_prefix,
                                manifest, package_sha256, package_size, installed_at, operation_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (unique_name) DO UPDATE SET display_name = excluded.display_name,
            version = excluded.version, managed = excluded.managed,
            publisher_prefix = excluded.publisher_prefix, manifest = excluded.manifest,
            package_sha256 = excluded.package_sha256, package_size = excluded.package_size,
            installed_at = excluded.installed_at, operation_id = excluded.operation_id",
    )
    .bind(&s.unique_name)
    .bind(&s.display_name)
    .bind(&s.version)
    .bind(s.managed)
    .bind(&s.publisher_prefix)
    .bind(&s.manifest)
    .bind(&s.package_sha256)
    .bind(s.package_size)
    .bind(&s.installed_at)
    .bind(&s.operation_id)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn export_in<'e, E>(
    db: E,
    name: &str,
    version: &str,
) -> sqlx::Result<Option<ExportRow>>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "SELECT unique_name, version, manifest, managed_sha256, managed_size,
                unmanaged_sha256, unmanaged_size
         FROM exports WHERE unique_name = ? AND version = ?",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(db)
    .await?
    .map(|row| {
        Ok(ExportRow {
            unique_name: row.try_get(0)?,
            version: row.try_get(1)?,
            manifest: row.try_get(2)?,
            managed_sha256: row.try_get(3)?,
            managed_size: row.try_get(4)?,
            unmanaged_sha256: row.try_get(5)?,
            unmanaged_size: row.try_get(6)?,
        })
    })
    .transpose()
}

/// The versions of a solution exported so far.
pub(super) async fn export_versions_in(
    db: &mut SqliteConnection,
    name: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT version FROM exports WHERE unique_name = ?")
        .bind(name)
        .fetch_all(db)
        .await
}

pub(super) async fn insert_export(
    db: &mut SqliteConnection,
    e: &ExportRow,
    source_sha256: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO exports (unique_name, version, manifest, source_sha256, managed_sha256,
                              managed_size, unmanaged_sha256, unmanaged_size, exported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.unique_name)
    .bind(&e.version)
    .bind(&e.manifest)
    .bind(source_sha256)
    .bind(&e.managed_sha256)
    .bind(e.managed_size)
    .bind(&e.unmanaged_sha256)
    .bind(e.unmanaged_size)
    .bind(now())
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn import_in(
    db: &mut SqliteConnection,
    operation_id: &str,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query(
        "SELECT operation_id, package_sha256, settings, allow_downgrade, status, error,
                findings, unique_name, version, started_at, finished_at
         FROM imports WHERE operation_id = ?",
    )
    .bind(operation_id)
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(import_row)
    .transpose()
}

pub(super) async fn insert_import(db: &mut SqliteConnection, op: &ImportRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO imports (operation_id, package_sha256, settings, allow_downgrade, status,
                              error, findings, unique_name, version, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&op.operation_id)
    .bind(&op.package_sha256)
    .bind(&op.settings)
    .bind(op.allow_downgrade)
    .bind(&op.status)
    .bind(&op.error)
    .bind(&op.findings)
    .bind(&op.unique_name)
    .bind(&op.version)
    .bind(&op.started_at)
    .bind(&op.finished_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a running operation; `false` when it was not running (another worker ended it).
pub(super) async fn finish_import(
    db: &mut SqliteConnection,
    operation_id: &str,
    status: &str,
    error: Option<&str>,
    findings: Option<&str>,
    settings: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE imports SET status = ?, error = ?, findings = ?, settings = ?, finished_at = ?
         WHERE operation_id = ? AND status = 'running'",
    )
    .bind(status)
    .bind(error)
    .bind(findings)
    .bind(settings)
    .bind(now())
    .bind(operation_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn solution_row(row: &SqliteRow) -> sqlx::Result<SolutionRow> {
    Ok(SolutionRow {
        unique_name: row.try_get(0)?,
        display_name: row.try_get(1)?,
        version: row.try_get(2)?,
        managed: row.try_get(3)?,
        publisher_prefix: row.try_get(4)?,
        manifest: row.try_get(5)?,
        package_sha256: row.try_get(6)?,
        package_size: row.try_get(7)?,
        installed_at: row.try_get(8)?,
        operation_id: row.try_get(9)?,
    })
}

fn import_row(row: &SqliteRow) -> sqlx::Result<ImportRow> {
    Ok(ImportRow {
        operation_id: row.try_get(0)?,
        package_sha256: row.try_get(1)?,
        settings: row.try_get(2)?,
        allow_downgrade: row.try_get(3)?,
        status: row.try_get(4)?,
        error: row.try_get(5)?,
        findings: row.try_get(6)?,
        unique_name: row.try_get(7)?,
        version: row.try_get(8)?,
        started_at: row.try_get(9)?,
        finished_at: row.try_get(10)?,
    })
}
