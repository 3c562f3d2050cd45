//! Reading a deployment view (`GET /api/v1/deployments/{id}`), for the end-to-end tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

/// The statuses a deployment ends in.
pub const FINAL: [&str; 4] = ["succeeded", "failed", "rejected", "canceled"];

pub fn status(view: &Value) -> &str {
    view["deployment"]["status"].as_str().unwrap_or_default()
}

pub fn reason(view: &Value) -> &str {
    view["deployment"]["status_reason"]
        .as_str()
        .unwrap_or_default()
}

/// The timeline's event kinds, in order.
pub fn kinds(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The timeline's event kinds, with a run of one kind shown once and counted, as in
/// `requested, gate_decision ×40, deployment_completed`.
pub fn timeline_in_short(view: &Value) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for kind in kinds(view) {
        match runs.last_mut() {
            Some((last, n)) if *last == kind => *n += 1,
            _ => runs.push((kind, 1)),
        }
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(kind, n)| {
            if n == 1 {
                kind
            } else {
                format!("{kind} ×{n}")
            }
        })
        .collect();
    runs.join(", ")
}

/// How many timeline events are of `kind`.
pub fn count(view: &Value, kind: &str) -> usize {
    kinds(view).iter().filter(|k| *k == kind).count()
}

/// Reads the deployment's view with `view` until `done` holds, and returns that view.
/// Fails early when the deployment ends without it, and after `within`.
#[track_caller]
pub fn wait_until(
    deployment: &str,
    what: &str,
    within: Duration,
    view: impl Fn() -> Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = view();
        if done(&v) {
            return v;
        }
        let d = &v["deployment"];
        assert!(
            !FINAL.contains(&status(&v)) && Instant::now() < deadline,
            "deployment {deployment} did not get to {what} within {within:?}: it is {} ({}), \
             timeline {}",
            d["status"],
            d["status_reason"],
            timeline_in_short(&v),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
