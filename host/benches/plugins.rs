//! Gate-evaluation benchmarks: prints medians and ratios.
//!
//! Run with `scripts/build-plugins && cargo bench -p gatehouse --bench plugins`.
//! It measures the server's real call path (async, fuel, epoch deadline, wall-time timeout
//! and log capture all on) against the same rule as plain Rust and against a naive host,
//! the throughput with both cores busy, and a Python plugin's compile against its cache.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::pipeline::{Config, Decision, Vote};
use gatehouse::plugins::{Allocator, CompiledFrom, Runtime, RuntimeOptions};

const SAMPLES: usize = 20_000;
const WARMUP: usize = 2_000;
const NOW: u64 = 1_795_680_200_000;

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio.block_on(run());
}

async fn run() {
    let deployment = Arc::new(support::sample_deployment());
    let votes = vec![support::vote("ravi", &["release-managers"], true)];
    let config: Config = [("group".to_owned(), "release-managers".to_owned())].into();
    let bytes = support::plugin_bytes("two-person-rule");

    let runtime = Arc::new(Runtime::new(RuntimeOptions::default()).expect("runtime"));
    println!("allocator: {:?}", runtime.allocator());
    let plugin = runtime
        .load(bytes.clone())
        .await
        .expect("two-person-rule loads");
    let first = runtime
        .evaluate(&plugin, deployment.clone(), &votes, &config, NOW)
        .await;
    assert!(
        matches!(first.result, Ok(Decision::Pending { .. })),
        "the benchmark expects a pending decision, got {:?}",
        first.result
    );
    println!("fuel per evaluation: {}", first.fuel_used);

    if !wanted("evaluation") {
        if wanted("throughput") {
            throughput(&runtime, &plugin, &deployment, &votes, &config).await;
        }
        if wanted("restart") {
            restart().await;
        }
        return;
    }
    let sandboxed = sample(SAMPLES, || {
        let (runtime, plugin, deployment, votes, config) =
            (&runtime, &plugin, deployment.clone(), &votes, &config);
        async move {
            let call = runtime
                .evaluate(plugin, deployment, votes, config, NOW)
                .await;
            std::hint::black_box(call.result.expect("evaluates"));
        }
    })
    .await;

    let naive_runtime = Runtime::new(RuntimeOptions {
        allocator: Allocator::OnDemand,
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let naive_plugin = naive_runtime.load(bytes).await.expect("loads");
    let naive = sample(SAMPLES / 4, || {
        let (runtime, plugin, deployment, votes, config) = (
            &naive_runtime,
            &naive_plugin,
            deployment.clone(),
            &votes,
            &config,
        );
        async move {
            let call = runtime
                .evaluate_naively(plugin, deployment, votes, config, NOW)
                .await;
            std::hint::black_box(call.result.expect("evaluates"));
        }
    })
    .await;

    let native = native_rule_median(&deployment.requested_by.id, &votes);

    println!();
    println!("gate evaluation, two-person-rule, {SAMPLES} samples after {WARMUP} warm-up calls");
    println!(
        "  sandboxed (pooling, InstancePre, async, fuel, epoch, timeout, log)  median {:>9.2} µs  p99 {:>9.2} µs",
        micros(sandboxed.median),
        micros(sandboxed.p99)
    );
    println!(
        "  naive host (on-demand allocation, no InstancePre)                   median {:>9.2} µs  p99 {:>9.2} µs",
        micros(naive.median),
        micros(naive.p99)
    );
    println!(
        "  the same rule as a plain Rust function                              median {:>9.3} µs",
        micros(native)
    );
    println!(
        "  ratios: naive / sandboxed = {:.1}x, sandboxed / plain Rust = {:.0}x",
        naive.median.as_secs_f64() / sandboxed.median.as_secs_f64(),
        sandboxed.median.as_secs_f64() / native.as_secs_f64()
    );

    if wanted("throughput") {
        throughput(&runtime, &plugin, &deployment, &votes, &config).await;
    }
    if wanted("restart") {
        restart().await;
    }
}

/// Sections to run: all, or those named on the command line
/// (`cargo bench --bench plugins -- evaluation`).
fn wanted(section: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|n| n == section)
}

struct Stats {
    median: Duration,
    p99: Duration,
}

async fn sample<F, Fut>(samples: usize, mut call: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        call().await;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    Stats {
        median: times[samples / 2],
        p99: times[samples * 99 / 100],
    }
}

/// The two-person rule as the plugin decides it, in plain Rust, timed in batches because
/// one call is far below the clock's resolution.
fn native_rule_median(requester: &str, votes: &[Vote]) -> Duration {
    fn decide(requester: &str, group: &str, required: usize, votes: &[Vote]) -> Decision {
        let mut approvers: Vec<&str> = Vec::new();
        for vote in votes
            .iter()
            .filter(|v| v.voter.id != requester && v.voter.groups.iter().any(|g| g == group))
        {
            if !vote.approve {
                return Decision::Reject {
                    reason: format!("vetoed by {}", vote.voter.display_name),
                };
            }
            if !approvers.contains(&vote.voter.id.as_str()) {
                approvers.push(&vote.voter.id);
            }
        }
        if approvers.len() >= required {
            Decision::Approve {
                reason: format!("approved by {}", approvers.join(", ")),
            }
        } else {
            Decision::Pending {
                message: format!(
                    "{} of {required} approvals from group {group}",
                    approvers.len()
                ),
                approvers: vec![format!("group:{group}")],
                recheck_after_seconds: None,
            }
        }
    }
    const BATCH: u32 = 1_000;
    let mut batches: Vec<Duration> = (0..200)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..BATCH {
                std::hint::black_box(decide(
                    std::hint::black_box(requester),
                    "release-managers",
                    2,
                    std::hint::black_box(votes),
                ));
            }
            started.elapsed() / BATCH
        })
        .collect();
    batches.sort();
    batches[batches.len() / 2]
}

async fn throughput(
    runtime: &Arc<Runtime>,
    plugin: &gatehouse::plugins::LoadedPlugin,
    deployment: &Arc<gatehouse::pipeline::DeploymentFacts>,
    votes: &[Vote],
    config: &Config,
) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 25_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let (runtime, plugin, deployment, votes, config) = (
                runtime.clone(),
                plugin.clone(),
                deployment.clone(),
                votes.to_vec(),
                config.clone(),
            );
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    let call = runtime
                        .evaluate(&plugin, deployment.clone(), &votes, &config, NOW)
                        .await;
                    std::hint::black_box(call.result.expect("evaluates"));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = started.elapsed();
    let total = TASKS * PER_TASK;
    println!();
    println!(
        "throughput: {total} evaluations by {TASKS} tasks on 2 worker threads in {:.2} s = {:.0} evaluations/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}

/// A restart loads the Python plugin from the precompiled cache instead of compiling it.
async fn restart() {
    let bytes = support::plugin_bytes("change-ticket-py");
    let cache = tempfile::tempdir().expect("temp dir");
    let options = RuntimeOptions {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeOptions::default()
    };
    let cold = Runtime::new(options.clone()).expect("runtime");
    let compiled = cold.load(bytes.clone()).await.expect("python plugin loads");
    assert_eq!(compiled.compiled_from(), CompiledFrom::Source);
    drop(cold);

    let mut cached = Vec::new();
    for _ in 0..5 {
        let warm = Runtime::new(options.clone()).expect("runtime");
        let plugin = warm.load(bytes.clone()).await.expect("python plugin loads");
        assert_eq!(plugin.compiled_from(), CompiledFrom::Cache);
        cached.push(plugin.compile_time());
    }
    cached.sort();
    let cached = cached[cached.len() / 2];
    println!();
    println!(
        "restart, change-ticket-py ({:.1} MB): compile {:.0} ms, load from cache (median of 5) {:.2} ms, {:.0}x faster",
        bytes.len() as f64 / 1e6,
        compiled.compile_time().as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        compiled.compile_time().as_secs_f64() / cached.as_secs_f64()
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
