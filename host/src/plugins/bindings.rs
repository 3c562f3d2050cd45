//! The generated bindings of the two worlds, and conversions to and from the domain types.

use crate::pipeline::{self, Decision, Finding, PluginInfo, Severity, Vote};

pub mod approver {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "approver",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "gatehouse:plugin/types.deployment": crate::plugins::sandbox::DeploymentHandle,
        },
    });
}

pub mod validator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "validator",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "gatehouse:plugin/types": super::approver::gatehouse::plugin::types,
            "gatehouse:plugin/host": super::approver::gatehouse::plugin::host,
        },
    });
}

pub use approver::ApproverPre;
pub use approver::gatehouse::plugin::{host as wit_host, types as wit};
pub use validator::ValidatorPre;

/// The export names that tell the worlds apart.
pub const PLUGIN_EXPORT: &str = "gatehouse:plugin/plugin@0.1.0";
pub const APPROVAL_EXPORT: &str = "gatehouse:plugin/approval@0.1.0";
pub const VALIDATION_EXPORT: &str = "gatehouse:plugin/validation@0.1.0";

impl From<wit::PluginInfo> for PluginInfo {
    fn from(info: wit::PluginInfo) -> Self {
        PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            config_keys: info.config_keys,
        }
    }
}

impl From<wit::Decision> for Decision {
    fn from(decision: wit::Decision) -> Self {
        match decision {
            wit::Decision::Approve(reason) => Decision::Approve { reason },
            wit::Decision::Reject(reason) => Decision::Reject { reason },
            wit::Decision::Pending(p) => Decision::Pending {
                message: p.message,
                approvers: p.approvers,
                recheck_after_seconds: p.recheck_after_seconds,
            },
        }
    }
}

impl From<wit::Finding> for Finding {
    fn from(f: wit::Finding) -> Self {
        Finding {
            severity: match f.severity {
                wit::Severity::Info => Severity::Info,
                wit::Severity::Warning => Severity::Warning,
                wit::Severity::Error => Severity::Error,
            },
            code: f.code,
            message: f.message,
            component: f.component,
        }
    }
}

impl From<&pipeline::Principal> for wit::Principal {
    fn from(p: &pipeline::Principal) -> Self {
        wit::Principal {
            id: p.id.clone(),
            display_name: p.display_name.clone(),
            groups: p.groups.clone(),
        }
    }
}

impl From<&Vote> for wit::Vote {
    fn from(v: &Vote) -> Self {
        wit::Vote {
            voter: (&v.voter).into(),
            approve: v.approve,
            comment: v.comment.clone(),
            at: v.at,
        }
    }
}

impl From<&pipeline::Environment> for wit::Environment {
    fn from(e: &pipeline::Environment) -> Self {
        wit::Environment {
            id: e.id.clone(),
            name: e.name.clone(),
            kind: match e.kind {
                pipeline::EnvironmentKind::Development => wit::EnvironmentKind::Development,
                pipeline::EnvironmentKind::Target => wit::EnvironmentKind::Target,
            },
        }
    }
}

impl From<&pipeline::Stage> for wit::Stage {
    fn from(s: &pipeline::Stage) -> Self {
        wit::Stage {
            id: s.id.clone(),
            name: s.name.clone(),
            depth: s.depth,
            target: (&s.target).into(),
        }
    }
}

impl From<wit_host::Level> for pipeline::LogLevel {
    fn from(level: wit_host::Level) -> Self {
        match level {
            wit_host::Level::Debug => pipeline::LogLevel::Debug,
            wit_host::Level::Info => pipeline::LogLevel::Info,
            wit_host::Level::Warn => pipeline::LogLevel::Warn,
            wit_host::Level::Error => pipeline::LogLevel::Error,
        }
    }
}

/// Bytes of text in an answer, for the output limit.
pub fn decision_text_bytes(d: &wit::Decision) -> usize {
    match d {
        wit::Decision::Approve(s) | wit::Decision::Reject(s) => s.len(),
        wit::Decision::Pending(p) => {
            p.message.len() + p.approvers.iter().map(|a| a.len() + 1).sum::<usize>()
        }
    }
}

pub fn findings_text_bytes(findings: &[wit::Finding]) -> usize {
    findings
        .iter()
        .map(|f| f.code.len() + f.message.len() + f.component.as_ref().map_or(0, |c| c.len()) + 1)
        .sum()
}
