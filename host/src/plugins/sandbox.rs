//! What a plugin gets inside its store: the `host` and `deployment` imports, WASI with
//! nothing in it, a capped log, and the limiter that stops it growing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{wit, wit_host};
use crate::pipeline::plugin_limits::PluginLimits;
use crate::pipeline::{Config, DeploymentFacts, LogLevel, LogLine, LogStream, Timestamp};

/// A limit a plugin ran into, raised as the trap that stops it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("linear memory would grow to {desired} bytes, past the limit of {limit}")]
    Memory { desired: usize, limit: usize },
    #[error("tables would grow to {desired} elements, past the limit of {limit}")]
    Table { desired: usize, limit: usize },
    #[error("the log passed its limit of {limit} bytes")]
    Log { limit: usize },
}

/// The deployment as the guest holds it: shared, never copied per call.
pub struct DeploymentHandle(pub Arc<DeploymentFacts>);

/// The state of one call's store.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    log: Arc<Mutex<CallLog>>,
    config: Config,
    now: Timestamp,
}

impl Sandbox {
    pub fn new(limits: &PluginLimits, config: Config, now: Timestamp) -> Sandbox {
        let log = Arc::new(Mutex::new(CallLog::new(limits.log_bytes)));
        let wasi = WasiCtxBuilder::new()
            .stdout(LogPipe {
                log: log.clone(),
                stream: LogStream::Stdout,
            })
            .stderr(LogPipe {
                log: log.clone(),
                stream: LogStream::Stderr,
            })
            .wall_clock(RecordedClock(now))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Sandbox {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            log,
            config,
            now,
        }
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    pub fn push_deployment(
        &mut self,
        deployment: Arc<DeploymentFacts>,
    ) -> wasmtime::Result<Resource<DeploymentHandle>> {
        Ok(self.table.push(DeploymentHandle(deployment))?)
    }

    /// The log lines so far, with any unfinished stdout or stderr line.
    pub fn take_log(&self) -> Vec<LogLine> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.finish();
        std::mem::take(&mut log.lines)
    }

    fn deployment(
        &self,
        handle: &Resource<DeploymentHandle>,
    ) -> wasmtime::Result<&DeploymentFacts> {
        Ok(&self.table.get(handle)?.0)
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit_host::Host for Sandbox {
    fn log(&mut self, level: wit_host::Level, message: String) -> wasmtime::Result<()> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push(level.into(), LogStream::Log, message)?;
        Ok(())
    }

    fn config(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }

    fn now(&mut self) -> wasmtime::Result<Timestamp> {
        Ok(self.now)
    }
}

impl wit::Host for Sandbox {}

impl wit::HostDeployment for Sandbox {
    fn id(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.id.clone())
    }
    fn pipeline_id(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.pipeline_id.clone())
    }
    fn pipeline_name(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.pipeline_name.clone())
    }
    fn stage(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<wit::Stage> {
        Ok((&self.deployment(&d)?.stage).into())
    }
    fn source(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<wit::Environment> {
        Ok((&self.deployment(&d)?.source).into())
    }
    fn solution_name(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.solution_name.clone())
    }
    fn solution_version(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.solution_version.clone())
    }
    fn publisher_prefix(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.publisher_prefix.clone())
    }
    fn managed(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<bool> {
        Ok(self.deployment(&d)?.managed)
    }
    fn package_size(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<u64> {
        Ok(self.deployment(&d)?.package_size)
    }
    fn package_sha256(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.package_sha256.clone())
    }
    fn components(
        &mut self,
        d: Resource<DeploymentHandle>,
    ) -> wasmtime::Result<Vec<wit::ComponentRef>> {
        Ok(self
            .deployment(&d)?
            .components
            .iter()
            .map(|c| wit::ComponentRef {
                kind: c.kind.clone(),
                name: c.name.clone(),
            })
            .collect())
    }
    fn installed_version(
        &mut self,
        d: Resource<DeploymentHandle>,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.deployment(&d)?.installed_version.clone())
    }
    fn requested_by(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<wit::Principal> {
        Ok((&self.deployment(&d)?.requested_by).into())
    }
    fn requested_at(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<Timestamp> {
        Ok(self.deployment(&d)?.requested_at)
    }
    fn scheduled_for(
        &mut self,
        d: Resource<DeploymentHandle>,
    ) -> wasmtime::Result<Option<Timestamp>> {
        Ok(self.deployment(&d)?.scheduled_for)
    }
    fn notes(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<String> {
        Ok(self.deployment(&d)?.notes.clone())
    }
    fn environment_variable_names(
        &mut self,
        d: Resource<DeploymentHandle>,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .deployment(&d)?
            .environment_variables
            .iter()
            .map(|v| v.name.clone())
            .collect())
    }
    fn environment_variable(
        &mut self,
        d: Resource<DeploymentHandle>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self
            .deployment(&d)?
            .visible_variable(&name)
            .map(str::to_owned))
    }
    fn connection_reference(
        &mut self,
        d: Resource<DeploymentHandle>,
        logical_name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self
            .deployment(&d)?
            .connection_references
            .get(&logical_name)
            .cloned())
    }
    fn drop(&mut self, d: Resource<DeploymentHandle>) -> wasmtime::Result<()> {
        self.table.delete(d)?;
        Ok(())
    }
}

/// Memory and table growth, stopped with a trap that names the limit.
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    counts: StoreLimits,
}

impl Limiter {
    fn new(limits: &PluginLimits) -> Limiter {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            counts: wasmtime::StoreLimitsBuilder::new()
                .instances(limits.instances)
                .tables(limits.tables)
                .memories(limits.memories)
                .build(),
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(LimitHit::Memory {
                desired,
                limit: self.memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(LimitHit::Table {
                desired,
                limit: self.table_elements,
            }
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.counts.instances()
    }

    fn tables(&self) -> usize {
        self.counts.tables()
    }

    fn memories(&self) -> usize {
        self.counts.memories()
    }
}

/// One call's log: `host.log` lines plus stdout and stderr split into lines, capped.
struct CallLog {
    lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    partial: [Vec<u8>; 2],
}

impl CallLog {
    fn new(cap: usize) -> CallLog {
        CallLog {
            lines: Vec::new(),
            bytes: 0,
            cap,
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), LimitHit> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.cap {
            self.lines.push(LogLine {
                level: LogLevel::Error,
                stream: LogStream::Log,
                message: format!(
                    "log truncated: the plugin wrote more than {} bytes",
                    self.cap
                ),
            });
            return Err(LimitHit::Log { limit: self.cap });
        }
        Ok(())
    }

    fn push(
        &mut self,
        level: LogLevel,
        stream: LogStream,
        message: String,
    ) -> Result<(), LimitHit> {
        self.charge(message.len())?;
        self.lines.push(LogLine {
            level,
            stream,
            message,
        });
        Ok(())
    }

    fn write(&mut self, stream: LogStream, bytes: &[u8]) -> Result<(), LimitHit> {
        self.charge(bytes.len())?;
        let index = stream_index(stream);
        self.partial[index].extend_from_slice(bytes);
        while let Some(end) = self.partial[index].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[index].drain(..=end).collect();
            self.emit(stream, &line[..line.len() - 1]);
        }
        Ok(())
    }

    fn finish(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream_index(stream)]);
            if !rest.is_empty() {
                self.emit(stream, &rest);
            }
        }
    }

    fn emit(&mut self, stream: LogStream, line: &[u8]) {
        let level = if stream == LogStream::Stderr {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        self.lines.push(LogLine {
            level,
            stream,
            message: String::from_utf8_lossy(line).into_owned(),
        });
    }
}

fn stream_index(stream: LogStream) -> usize {
    usize::from(stream == LogStream::Stderr)
}

/// The guest's stdout or stderr, feeding the call log.
struct LogPipe {
    log: Arc<Mutex<CallLog>>,
    stream: LogStream,
}

impl LogPipe {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), LimitHit> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(self.stream, bytes)
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogPipe {
            log: self.log.clone(),
            stream: self.stream,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LogPipe {
            log: self.log.clone(),
            stream: self.stream,
        })
    }
}

/// Guest output can always be taken whole; past the cap the write traps.
const PIPE_WRITE_BUDGET: usize = 1 << 20;

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes)
            .map_err(|hit| StreamError::Trap(hit.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(PIPE_WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(
            self.write_bytes(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The WASI wall clock reads the evaluation's recorded time, like `host.now`.
struct RecordedClock(Timestamp);

impl HostWallClock for RecordedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0)
    }
}
