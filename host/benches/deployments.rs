//! End-to-end benchmark of the real server: deployments through the HTTP API on SQLite,
//! and reads over 100,000 stored deployments. Prints medians, percentiles and rates.
//!
//! Run with `scripts/build-plugins && cargo bench -p gatehouse --bench deployments`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const DEPLOYMENTS: usize = 1_000;
const CLIENTS: usize = 8;
const STORED: usize = 100_000;
const READS: usize = 2_000;

use common::{Client, Server, start};
/// An environment, a one-stage pipeline with one auto-approving gate and one validator.
fn set_up(client: &Client) -> (String, String) {
    let me = client.ok("GET", "/me", None);
    let access = json!([format!("user:{}", me["id"].as_str().unwrap())]);
    let dev = client.ok("POST", "/environments", Some(json!({
        "name": "Dev", "kind": "development", "environment_id": "dev", "url": "memory://dev", "access": access,
    })));
    let qa = client.ok("POST", "/environments", Some(json!({
        "name": "QA", "kind": "target", "environment_id": "qa", "url": "memory://qa", "access": access,
    })));
    for env in [&dev, &qa] {
        client.ok(
            "POST",
            &format!("/environments/{}/validate", env["id"].as_str().unwrap()),
            Some(json!({})),
        );
    }
    let gate = client.upload("business-hours");
    let validator = client.upload("solution-policy");
    let pipeline = client.ok(
        "POST",
        "/pipelines",
        Some(json!({
            "name": "Bench", "development_environment_ids": [dev["id"]],
            "settings": { "allow_redeploy_older_versions": true },
        })),
    );
    let pid = pipeline["id"].as_str().unwrap().to_owned();
    let stage = client.ok(
        "POST",
        &format!("/pipelines/{pid}/stages"),
        Some(json!({
            "name": "QA", "target_environment_id": qa["id"], "pre_deployment_step_required": true,
            "gates": [{ "plugin_id": gate, "config": {
                "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00" } }],
        })),
    );
    client.ok(
        "PUT",
        &format!("/pipelines/{pid}/validators"),
        Some(json!({
            "validators": [{ "plugin_id": validator, "config": { "publisher-prefix": "contoso" } }],
        })),
    );
    (pid, stage["id"].as_str().unwrap().to_owned())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn plugin_seconds(base: &str) -> f64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("gatehouse_plugin_call_duration_seconds_sum"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn unfinished(client: &Client, pipeline: &str) -> bool {
    let page = client.ok(
        "GET",
        &format!("/deployments?pipeline={pipeline}&status=queued,scheduled,validating,pending_approval,deploying&limit=1"),
        None,
    );
    !page["items"]
        .as_array()
        .is_some_and(|items| items.is_empty())
}

fn main() {
    let data = tempfile::tempdir().expect("temp dir");
    let server = start(
        data.path(),
        &["--memory-solution", "dev:contoso_bench@1.0.0.0"],
    );
    let client = Arc::new(Client::new(&server.base));
    let (pipeline, stage) = set_up(&client);

    let plugin_before = plugin_seconds(&server.base);
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, pipeline, stage) = (client.clone(), pipeline.clone(), stage.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                for _ in 0..DEPLOYMENTS / CLIENTS {
                    let t = Instant::now();
                    client.ok("POST", "/deployments", Some(json!({
                        "pipeline_id": pipeline, "stage_id": stage, "solution_name": "contoso_bench",
                        "notes": "benchmark",
                    })));
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("client"))
        .collect();
    let submitted = started.elapsed();
    while unfinished(&client, &pipeline) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished = started.elapsed();
    let plugin_time = plugin_seconds(&server.base) - plugin_before;
    let succeeded = {
        let mut count = 0;
        let mut after = String::new();
        loop {
            let page = client.ok(
                "GET",
                &format!("/deployments?pipeline={pipeline}&status=succeeded&limit=200{after}"),
                None,
            );
            count += page["items"].as_array().map_or(0, Vec::len);
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
        count
    };
    latencies.sort();
    println!(
        "deployments through the HTTP API, SQLite, one auto-approving gate and one validator each"
    );
    println!(
        "  {DEPLOYMENTS} requested by {CLIENTS} clients in {:.2} s; {succeeded} succeeded after {:.2} s",
        submitted.as_secs_f64(),
        finished.as_secs_f64()
    );
    println!(
        "  throughput: {:.0} deployments/s to succeeded",
        succeeded as f64 / finished.as_secs_f64()
    );
    println!(
        "  POST /deployments latency: median {:.2} ms, p99 {:.2} ms",
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 99))
    );
    println!(
        "  time in plugins: {:.3} s of {:.2} s wall ({:.1}% of the wall time, {:.1}% of two cores)",
        plugin_time,
        finished.as_secs_f64(),
        100.0 * plugin_time / finished.as_secs_f64(),
        50.0 * plugin_time / finished.as_secs_f64()
    );

    reads(&client, &server, data.path(), &pipeline);
}

/// Fills the database to 100,000 deployments of the pipeline, then times the list.
fn reads(client: &Client, server: &Server, data: &std::path::Path, pipeline: &str) {
    let template = client.ok(
        "GET",
        &format!("/deployments?pipeline={pipeline}&limit=1"),
        None,
    )["items"][0]
        .clone();
    let template: gatehouse::pipeline::model::DeploymentRecord =
        serde_json::from_value(template).expect("a deployment record");
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let filled = Instant::now();
    tokio.block_on(async {
        use gatehouse::pipeline::store::{Audit, DeploymentStore};
        let url = format!("sqlite://{}", data.join("gatehouse.db").display());
        let store = gatehouse::store::SqlStore::connect(&url)
            .await
            .expect("store");
        for i in DEPLOYMENTS..STORED {
            let mut d = template.clone();
            d.id = gatehouse::pipeline::model::new_id();
            d.idempotency_key = None;
            d.requested_at += i as u64;
            let audit = Audit {
                actor: "bench".into(),
                action: "deployment.request".into(),
                target: d.id.clone(),
                detail: json!({}),
                at: d.requested_at,
            };
            store
                .insert_deployment(&d, &[], &audit)
                .await
                .expect("insert");
        }
    });
    println!();
    println!(
        "reads: stored {} more deployments in {:.1} s",
        STORED - DEPLOYMENTS,
        filled.elapsed().as_secs_f64()
    );
    let _ = server;
    let mut first_pages = Vec::new();
    let mut walking = Vec::new();
    let mut after = String::new();
    for i in 0..READS {
        let t = Instant::now();
        if i % 2 == 0 {
            client.ok(
                "GET",
                &format!("/deployments?pipeline={pipeline}&limit=50"),
                None,
            );
            first_pages.push(t.elapsed());
        } else {
            let page = client.ok(
                "GET",
                &format!("/deployments?pipeline={pipeline}&limit=50{after}"),
                None,
            );
            walking.push(t.elapsed());
            after = page["next"]
                .as_str()
                .map(|n| format!("&after={n}"))
                .unwrap_or_default();
        }
    }
    first_pages.sort();
    walking.sort();
    println!(
        "  GET /deployments?pipeline=… (50 per page) over {STORED}: first page median {:.2} ms, p99 {:.2} ms; paging deeper median {:.2} ms, p99 {:.2} ms",
        ms(percentile(&first_pages, 50)),
        ms(percentile(&first_pages, 99)),
        ms(percentile(&walking, 50)),
        ms(percentile(&walking, 99))
    );
}
