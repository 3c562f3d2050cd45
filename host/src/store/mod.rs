//! Persistence: [`SqlStore`] implements the domain's [`Store`] on SQLite, the embedded
//! default, and on PostgreSQL, which several `serve` replicas can share.
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

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::pipeline::Timestamp;
use crate::pipeline::console::*;
use crate::pipeline::events::LifecycleEvent;
use crate::pipeline::model::*;
use crate::pipeline::retention::{RetentionJob, SweepBatch, SweepQuery};
use crate::pipeline::store::*;
use crate::pipeline::webhooks::{
    AfterAttempt, DeliveryAttempt, DeliveryRecord, DueDelivery, WebhookRecord,
};
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

/// The [`Store`] on SQLite or PostgreSQL.
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

#[async_trait]
impl Store for SqlStore {
    async fn insert_user(&self, user: &User, audit: &Audit) -> StoreResult<()> {
        accounts::insert_user(&self.db, user, audit).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<User> {
        accounts::get_user(&self.db, id).await
    }

    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>> {
        accounts::list_users(&self.db, page).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        accounts::count_users(&self.db).await
    }

    async fn insert_token(
        &self,
        user_id: &str,
        sha256: &str,
        label: &str,
        audit: &Audit,
    ) -> StoreResult<()> {
        accounts::insert_token(&self.db, user_id, sha256, label, audit).await
    }

    async fn user_by_token(&self, sha256: &str) -> StoreResult<Option<User>> {
        accounts::user_by_token(&self.db, sha256).await
    }

    async fn insert_group(&self, group: &Group, audit: &Audit) -> StoreResult<()> {
        accounts::insert_group(&self.db, group, audit).await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Group> {
        accounts::get_group(&self.db, id).await
    }

    async fn list_groups(&self, page: &Page) -> StoreResult<Vec<Group>> {
        accounts::list_groups(&self.db, page).await
    }

    async fn set_group_members(
        &self,
        group_id: &str,
        members: &[Id],
        audit: &Audit,
    ) -> StoreResult<()> {
        accounts::set_group_members(&self.db, group_id, members, audit).await
    }

    async fn insert_environment(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()> {
        catalog::insert_environment(&self.db, env, credential, audit).await
    }

    async fn update_environment(
        &self,
        env: &EnvironmentRecord,
        credential: CredentialChange,
        audit: &Audit,
    ) -> StoreResult<()> {
        catalog::update_environment(&self.db, env, credential, audit).await
    }

    async fn get_environment(&self, id: &str) -> StoreResult<EnvironmentRecord> {
        catalog::get_environment(&self.db, id).await
    }

    async fn list_environments(&self, page: &Page) -> StoreResult<Vec<EnvironmentRecord>> {
        catalog::list_environments(&self.db, page).await
    }

    async fn delete_environment(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        catalog::delete_environment(&self.db, id, audit).await
    }

    async fn environment_credential(&self, id: &str) -> StoreResult<Option<String>> {
        catalog::environment_credential(&self.db, id).await
    }

    async fn environments_with_credentials(
        &self,
        ids: &[Id],
    ) -> StoreResult<Vec<(EnvironmentRecord, Option<String>)>> {
        catalog::environments_with_credentials(&self.db, ids).await
    }

    async fn insert_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()> {
        catalog::insert_pipeline(&self.db, pipeline, audit).await
    }

    async fn update_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()> {
        catalog::update_pipeline(&self.db, pipeline, audit).await
    }

    async fn get_pipeline(&self, id: &str) -> StoreResult<PipelineRecord> {
        catalog::get_pipeline(&self.db, id).await
    }

    async fn list_pipelines(&self, page: &Page) -> StoreResult<Vec<PipelineRecord>> {
        catalog::list_pipelines(&self.db, page).await
    }

    async fn delete_pipeline(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        catalog::delete_pipeline(&self.db, id, audit).await
    }

    async fn insert_plugin(
        &self,
        plugin: &PluginRecord,
        component: &[u8],
        audit: &Audit,
    ) -> StoreResult<()> {
        catalog::insert_plugin(&self.db, plugin, component, audit).await
    }

    async fn update_plugin(&self, plugin: &PluginRecord, audit: &Audit) -> StoreResult<()> {
        catalog::update_plugin(&self.db, plugin, audit).await
    }

    async fn get_plugin(&self, id: &str) -> StoreResult<PluginRecord> {
        catalog::get_plugin(&self.db, id).await
    }

    async fn list_plugins(&self, page: &Page) -> StoreResult<Vec<PluginRecord>> {
        catalog::list_plugins(&self.db, page).await
    }

    async fn delete_plugin(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        catalog::delete_plugin(&self.db, id, audit).await
    }

    async fn blob(&self, sha256: &str) -> StoreResult<Vec<u8>> {
        catalog::blob(&self.db, sha256).await
    }

    async fn insert_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<()> {
        deployments::insert_deployment(&self.db, deployment, events, audit).await
    }

    async fn deployment_by_idempotency_key(
        &self,
        requested_by: &str,
        key: &str,
    ) -> StoreResult<Option<DeploymentRecord>> {
        deployments::deployment_by_idempotency_key(&self.db, requested_by, key).await
    }

    async fn get_deployment(&self, id: &str) -> StoreResult<DeploymentRecord> {
        deployments::get_deployment(&self.db, id).await
    }

    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: &Page,
    ) -> StoreResult<Vec<DeploymentRecord>> {
        deployments::list_deployments(&self.db, filter, page).await
    }

    async fn save_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: Option<&Audit>,
    ) -> StoreResult<u64> {
        deployments::save_deployment(&self.db, deployment, events, audit).await
    }

    async fn save_deployment_if_target_free(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        otherwise: Option<(&DeploymentRecord, &[TimelineEvent])>,
    ) -> StoreResult<TargetClaim> {
        deployments::save_deployment_if_target_free(&self.db, deployment, events, otherwise).await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>> {
        deployments::claim_due(&self.db, now, owner, lease_until, limit).await
    }

    async fn claim_waiting_for_target(
        &self,
        target_id: &str,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<DeploymentRecord>> {
        deployments::claim_waiting_for_target(&self.db, target_id, owner, lease_until, now).await
    }

    async fn insert_artifact(&self, artifact: &ArtifactRecord) -> StoreResult<ArtifactRecord> {
        artifacts::insert_artifact(&self.db, artifact).await
    }

    async fn get_artifact(
        &self,
        solution: &str,
        version: &str,
    ) -> StoreResult<Option<ArtifactRecord>> {
        artifacts::get_artifact(&self.db, solution, version).await
    }

    async fn list_artifacts(
        &self,
        solution: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<ArtifactRecord>> {
        artifacts::list_artifacts(&self.db, solution, page).await
    }

    async fn host_id(&self) -> StoreResult<String> {
        artifacts::host_id(&self.db).await
    }

    async fn save_deployment_and_hand_over(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
        start: HandOver<'_>,
    ) -> StoreResult<(u64, Option<DeploymentRecord>)> {
        deployments::save_deployment_and_hand_over(
            &self.db,
            deployment,
            events,
            (owner, lease_until, now),
            start,
        )
        .await
    }

    async fn release_lease(&self, deployment_id: &str, owner: &str) -> StoreResult<()> {
        deployments::release_lease(&self.db, deployment_id, owner).await
    }

    async fn release_all_leases(&self) -> StoreResult<()> {
        deployments::release_all_leases(&self.db).await
    }

    async fn succeeded_versions(
        &self,
        stage_id: &str,
        solution_name: &str,
    ) -> StoreResult<Vec<String>> {
        deployments::succeeded_versions(&self.db, stage_id, solution_name).await
    }

    async fn insert_vote(
        &self,
        vote: &VoteRecord,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<u64> {
        deployments::insert_vote(&self.db, vote, deployment, events, audit).await
    }

    async fn votes(&self, deployment_id: &str) -> StoreResult<Vec<VoteRecord>> {
        deployments::votes(&self.db, deployment_id).await
    }

    async fn timeline(&self, deployment_id: &str) -> StoreResult<Vec<TimelineEvent>> {
        deployments::timeline(&self.db, deployment_id).await
    }

    async fn insert_web_session(&self, session: &WebSession, audit: &Audit) -> StoreResult<()> {
        sessions::insert_web_session(&self.db, session, audit).await
    }

    async fn web_session(&self, sha256: &str, now: Timestamp) -> StoreResult<Option<WebSession>> {
        sessions::web_session(&self.db, sha256, now).await
    }

    async fn delete_web_session(&self, sha256: &str, audit: &Audit) -> StoreResult<()> {
        sessions::delete_web_session(&self.db, sha256, audit).await
    }

    async fn deployment_stats(
        &self,
        scope: &DeploymentScope,
        since: Timestamp,
    ) -> StoreResult<DeploymentStats> {
        reports::deployment_stats(&self.db, scope, since).await
    }

    async fn installations(&self, query: &InstallationQuery) -> StoreResult<Vec<Installation>> {
        reports::installations(&self.db, query).await
    }

    async fn solutions(
        &self,
        scope: &DeploymentScope,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SolutionSummary>> {
        reports::solutions(&self.db, scope, after, limit).await
    }

    async fn solution_versions(
        &self,
        scope: &DeploymentScope,
        solutions: &[String],
        before: Option<&VersionCursor>,
        per_solution: u32,
    ) -> StoreResult<Vec<SolutionVersionSeen>> {
        reports::solution_versions(&self.db, scope, solutions, before, per_solution).await
    }

    async fn artifacts_of(
        &self,
        solutions: &[String],
        versions: &[String],
    ) -> StoreResult<Vec<ArtifactRecord>> {
        reports::artifacts_of(&self.db, solutions, versions).await
    }

    async fn list_audit(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        audit::list_audit(&self.db, after, limit).await
    }

    async fn append_audit(&self, audit: &Audit) -> StoreResult<()> {
        audit::append_audit(&self.db, audit).await
    }

    async fn sequence_events(&self, limit: u32) -> StoreResult<u32> {
        events::sequence_events(&self.db, limit).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<LifecycleEvent>> {
        events::events_after(&self.db, after, limit).await
    }

    async fn insert_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        audit: &Audit,
    ) -> StoreResult<()> {
        webhooks::insert_webhook(&self.db, webhook, secret, audit).await
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()> {
        webhooks::update_webhook(&self.db, webhook, secret, audit).await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        webhooks::get_webhook(&self.db, id).await
    }

    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<WebhookRecord>> {
        webhooks::list_webhooks(&self.db, page).await
    }

    async fn delete_webhook(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        webhooks::delete_webhook(&self.db, id, audit).await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        webhooks::list_deliveries(&self.db, webhook_id, page).await
    }

    async fn redeliver(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
        give_up_at: Timestamp,
        audit: &Audit,
    ) -> StoreResult<DeliveryRecord> {
        webhooks::redeliver(&self.db, webhook_id, delivery_id, now, give_up_at, audit).await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        webhooks::claim_deliveries(&self.db, now, lease_until, limit).await
    }

    async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: &DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()> {
        webhooks::record_attempt(&self.db, delivery_id, attempt, after).await
    }

    async fn insert_retention_job(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()> {
        retention::insert_retention_job(&self.db, job, audit).await
    }

    async fn get_retention_job(&self, id: &str) -> StoreResult<RetentionJob> {
        retention::get_retention_job(&self.db, id).await
    }

    async fn list_retention_jobs(&self, page: &Page) -> StoreResult<Vec<RetentionJob>> {
        retention::list_retention_jobs(&self.db, page).await
    }

    async fn delete_retention_job(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        retention::delete_retention_job(&self.db, id, audit).await
    }

    async fn claim_retention_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<RetentionJob>> {
        retention::claim_retention_job(&self.db, now, lease_until).await
    }

    async fn finish_retention_run(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()> {
        retention::finish_retention_run(&self.db, job, audit).await
    }

    async fn installed_deployments(&self) -> StoreResult<Vec<Id>> {
        retention::installed_deployments(&self.db).await
    }

    async fn sweep_deployments(&self, query: &SweepQuery) -> StoreResult<SweepBatch> {
        retention::sweep_deployments(&self.db, query).await
    }

    async fn artifact_retention_facts(
        &self,
    ) -> StoreResult<(Vec<ArtifactRecord>, Vec<(String, String)>)> {
        retention::artifact_retention_facts(&self.db).await
    }

    async fn delete_artifacts(&self, ids: &[Id]) -> StoreResult<Vec<String>> {
        retention::delete_artifacts(&self.db, ids).await
    }

    async fn purge_audit(&self, before: Timestamp, audit: &Audit) -> StoreResult<u64> {
        retention::purge_audit(&self.db, before, audit).await
    }
}
