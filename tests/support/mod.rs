//! What the end-to-end tests and the benchmarks share: where the built plugins are, and a
//! deployment to show them.
#![allow(dead_code)]

use std::path::PathBuf;

use gatehouse::pipeline::{DeploymentFacts, Principal, Vote};

/// A built plugin component: `scripts/build-plugins` puts them in `target/plugins/`, or
/// `GATEHOUSE_PLUGIN_DIR` names another folder.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("GATEHOUSE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the plugins first with scripts/build-plugins",
            path.display()
        )
    })
}

/// The sample deployment of `examples/deployment.json`.
pub fn sample_deployment() -> DeploymentFacts {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/deployment.json");
    let text = std::fs::read_to_string(&path).expect("examples/deployment.json is readable");
    serde_json::from_str(&text).expect("examples/deployment.json is a deployment")
}

pub fn principal(id: &str, groups: &[&str]) -> Principal {
    Principal {
        id: id.to_owned(),
        display_name: id.to_uppercase(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub fn vote(id: &str, groups: &[&str], approve: bool) -> Vote {
    Vote {
        voter: principal(id, groups),
        approve,
        comment: String::new(),
        at: 1_795_680_100_000,
    }
}
