//! The plugin runtime against real components: hostile fixtures, refused uploads, world
//! detection, the compile cache and the Python plugin.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::pipeline::{Config, Decision, PluginWorld};
use gatehouse::plugins::{
    CompiledFrom, LoadError, LoadedPlugin, PluginError, PluginLimits, Runtime, RuntimeOptions,
};

const NOW: u64 = 1_795_680_200_000;

fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions::default()).expect("the runtime starts")
}

fn config(entries: &[(&str, &str)]) -> Config {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Tight limits, so every hostile fixture is stopped quickly.
fn tight_limits() -> PluginLimits {
    PluginLimits {
        fuel: 200_000_000,
        wall_time: Duration::from_millis(300),
        memory_bytes: 32 << 20,
        log_bytes: 16 << 10,
        ..PluginLimits::default()
    }
}

async fn hostile(runtime: &Runtime) -> LoadedPlugin {
    runtime
        .load(support::plugin_bytes("hostile"))
        .await
        .expect("the hostile fixture loads")
        .with_limits(tight_limits())
}

async fn run_hostile(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    behaviour: &str,
) -> (PluginError, Duration) {
    let call = runtime
        .evaluate(
            plugin,
            Arc::new(support::sample_deployment()),
            &[],
            &config(&[("behaviour", behaviour)]),
            NOW,
        )
        .await;
    let err = call
        .result
        .expect_err(&format!("the `{behaviour}` fixture must fail"));
    (err, call.duration)
}

/// After any failure the runtime must still answer a well-behaved call correctly.
async fn assert_still_serving(runtime: &Runtime, plugin: &LoadedPlugin) {
    let call = runtime
        .evaluate(
            plugin,
            Arc::new(support::sample_deployment()),
            &[],
            &Config::new(),
            NOW,
        )
        .await;
    assert_eq!(
        call.result,
        Ok(Decision::Approve {
            reason: "well behaved".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_runs_out_of_fuel() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let (err, _) = run_hostile(&runtime, &plugin, "loop").await;
    assert_eq!(err, PluginError::OutOfFuel { limit: 200_000_000 });
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_with_plenty_of_fuel_stops_at_the_wall_time_limit() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await.with_limits(PluginLimits {
        fuel: u64::MAX / 2,
        wall_time: Duration::from_millis(200),
        ..tight_limits()
    });
    let (err, took) = run_hostile(&runtime, &plugin, "loop").await;
    assert_eq!(
        err,
        PluginError::Timeout {
            limit: Duration::from_millis(200)
        }
    );
    assert!(
        took < Duration::from_millis(400),
        "stopped only after {took:?}"
    );
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_memory_growth_stops_at_the_memory_limit() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let (err, _) = run_hostile(&runtime, &plugin, "grow").await;
    assert_eq!(err.code(), "memory_limit", "{err}");
    assert!(err.to_string().contains(&(32 << 20).to_string()), "{err}");
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_with_its_message() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let (err, _) = run_hostile(&runtime, &plugin, "panic").await;
    match &err {
        PluginError::Panic { message } => assert!(message.contains("on purpose"), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_recursion_is_a_stack_overflow() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let (err, _) = run_hostile(&runtime, &plugin, "stack").await;
    assert_eq!(err, PluginError::StackOverflow);
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_inside_wasi_stops_at_the_wall_time_limit() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let (err, took) = run_hostile(&runtime, &plugin, "sleep").await;
    assert_eq!(
        err,
        PluginError::Timeout {
            limit: Duration::from_millis(300)
        }
    );
    assert!(
        took < Duration::from_millis(500),
        "stopped only after {took:?}"
    );
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_stdout_stops_at_the_log_limit_and_keeps_what_fit() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let call = runtime
        .evaluate(
            &plugin,
            Arc::new(support::sample_deployment()),
            &[],
            &config(&[("behaviour", "stdout")]),
            NOW,
        )
        .await;
    assert_eq!(call.result.unwrap_err().code(), "log_limit");
    let kept: usize = call.log.iter().map(|l| l.message.len()).sum();
    assert!(kept > 0 && kept <= 17 << 10, "kept {kept} bytes of log");
    assert!(
        call.log.last().unwrap().message.contains("log truncated"),
        "the log says it was truncated"
    );
    assert_still_serving(&runtime, &plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_plugins_do_not_stall_other_calls() {
    let runtime = Arc::new(runtime());
    let well_behaved = hostile(&runtime).await;
    // Eight plugins spinning for a whole second each, on two worker threads.
    let busy = well_behaved.clone().with_limits(PluginLimits {
        fuel: u64::MAX / 2,
        wall_time: Duration::from_secs(1),
        ..tight_limits()
    });
    let spinners: Vec<_> = (0..8)
        .map(|_| {
            let (runtime, busy) = (runtime.clone(), busy.clone());
            tokio::spawn(async move { run_hostile(&runtime, &busy, "loop").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    assert_still_serving(&runtime, &well_behaved).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "a quick call waited {waited:?} behind busy plugins"
    );
    for spinner in spinners {
        let (err, _) = spinner.await.unwrap();
        assert_eq!(
            err,
            PluginError::Timeout {
                limit: Duration::from_secs(1)
            }
        );
    }
}

#[tokio::test]
async fn bytes_that_are_not_wasm_are_refused() {
    let err = runtime()
        .load(b"#!/bin/sh\necho not a plugin\n".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NotWasm), "{err}");
}

#[tokio::test]
async fn a_core_module_is_refused_as_not_a_component() {
    let module = wat::parse_str("(module (func (export \"evaluate\")))").unwrap();
    let err = runtime().load(module).await.unwrap_err();
    assert!(matches!(err, LoadError::NotAComponent), "{err}");
    assert!(
        err.to_string().contains("wasm32-wasip2"),
        "the error says what to do: {err}"
    );
}

#[tokio::test]
async fn a_component_that_fits_neither_world_is_refused() {
    let empty = wat::parse_str("(component)").unwrap();
    let err = runtime().load(empty).await.unwrap_err();
    assert!(matches!(err, LoadError::UnknownWorld { .. }), "{err}");

    let other = wat::parse_str(
        r#"(component
            (core module $m (func (export "run") (result i32) i32.const 7))
            (core instance $i (instantiate $m))
            (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
    )
    .unwrap();
    let err = runtime().load(other).await.unwrap_err();
    match &err {
        LoadError::UnknownWorld { exports } => assert!(exports.contains("`run`"), "{err}"),
        other => panic!("expected UnknownWorld, got {other:?}"),
    }
}

#[tokio::test]
async fn a_truncated_component_is_refused_as_invalid() {
    let mut bytes = support::plugin_bytes("two-person-rule");
    bytes.truncate(bytes.len() / 2);
    let err = runtime().load(bytes).await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn an_oversized_upload_is_refused_before_it_is_parsed() {
    let mut bytes = support::plugin_bytes("two-person-rule");
    bytes.resize(
        gatehouse::pipeline::plugin_admin::MAX_COMPONENT_BYTES + 1,
        0,
    );
    let err = runtime().load(bytes).await.unwrap_err();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn the_world_and_identity_come_from_the_component_itself() {
    let runtime = runtime();
    let gate = runtime
        .load(support::plugin_bytes("two-person-rule"))
        .await
        .unwrap();
    assert_eq!(gate.world(), PluginWorld::Approver);
    assert_eq!(gate.info().name, "two-person-rule");
    assert!(semver_like(&gate.info().version));
    assert_eq!(gate.sha256().len(), 64);

    let validator = runtime
        .load(support::plugin_bytes("solution-policy"))
        .await
        .unwrap();
    assert_eq!(validator.world(), PluginWorld::Validator);
    assert_eq!(validator.info().name, "solution-policy");
}

fn semver_like(v: &str) -> bool {
    v.split('.').count() >= 3
}

#[tokio::test]
async fn a_plugin_called_in_the_wrong_world_fails_without_running() {
    let runtime = runtime();
    let validator = runtime
        .load(support::plugin_bytes("solution-policy"))
        .await
        .unwrap();
    let call = runtime
        .evaluate(
            &validator,
            Arc::new(support::sample_deployment()),
            &[],
            &Config::new(),
            NOW,
        )
        .await;
    assert_eq!(
        call.result,
        Err(PluginError::WrongWorld {
            expected: PluginWorld::Approver,
            actual: PluginWorld::Validator
        })
    );
}

#[tokio::test]
async fn every_call_reports_its_duration_and_fuel() {
    let runtime = runtime();
    let gate = runtime
        .load(support::plugin_bytes("two-person-rule"))
        .await
        .unwrap();
    let call = runtime
        .evaluate(
            &gate,
            Arc::new(support::sample_deployment()),
            &[],
            &config(&[("group", "release-managers")]),
            NOW,
        )
        .await;
    assert!(
        matches!(call.result, Ok(Decision::Pending { .. })),
        "{:?}",
        call.result
    );
    assert!(call.fuel_used > 0);
    assert!(call.duration > Duration::ZERO);
}

#[tokio::test]
async fn a_restart_loads_the_precompiled_component_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeOptions::default()
    };
    let bytes = support::plugin_bytes("two-person-rule");

    let first = Runtime::new(options.clone()).unwrap();
    let compiled = first.load(bytes.clone()).await.unwrap();
    assert_eq!(compiled.compiled_from(), CompiledFrom::Source);
    drop(first);

    let second = Runtime::new(options.clone()).unwrap();
    let cached = second.load(bytes.clone()).await.unwrap();
    assert_eq!(cached.compiled_from(), CompiledFrom::Cache);
    assert_eq!(cached.info(), compiled.info());
    // The cached code is mapped from the file: let go of it before damaging the file.
    drop((cached, second));

    // A cache entry damaged while the host was down costs a recompile, never a failure.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = Runtime::new(options).unwrap();
    let recompiled = third.load(bytes).await.unwrap();
    assert_eq!(recompiled.compiled_from(), CompiledFrom::Source);
    let call = third
        .evaluate(
            &recompiled,
            Arc::new(support::sample_deployment()),
            &[],
            &config(&[("group", "release-managers")]),
            NOW,
        )
        .await;
    assert!(call.result.is_ok(), "{:?}", call.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_loads_from_the_cache_and_decides() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeOptions::default()
    };
    let bytes = support::plugin_bytes("change-ticket-py");
    let compiled = Runtime::new(options.clone())
        .unwrap()
        .load(bytes.clone())
        .await
        .expect("the Python plugin loads");
    assert_eq!(compiled.compiled_from(), CompiledFrom::Source);

    let runtime = Runtime::new(options).unwrap();
    let plugin = runtime.load(bytes).await.unwrap();
    assert_eq!(plugin.compiled_from(), CompiledFrom::Cache);
    assert!(
        plugin.compile_time() * 10 < compiled.compile_time(),
        "cache {:?} vs compile {:?}",
        plugin.compile_time(),
        compiled.compile_time()
    );
    assert_eq!(plugin.world(), PluginWorld::Approver);
    assert_eq!(plugin.info().name, "change-ticket");

    let with_ticket = Arc::new(support::sample_deployment());
    let call = runtime
        .evaluate(
            &plugin,
            with_ticket.clone(),
            &[],
            &config(&[("prefix", "CHG")]),
            NOW,
        )
        .await;
    match &call.result {
        Ok(Decision::Approve { reason }) => assert!(reason.contains("CHG-4711"), "{reason}"),
        other => panic!("expected approve, got {other:?}"),
    }
    assert!(
        call.log.iter().any(|l| l.message.contains("CHG-4711")),
        "the plugin logs the ticket: {:?}",
        call.log
    );

    let mut without = support::sample_deployment();
    without.notes = "no ticket here".into();
    let call = runtime
        .evaluate(
            &plugin,
            Arc::new(without),
            &[],
            &config(&[("prefix", "CHG"), ("approvers", "group:cab")]),
            NOW,
        )
        .await;
    match &call.result {
        Ok(Decision::Pending { approvers, .. }) => assert_eq!(approvers, &["group:cab"]),
        other => panic!("expected pending, got {other:?}"),
    }

    let refused = runtime
        .check_config(&plugin, &config(&[("prefix", "chg")]), NOW)
        .await;
    match refused.result {
        Ok(Err(message)) => assert!(message.contains("prefix"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
