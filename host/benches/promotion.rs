//! A 3-stage promotion (QA → UAT → Prod) of a 5 MB solution exported from a development
//! environment, across loopback environment servers (one per environment),
//! with gates that approve on their own: the wall time per stage and how it splits
//! between export, validation, gates and import. Then the host's peak memory while a
//! 50 MB package goes through it.
//!
//! Run with `scripts/build-plugins && cargo bench -p gatehouse --bench promotion`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Server, free_port, spawn, start};
use gatehouse::solution::{self, Component, Manifest, Publisher};
use serde_json::{Value, json};

const ENV_TOKEN: &str = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const PROMOTIONS: usize = 5;
const SMALL_MB: usize = 5;
const LARGE_MB: usize = 50;

/// A standalone environment server.
fn environment(dir: &std::path::Path, name: &str, kind: &str) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args([
            "environment",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(["--name", name, "--kind", kind, "--environment-id", name])
        .env("GATEHOUSE_ENV_TOKEN", ENV_TOKEN);
    if kind == "target" {
        command.arg("--managed");
    }
    spawn(command, port, "")
}

/// A package of `mb` megabytes of incompressible component data.
fn package(name: &str, mb: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut data = vec![0u8; mb * 1024 * 1024];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let manifest = Manifest {
        unique_name: name.into(),
        display_name: name.into(),
        version: "1.0.0.0".parse().expect("a version"),
        publisher: Publisher {
            unique_name: "contoso".into(),
            prefix: "contoso".into(),
        },
        managed: false,
        dependencies: Vec::new(),
        environment_variables: Vec::new(),
        connection_references: Vec::new(),
        components: vec![Component {
            kind: "web_resource".into(),
            name: format!("{name}_bundle"),
            path: "components/bundle.bin".into(),
        }],
    };
    solution::build_package(&manifest, &[("components/bundle.bin", &data)]).expect("a package")
}

fn push(dev: &Server, name: &str, bytes: Vec<u8>) {
    let response = ureq::put(&format!("{}/env/v1/solutions/{name}", dev.base))
        .header("authorization", &format!("Bearer {ENV_TOKEN}"))
        .header("content-type", "application/zip")
        .send(&bytes[..])
        .expect("the push is answered");
    assert!(
        response.status().is_success(),
        "push: {}",
        response.status()
    );
}

/// The pipeline Dev → QA → UAT → Prod; each stage has one gate that approves at once.
fn set_up(client: &Client, envs: &[(&str, &str, &Server)]) -> (String, Vec<String>) {
    let me = client.ok("GET", "/me", None);
    let access = json!([format!("user:{}", me["id"].as_str().expect("an id"))]);
    let mut ids = Vec::new();
    for (name, kind, server) in envs {
        let env = client.ok(
            "POST",
            "/environments",
            Some(json!({
                "name": name, "kind": kind, "environment_id": name, "url": server.base,
                "credential": ENV_TOKEN, "access": access,
            })),
        );
        let id = env["id"].as_str().expect("an id").to_owned();
        let validated = client.ok(
            "POST",
            &format!("/environments/{id}/validate"),
            Some(json!({})),
        );
        assert_eq!(validated["validation_status"], "success", "{validated}");
        ids.push(id);
    }
    let gate = client.upload("business-hours");
    let pipeline = client.ok(
        "POST",
        "/pipelines",
        Some(json!({ "name": "Promotion", "development_environment_ids": [ids[0]] })),
    );
    let pid = pipeline["id"].as_str().expect("id").to_owned();
    let mut stages = Vec::new();
    let mut previous: Option<String> = None;
    for (i, name) in ["QA", "UAT", "Prod"].iter().enumerate() {
        let stage = client.ok(
            "POST",
            &format!("/pipelines/{pid}/stages"),
            Some(json!({
                "name": name, "target_environment_id": ids[i + 1],
                "previous_stage_id": previous,
                "pre_deployment_step_required": true,
                "gates": [{ "plugin_id": gate, "config": {
                    "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00",
                } }],
            })),
        );
        let id = stage["id"].as_str().expect("id").to_owned();
        previous = Some(id.clone());
        stages.push(id);
    }
    (pid, stages)
}

/// Deploys and waits; answers the wall time and the deployment's view.
fn deploy(
    client: &Client,
    pipeline: &str,
    stage: &str,
    solution: &str,
    version: &str,
) -> (Duration, Value) {
    let started = Instant::now();
    let d = client.ok(
        "POST",
        "/deployments",
        Some(json!({
            "pipeline_id": pipeline, "stage_id": stage, "solution_name": solution, "version": version,
        })),
    );
    let id = d["id"].as_str().expect("id").to_owned();
    loop {
        let view = client.ok("GET", &format!("/deployments/{id}"), None);
        match view["deployment"]["status"].as_str() {
            Some("succeeded") => return (started.elapsed(), view),
            Some("failed" | "rejected" | "canceled") => panic!("the deployment ended: {view:#}"),
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Milliseconds between the first events of two kinds.
fn between(view: &Value, from: &str, to: &str) -> f64 {
    let at = |kind: &str| {
        view["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["kind"] == kind)
            .and_then(|e| e["at"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} event: {view:#}"))
    };
    at(to).saturating_sub(at(from)) as f64
}

/// How one stage's time splits: export (when the stage exported), validation without
/// the export, the gates, and the import.
struct Split {
    wall: f64,
    export: f64,
    validation: f64,
    gates: f64,
    import: f64,
}

fn split(wall: Duration, view: &Value) -> Split {
    let retrieved = view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "artifact_retrieved")
        .map(|e| e["detail"].clone())
        .unwrap_or(Value::Null);
    let export = retrieved["duration_ms"].as_f64().unwrap_or(0.0);
    Split {
        wall: wall.as_secs_f64() * 1e3,
        export,
        validation: between(view, "validation_started", "validation_completed") - export,
        gates: between(view, "pre_deployment_started", "pre_deployment_completed"),
        import: between(view, "deployment_started", "deployment_completed"),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The host's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(server: &Server) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("the host's /proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dev = environment(dir.path(), "Dev", "development");
    let qa = environment(dir.path(), "QA", "target");
    let uat = environment(dir.path(), "UAT", "target");
    let prod = environment(dir.path(), "Prod", "target");
    let host = start(&dir.path().join("host"), &[]);
    let client = Client::new(&host.base);
    let (pipeline, stages) = set_up(
        &client,
        &[
            ("Dev", "development", &dev),
            ("QA", "target", &qa),
            ("UAT", "target", &uat),
            ("Prod", "target", &prod),
        ],
    );

    push(&dev, "contoso_promo", package("contoso_promo", SMALL_MB));
    let mut totals = Vec::new();
    let mut per_stage: Vec<Vec<Split>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for round in 1..=PROMOTIONS {
        let version = format!("1.0.0.{round}");
        let started = Instant::now();
        for (i, stage) in stages.iter().enumerate() {
            let (wall, view) = deploy(&client, &pipeline, stage, "contoso_promo", &version);
            per_stage[i].push(split(wall, &view));
        }
        totals.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "3-stage promotion of a {SMALL_MB} MB solution from Dev through QA, UAT and Prod, one loopback \
         environment server each, gates that approve at once; medians of {PROMOTIONS}"
    );
    println!(
        "  whole promotion (export once, three imports): median {:.0} ms, max {:.0} ms (target: under 1000 ms)",
        median(totals.clone()),
        totals.iter().cloned().fold(0.0, f64::max)
    );
    for (name, splits) in [
        "QA (exports)",
        "UAT (reuses the artifact)",
        "Prod (reuses the artifact)",
    ]
    .iter()
    .zip(&per_stage)
    {
        let m = |f: fn(&Split) -> f64| median(splits.iter().map(f).collect());
        println!(
            "  {name:<28} wall {:>6.0} ms = export {:>5.0} + validation {:>4.0} + gates {:>4.0} + import {:>5.0} ms (+ queueing and polling)",
            m(|s| s.wall),
            m(|s| s.export),
            m(|s| s.validation),
            m(|s| s.gates),
            m(|s| s.import)
        );
    }

    push(&dev, "contoso_large", package("contoso_large", LARGE_MB));
    let before = peak_rss_mib(&host);
    let (wall, _) = deploy(&client, &pipeline, &stages[0], "contoso_large", "1.0.0.1");
    let after = peak_rss_mib(&host);
    println!(
        "  {LARGE_MB} MB package exported, stored and imported into QA in {:.2} s; host peak RSS {before:.0} MiB before, {after:.0} MiB after (target: under 150 MiB)",
        wall.as_secs_f64()
    );
}
