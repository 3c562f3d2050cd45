//! Environments the host deploys from and to: the Environment API client, its wire types
//! and its import rules.
//!
//! An environment record's URL says how to reach it:
//! - `http://…` or `https://…`: an Environment API (`/env/v1`, see
//!   docs/environment-api.md), through [`http::HttpEnvironments`];
//! - `memory://<name>[?import_delay_ms=N]`: an environment held in this process
//!   ([`memory`]), for trying Gatehouse out, tests and benchmarks.
//!
//! [`wire`] and [`import_rules`] are shared with the reference environment server
//! (`crate::envserver`), so that both ends and `memory://` agree on the messages and rules.

pub mod http;
pub mod import_rules;
pub mod link;
pub mod memory;
mod to_domain;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::pipeline::model::{DeploymentSettings, EnvironmentRecord};
use crate::pipeline::ports::{
    EnvironmentCheck, EnvironmentClient, EnvironmentError, EnvironmentInfo, ExportedSolution,
    ImportRequest, ImportStatus, Linked, Manifest, PackageRef, SolutionVersion,
};

/// Reaches each environment by its URL's scheme.
pub struct Environments {
    pub memory: Arc<memory::MemoryEnvironments>,
    pub http: http::HttpEnvironments,
}

/// Where a record's URL points.
enum Route<'a> {
    Memory { name: &'a str, delay: Duration },
    Http,
}

impl Environments {
    pub fn new(
        memory: Arc<memory::MemoryEnvironments>,
        http: http::HttpEnvironments,
    ) -> Environments {
        Environments { memory, http }
    }

    fn route<'a>(&self, env: &'a EnvironmentRecord) -> Result<Route<'a>, EnvironmentError> {
        if env.url.starts_with("http://") || env.url.starts_with("https://") {
            return Ok(Route::Http);
        }
        let unsupported = || {
            EnvironmentError::Refused(format!(
                "{} is not a supported environment URL: use http(s)://… for an Environment API, or memory://<name>",
                env.url
            ))
        };
        let rest = env.url.strip_prefix("memory://").ok_or_else(unsupported)?;
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(unsupported());
        }
        let mut delay = Duration::ZERO;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("import_delay_ms", ms)) => {
                    let ms: u64 = ms.parse().map_err(|_| unsupported())?;
                    delay = Duration::from_millis(ms);
                }
                _ => return Err(unsupported()),
            }
        }
        Ok(Route::Memory { name, delay })
    }
}

#[async_trait]
impl EnvironmentClient for Environments {
    async fn info(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => Ok(self.memory.info(name, env.kind)),
            Route::Http => self.http.info(&env.url, credential).await,
        }
    }

    async fn link(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        host_id: &str,
        force: bool,
    ) -> Result<Linked, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => self.memory.link(name, env.kind, host_id, force),
            Route::Http => self.http.link(&env.url, credential, host_id, force).await,
        }
    }

    async fn solution(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name: env_name, .. } => Ok(self.memory.solution(env_name, name)),
            Route::Http => self.http.solution(&env.url, credential, name).await,
        }
    }

    async fn solutions(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<Vec<SolutionVersion>, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => Ok(self.memory.solutions(name)),
            Route::Http => self.http.solutions(&env.url, credential).await,
        }
    }

    async fn export(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        name: &str,
        version: &str,
    ) -> Result<ExportedSolution, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name: env_name, .. } => self.memory.export(env_name, name, version),
            Route::Http => self.http.export(&env.url, credential, name, version).await,
        }
    }

    async fn download(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        package: &PackageRef,
        into: &Path,
    ) -> Result<(), EnvironmentError> {
        match self.route(env)? {
            Route::Memory { .. } => self.memory.download(package, into),
            Route::Http => {
                self.http
                    .download(&env.url, credential, package, into)
                    .await
            }
        }
    }

    async fn upload(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        package: &PackageRef,
        from: &Path,
    ) -> Result<(), EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => self.memory.upload(name, package, from),
            Route::Http => self.http.upload(&env.url, credential, package, from).await,
        }
    }

    async fn check(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        manifest: &Manifest,
        settings: &DeploymentSettings,
        allow_downgrade: bool,
    ) -> Result<EnvironmentCheck, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => {
                Ok(self
                    .memory
                    .check(name, env.kind, manifest, settings, allow_downgrade))
            }
            Route::Http => {
                self.http
                    .check(&env.url, credential, manifest, settings, allow_downgrade)
                    .await
            }
        }
    }

    async fn start_import(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        request: &ImportRequest,
    ) -> Result<ImportStatus, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, delay } => {
                self.memory.start_import(name, env.kind, request, delay)
            }
            Route::Http => self.http.start_import(&env.url, credential, request).await,
        }
    }

    async fn import_status(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        operation_id: &str,
    ) -> Result<ImportStatus, EnvironmentError> {
        match self.route(env)? {
            Route::Memory { name, .. } => self.memory.import_status(name, operation_id),
            Route::Http => {
                self.http
                    .import_status(&env.url, credential, operation_id)
                    .await
            }
        }
    }
}
