//! Environments held in this process: `memory://<name>`.
//!
//! A development environment holds the solutions seeded into it (`--memory-solution`), and
//! exports them as real packages built in memory. A target is managed, and checks and
//! imports packages by the reference server's own [`import_rules`](super::import_rules),
//! once per operation id. Nothing survives a restart, so a repeated operation id after a
//! restart imports again, which has the same outcome.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::import_rules::{self, Target};
use super::link::{check_link_secret, link_secret_sha256, new_link_secret};
use super::to_domain::{import_settings, wire_kind};
use super::wire::Report;
use crate::pipeline::gate::{ComponentRef, EnvironmentKind};
use crate::pipeline::model::DeploymentSettings;
use crate::pipeline::ports::{
    EnvironmentCheck, EnvironmentError, EnvironmentInfo, ExportedSolution, ImportRequest,
    ImportState, ImportStatus, Linked, PackageRef, SolutionVersion,
};
use crate::solution::{self, Component, Manifest, Publisher, Version};

/// An import that was started, and what it installs when it is done.
struct MemoryImport {
    package: PackageRef,
    done_at: Instant,
    status: ImportStatus,
}

#[derive(Default)]
struct MemoryEnvironment {
    solutions: HashMap<String, SolutionVersion>,
    imports: HashMap<String, MemoryImport>,
    /// Packages uploaded to this environment, by SHA-256.
    uploaded: std::collections::HashSet<String>,
    import_count: u64,
    linked_host: Option<String>,
    /// The SHA-256 of the secret the last link issued, which imports must present.
    link_secret_sha256: Option<String>,
    /// Connection name → connector, for connection references to bind to.
    connections: BTreeMap<String, String>,
}

/// A package's bytes and its manifest.
type HeldPackage = (Arc<Vec<u8>>, Manifest);

/// Whether a `memory://` environment reports itself managed: always, as a target must be.
const MANAGED: bool = true;

/// Every `memory://` environment, by name, and the packages their exports made.
#[derive(Default)]
pub struct MemoryEnvironments {
    envs: Mutex<HashMap<String, MemoryEnvironment>>,
    packages: Mutex<HashMap<String, HeldPackage>>,
}

/// A solution seed could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SeedError(String);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a single insert, so a poisoned lock is consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn refused(message: String) -> EnvironmentError {
    EnvironmentError::Refused(message)
}

impl MemoryEnvironments {
    /// Reports the environment as the record expects it: its name is its id, and it is
    /// managed, as a target must be.
    pub fn info(&self, name: &str, kind: EnvironmentKind) -> EnvironmentInfo {
        let envs = lock(&self.envs);
        EnvironmentInfo {
            environment_id: name.to_owned(),
            kind,
            managed: MANAGED,
            linked_host: envs.get(name).and_then(|e| e.linked_host.clone()),
        }
    }

    pub fn link(
        &self,
        name: &str,
        kind: EnvironmentKind,
        host_id: &str,
        force: bool,
    ) -> Result<Linked, EnvironmentError> {
        let secret =
            new_link_secret().map_err(|e| refused(format!("the OS random source failed: {e}")))?;
        {
            let mut envs = lock(&self.envs);
            let env = envs.entry(name.to_owned()).or_default();
            match &env.linked_host {
                Some(other) if other != host_id && !force => {
                    return Err(refused(format!(
                        "environment {name} is linked to host {other}; link with force to take it over"
                    )));
                }
                _ => env.linked_host = Some(host_id.to_owned()),
            }
            // Every link issues a new secret; the one before stops working.
            env.link_secret_sha256 = Some(link_secret_sha256(&secret));
        }
        Ok(Linked {
            info: self.info(name, kind),
            link_secret: Some(secret),
        })
    }

    pub fn solution(&self, env: &str, solution: &str) -> Option<SolutionVersion> {
        lock(&self.envs)
            .get(env)
            .and_then(|e| e.solutions.get(solution))
            .cloned()
    }

    /// Every solution the environment holds, by name.
    pub fn solutions(&self, env: &str) -> Vec<SolutionVersion> {
        let mut all: Vec<SolutionVersion> = lock(&self.envs)
            .get(env)
            .map(|e| e.solutions.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many imports the environment has run, repeats of an operation id excluded.
    pub fn import_count(&self, env: &str) -> u64 {
        lock(&self.envs).get(env).map_or(0, |e| e.import_count)
    }

    pub fn put(&self, env: &str, solution: SolutionVersion) {
        lock(&self.envs)
            .entry(env.to_owned())
            .or_default()
            .solutions
            .insert(solution.name.clone(), solution);
    }

    /// Builds the managed and unmanaged packages of the solution, stamped with `version`.
    pub fn export(
        &self,
        env: &str,
        name: &str,
        version: &str,
    ) -> Result<ExportedSolution, EnvironmentError> {
        let held = self
            .solution(env, name)
            .ok_or_else(|| refused(format!("solution {name} is not in environment {env}")))?;
        let version: Version = version
            .parse()
            .map_err(|e| refused(format!("cannot export {name}: {e}")))?;
        let mut manifest = held
            .manifest
            .clone()
            .ok_or_else(|| refused(format!("solution {name} in {env} has no manifest")))?;
        manifest.version = version;
        let package = |managed: bool| -> Result<PackageRef, EnvironmentError> {
            let mut m = manifest.clone();
            m.managed = managed;
            let body = format!(
                "{{\"solution\":\"{name}\",\"version\":\"{version}\",\"managed\":{managed}}}"
            );
            let bytes = solution::build_package(&m, &[("components/record.json", body.as_bytes())])
                .map_err(|e| refused(format!("cannot build the package of {name}: {e}")))?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let size = bytes.len() as u64;
            lock(&self.packages).insert(sha256.clone(), (Arc::new(bytes), m));
            Ok(PackageRef { sha256, size })
        };
        let managed = package(true)?;
        let unmanaged = package(false)?;
        manifest.managed = true;
        Ok(ExportedSolution {
            manifest,
            managed,
            unmanaged,
        })
    }

    /// Writes a package an export made to `into`, whole or not at all.
    pub fn download(&self, package: &PackageRef, into: &Path) -> Result<(), EnvironmentError> {
        let bytes = lock(&self.packages)
            .get(&package.sha256)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| refused(format!("no package {}", package.sha256)))?;
        let temp = into.with_extension("part");
        std::fs::write(&temp, bytes.as_slice())
            .and_then(|()| std::fs::rename(&temp, into))
            .map_err(|e| refused(format!("cannot write {}: {e}", into.display())))
    }

    /// Takes a package from a file; it must hash to its address.
    pub fn upload(
        &self,
        env: &str,
        package: &PackageRef,
        from: &Path,
    ) -> Result<(), EnvironmentError> {
        let known = lock(&self.envs)
            .get(env)
            .is_some_and(|e| e.uploaded.contains(&package.sha256));
        if known {
            return Ok(());
        }
        let bytes = std::fs::read(from)
            .map_err(|e| refused(format!("cannot read {}: {e}", from.display())))?;
        if hex::encode(Sha256::digest(&bytes)) != package.sha256 {
            return Err(refused(format!(
                "{} does not hash to {}",
                from.display(),
                package.sha256
            )));
        }
        let info = solution::read_package(std::io::Cursor::new(&bytes), &Default::default())
            .map_err(|e| refused(format!("the package is not valid: {e}")))?;
        lock(&self.packages).insert(package.sha256.clone(), (Arc::new(bytes), info.manifest));
        lock(&self.envs)
            .entry(env.to_owned())
            .or_default()
            .uploaded
            .insert(package.sha256.clone());
        Ok(())
    }

    /// Registers a connection that connection references can bind to, as
    /// `POST /env/v1/connections` does; a name taken already is refused.
    pub fn add_connection(
        &self,
        env: &str,
        name: &str,
        connector: &str,
    ) -> Result<(), EnvironmentError> {
        let mut envs = lock(&self.envs);
        let connections = &mut envs.entry(env.to_owned()).or_default().connections;
        if connections.contains_key(name) {
            return Err(refused(format!(
                "a connection named {name} exists already in {env}; pick another name"
            )));
        }
        connections.insert(name.to_owned(), connector.to_owned());
        Ok(())
    }

    /// The checks an import runs, the reference server's own.
    pub fn check(
        &self,
        env: &str,
        kind: EnvironmentKind,
        manifest: &Manifest,
        settings: &DeploymentSettings,
        allow_downgrade: bool,
    ) -> EnvironmentCheck {
        self.report(env, kind, manifest, settings, allow_downgrade)
            .into()
    }

    fn report(
        &self,
        env: &str,
        kind: EnvironmentKind,
        manifest: &Manifest,
        settings: &DeploymentSettings,
        allow_downgrade: bool,
    ) -> Report {
        let envs = lock(&self.envs);
        let held = envs.get(env);
        let installed: BTreeMap<String, Version> = held
            .map(|e| {
                e.solutions
                    .iter()
                    .filter_map(|(name, s)| Some((name.clone(), s.version.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        let connections = held.map(|e| e.connections.clone()).unwrap_or_default();
        let target = Target {
            kind: wire_kind(kind),
            managed: MANAGED,
            installed: &installed,
            connections: &connections,
        };
        import_rules::check(
            manifest,
            &import_settings(settings),
            allow_downgrade,
            &target,
        )
    }

    /// Starts an import; it is done after `delay`. A repeated operation id answers the
    /// first import's status.
    pub fn start_import(
        &self,
        env: &str,
        kind: EnvironmentKind,
        request: &ImportRequest,
        delay: Duration,
    ) -> Result<ImportStatus, EnvironmentError> {
        {
            let envs = lock(&self.envs);
            let issued = envs.get(env).and_then(|e| e.link_secret_sha256.as_deref());
            check_link_secret(issued, request.link_secret.as_deref())
                .map_err(|refusal| refused(format!("environment {env}: {refusal}")))?;
            if let Some(existing) = envs
                .get(env)
                .and_then(|e| e.imports.get(&request.operation_id))
            {
                if existing.package != request.package {
                    return Err(refused(format!(
                        "operation {} already imported another package",
                        request.operation_id
                    )));
                }
                drop(envs);
                return self.import_status(env, &request.operation_id);
            }
        }
        let manifest = lock(&self.packages)
            .get(&request.package.sha256)
            .map(|(_, m)| m.clone())
            .ok_or_else(|| {
                refused(format!(
                    "package {} was not uploaded",
                    request.package.sha256
                ))
            })?;
        let report = self.report(
            env,
            kind,
            &manifest,
            &request.settings,
            request.allow_downgrade,
        );
        let status = if report.ok {
            ImportStatus {
                operation_id: request.operation_id.clone(),
                status: ImportState::Running,
                error: None,
            }
        } else {
            ImportStatus {
                operation_id: request.operation_id.clone(),
                status: ImportState::Failed,
                error: Some(report.error_summary()),
            }
        };
        lock(&self.envs)
            .entry(env.to_owned())
            .or_default()
            .imports
            .insert(
                request.operation_id.clone(),
                MemoryImport {
                    package: request.package.clone(),
                    done_at: Instant::now() + delay,
                    status: status.clone(),
                },
            );
        self.import_status(env, &request.operation_id)
    }

    /// Where an import has got to; a running import whose time has come installs now.
    pub fn import_status(
        &self,
        env: &str,
        operation_id: &str,
    ) -> Result<ImportStatus, EnvironmentError> {
        let manifest = {
            let envs = lock(&self.envs);
            let import = envs
                .get(env)
                .and_then(|e| e.imports.get(operation_id))
                .ok_or_else(|| refused(format!("no import {operation_id} in {env}")))?;
            if import.status.status != ImportState::Running || Instant::now() < import.done_at {
                return Ok(import.status.clone());
            }
            lock(&self.packages)
                .get(&import.package.sha256)
                .map(|(_, m)| (m.clone(), import.package.clone()))
        };
        let mut envs = lock(&self.envs);
        let target = envs.entry(env.to_owned()).or_default();
        let Some((manifest, package)) = manifest else {
            return Err(refused(format!(
                "the package of import {operation_id} is gone"
            )));
        };
        let installed = SolutionVersion {
            name: manifest.unique_name.clone(),
            version: manifest.version.to_string(),
            publisher_prefix: manifest.publisher.prefix.clone(),
            components: manifest
                .components
                .iter()
                .map(|c| ComponentRef {
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                })
                .collect(),
            package_size: package.size,
            package_sha256: package.sha256.clone(),
            unmanaged: None,
            manifest: Some(manifest),
        };
        target.solutions.insert(installed.name.clone(), installed);
        target.import_count += 1;
        let import = target
            .imports
            .get_mut(operation_id)
            .ok_or_else(|| refused(format!("no import {operation_id} in {env}")))?;
        import.status.status = ImportState::Succeeded;
        Ok(import.status.clone())
    }

    /// Seeds a solution from `ENV:NAME@VERSION`, such as `dev:contoso_expenses@1.0.0.0`.
    /// The publisher prefix is the part of the name before the first `_`.
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
        let parsed: Version = version.parse().map_err(|e| {
            SeedError(format!(
                "{version:?} is not a four-part version such as 1.0.0.0: {e}"
            ))
        })?;
        let prefix = name.split_once('_').map_or(name, |(p, _)| p);
        let manifest = Manifest {
            unique_name: name.to_owned(),
            display_name: name.to_owned(),
            version: parsed,
            publisher: Publisher {
                unique_name: prefix.to_owned(),
                prefix: prefix.to_owned(),
            },
            managed: false,
            dependencies: Vec::new(),
            environment_variables: Vec::new(),
            connection_references: Vec::new(),
            components: vec![Component {
                kind: "table".into(),
                name: format!("{prefix}_record"),
                path: "components/record.json".into(),
            }],
        };
        manifest
            .validate()
            .map_err(|e| SeedError(format!("cannot seed {name}: {e}")))?;
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
                package_size: 0,
                package_sha256: String::new(),
                unmanaged: None,
                manifest: Some(manifest),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
