//! Environments the host deploys from and to.
//!
//! An environment record's URL says how to reach it: `memory://<name>` is an environment
//! held in this process ([`memory`]), for trying Gatehouse out and for tests.

pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;

use crate::pipeline::model::{DeploymentSettings, EnvironmentRecord};
use crate::pipeline::ports::{
    EnvironmentClient, EnvironmentError, EnvironmentInfo, SolutionVersion,
};

/// Reaches each environment by its URL's scheme.
pub struct Environments {
    pub memory: Arc<memory::MemoryEnvironments>,
}

impl Environments {
    /// The memory environment a `memory://<name>[?import_delay_ms=N]` URL names, and how
    /// long its imports take (a slow target, for demos and crash tests).
    fn target<'a>(
        &'a self,
        env: &'a EnvironmentRecord,
    ) -> Result<(&'a memory::MemoryEnvironments, &'a str, std::time::Duration), EnvironmentError>
    {
        let unsupported = || {
            EnvironmentError::Unreachable(format!(
                "{} is not a supported environment URL; this host serves memory://<name> environments",
                env.url
            ))
        };
        let rest = env.url.strip_prefix("memory://").ok_or_else(unsupported)?;
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(unsupported());
        }
        let mut delay = std::time::Duration::ZERO;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("import_delay_ms", ms)) => {
                    let ms: u64 = ms.parse().map_err(|_| unsupported())?;
                    delay = std::time::Duration::from_millis(ms);
                }
                _ => return Err(unsupported()),
            }
        }
        Ok((&self.memory, name, delay))
    }
}

#[async_trait]
impl EnvironmentClient for Environments {
    async fn info(
        &self,
        env: &EnvironmentRecord,
        _credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError> {
        let (memory, name, _) = self.target(env)?;
        Ok(memory.info(name, env.kind))
    }

    async fn solution(
        &self,
        env: &EnvironmentRecord,
        _credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError> {
        let (memory, env_name, _) = self.target(env)?;
        Ok(memory.solution(env_name, name))
    }

    async fn import(
        &self,
        env: &EnvironmentRecord,
        _credential: Option<&str>,
        operation_id: &str,
        solution: &SolutionVersion,
        _settings: &DeploymentSettings,
    ) -> Result<(), EnvironmentError> {
        let (memory, name, delay) = self.target(env)?;
        if memory.imported(name, operation_id) {
            return memory.import(name, operation_id, solution);
        }
        tokio::time::sleep(delay).await;
        memory.import(name, operation_id, solution)
    }
}
