//! Backups: the managed and unmanaged packages of every exported solution version, which
//! the host keeps. The API and the console download them through here, so the same
//! people get the same files: an artifact is seen by whoever may use the environment it
//! was exported from ([`may_see_artifact`]), and to anyone else it does not exist.

use std::path::PathBuf;

use super::access::may_see_artifact;
use super::engine::Engine;
use super::model::User;
use super::service_error::{ServiceError, ServiceResult};
use super::store::Store;

/// One of the two packages an export makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageKind {
    /// The package later stages import.
    Managed,
    /// The editable package, for restoring a development environment.
    Unmanaged,
}

impl PackageKind {
    pub const ALL: [PackageKind; 2] = [PackageKind::Managed, PackageKind::Unmanaged];

    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Managed => "managed",
            PackageKind::Unmanaged => "unmanaged",
        }
    }

    /// `managed` or `unmanaged`, as download paths name them.
    pub fn parse(text: &str) -> ServiceResult<PackageKind> {
        match text {
            "managed" => Ok(PackageKind::Managed),
            "unmanaged" => Ok(PackageKind::Unmanaged),
            other => Err(ServiceError::malformed(format!(
                "{other:?} is not a package kind: use managed or unmanaged"
            ))),
        }
    }
}

/// A stored package to send: where it is, how long it is, and the name to save it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub path: PathBuf,
    pub size: u64,
    /// `<solution>_<version>_<kind>.zip`.
    pub filename: String,
}

/// The backups of one host, over its store and the engine that keeps the packages.
#[derive(Clone, Copy)]
pub struct Backups<'a> {
    pub store: &'a dyn Store,
    pub engine: &'a Engine,
}

impl Backups<'_> {
    /// The file of one package of `solution` `version`, if the actor may see it. One they
    /// may not see is not found, like one that was never exported.
    pub async fn package(
        &self,
        actor: &User,
        solution: &str,
        version: &str,
        kind: &str,
    ) -> ServiceResult<BackupFile> {
        let missing = || {
            ServiceError::not_found(format!("no artifact {solution} {version} that you can see"))
        };
        let artifact = self
            .store
            .get_artifact(solution, version)
            .await?
            .ok_or_else(missing)?;
        if !may_see_artifact(self.store, actor, &artifact).await {
            return Err(missing());
        }
        let kind = PackageKind::parse(kind)?;
        let package = match kind {
            PackageKind::Managed => &artifact.managed,
            PackageKind::Unmanaged => &artifact.unmanaged,
        };
        let path = self
            .engine
            .package_path(&package.sha256)
            .ok_or_else(missing)?;
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(ServiceError::not_found(format!(
                "the {} package of {solution} {version} is no longer stored",
                kind.as_str()
            )));
        }
        Ok(BackupFile {
            path,
            size: package.size,
            filename: format!("{solution}_{version}_{}.zip", kind.as_str()),
        })
    }
}
