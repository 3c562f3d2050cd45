//! Retention jobs and the sweeps they run (see `crate::pipeline::retention`). Only the
//! explicit `purge_audit` deletes audit lines.

use async_trait::async_trait;

use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::{ArtifactRecord, Id};
use crate::pipeline::retention::{RetentionJob, SweepBatch, SweepQuery};

use super::{Audit, Page, StoreResult};

#[async_trait]
pub trait RetentionStore: Send + Sync {
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
