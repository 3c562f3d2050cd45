//! The plugin runtime: the only code that knows about wasmtime.
//!
//! One [`Runtime`] per process holds the engine, the linker and the compile cache.
//! [`Runtime::load`] turns component bytes into a [`LoadedPlugin`], ready to instantiate;
//! every call then gets a fresh store and instance, its own limits, and a report of what
//! it used. A plugin that traps, panics or breaks a limit ends its call with a
//! [`PluginError`] that names the cause, and the runtime goes on serving.
//!
//! ```no_run
//! # async fn example(deployment: gatehouse::pipeline::DeploymentFacts) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use gatehouse::plugins::{Runtime, RuntimeOptions};
//!
//! let runtime = Runtime::new(RuntimeOptions::default())?;
//! let plugin = runtime.load(std::fs::read("two-person-rule.wasm")?).await?;
//! let call = runtime
//!     .evaluate(&plugin, Arc::new(deployment), &[], &Default::default(), 1_700_000_000_000)
//!     .await;
//! println!("{:?} in {:?} using {} fuel", call.result, call.duration, call.fuel_used);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod call;
mod wasm_engine;

mod load;
mod naive;
pub mod registry;
mod sandbox;

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use crate::pipeline::plugin_limits::PluginLimits;
pub use call::{Invocation, PluginError, now_millis};
pub use load::{CompiledFrom, LoadError, LoadedPlugin};
pub use sandbox::LimitHit;
pub use wasm_engine::{Allocator, EPOCH_TICK};

use sandbox::Sandbox;

/// How to build a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where precompiled components are kept across restarts; none compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The allocator to use; pooling falls back to on-demand when it cannot reserve its
    /// address space.
    pub allocator: Allocator,
}

/// The process's plugin runtime. Cheap to share: wrap it in an `Arc`.
pub struct Runtime {
    engine: Engine,
    allocator: Allocator,
    linker: Linker<Sandbox>,
    cache: Option<cache::CompileCache>,
    _ticker: wasm_engine::EpochTicker,
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("could not create the WebAssembly engine: {0}")]
    Engine(String),
    #[error("could not start the epoch ticker thread: {0}")]
    Ticker(#[from] std::io::Error),
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let (engine, allocator) = wasm_engine::build(options.allocator)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let linker = sandbox_linker(&engine).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let cache = options
            .cache_dir
            .map(|dir| cache::CompileCache::new(dir, &engine));
        let ticker = wasm_engine::EpochTicker::start(engine.clone())?;
        tracing::debug!(?allocator, "plugin runtime ready");
        Ok(Runtime {
            engine,
            allocator,
            linker,
            cache,
            _ticker: ticker,
        })
    }

    /// Which instance allocator the engine got.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// How late past its wall-time limit a call can end: one epoch tick.
    pub fn deadline_slack(&self) -> Duration {
        EPOCH_TICK
    }
}

/// Everything a plugin may import: `host`, the `deployment` resource, and WASI with
/// nothing in it.
fn sandbox_linker(engine: &Engine) -> wasmtime::Result<Linker<Sandbox>> {
    use wasmtime::component::HasSelf;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::wit::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    bindings::wit_host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocator", &self.allocator)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}
