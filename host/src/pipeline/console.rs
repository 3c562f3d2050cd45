//! What the web console keeps (sessions) and the aggregate reads it and
//! `GET /api/v1/metrics/summary` make of the deployments, so that no page loops over
//! deployments one by one.

use super::gate::Timestamp;
use super::model::{DeploymentStatus, Id, User};

/// A signed-in browser. The cookie holds a random id; the store keeps only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Hex SHA-256 of the cookie's session id.
    pub sha256: String,
    /// Hex SHA-256 of the bearer token it was signed in with; deleting the token ends it.
    pub token_sha256: String,
    pub user: User,
    /// Every form of the session carries it back; a POST without it changes nothing.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Which deployments a report counts: all (an admin's view) or those of these pipelines
/// (the ones shared with the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentScope {
    All,
    Pipelines(Vec<Id>),
}

impl DeploymentScope {
    /// True when the scope can hold no deployment, so the query can be skipped.
    pub fn is_empty(&self) -> bool {
        matches!(self, DeploymentScope::Pipelines(ids) if ids.is_empty())
    }
}

/// Deployments requested on one UTC day with one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub status: DeploymentStatus,
    pub count: u64,
}

/// The median time from request to success of one stage's deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLeadTime {
    pub stage_id: Id,
    pub median_ms: u64,
    /// How many succeeded deployments the median is taken over.
    pub samples: u64,
}

/// Counts over the deployments requested since a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentStats {
    pub per_day: Vec<DayCount>,
    pub lead_times: Vec<StageLeadTime>,
    /// Waiting for approval now, whenever requested.
    pub pending_approval: u64,
}

/// The newest succeeded deployment of each group [`InstallationQuery::per`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationGroup {
    /// What each stage last received, per solution; what a target has now is the newest
    /// of its stages'.
    StageSolution,
    /// Where each version went, per target environment.
    SolutionVersionTarget,
}

/// Which succeeded deployments [`crate::pipeline::store::ReportStore::installations`] reads.
/// Empty lists do not narrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationQuery {
    pub scope: DeploymentScope,
    pub stage_ids: Vec<Id>,
    pub solutions: Vec<String>,
    pub versions: Vec<String>,
    pub per: InstallationGroup,
}

/// A version a deployment installed in a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub deployment_id: Id,
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub target_environment_id: Id,
    pub solution_name: String,
    pub version: String,
    pub requested_by: Id,
    pub finished_at: Timestamp,
}

/// A solution the scope's deployments have carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolutionSummary {
    pub name: String,
    pub versions: u64,
    pub deployments: u64,
    pub last_requested_at: Timestamp,
}

/// A version of a solution, with when it was last requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolutionVersionSeen {
    pub solution_name: String,
    pub version: String,
    pub last_requested_at: Timestamp,
}

/// Where a page of versions starts: after this (time, version), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCursor {
    pub last_requested_at: Timestamp,
    pub version: String,
}
