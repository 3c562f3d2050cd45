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

use super::gate::Timestamp;
use super::model::*;

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
    /// other deployment of the same target is deploying. Ok(None) when the target is busy.
    async fn save_deployment_if_target_free(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
    ) -> StoreResult<Option<u64>>;
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
    /// waiting for that target, as `claim_waiting_for_target` does.
    async fn save_deployment_and_claim_waiting(
        &self,
        deployment: &DeploymentRecord,
        events: &[TimelineEvent],
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
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

    // Audit.
    async fn list_audit(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Records an action that changes nothing stored, such as a sign-in or a validation.
    async fn append_audit(&self, audit: &Audit) -> StoreResult<()>;
}
