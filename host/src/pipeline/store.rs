//! What the domain needs from persistence. `crate::store` implements it for SQLite and
//! PostgreSQL.
//!
//! Every mutation takes the [`Audit`] line that describes it, and writes both in one
//! transaction, so the audit log never misses a change.
//!
//! Timeline events are numbered by the store: every write that adds events to a deployment
//! first updates the deployment's row (checking its revision), which serialises writers,
//! then gives the events the next `seq` numbers in order. The `seq` passed in is ignored.

use async_trait::async_trait;

use super::console::*;
use super::events::LifecycleEvent;
use super::gate::Timestamp;
use super::model::*;
use super::retention::{RetentionJob, SweepBatch, SweepQuery};
use super::webhooks::{AfterAttempt, DeliveryAttempt, DeliveryRecord, DueDelivery, WebhookRecord};

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name taken, or a write that lost a race with another writer.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What `save_deployment_if_target_free` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetClaim {
    /// The deployment holds the target now, at this revision.
    Taken(u64),
    /// Another deployment holds the target; what was saved instead, at this revision.
    Busy(Option<u64>),
}

/// What a deployment handed its target becomes, and the events that says so; `None`
/// leaves it as it is.
pub type HandOver<'a> =
    &'a (dyn Fn(&DeploymentRecord) -> Option<(DeploymentRecord, Vec<TimelineEvent>)> + Send + Sync);

/// The audit line a mutation writes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The user id, or `system`.
    pub actor: String,
    /// Such as `pipeline.create`.
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

/// A page of a list, newest first. `after` is the id of the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<Id>,
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            after: None,
            limit: 50,
        }
    }
}

/// Filters of `GET /deployments`; every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub pipeline_id: Option<Id>,
    pub stage_id: Option<Id>,
    pub statuses: Vec<DeploymentStatus>,
    pub solution_name: Option<String>,
    pub version: Option<String>,
    pub requested_by: Option<Id>,
    pub target_environment_id: Option<Id>,
    pub requested_after: Option<Timestamp>,
    pub requested_before: Option<Timestamp>,
}

/// How an environment update treats the stored credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChange {
    Keep,
    Set(String),
    Clear,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Users, groups and tokens.
    async fn insert_user(&self, user: &User, audit: &Audit) -> StoreResult<()>;
    /// The user with the names of their groups.
    async fn get_user(&self, id: &str) -> StoreResult<User>;
    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// `sha256` is the hex SHA-256 of the bearer token; the token itself is never stored.
    async fn insert_token(
        &self,
        user_id: &str,
        sha256: &str,
        label: &str,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn user_by_token(&self, sha256: &str) -> StoreResult<Option<User>>;
    async fn insert_group(&self, group: &Group, audit: &Audit) -> StoreResult<()>;
    async fn get_group(&self, id: &str) -> StoreResult<Group>;
    async fn list_groups(&self, page: &Page) -> StoreResult<Vec<Group>>;
    /// Replaces the group's members with these user ids.
    async fn set_group_members(
        &self,
        group_id: &str,
        members: &[Id],
        audit: &Audit,
    ) -> StoreResult<()>;

    // Environments.
    async fn insert_environment(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn update_environment(
        &self,
        env: &EnvironmentRecord,
        credential: CredentialChange,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn get_environment(&self, id: &str) -> StoreResult<EnvironmentRecord>;
    async fn list_environments(&self, page: &Page) -> StoreResult<Vec<EnvironmentRecord>>;
    async fn delete_environment(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    async fn environment_credential(&self, id: &str) -> StoreResult<Option<String>>;
    /// The environments with these ids, each with its credential, in one read; ids that
    /// name no environment are left out.
    async fn environments_with_credentials(
        &self,
        ids: &[Id],
    ) -> StoreResult<Vec<(EnvironmentRecord, Option<String>)>>;

    // Pipelines, stored whole with their stages, validators and shares.
    async fn insert_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()>;
    async fn update_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()>;
    async fn get_pipeline(&self, id: &str) -> StoreResult<PipelineRecord>;
    async fn list_pipelines(&self, page: &Page) -> StoreResult<Vec<PipelineRecord>>;
    async fn delete_pipeline(&self, id: &str, audit: &Audit) -> StoreResult<()>;

    // Plugins and their components, stored once per SHA-256.
    async fn insert_plugin(
        &self,
        plugin: &PluginRecord,
        component: &[u8],
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn update_plugin(&self, plugin: &PluginRecord, audit: &Audit) -> StoreResult<()>;
    async fn get_plugin(&self, id: &str) -> StoreResult<PluginRecord>;
    async fn list_plugins(&self, page: &Page) -> StoreResult<Vec<PluginRecord>>;
    async fn delete_plugin(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    async fn blob(&self, sha256: &str) -> StoreResult<Vec<u8>>;

    // Deployments.
    /// Conflict when the requester already used the idempotency key.
    async fn insert_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn deployment_by_idempotency_key(
        &self,
        requested_by: &str,
        key: &str,
    ) -> StoreResult<Option<DeploymentRecord>>;
    async fn get_deployment(&self, id: &str) -> StoreResult<DeploymentRecord>;
    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: &Page,
    ) -> StoreResult<Vec<DeploymentRecord>>;
    /// Writes the deployment if its stored revision is still `deployment.revision`, with
    /// the timeline events it adds, and returns the new revision. Conflict otherwise.
    async fn save_deployment(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: Option<&Audit>,
    ) -> StoreResult<u64>;
    /// Like `save_deployment` for a deployment moving to `deploying`, but only while no
    /// other deployment of the same target is deploying. When the target is busy, saves
    /// `otherwise` instead, if given, in the same transaction.
    async fn save_deployment_if_target_free(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        otherwise: Option<(&DeploymentRecord, &[TimelineEvent])>,
    ) -> StoreResult<TargetClaim>;
    /// Leases up to `limit` unfinished deployments whose `next_run_at` has come and whose
    /// lease has lapsed, oldest first, to `owner` until `lease_until`.
    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>>;
    /// Leases the oldest deployment that has finished its pre-deployment step and waits
    /// for `target_id` to be free, unless another worker holds it.
    async fn claim_waiting_for_target(
        &self,
        target_id: &str,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<DeploymentRecord>>;
    /// Saves a deployment that has just left its target (revision-checked like
    /// `save_deployment`) and, in the same transaction, leases the oldest deployment
    /// waiting for that target, as `claim_waiting_for_target` does, and saves what
    /// `start` makes of it: the target passes on in one write. When `start` answers
    /// `None`, the waiting deployment is only leased. Answers the saved deployment's new
    /// revision and the next one as stored.
    async fn save_deployment_and_hand_over(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
        start: HandOver<'_>,
    ) -> StoreResult<(u64, Option<DeploymentRecord>)>;
    async fn release_lease(&self, deployment_id: &str, owner: &str) -> StoreResult<()>;
    /// Stores an artifact, or answers the one already stored for that solution version.
    async fn insert_artifact(&self, artifact: &ArtifactRecord) -> StoreResult<ArtifactRecord>;
    async fn get_artifact(
        &self,
        solution: &str,
        version: &str,
    ) -> StoreResult<Option<ArtifactRecord>>;
    /// Newest first, optionally of one solution.
    async fn list_artifacts(
        &self,
        solution: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<ArtifactRecord>>;
    /// This host's id, made at its first start.
    async fn host_id(&self) -> StoreResult<String>;
    /// Drops every lease; for a backend only one process may serve.
    async fn release_all_leases(&self) -> StoreResult<()>;
    /// Versions of the solution that succeeded in the stage, each once, lowest first.
    async fn succeeded_versions(
        &self,
        stage_id: &str,
        solution_name: &str,
    ) -> StoreResult<Vec<String>>;
    /// Records a vote together with the deployment it changes (revision-checked like
    /// `save_deployment`) and its timeline events, in one transaction; returns the new
    /// revision.
    async fn insert_vote(
        &self,
        vote: &VoteRecord,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        audit: &Audit,
    ) -> StoreResult<u64>;
    /// Oldest first.
    async fn votes(&self, deployment_id: &str) -> StoreResult<Vec<VoteRecord>>;
    /// In order.
    async fn timeline(&self, deployment_id: &str) -> StoreResult<Vec<TimelineEvent>>;

    // The web console and the metrics summary: sessions, and aggregate reads.
    /// Stores a new session, with its audit line, and drops every expired one.
    async fn insert_web_session(&self, session: &WebSession, audit: &Audit) -> StoreResult<()>;
    /// The session with this id hash, unless it has expired by `now`.
    async fn web_session(&self, sha256: &str, now: Timestamp) -> StoreResult<Option<WebSession>>;
    async fn delete_web_session(&self, sha256: &str, audit: &Audit) -> StoreResult<()>;
    /// Deployments per day and status and median lead times per stage, of the
    /// deployments requested since `since`, plus those waiting for approval now.
    async fn deployment_stats(
        &self,
        scope: &DeploymentScope,
        since: Timestamp,
    ) -> StoreResult<DeploymentStats>;
    /// The newest succeeded deployment of each group the query names.
    async fn installations(&self, query: &InstallationQuery) -> StoreResult<Vec<Installation>>;
    /// Solutions by name, `limit` after `after`.
    async fn solutions(
        &self,
        scope: &DeploymentScope,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SolutionSummary>>;
    /// Up to `per_solution` versions of each solution, newest first, older than `before`.
    async fn solution_versions(
        &self,
        scope: &DeploymentScope,
        solutions: &[String],
        before: Option<&VersionCursor>,
        per_solution: u32,
    ) -> StoreResult<Vec<SolutionVersionSeen>>;
    /// The artifacts of these solutions' versions (any of the solutions with any of the
    /// versions; the caller picks the pairs it wants).
    async fn artifacts_of(
        &self,
        solutions: &[String],
        versions: &[String],
    ) -> StoreResult<Vec<ArtifactRecord>>;

    // Audit.
    async fn list_audit(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Records an action that changes nothing stored, such as a sign-in or a validation.
    async fn append_audit(&self, audit: &Audit) -> StoreResult<()>;

    // Lifecycle events and webhooks (see `super::events`, `super::webhooks`).
    /// Gives the next positions to up to `limit` committed lifecycle events that have
    /// none, in timeline order per deployment, and queues a delivery of each to every
    /// webhook it matches, in one transaction that only one caller at a time runs.
    /// Returns how many events it numbered.
    async fn sequence_events(&self, limit: u32) -> StoreResult<u32>;
    /// Up to `limit` lifecycle events after position `after`, in order.
    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<LifecycleEvent>>;
    /// Stores a webhook with its signing secret.
    async fn insert_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        audit: &Audit,
    ) -> StoreResult<()>;
    /// Replaces a webhook; a new secret when `secret` is given.
    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord>;
    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<WebhookRecord>>;
    /// Deletes the webhook and its deliveries.
    async fn delete_webhook(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    /// The webhook's deliveries, newest first, each with its attempts.
    async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Makes a delivery due now, with a new retry window that ends at `give_up_at`.
    async fn redeliver(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
        give_up_at: Timestamp,
        audit: &Audit,
    ) -> StoreResult<DeliveryRecord>;
    /// Claims up to `limit` deliveries due at `now` for one attempt each: the attempt is
    /// counted, and the delivery is not due again before `lease_until`, so one whose
    /// sender dies is tried again then.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records an attempt and what it leaves the delivery as, unless the delivery has
    /// been claimed again since (its lease lapsed); then only the attempt is kept.
    async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: &DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()>;

    // Retention (see `super::retention`). The audit log is never deleted by these.
    async fn insert_retention_job(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()>;
    async fn get_retention_job(&self, id: &str) -> StoreResult<RetentionJob>;
    /// Newest first.
    async fn list_retention_jobs(&self, page: &Page) -> StoreResult<Vec<RetentionJob>>;
    async fn delete_retention_job(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    /// Leases the job that is due first at `now`, unless another runner holds it.
    async fn claim_retention_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<RetentionJob>>;
    /// Stores the job after a run (its last run and next time), drops its lease, and
    /// writes the run's audit line.
    async fn finish_retention_run(&self, job: &RetentionJob, audit: &Audit) -> StoreResult<()>;
    /// The ids of the newest succeeded deployment per target and solution.
    async fn installed_deployments(&self) -> StoreResult<Vec<Id>>;
    /// One batch of a sweep over finished deployments, in one short transaction: deletes
    /// them with their timelines and votes, or only counts them.
    async fn sweep_deployments(&self, query: &SweepQuery) -> StoreResult<SweepBatch>;
    /// Every artifact, and the (solution, version) pairs installed in a target or carried
    /// by an unfinished deployment.
    async fn artifact_retention_facts(
        &self,
    ) -> StoreResult<(Vec<ArtifactRecord>, Vec<(String, String)>)>;
    /// Deletes artifacts; answers the package hashes no remaining artifact refers to.
    async fn delete_artifacts(&self, ids: &[Id]) -> StoreResult<Vec<String>>;
    /// The audit log's own retention, an explicit admin call: deletes the lines older
    /// than `before`, and writes `audit` (with the count) in the same transaction.
    async fn purge_audit(&self, before: Timestamp, audit: &Audit) -> StoreResult<u64>;
}

/// Items fetched per store call when scanning a whole collection.
const SCAN_BATCH: u32 = 500;

/// Every item of a collection, read page by page, for checks such as "is this plugin
/// bound anywhere" and for the console's full lists.
pub async fn collect_all<T, Fut>(
    fetch: impl Fn(Page) -> Fut,
    id: impl Fn(&T) -> String,
) -> StoreResult<Vec<T>>
where
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let batch = fetch(Page {
            after: cursor.clone(),
            limit: SCAN_BATCH,
        })
        .await?;
        let exhausted = batch.len() < SCAN_BATCH as usize;
        cursor = batch.last().map(&id);
        all.extend(batch);
        if exhausted || cursor.is_none() {
            return Ok(all);
        }
    }
}
