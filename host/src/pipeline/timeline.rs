//! What happens to a deployment, as one typed event per step of its timeline.
//!
//! A timeline row stores an event as its `kind` and a JSON `detail`, the shape `GET
//! /deployments/{id}`, `GET /events` and webhooks show. [`DeploymentEvent`] is the one
//! place that shape is written and read, so the seven public lifecycle events keep their
//! names and fields, and rows written by earlier versions still load.

use serde::{Deserialize, Serialize};

use super::gate::{Decision, Timestamp};
use super::model::{DeploymentStatus, Id, TimelineEvent};
use super::ports::PackageRef;

/// One step of a deployment's timeline, with what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum DeploymentEvent {
    /// Public as `deployment_requested`.
    Requested {
        solution: String,
        version: String,
        stage: String,
    },
    Scheduled {
        #[serde(rename = "for")]
        at: Option<Timestamp>,
    },
    /// `at` is none when the deployment was moved to now.
    Rescheduled {
        #[serde(rename = "for")]
        at: Option<Timestamp>,
    },
    ValidationStarted {},
    ArtifactRetrieved {
        exported: bool,
        /// The development environment it was exported from, when it was exported now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(default)]
        managed: Option<PackageRef>,
        #[serde(default)]
        unmanaged: Option<PackageRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export_ms: Option<u64>,
        #[serde(default)]
        duration_ms: u64,
    },
    ValidationCompleted {
        errors: usize,
        findings: usize,
    },
    /// Public; `gates` is how many gates the step waits for.
    PreDeploymentStarted {
        gates: usize,
    },
    GateDecision {
        /// The gate's place in the deployment's snapshot of the stage's gates.
        gate: usize,
        /// The binding's stable id; absent in rows written before bindings had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binding: Option<Id>,
        plugin: String,
        decision: Decision,
    },
    /// Public: a gate waits for people.
    ApprovalStarted {
        gate: usize,
        plugin: String,
        message: String,
    },
    Vote {
        approve: bool,
        #[serde(default)]
        comment: String,
    },
    /// Public: the wait for people ended, with `approved` or not.
    ApprovalCompleted {
        approved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canceled: Option<bool>,
        #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
        by_override: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Public; `status` is 20 (completed) or 30 (rejected).
    PreDeploymentCompleted {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
        by_override: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Public: the import into the target starts.
    DeploymentStarted {
        operation: String,
    },
    ImportStarted {
        operation: String,
        environment: String,
        #[serde(default)]
        upload_ms: u64,
    },
    EnvironmentRetry {
        step: String,
        error: String,
        attempt: u32,
    },
    /// Public: the deployment ended with `status`.
    DeploymentCompleted {
        status: DeploymentStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Canceled {},
    Retried {
        attempt: u32,
    },
    /// A kind this version does not know, or a detail it cannot read, kept as stored.
    #[serde(skip)]
    Other {
        kind: String,
        detail: serde_json::Value,
    },
}

impl DeploymentEvent {
    /// The kind and detail a timeline row stores.
    pub fn to_parts(&self) -> (String, serde_json::Value) {
        if let DeploymentEvent::Other { kind, detail } = self {
            return (kind.clone(), detail.clone());
        }
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut parts)) => {
                let kind = match parts.remove("kind") {
                    Some(serde_json::Value::String(kind)) => kind,
                    _ => String::new(),
                };
                let detail = parts
                    .remove("detail")
                    .unwrap_or_else(|| serde_json::json!({}));
                (kind, detail)
            }
            // Every variant but `Other` is a struct of plain fields, which always serializes.
            _ => (String::new(), serde_json::Value::Null),
        }
    }

    /// Reads a stored kind and detail; what this version cannot read stays [`Self::Other`].
    pub fn from_parts(kind: &str, detail: &serde_json::Value) -> DeploymentEvent {
        let tagged = serde_json::json!({ "kind": kind, "detail": detail });
        serde_json::from_value(tagged).unwrap_or_else(|_| DeploymentEvent::Other {
            kind: kind.to_owned(),
            detail: detail.clone(),
        })
    }

    /// The event as a timeline row of `deployment_id`; the store numbers it.
    pub fn into_row(
        self,
        deployment_id: &str,
        actor: Option<&str>,
        at: Timestamp,
    ) -> TimelineEvent {
        let (kind, detail) = self.to_parts();
        TimelineEvent {
            deployment_id: deployment_id.to_owned(),
            seq: 0,
            at,
            kind,
            actor: actor.map(str::to_owned),
            detail,
        }
    }

    /// What happened, in a sentence for people; `actor` is who did it, if anyone.
    pub fn sentence(&self, actor: Option<&str>) -> String {
        let by = actor.map(|a| format!(" by {a}")).unwrap_or_default();
        let with_reason = |text: String, reason: &Option<String>| match reason.as_deref() {
            None | Some("") => text,
            Some(reason) => format!("{text}: {reason}"),
        };
        match self {
            DeploymentEvent::Requested {
                solution,
                version,
                stage,
            } => format!("{solution} {version} to {stage}{by}"),
            DeploymentEvent::Scheduled { at } | DeploymentEvent::Rescheduled { at } => match at {
                Some(at) => format!("for {}{by}", format_time(*at)),
                None => format!("as soon as possible{by}"),
            },
            DeploymentEvent::ValidationStarted {} => "validators running".into(),
            DeploymentEvent::ValidationCompleted { errors, findings } => {
                format!("{findings} finding(s), {errors} error(s)")
            }
            DeploymentEvent::PreDeploymentStarted { gates: 0 } => {
                "no gates: waiting for an admin or external system".into()
            }
            DeploymentEvent::PreDeploymentStarted { gates } => format!("{gates} gate(s)"),
            DeploymentEvent::GateDecision {
                plugin, decision, ..
            } => format!("{plugin}: {}", describe_decision(decision)),
            DeploymentEvent::ApprovalStarted {
                plugin, message, ..
            } => format!("gate {plugin} waits for approvers: {message}"),
            DeploymentEvent::Vote { approve, comment } => {
                let verb = if *approve { "approve" } else { "reject" };
                match comment.as_str() {
                    "" => format!("{verb}{by}"),
                    comment => format!("{verb}{by}: {comment}"),
                }
            }
            DeploymentEvent::ApprovalCompleted {
                approved,
                canceled,
                by_override,
                reason,
            } => {
                let outcome = if *approved {
                    "approved"
                } else {
                    "not approved"
                };
                let how = if *canceled == Some(true) {
                    format!(", canceled{by}")
                } else if *by_override == Some(true) {
                    format!(", step set{by}")
                } else {
                    String::new()
                };
                with_reason(format!("{outcome}{how}"), reason)
            }
            DeploymentEvent::PreDeploymentCompleted {
                status,
                reason,
                by_override,
                comment,
            } => {
                let outcome = match status {
                    20 => "completed (20)",
                    30 => "rejected (30)",
                    _ => "ended",
                };
                let mut text = with_reason(outcome.to_owned(), reason);
                if *by_override == Some(true) {
                    text.push_str(&format!(", set{by}"));
                    if let Some(comment) = comment.as_deref().filter(|c| !c.is_empty()) {
                        text.push_str(&format!(": {comment}"));
                    }
                }
                text
            }
            DeploymentEvent::ArtifactRetrieved {
                exported,
                from,
                managed,
                ..
            } => {
                let size = managed
                    .as_ref()
                    .map(|m| format!(" ({} bytes managed)", m.size))
                    .unwrap_or_default();
                if *exported {
                    format!(
                        "exported from {}{size}",
                        from.as_deref().unwrap_or_default()
                    )
                } else {
                    format!("the stored artifact{size}")
                }
            }
            DeploymentEvent::ImportStarted {
                operation,
                environment,
                ..
            } => format!("into {environment} (operation {operation})"),
            DeploymentEvent::EnvironmentRetry {
                step,
                error,
                attempt,
            } => format!("{step}: {error} (attempt {attempt})"),
            DeploymentEvent::DeploymentStarted { operation } => {
                format!("importing (operation {operation})")
            }
            DeploymentEvent::DeploymentCompleted { status, reason } => {
                with_reason(status.to_string(), reason)
            }
            DeploymentEvent::Canceled {} => format!("canceled{by}"),
            DeploymentEvent::Retried { attempt } => format!("attempt {attempt}{by}"),
            DeploymentEvent::Other { detail, .. } => match detail {
                serde_json::Value::Null => String::new(),
                serde_json::Value::Object(m) if m.is_empty() => String::new(),
                other => other.to_string(),
            },
        }
    }
}

impl TimelineEvent {
    /// The row's event, typed.
    pub fn event(&self) -> DeploymentEvent {
        DeploymentEvent::from_parts(&self.kind, &self.detail)
    }

    /// What the row says happened, in a sentence for people.
    pub fn sentence(&self) -> String {
        self.event().sentence(self.actor.as_deref())
    }
}

/// A gate's decision in words: what it decided, whom it waits for, when it looks again.
pub fn describe_decision(decision: &Decision) -> String {
    match decision {
        Decision::Approve { reason } => format!("approve: {reason}"),
        Decision::Reject { reason } => format!("reject: {reason}"),
        Decision::Pending {
            message,
            approvers,
            recheck_after_seconds,
        } => {
            let mut text = format!("pending: {message}");
            if !approvers.is_empty() {
                text.push_str(&format!(" (approvers: {})", approvers.join(", ")));
            }
            if let Some(secs) = recheck_after_seconds {
                text.push_str(&format!(" (rechecked in {secs} s)"));
            }
            text
        }
    }
}

/// RFC 3339 to the second, as people read times in sentences.
fn format_time(ms: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
