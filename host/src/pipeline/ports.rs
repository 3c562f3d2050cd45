//! What the domain calls out to, besides the store: plugins and environments.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gate::{ComponentRef, Config, Decision, Deployment, Finding, LogLine, Timestamp, Vote};
use super::model::{DeploymentSettings, EnvironmentRecord};

/// The outcome of one plugin call, with what it cost. `Err` holds the cause of a failed
/// call (a trap, a limit, a missing or disabled plugin); a gate fails closed on it.
#[derive(Debug, Clone)]
pub struct GateOutcome<T> {
    pub result: Result<T, String>,
    pub log: Vec<LogLine>,
    pub duration_us: u64,
    pub fuel_used: u64,
}

/// Runs the plugins bound to gates and validators.
#[async_trait]
pub trait GateRunner: Send + Sync + 'static {
    async fn evaluate(
        &self,
        plugin_id: &str,
        deployment: Arc<Deployment>,
        votes: &[Vote],
        config: &Config,
        now: Timestamp,
    ) -> GateOutcome<Decision>;

    async fn validate(
        &self,
        plugin_id: &str,
        deployment: Arc<Deployment>,
        config: &Config,
        now: Timestamp,
    ) -> GateOutcome<Vec<Finding>>;
}

/// What an environment reports about itself (`GET /env/v1/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentInfo {
    pub environment_id: String,
    pub kind: super::gate::EnvironmentKind,
    pub managed: bool,
}

/// A version of a solution, as an environment holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolutionVersion {
    pub name: String,
    pub version: String,
    pub publisher_prefix: String,
    pub components: Vec<ComponentRef>,
    pub package_size: u64,
    pub package_sha256: String,
}

/// An import the environment refused or could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvironmentError {
    #[error("environment unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Refused(String),
}

/// Talks to an environment's Environment API, or to an in-process one.
#[async_trait]
pub trait EnvironmentClient: Send + Sync + 'static {
    async fn info(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError>;

    /// The solution as the environment holds it now: the latest pushed version in a
    /// development environment, the installed one in a target.
    async fn solution(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError>;

    /// Imports a version into a target. Idempotent per `operation_id`: a repeat returns
    /// the first import's outcome and imports nothing.
    async fn import(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        operation_id: &str,
        solution: &SolutionVersion,
        settings: &DeploymentSettings,
    ) -> Result<(), EnvironmentError>;
}
