//! Environments held in this process: `memory://<name>`.
//!
//! A development environment holds the solutions seeded into it (`--memory-solution`);
//! a target records what was imported, once per operation id. Nothing survives a restart,
//! except that a repeated operation id after a restart imports again, which is the same
//! outcome.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::pipeline::gate::{ComponentRef, EnvironmentKind};
use crate::pipeline::ports::{EnvironmentError, EnvironmentInfo, SolutionVersion};

#[derive(Default)]
struct MemoryEnvironment {
    solutions: HashMap<String, SolutionVersion>,
    /// Operation id to what it imported.
    imports: HashMap<String, SolutionVersion>,
    import_count: u64,
}

/// Every `memory://` environment, by name.
#[derive(Default)]
pub struct MemoryEnvironments {
    envs: Mutex<HashMap<String, MemoryEnvironment>>,
}

/// A solution seed could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SeedError(String);

impl MemoryEnvironments {
    /// Reports the environment as the record expects it: its name is its id, and it is
    /// managed, as a target must be.
    pub fn info(&self, name: &str, kind: EnvironmentKind) -> EnvironmentInfo {
        EnvironmentInfo {
            environment_id: name.to_owned(),
            kind,
            managed: true,
        }
    }

    pub fn solution(&self, env: &str, solution: &str) -> Option<SolutionVersion> {
        let envs = self.envs.lock().unwrap_or_else(|e| e.into_inner());
        envs.get(env)
            .and_then(|e| e.solutions.get(solution))
            .cloned()
    }

    /// How many imports the environment has run, repeats of an operation id excluded.
    pub fn import_count(&self, env: &str) -> u64 {
        let envs = self.envs.lock().unwrap_or_else(|e| e.into_inner());
        envs.get(env).map_or(0, |e| e.import_count)
    }

    /// Whether the operation already ran.
    pub fn imported(&self, env: &str, operation_id: &str) -> bool {
        let envs = self.envs.lock().unwrap_or_else(|e| e.into_inner());
        envs.get(env)
            .is_some_and(|e| e.imports.contains_key(operation_id))
    }

    pub fn put(&self, env: &str, solution: SolutionVersion) {
        let mut envs = self.envs.lock().unwrap_or_else(|e| e.into_inner());
        envs.entry(env.to_owned())
            .or_default()
            .solutions
            .insert(solution.name.clone(), solution);
    }

    pub fn import(
        &self,
        env: &str,
        operation_id: &str,
        solution: &SolutionVersion,
    ) -> Result<(), EnvironmentError> {
        let mut envs = self.envs.lock().unwrap_or_else(|e| e.into_inner());
        let target = envs.entry(env.to_owned()).or_default();
        if let Some(done) = target.imports.get(operation_id) {
            if done != solution {
                return Err(EnvironmentError::Refused(format!(
                    "operation {operation_id} already imported {} {}",
                    done.name, done.version
                )));
            }
            return Ok(());
        }
        target
            .imports
            .insert(operation_id.to_owned(), solution.clone());
        target.import_count += 1;
        target
            .solutions
            .insert(solution.name.clone(), solution.clone());
        Ok(())
    }

    /// Seeds a solution from `ENV:NAME@VERSION`, such as
    /// `dev:contoso_expenses@1.0.0.0`. The publisher prefix is the part of the name before
    /// the first `_`; the package is described by a digest of the name and version.
    pub fn seed(&self, spec: &str) -> Result<(), SeedError> {
        let usage = || {
            SeedError(format!(
                "{spec:?} must look like ENV:NAME@VERSION, such as dev:contoso_expenses@1.0.0.0"
            ))
        };
        let (env, rest) = spec.split_once(':').ok_or_else(usage)?;
        let (name, version) = rest.split_once('@').ok_or_else(usage)?;
        if env.is_empty() || name.is_empty() {
            return Err(usage());
        }
        if crate::pipeline::rules::compare_versions(version, version).is_none() {
            return Err(SeedError(format!(
                "{version:?} is not a four-part version such as 1.0.0.0"
            )));
        }
        let prefix = name.split_once('_').map_or(name, |(p, _)| p);
        let digest = hex::encode(Sha256::digest(format!("{name}@{version}")));
        self.put(
            env,
            SolutionVersion {
                name: name.to_owned(),
                version: version.to_owned(),
                publisher_prefix: prefix.to_owned(),
                components: vec![ComponentRef {
                    kind: "table".into(),
                    name: format!("{prefix}_record"),
                }],
                package_size: 4096,
                package_sha256: digest,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_imports_once() {
        let envs = MemoryEnvironments::default();
        envs.seed("dev:contoso_app@1.2.0.0").unwrap();
        let solution = envs.solution("dev", "contoso_app").unwrap();
        assert_eq!(solution.publisher_prefix, "contoso");
        envs.import("prod", "op-1", &solution).unwrap();
        envs.import("prod", "op-1", &solution).unwrap();
        assert_eq!(envs.import_count("prod"), 1);
        assert_eq!(
            envs.solution("prod", "contoso_app").unwrap().version,
            "1.2.0.0"
        );
    }

    #[test]
    fn bad_seeds_say_what_is_expected() {
        let envs = MemoryEnvironments::default();
        assert!(envs.seed("contoso_app@1.0.0.0").is_err());
        assert!(
            envs.seed("dev:contoso_app@1.0")
                .unwrap_err()
                .0
                .contains("four-part")
        );
    }
}
