//! Reading a deployment view (`GET /api/v1/deployments/{id}`), for the end-to-end tests.

use serde_json::Value;

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

/// How many timeline events are of `kind`.
pub fn count(view: &Value, kind: &str) -> usize {
    kinds(view).iter().filter(|k| *k == kind).count()
}
