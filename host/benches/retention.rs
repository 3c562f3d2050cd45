//! A retention run over 100,000 stored deployments on SQLite: how long the job takes,
//! and how `GET /deployments` and `GET /events` answer before and while it deletes.
//! Prints medians and 99th percentiles.
//!
//! Run with `cargo bench -p gatehouse --bench retention`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use common::{Client, start};
use gatehouse::pipeline::model::{
    DeploymentRecord, DeploymentSettings, DeploymentStatus, TimelineEvent, new_id,
};
use gatehouse::pipeline::ports::SolutionVersion;
use gatehouse::pipeline::store::{Audit, DeploymentStore, EventStore};

const STORED: usize = 100_000;
/// One in ten deployments is recent and stays; the rest finished 60 days ago.
const RECENT_EVERY: usize = 10;
const TARGETS: usize = 10;
const SOLUTIONS: usize = 20;
const DAY_MS: u64 = 24 * 3600 * 1000;
/// Reads timed before the run, as the baseline.
const BASELINE_READS: usize = 400;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn deployment(i: usize, now: u64) -> DeploymentRecord {
    let recent = i.is_multiple_of(RECENT_EVERY);
    let finished_at = if recent {
        now - DAY_MS
    } else {
        now - 60 * DAY_MS
    } + i as u64;
    let solution = format!("contoso_s{}", i % SOLUTIONS);
    let version = format!("1.0.{}.0", i / (SOLUTIONS * TARGETS));
    let status = if i.is_multiple_of(3) {
        DeploymentStatus::Failed
    } else {
        DeploymentStatus::Succeeded
    };
    DeploymentRecord {
        id: new_id(),
        pipeline_id: "bench-pipeline".into(),
        stage_id: format!("stage-{}", i % TARGETS),
        source_environment_id: "dev".into(),
        target_environment_id: format!("target-{}", i % TARGETS),
        solution_name: solution.clone(),
        version: version.clone(),
        requested_by: "bench".into(),
        requested_at: finished_at - 1000,
        scheduled_for: None,
        notes: "retention benchmark".into(),
        settings: DeploymentSettings::default(),
        status,
        status_reason: String::new(),
        pre_deployment_status: None,
        pre_deployment_override: None,
        gate_bindings: Vec::new(),
        gates: Vec::new(),
        validation: Vec::new(),
        attempt: 1,
        attempt_started_at: finished_at - 1000,
        next_run_at: None,
        idempotency_key: None,
        installed_version: None,
        artifact: SolutionVersion {
            name: solution,
            version,
            publisher_prefix: "contoso".into(),
            components: Vec::new(),
            package_size: 4096,
            package_sha256: "ab".repeat(32),
            unmanaged: None,
            manifest: None,
        },
        environment_attempts: 0,
        import_started: false,
        created_at: finished_at - 1000,
        updated_at: finished_at,
        finished_at: Some(finished_at),
        revision: 0,
    }
}

fn timeline(d: &DeploymentRecord) -> Vec<TimelineEvent> {
    let at = d.finished_at.unwrap();
    ["requested", "deployment_started", "deployment_completed"]
        .iter()
        .enumerate()
        .map(|(i, kind)| TimelineEvent {
            deployment_id: d.id.clone(),
            seq: i as u32 + 1,
            at: at - 1000 + i as u64,
            kind: (*kind).into(),
            actor: None,
            detail: json!({ "status": d.status.as_str() }),
        })
        .collect()
}

/// Stores the deployments and numbers their events, before the server starts.
fn fill(data: &std::path::Path) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let started = Instant::now();
    tokio.block_on(async {
        let url = format!("sqlite://{}", data.join("gatehouse.db").display());
        let store = gatehouse::store::SqlStore::connect(&url)
            .await
            .expect("store");
        let now = now_ms();
        for i in 0..STORED {
            let d = deployment(i, now);
            let audit = Audit {
                actor: "bench".into(),
                action: "deployment.request".into(),
                target: d.id.clone(),
                detail: json!({}),
                at: now,
            };
            store
                .insert_deployment(&d, &timeline(&d), &audit)
                .await
                .expect("insert");
        }
        while store.sequence_events(5_000).await.expect("sequence") > 0 {}
        store.close().await;
    });
    println!(
        "stored {STORED} finished deployments with {} lifecycle events in {:.1} s",
        STORED * 3,
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The two reads, alternating, timed until `stop` is set or `count` of each are done.
fn reads(client: &Client, stop: &AtomicBool, count: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut lists, mut events) = (Vec::new(), Vec::new());
    let mut after = 0u64;
    while !stop.load(Ordering::Relaxed) && lists.len() < count {
        let t = Instant::now();
        client.ok("GET", "/deployments?limit=50", None);
        lists.push(t.elapsed());
        let t = Instant::now();
        let page = client.ok("GET", &format!("/events?after={after}&limit=50"), None);
        events.push(t.elapsed());
        after = page["next"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < (STORED as u64) * 3 - 100)
            .unwrap_or(0);
    }
    lists.sort();
    events.sort();
    (lists, events)
}

fn row(name: &str, sorted: &[Duration]) {
    if sorted.is_empty() {
        println!("  {name:<44} {:>6}", 0);
        return;
    }
    println!(
        "  {name:<44} {:>6} {:>9.2} {:>9.2}",
        sorted.len(),
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 99))
    );
}

fn main() {
    let data = tempfile::tempdir().expect("temp dir");
    fill(data.path());
    let server = start(data.path(), &[]);
    let client = Arc::new(Client::new(&server.base));
    let never = AtomicBool::new(false);
    let (base_lists, base_events) = reads(&client, &never, BASELINE_READS);

    let job = client.ok(
        "POST",
        "/retention/jobs",
        Some(json!({ "name": "bench", "deployments": { "older_than_days": 30 } })),
    );
    let job_id = job["id"].as_str().unwrap().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || reads(&client, &stop, usize::MAX))
    };
    let run = loop {
        let job = client.ok("GET", &format!("/retention/jobs/{job_id}"), None);
        if job["last_run"].is_object() {
            break job["last_run"].clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop.store(true, Ordering::Relaxed);
    let (run_lists, run_events) = reader.join().expect("reader");
    let took = run["finished_at"].as_u64().unwrap() - run["started_at"].as_u64().unwrap();
    let remaining = client.ok("GET", "/deployments?limit=200", None);

    println!("retention over {STORED} deployments, SQLite, 500 per transaction");
    println!(
        "  deleted {} deployments, {} timeline events in {:.2} s ({:.0} deployments/s); error: {}",
        run["deployments"],
        run["timeline_events"],
        took as f64 / 1e3,
        run["deployments"].as_f64().unwrap_or(0.0) / (took as f64 / 1e3),
        run["error"]
    );
    println!(
        "  kept: the recent tenth and the installed deployment of each target and solution ({} on the first page)",
        remaining["items"].as_array().map_or(0, Vec::len)
    );
    println!(
        "  {:<44} {:>6} {:>9} {:>9}",
        "", "calls", "p50 ms", "p99 ms"
    );
    row("GET /deployments?limit=50, before", &base_lists);
    row("GET /deployments?limit=50, during the run", &run_lists);
    row("GET /events?limit=50, before", &base_events);
    row("GET /events?limit=50, during the run", &run_events);
}
