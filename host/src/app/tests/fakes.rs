//! Small, honest stand-ins for the plugin registry, the environments and the gate runner:
//! each keeps the contract of the real one, on data the tests control.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pipeline::model::{DeploymentSettings, EnvironmentRecord, PluginRecord};
use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;
use crate::pipeline::plugin_admin::{InspectedPlugin, PluginAdmin, PluginLoadError, PluginStats};
use crate::pipeline::ports::{
    EnvironmentCheck, EnvironmentClient, EnvironmentError, EnvironmentInfo, ExportedSolution,
    GateOutcome, GateRunner, ImportRequest, ImportStatus, Linked, Manifest, PackageRef,
    SolutionVersion,
};
use crate::pipeline::{
    Config, Decision, DeploymentFacts, EnvironmentKind, Finding, PluginInfo, PluginWorld,
    Timestamp, Vote,
};

/// The first eight bytes of a WebAssembly component: magic, then the component layer.
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// What a fake component says about itself, after its header.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FakeDescription {
    name: String,
    version: String,
    world: PluginWorld,
    config_keys: Vec<String>,
}

/// A fake component: a real component header, then its description as JSON.
pub fn component(name: &str, version: &str, world: PluginWorld, config_keys: &[&str]) -> Vec<u8> {
    let mut bytes = COMPONENT_HEADER.to_vec();
    let description = FakeDescription {
        name: name.into(),
        version: version.into(),
        world,
        config_keys: config_keys.iter().map(|k| k.to_string()).collect(),
    };
    bytes.extend(serde_json::to_vec(&description).unwrap());
    bytes
}

/// Plays the plugin registry: components are [`component`]s, and a plugin refuses any
/// configuration key it did not declare.
#[derive(Default)]
pub struct FakePlugins {
    active: Mutex<HashMap<String, (PluginRecord, Vec<String>)>>,
    checks: Mutex<HashMap<String, u64>>,
}

impl FakePlugins {
    pub fn is_active(&self, plugin_id: &str) -> bool {
        self.active.lock().unwrap().contains_key(plugin_id)
    }

    pub fn active_limits(
        &self,
        plugin_id: &str,
    ) -> Option<crate::pipeline::plugin_limits::PluginLimits> {
        self.active
            .lock()
            .unwrap()
            .get(plugin_id)
            .map(|(r, _)| r.limits)
    }
}

fn describe(bytes: &[u8]) -> Result<FakeDescription, PluginLoadError> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(PluginLoadError::TooLarge(format!(
            "the upload is {} bytes, over the limit of {MAX_COMPONENT_BYTES} bytes",
            bytes.len()
        )));
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(PluginLoadError::Refused(
            "the upload is not WebAssembly (it does not start with the `\\0asm` header)".into(),
        ));
    }
    let Some(rest) = bytes.strip_prefix(COMPONENT_HEADER) else {
        return Err(PluginLoadError::Refused(
            "the upload is a core WebAssembly module, not a component".into(),
        ));
    };
    serde_json::from_slice(rest)
        .map_err(|e| PluginLoadError::Refused(format!("the component is invalid: {e}")))
}

#[async_trait]
impl PluginAdmin for FakePlugins {
    async fn inspect(&self, bytes: Vec<u8>) -> Result<InspectedPlugin, PluginLoadError> {
        let d = describe(&bytes)?;
        Ok(InspectedPlugin {
            info: PluginInfo {
                name: d.name.clone(),
                version: d.version,
                description: format!("the fake {}", d.name),
                config_keys: d.config_keys,
            },
            world: d.world,
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        })
    }

    async fn activate(&self, record: &PluginRecord, bytes: Vec<u8>) -> Result<(), String> {
        let d = describe(&bytes).map_err(|e| e.to_string())?;
        record.limits.validate().map_err(|e| e.to_string())?;
        self.active
            .lock()
            .unwrap()
            .insert(record.id.clone(), (record.clone(), d.config_keys));
        Ok(())
    }

    fn deactivate(&self, plugin_id: &str) {
        self.active.lock().unwrap().remove(plugin_id);
    }

    async fn check_config(
        &self,
        plugin_id: &str,
        config: &Config,
    ) -> Result<Result<(), String>, String> {
        *self
            .checks
            .lock()
            .unwrap()
            .entry(plugin_id.to_owned())
            .or_default() += 1;
        let active = self.active.lock().unwrap();
        let Some((record, keys)) = active.get(plugin_id) else {
            return Err(format!("plugin {plugin_id} is not active"));
        };
        match config.keys().find(|k| !keys.contains(k)) {
            Some(unknown) => Ok(Err(format!(
                "unknown config key {unknown:?}; {} takes {}",
                record.name,
                keys.join(", ")
            ))),
            None => Ok(Ok(())),
        }
    }

    fn stats(&self, plugin_id: &str) -> PluginStats {
        let calls = self
            .checks
            .lock()
            .unwrap()
            .get(plugin_id)
            .copied()
            .unwrap_or(0);
        PluginStats {
            calls,
            ..PluginStats::default()
        }
    }
}

/// Plays the environments: each url answers what the test set, or is unreachable; every
/// development environment holds version 1.0.0.0 of solution `crm`, and every target
/// would import it. A link issues a link secret, unless the test made the url one that
/// predates them.
#[derive(Default)]
pub struct FakeEnvironments {
    answers: Mutex<HashMap<String, EnvironmentInfo>>,
    without_link_secret: Mutex<std::collections::HashSet<String>>,
}

impl FakeEnvironments {
    pub fn answer(&self, url: &str, environment_id: &str, kind: EnvironmentKind, managed: bool) {
        self.answers.lock().unwrap().insert(
            url.to_owned(),
            EnvironmentInfo {
                environment_id: environment_id.to_owned(),
                kind,
                managed,
                linked_host: None,
            },
        );
    }

    /// Makes the environment at `url` unreachable from now on.
    pub fn goes_down(&self, url: &str) {
        self.answers.lock().unwrap().remove(url);
    }

    /// Makes the url's link answer without a secret, as an Environment API 1 server does.
    pub fn issue_no_link_secret(&self, url: &str) {
        self.without_link_secret
            .lock()
            .unwrap()
            .insert(url.to_owned());
    }
}

#[async_trait]
impl EnvironmentClient for FakeEnvironments {
    async fn info(
        &self,
        env: &EnvironmentRecord,
        _credential: Option<&str>,
    ) -> Result<EnvironmentInfo, EnvironmentError> {
        self.answers
            .lock()
            .unwrap()
            .get(&env.url)
            .cloned()
            .ok_or_else(|| EnvironmentError::Unreachable("connection refused".into()))
    }

    async fn solution(
        &self,
        env: &EnvironmentRecord,
        _credential: Option<&str>,
        name: &str,
    ) -> Result<Option<SolutionVersion>, EnvironmentError> {
        if env.kind != EnvironmentKind::Development || name != "crm" {
            return Ok(None);
        }
        Ok(Some(SolutionVersion {
            name: "crm".into(),
            version: "1.0.0.0".into(),
            publisher_prefix: "con".into(),
            components: vec![],
            package_size: 1024,
            package_sha256: "00".repeat(32),
            unmanaged: None,
            manifest: Some(crm_manifest()),
        }))
    }

    async fn solutions(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
    ) -> Result<Vec<SolutionVersion>, EnvironmentError> {
        // Only a reachable environment can say what it holds.
        self.info(env, credential).await?;
        Ok(self
            .solution(env, credential, "crm")
            .await?
            .into_iter()
            .collect())
    }

    async fn link(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        _host_id: &str,
        _force: bool,
    ) -> Result<Linked, EnvironmentError> {
        Ok(Linked {
            info: self.info(env, credential).await?,
            link_secret: (!self.without_link_secret.lock().unwrap().contains(&env.url))
                .then(|| format!("secret-of-{}", env.url)),
        })
    }

    async fn export(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _name: &str,
        _version: &str,
    ) -> Result<ExportedSolution, EnvironmentError> {
        Err(not_in_api_tests())
    }

    async fn download(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _package: &PackageRef,
        _into: &std::path::Path,
    ) -> Result<(), EnvironmentError> {
        Err(not_in_api_tests())
    }

    async fn upload(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _package: &PackageRef,
        _from: &std::path::Path,
    ) -> Result<(), EnvironmentError> {
        Err(not_in_api_tests())
    }

    async fn check(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _manifest: &Manifest,
        _settings: &DeploymentSettings,
        _allow_downgrade: bool,
    ) -> Result<EnvironmentCheck, EnvironmentError> {
        Ok(EnvironmentCheck {
            ok: true,
            ..EnvironmentCheck::default()
        })
    }

    async fn start_import(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _request: &ImportRequest,
    ) -> Result<ImportStatus, EnvironmentError> {
        Err(not_in_api_tests())
    }

    async fn import_status(
        &self,
        _env: &EnvironmentRecord,
        _credential: Option<&str>,
        _operation_id: &str,
    ) -> Result<ImportStatus, EnvironmentError> {
        Err(not_in_api_tests())
    }
}

/// The manifest of solution `crm` 1.0.0.0, which asks for no settings.
fn crm_manifest() -> Manifest {
    serde_json::from_value(serde_json::json!({
        "unique_name": "crm", "display_name": "CRM", "version": "1.0.0.0",
        "publisher": { "unique_name": "contoso", "prefix": "con" },
    }))
    .expect("a manifest")
}

/// The API tests never run the engine's worker, which is what moves packages.
fn not_in_api_tests() -> EnvironmentError {
    EnvironmentError::Refused("the API tests do not move packages".into())
}

/// Plays the plugin runtime for the engine: every gate is pending and every validator
/// finds nothing. The API tests never run the engine's worker, so it is rarely asked.
pub struct FakeGates;

#[async_trait]
impl GateRunner for FakeGates {
    async fn evaluate(
        &self,
        _plugin_id: &str,
        _deployment: Arc<DeploymentFacts>,
        _votes: &[Vote],
        _config: &Config,
        _now: Timestamp,
    ) -> GateOutcome<Decision> {
        GateOutcome {
            result: Ok(Decision::Pending {
                message: "waiting".into(),
                approvers: vec![],
                recheck_after_seconds: None,
            }),
            log: vec![],
            duration_us: 1,
            fuel_used: 1,
        }
    }

    async fn validate(
        &self,
        _plugin_id: &str,
        _deployment: Arc<DeploymentFacts>,
        _config: &Config,
        _now: Timestamp,
    ) -> GateOutcome<Vec<Finding>> {
        GateOutcome {
            result: Ok(vec![]),
            log: vec![],
            duration_us: 1,
            fuel_used: 1,
        }
    }
}
