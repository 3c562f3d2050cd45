//! Deployments, their timelines and votes, and the leases workers hold on them.
//!
//! Timeline events are numbered by the store: every write that adds events to a deployment
//! first updates the deployment's row (checking its revision), which serialises writers,
//! then gives the events the next `seq` numbers in order. The `seq` passed in is ignored.

use async_trait::async_trait;

use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{DeploymentRecord, TimelineEvent, VoteRecord};

use super::{Audit, DeploymentFilter, HandOver, Page, StoreResult, TargetClaim};

#[async_trait]
pub trait DeploymentStore: Send + Sync {
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
}
