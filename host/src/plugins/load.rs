//! Turning uploaded bytes into a plugin that is ready to call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::{
    APPROVAL_EXPORT, ApproverPre, PLUGIN_EXPORT, VALIDATION_EXPORT, ValidatorPre,
};
use super::call::PluginError;
use super::{PluginLimits, Runtime};
use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;
use crate::pipeline::{PluginInfo, PluginWorld};

/// Longest plugin name accepted from `describe()`.
const MAX_NAME_LEN: usize = 64;

/// Why a component was refused. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the upload is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the upload is not WebAssembly (it does not start with the `\\0asm` header)")]
    NotWasm,
    #[error(
        "the upload is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    NotAComponent,
    #[error("the component is invalid or could not be compiled: {0}")]
    Invalid(String),
    #[error(
        "the component fits neither plugin world: it must export `{PLUGIN_EXPORT}` and one of `{APPROVAL_EXPORT}` or `{VALIDATION_EXPORT}`, but it exports {exports}"
    )]
    UnknownWorld { exports: String },
    #[error(
        "the component exports both `{APPROVAL_EXPORT}` and `{VALIDATION_EXPORT}`; a plugin is either an approver or a validator"
    )]
    BothWorlds,
    #[error("the component needs an import that Gatehouse does not grant to plugins: {0}")]
    UnsupportedImport(String),
    #[error("the plugin's describe() failed: {0}")]
    Describe(PluginError),
    #[error("the plugin's describe() returned an unusable {field}: {reason}")]
    BadDescription { field: &'static str, reason: String },
}

/// Whether the machine code came from the disk cache or a fresh compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledFrom {
    Cache,
    Source,
}

#[derive(Clone)]
pub(super) enum Prepared {
    Approver(ApproverPre<super::Sandbox>),
    Validator(ValidatorPre<super::Sandbox>),
}

/// A component compiled, checked and ready to instantiate. Clones share the compiled code.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(super) prepared: Prepared,
    info: Arc<PluginInfo>,
    sha256: Arc<str>,
    size: usize,
    compiled_from: CompiledFrom,
    compile_time: Duration,
    limits: PluginLimits,
}

impl LoadedPlugin {
    pub fn world(&self) -> PluginWorld {
        match self.prepared {
            Prepared::Approver(_) => PluginWorld::Approver,
            Prepared::Validator(_) => PluginWorld::Validator,
        }
    }

    /// What the plugin's `describe()` returned at load.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The component's SHA-256, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn compiled_from(&self) -> CompiledFrom {
        self.compiled_from
    }

    /// Time spent compiling, or reading the precompiled form from the cache.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// The same plugin with other limits for its calls; validate them first.
    pub fn with_limits(mut self, limits: PluginLimits) -> LoadedPlugin {
        self.limits = limits;
        self
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("world", &self.world())
            .field("info", &self.info)
            .field("sha256", &self.sha256)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Checks, compiles (or reads from the cache) and describes a component.
    ///
    /// Compiling takes seconds for a large component, so it runs on a blocking thread.
    pub async fn load(&self, bytes: impl Into<Arc<[u8]>>) -> Result<LoadedPlugin, LoadError> {
        let bytes: Arc<[u8]> = bytes.into();
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit: MAX_COMPONENT_BYTES,
            });
        }
        if !wasmparser::Parser::is_component(&bytes) {
            return Err(if wasmparser::Parser::is_core_wasm(&bytes) {
                LoadError::NotAComponent
            } else {
                LoadError::NotWasm
            });
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));

        let started = Instant::now();
        let (component, compiled_from) = {
            let engine = self.engine.clone();
            let cache = self.cache.clone();
            let sha256 = sha256.clone();
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || compile(&engine, cache.as_ref(), &sha256, &bytes))
                .await
                .map_err(|e| LoadError::Invalid(format!("the compiler thread failed: {e}")))??
        };
        let compile_time = started.elapsed();

        let world = detect_world(&self.engine, &component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnsupportedImport(format!("{e:#}")))?;
        let prepared = match world {
            PluginWorld::Approver => Prepared::Approver(
                ApproverPre::new(instance_pre).map_err(|e| LoadError::Invalid(format!("{e:#}")))?,
            ),
            PluginWorld::Validator => Prepared::Validator(
                ValidatorPre::new(instance_pre)
                    .map_err(|e| LoadError::Invalid(format!("{e:#}")))?,
            ),
        };

        let limits = PluginLimits::default();
        let info = self
            .describe(&prepared, &limits)
            .await
            .result
            .map_err(LoadError::Describe)?;
        check_description(&info)?;
        tracing::info!(
            plugin = %info.name,
            version = %info.version,
            %world,
            ?compiled_from,
            compile_ms = compile_time.as_millis() as u64,
            "plugin loaded"
        );
        Ok(LoadedPlugin {
            prepared,
            info: Arc::new(info),
            sha256: sha256.into(),
            size: bytes.len(),
            compiled_from,
            compile_time,
            limits,
        })
    }
}

fn compile(
    engine: &wasmtime::Engine,
    cache: Option<&super::cache::CompileCache>,
    sha256: &str,
    bytes: &[u8],
) -> Result<(Component, CompiledFrom), LoadError> {
    if let Some(component) = cache.and_then(|c| c.get(engine, sha256)) {
        return Ok((component, CompiledFrom::Cache));
    }
    let component =
        Component::new(engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    if let Some(cache) = cache {
        cache.put(sha256, &component);
    }
    Ok((component, CompiledFrom::Source))
}

/// Reads the world from the component's own exports, never from a name it claims.
fn detect_world(
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<PluginWorld, LoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |name: &str| exports.iter().any(|e| e == name);
    let world = match (has(APPROVAL_EXPORT), has(VALIDATION_EXPORT)) {
        (true, true) => return Err(LoadError::BothWorlds),
        (true, false) => Some(PluginWorld::Approver),
        (false, true) => Some(PluginWorld::Validator),
        (false, false) => None,
    };
    match world {
        Some(world) if has(PLUGIN_EXPORT) => Ok(world),
        _ => Err(LoadError::UnknownWorld {
            exports: if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

fn check_description(info: &PluginInfo) -> Result<(), LoadError> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= MAX_NAME_LEN
        && info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !info.name.starts_with('-');
    if !name_ok {
        return Err(LoadError::BadDescription {
            field: "name",
            reason: format!(
                "{:?} must be 1 to {MAX_NAME_LEN} characters of a-z, 0-9 and `-`",
                info.name
            ),
        });
    }
    let version_ok = semver::Version::parse(&info.version).is_ok();
    if !version_ok {
        return Err(LoadError::BadDescription {
            field: "version",
            reason: format!(
                "{:?} must be a semantic version such as 1.2.0",
                info.version
            ),
        });
    }
    Ok(())
}
