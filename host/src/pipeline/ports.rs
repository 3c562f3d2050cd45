//! What the domain calls out to, besides the store: plugins and environments.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gate::{
    ComponentRef, Config, Decision, DeploymentFacts, Finding, LogLine, Timestamp, Vote,
};
use super::model::{DeploymentSettings, EnvironmentRecord};
pub use crate::solution::Manifest;

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
        deployment: Arc<DeploymentFacts>,
        votes: &[Vote],
        config: &Config,
        now: Timestamp,
    ) -> GateOutcome<Decision>;

    async fn validate(
        &self,
        plugin_id: &str,
        deployment: Arc<DeploymentFacts>,
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
    /// The host it is linked to, if any.
    #[serde(default)]
    pub linked_host: Option<String>,
}

/// What `POST /env/v1/link` answered: the environment, and the secret it issued for this
/// link, which every import then presents. An environment that issues none (an Environment
/// API before 1.1) stays usable, but its imports are not bound to the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub info: EnvironmentInfo,
    pub link_secret: Option<String>,
}

/// A version of a solution, as an environment holds it, or as an exported artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolutionVersion {
    pub name: String,
    pub version: String,
    pub publisher_prefix: String,
    pub components: Vec<ComponentRef>,
    /// The package to import: the managed one, once exported.
    pub package_size: u64,
    pub package_sha256: String,
    /// The unmanaged package kept as a backup, once exported.
    #[serde(default)]
    pub unmanaged: Option<PackageRef>,
    /// The manifest, once the environment or the export reported it.
    #[serde(default)]
    pub manifest: Option<Manifest>,
}

impl SolutionVersion {
    /// The managed package, once exported.
    pub fn package(&self) -> Option<PackageRef> {
        (!self.package_sha256.is_empty()).then(|| PackageRef {
            sha256: self.package_sha256.clone(),
            size: self.package_size,
        })
    }
}

/// A package, by content address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageRef {
    pub sha256: String,
    pub size: u64,
}

/// What an export produced: the version stamped, and both packages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedSolution {
    pub manifest: Manifest,
    pub managed: PackageRef,
    pub unmanaged: PackageRef,
}

/// What an environment says about importing a package with these settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentCheck {
    pub ok: bool,
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Finding>,
    pub missing_environment_variables: Vec<MissingVariable>,
    pub missing_connection_references: Vec<MissingConnection>,
    pub installed_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingVariable {
    pub schema_name: String,
    /// string, number, boolean, json, data_source or secret.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingConnection {
    pub logical_name: String,
    pub connector: String,
}

/// An import to start, or to look up by its operation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    pub operation_id: String,
    pub package: PackageRef,
    pub settings: DeploymentSettings,
    pub allow_downgrade: bool,
    /// The secret the environment issued when this host linked to it, if it issued one.
    pub link_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    Running,
    Succeeded,
    Failed,
}

/// Where an import has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportStatus {
    pub operation_id: String,
    pub status: ImportState,
    #[serde(default)]
    pub error: Option<String>,
}

/// A call to an environment that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvironmentError {
    /// It could not be reached, or failed in a way worth trying again (5xx, timeout).
    #[error("environment unreachable: {0}")]
    Unreachable(String),
    /// It answered no, for a reason that a retry does not change.
    #[error("{0}")]
    Refused(String),
    /// The host's outbound allow-list forbids calling it; a retry does not change that.
    #[error("{0}")]
    NotAllowed(String),
}

/// Talks to an environment's Environment API (`/env/v1`, see docs/environment-api.md),
/// or to an in-process one. Every call takes the environment's stored credential.
#[async_trait]
pub trait EnvironmentClient: Send + Sync + 'static {
    async fn info(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError>;

    /// Links the environment to this host; `force` takes it from another host and
    /// rotates the link secret.
    async fn link(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        host_id: &str,
        force: bool,
    ) -> Result<Linked, EnvironmentError>;

    /// The solution as the environment holds it now: the latest pushed version in a
    /// development environment, the installed one in a target.
    async fn solution(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError>;

    /// Every solution the environment holds now, as [`EnvironmentClient::solution`]
    /// describes each, by name.
    async fn solutions(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<Vec<SolutionVersion>, EnvironmentError>;

    /// Exports a solution from a development environment, stamped with `version`.
    /// Exporting the same version again answers the same packages.
    async fn export(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        name: &str,
        version: &str,
    ) -> Result<ExportedSolution, EnvironmentError>;

    /// Downloads a package to `into`, streamed, checking its SHA-256; the file appears
    /// whole or not at all.
    async fn download(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        package: &PackageRef,
        into: &Path,
    ) -> Result<(), EnvironmentError>;

    /// Uploads a package from `from`, streamed; a package the environment has already
    /// is not sent again.
    async fn upload(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        package: &PackageRef,
        from: &Path,
    ) -> Result<(), EnvironmentError>;

    /// Whether importing the manifest's solution with these settings would succeed, and
    /// which settings are still missing.
    async fn check(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        manifest: &Manifest,
        settings: &DeploymentSettings,
        allow_downgrade: bool,
    ) -> Result<EnvironmentCheck, EnvironmentError>;

    /// Starts an import of a package uploaded before. Idempotent per operation id: a
    /// repeat answers the first import's status and imports nothing.
    async fn start_import(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        request: &ImportRequest,
    ) -> Result<ImportStatus, EnvironmentError>;

    async fn import_status(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        operation_id: &str,
    ) -> Result<ImportStatus, EnvironmentError>;
}
