//! Aggregate reads for the web console and the metrics summary.

use async_trait::async_trait;

use crate::pipeline::console::{
    DeploymentScope, DeploymentStats, Installation, InstallationQuery, SolutionSummary,
    SolutionVersionSeen, VersionCursor,
};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::model::ArtifactRecord;

use super::StoreResult;

#[async_trait]
pub trait ReportStore: Send + Sync {
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
}
