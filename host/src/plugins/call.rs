//! One call into a plugin: a fresh store and instance, its limits, and a report of what it
//! used, whatever the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{self, wit};
use super::load::{LoadedPlugin, Prepared};
use super::sandbox::{LimitHit, Sandbox};
use super::{PluginLimits, Runtime};
use crate::pipeline::{
    Config, Decision, DeploymentFacts, Finding, LogLine, LogStream, PluginInfo, PluginWorld,
    Timestamp, Vote,
};

/// The outcome of one call, with what it cost.
#[derive(Debug, Clone)]
pub struct Invocation<T> {
    pub result: Result<T, PluginError>,
    /// Wall time from the start of instantiation to the end of the call.
    pub duration: Duration,
    /// Instructions the guest ran, instantiation included.
    pub fuel_used: u64,
    /// What the plugin logged, through `host.log`, stdout and stderr.
    pub log: Vec<LogLine>,
}

/// Why a plugin call failed. A gate that fails this way fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("the plugin ran out of fuel: it used its limit of {limit} instructions")]
    OutOfFuel { limit: u64 },
    #[error("the plugin was stopped at its wall-time limit of {} ms", limit.as_millis())]
    Timeout { limit: Duration },
    #[error("the plugin hit its memory limit: {0}")]
    MemoryLimit(LimitHit),
    #[error("the plugin hit its table limit: {0}")]
    TableLimit(LimitHit),
    #[error("the plugin hit its log limit: {0}")]
    LogLimit(LimitHit),
    #[error("the plugin's answer has {size} bytes of text, over the limit of {limit}")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the plugin overflowed its stack")]
    StackOverflow,
    #[error("the plugin panicked: {message}")]
    Panic { message: String },
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiation(String),
    #[error("the plugin is a {actual}, but was called as a {expected}")]
    WrongWorld {
        expected: PluginWorld,
        actual: PluginWorld,
    },
}

impl PluginError {
    /// A stable, machine-readable name of the cause, for metrics and the API.
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::OutOfFuel { .. } => "out_of_fuel",
            PluginError::Timeout { .. } => "timeout",
            PluginError::MemoryLimit(_) => "memory_limit",
            PluginError::TableLimit(_) => "table_limit",
            PluginError::LogLimit(_) => "log_limit",
            PluginError::OutputTooLarge { .. } => "output_too_large",
            PluginError::StackOverflow => "stack_overflow",
            PluginError::Panic { .. } => "panic",
            PluginError::Trap(_) => "trap",
            PluginError::Instantiation(_) => "instantiation",
            PluginError::WrongWorld { .. } => "wrong_world",
        }
    }
}

impl Runtime {
    /// Asks an approval gate for its decision.
    pub async fn evaluate(
        &self,
        plugin: &LoadedPlugin,
        deployment: Arc<DeploymentFacts>,
        votes: &[Vote],
        config: &Config,
        now: Timestamp,
    ) -> Invocation<Decision> {
        let Prepared::Approver(pre) = &plugin.prepared else {
            return wrong_world(PluginWorld::Approver, plugin.world());
        };
        let limits = plugin.limits();
        let mut store = self.store(limits, config.clone(), now);
        let started = Instant::now();
        let votes: Vec<wit::Vote> = votes.iter().map(Into::into).collect();
        let outcome = tokio::time::timeout(limits.wall_time, async {
            let instance = pre.instantiate_async(&mut store).await?;
            let handle = store.data_mut().push_deployment(deployment)?;
            instance
                .gatehouse_plugin_approval()
                .call_evaluate(&mut store, handle, &votes)
                .await
        })
        .await;
        finish(store, started, limits, outcome, |decision| {
            check_output(bindings::decision_text_bytes(&decision), limits)?;
            Ok(decision.into())
        })
    }

    /// Asks a validator for its findings.
    pub async fn validate(
        &self,
        plugin: &LoadedPlugin,
        deployment: Arc<DeploymentFacts>,
        config: &Config,
        now: Timestamp,
    ) -> Invocation<Vec<Finding>> {
        let Prepared::Validator(pre) = &plugin.prepared else {
            return wrong_world(PluginWorld::Validator, plugin.world());
        };
        let limits = plugin.limits();
        let mut store = self.store(limits, config.clone(), now);
        let started = Instant::now();
        let outcome = tokio::time::timeout(limits.wall_time, async {
            let instance = pre.instantiate_async(&mut store).await?;
            let handle = store.data_mut().push_deployment(deployment)?;
            instance
                .gatehouse_plugin_validation()
                .call_validate(&mut store, handle)
                .await
        })
        .await;
        finish(store, started, limits, outcome, |findings| {
            check_output(bindings::findings_text_bytes(&findings), limits)?;
            Ok(findings.into_iter().map(Into::into).collect())
        })
    }

    /// Asks the plugin whether it accepts this configuration. `Ok(Err(message))` is the
    /// plugin's refusal, to show to the admin.
    pub async fn check_config(
        &self,
        plugin: &LoadedPlugin,
        config: &Config,
        now: Timestamp,
    ) -> Invocation<Result<(), String>> {
        let limits = plugin.limits();
        let mut store = self.store(limits, config.clone(), now);
        let started = Instant::now();
        let pairs: Vec<(String, String)> =
            config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let outcome = tokio::time::timeout(limits.wall_time, async {
            match &plugin.prepared {
                Prepared::Approver(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance
                        .gatehouse_plugin_plugin()
                        .call_check_config(&mut store, &pairs)
                        .await
                }
                Prepared::Validator(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance
                        .gatehouse_plugin_plugin()
                        .call_check_config(&mut store, &pairs)
                        .await
                }
            }
        })
        .await;
        finish(store, started, limits, outcome, |verdict| {
            check_output(verdict.as_ref().err().map_or(0, String::len), limits)?;
            Ok(verdict)
        })
    }

    pub(super) async fn describe(
        &self,
        prepared: &Prepared,
        limits: &PluginLimits,
    ) -> Invocation<PluginInfo> {
        let mut store = self.store(limits, Config::new(), now_millis());
        let started = Instant::now();
        let outcome = tokio::time::timeout(limits.wall_time, async {
            match prepared {
                Prepared::Approver(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance
                        .gatehouse_plugin_plugin()
                        .call_describe(&mut store)
                        .await
                }
                Prepared::Validator(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance
                        .gatehouse_plugin_plugin()
                        .call_describe(&mut store)
                        .await
                }
            }
        })
        .await;
        finish(store, started, limits, outcome, |info| {
            let text = info.name.len()
                + info.version.len()
                + info.description.len()
                + info.config_keys.iter().map(String::len).sum::<usize>();
            check_output(text, limits)?;
            Ok(info.into())
        })
    }

    pub(super) fn store(
        &self,
        limits: &PluginLimits,
        config: Config,
        now: Timestamp,
    ) -> Store<Sandbox> {
        let mut store = Store::new(&self.engine, Sandbox::new(limits, config, now));
        store.limiter(Sandbox::limiter);
        store
            .set_fuel(limits.fuel)
            .expect("fuel is enabled on the engine");
        // Yield to the executor at every tick, so the wall-time timeout can fire and a slow
        // plugin never holds a worker thread for longer than a tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store
    }
}

/// The wall clock now, in the contract's milliseconds.
pub fn now_millis() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or_default()
}

fn wrong_world<T>(expected: PluginWorld, actual: PluginWorld) -> Invocation<T> {
    Invocation {
        result: Err(PluginError::WrongWorld { expected, actual }),
        duration: Duration::ZERO,
        fuel_used: 0,
        log: Vec::new(),
    }
}

fn check_output(size: usize, limits: &PluginLimits) -> Result<(), PluginError> {
    if size > limits.output_bytes {
        return Err(PluginError::OutputTooLarge {
            size,
            limit: limits.output_bytes,
        });
    }
    Ok(())
}

/// Turns what the call produced into an [`Invocation`], naming the cause of any failure.
pub(super) fn finish<W, T>(
    store: Store<Sandbox>,
    started: Instant,
    limits: &PluginLimits,
    outcome: Result<wasmtime::Result<W>, tokio::time::error::Elapsed>,
    convert: impl FnOnce(W) -> Result<T, PluginError>,
) -> Invocation<T> {
    let duration = started.elapsed();
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let log = store.data().take_log();
    let result = match outcome {
        Err(_elapsed) => Err(PluginError::Timeout {
            limit: limits.wall_time,
        }),
        Ok(Err(err)) => Err(classify(&err, limits, &log)),
        Ok(Ok(answer)) => convert(answer),
    };
    Invocation {
        result,
        duration,
        fuel_used,
        log,
    }
}

fn classify(err: &wasmtime::Error, limits: &PluginLimits, log: &[LogLine]) -> PluginError {
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return match hit {
            LimitHit::Memory { .. } => PluginError::MemoryLimit(hit.clone()),
            LimitHit::Table { .. } => PluginError::TableLimit(hit.clone()),
            LimitHit::Log { .. } => PluginError::LogLimit(hit.clone()),
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => PluginError::OutOfFuel { limit: limits.fuel },
            Trap::StackOverflow => PluginError::StackOverflow,
            Trap::MemoryOutOfBounds if runaway_recursion(err) => PluginError::StackOverflow,
            Trap::UnreachableCodeReached => match panic_message(log) {
                Some(message) => PluginError::Panic { message },
                None => PluginError::Trap(trap.to_string()),
            },
            other => PluginError::Trap(other.to_string()),
        };
    }
    PluginError::Instantiation(format!("{err:#}"))
}

/// Languages that keep their stack in linear memory (Rust and C on wasm32) overflow it
/// as an out-of-bounds access below address zero. Every captured frame being the same
/// function tells that apart from a wild pointer.
fn runaway_recursion(err: &wasmtime::Error) -> bool {
    let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let frames = backtrace.frames();
    frames.len() >= RECURSION_FRAMES
        && frames[..RECURSION_FRAMES]
            .iter()
            .all(|f| f.func_index() == frames[0].func_index())
}

/// Frames of one function that mark a runaway recursion; wasmtime captures 20 by default.
const RECURSION_FRAMES: usize = 16;

/// A Rust guest's panic prints `thread '…' panicked at file:line:col:` and then the
/// message to stderr before it traps.
fn panic_message(log: &[LogLine]) -> Option<String> {
    let stderr: Vec<&str> = log
        .iter()
        .filter(|l| l.stream == LogStream::Stderr)
        .map(|l| l.message.as_str())
        .collect();
    let at = stderr.iter().position(|l| l.contains("panicked at"))?;
    let message: Vec<&str> = stderr[at + 1..]
        .iter()
        .take_while(|l| !l.starts_with("note:"))
        .copied()
        .collect();
    if message.is_empty() {
        Some(stderr[at].to_owned())
    } else {
        Some(message.join("\n"))
    }
}
