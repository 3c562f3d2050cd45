//! The one wasmtime `Engine` of the process, and the settings behind it.
//!
//! Nothing outside this module sees a raw `wasmtime::Config`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::pipeline::plugin_limits::MAX_MEMORY_BYTES;

/// How often the epoch advances. A running guest yields to the executor once per tick, so
/// this bounds how long one plugin holds a worker thread, and how late a deadline lands.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Plugin calls that may be in flight at once. Each holds one component instance slot, a
/// fiber stack and its memories from the pool.
const POOL_CONCURRENT_CALLS: u32 = 512;

/// Python components link about a dozen core modules, each with its own instance.
const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Memory kept mapped in a freed slot, so the next call skips the page faults and the
/// TLB shootdowns that `madvise` costs every other core. With `PAGEMAP_SCAN` (Linux 6.7+)
/// only the pages the call dirtied are reset; without it this much is zeroed with memset.
/// Measured on the two-person rule: 21.7 µs per call and 29,000 calls/s on two cores
/// without, 13 µs and 75,000 calls/s with (`cargo bench --bench plugins`).
const POOL_MEMORY_KEEP_RESIDENT: usize = 2 << 20;
const POOL_TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Guest stack. Rust's default 1 MiB main stack fits inside with room for host frames.
const MAX_WASM_STACK: usize = 1 << 20;
const ASYNC_STACK: usize = 2 << 20;

/// Which instance allocator the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allocator {
    /// Slots reserved up front and reused: the fast path.
    #[default]
    Pooling,
    /// The pool's address space could not be reserved (a `ulimit -v`, say).
    OnDemand,
}

/// Builds the engine, with the pooling allocator where the address space can be reserved
/// and it is wanted.
pub fn build(wanted: Allocator) -> wasmtime::Result<(Engine, Allocator)> {
    if wanted == Allocator::OnDemand {
        return Ok((
            Engine::new(&config(Allocator::OnDemand))?,
            Allocator::OnDemand,
        ));
    }
    match Engine::new(&config(Allocator::Pooling)) {
        Ok(engine) => Ok((engine, Allocator::Pooling)),
        Err(err) => {
            tracing::warn!(
                error = %err,
                "could not reserve the plugin instance pool; falling back to on-demand allocation, which is slower per call"
            );
            Ok((
                Engine::new(&config(Allocator::OnDemand))?,
                Allocator::OnDemand,
            ))
        }
    }
}

fn config(allocator: Allocator) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .parallel_compilation(true);
    if allocator == Allocator::Pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_CONCURRENT_CALLS)
            .total_stacks(POOL_CONCURRENT_CALLS)
            .total_core_instances(POOL_CONCURRENT_CALLS * 4)
            .total_memories(POOL_CONCURRENT_CALLS * 2)
            .total_tables(POOL_CONCURRENT_CALLS * 4)
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(crate::pipeline::plugin_limits::DEFAULT_MEMORIES as u32)
            .max_tables_per_component(POOL_CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(MAX_MEMORY_BYTES)
            .table_elements(crate::pipeline::plugin_limits::DEFAULT_TABLE_ELEMENTS)
            .linear_memory_keep_resident(POOL_MEMORY_KEEP_RESIDENT)
            .table_keep_resident(POOL_TABLE_KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("gatehouse-epoch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
