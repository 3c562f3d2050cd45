//! A deployment in text: its summary, gates, findings and votes, and its timeline, one
//! line per event, as `deployments get` shows it and `--wait` prints it live.

use std::collections::HashMap;

use serde_json::Value;

use super::render::{View, fields, json_name, list, time};
use crate::pipeline::Decision;
use crate::pipeline::model::{DeploymentRecord, PreDeploymentStatus, TimelineEvent};

fn step(status: Option<PreDeploymentStatus>) -> String {
    match status {
        None => "none".into(),
        Some(PreDeploymentStatus::Pending) => "pending (10)".into(),
        Some(PreDeploymentStatus::Completed) => "completed (20)".into(),
        Some(PreDeploymentStatus::Rejected) => "rejected (30)".into(),
    }
}

/// A deployment in full: summary, gates, findings, votes and timeline. `names` maps the
/// ids of stages (to `Pipeline/Stage`) and environments to names, where known.
pub fn deployment(view: &View, names: &HashMap<String, String>) -> String {
    let d = &view.deployment;
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    let mut status = d.status.to_string();
    if !d.status_reason.is_empty() {
        status = format!("{status}: {}", d.status_reason);
    }
    let mut solution = format!("{} {}", d.solution_name, d.version);
    if let Some(installed) = &d.installed_version {
        solution.push_str(&format!(" (replacing {installed})"));
    }
    let mut settings: Vec<String> = d
        .settings
        .environment_variables
        .iter()
        .map(|v| match (&v.value, v.secret) {
            (_, true) => format!("{}=(secret)", v.name),
            (Some(value), false) => format!("{}={value}", v.name),
            (None, false) => format!("{}=(unset)", v.name),
        })
        .collect();
    settings.extend(
        d.settings
            .connection_references
            .iter()
            .map(|(r, c)| format!("{r}→{c}")),
    );
    let mut out = fields(&[
        ("deployment", d.id.clone()),
        ("status", status),
        ("solution", solution),
        ("stage", name(&d.stage_id)),
        (
            "environments",
            format!(
                "{} → {}",
                name(&d.source_environment_id),
                name(&d.target_environment_id)
            ),
        ),
        (
            "requested",
            format!("{} by {}", time(d.requested_at), d.requested_by),
        ),
        ("scheduled", d.scheduled_for.map(time).unwrap_or_default()),
        ("notes", d.notes.clone()),
        ("settings", list(&settings)),
        ("pre-deployment", step(d.pre_deployment_status)),
        (
            "attempt",
            if d.attempt > 1 {
                d.attempt.to_string()
            } else {
                String::new()
            },
        ),
        ("finished", d.finished_at.map(time).unwrap_or_default()),
    ]);
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&format!("\n\n{title}\n  {}", lines.join("\n  ")));
        }
    };
    let gates: Vec<String> = d
        .gates
        .iter()
        .map(|g| match (&g.error, &g.decision) {
            (Some(error), _) => format!("{}  error: {error}", g.plugin_name),
            (None, Some(decision)) => format!("{}  {}", g.plugin_name, describe_decision(decision)),
            (None, None) => format!("{}  not asked yet", g.plugin_name),
        })
        .collect();
    section("gates", gates);
    section("validation", findings(d));
    let votes: Vec<String> = view
        .votes
        .iter()
        .map(|v| {
            let mut line = format!(
                "{}  {}  {}",
                time(v.at),
                v.voter_id,
                if v.approve { "approve" } else { "reject" }
            );
            if !v.comment.is_empty() {
                line.push_str(&format!(": {}", v.comment));
            }
            line
        })
        .collect();
    section("votes", votes);
    section(
        "timeline",
        view.timeline.iter().map(timeline_line).collect(),
    );
    out
}

/// What the validators found and why plugins failed, one line each.
pub fn findings(d: &DeploymentRecord) -> Vec<String> {
    let mut lines = Vec::new();
    for report in &d.validation {
        for f in &report.findings {
            let mut line = format!(
                "{} {} {}: {}",
                report.plugin_name,
                json_name(&f.severity),
                f.code,
                f.message
            );
            if let Some(component) = &f.component {
                line.push_str(&format!(" ({component})"));
            }
            lines.push(line);
        }
        if let Some(error) = &report.error {
            lines.push(format!("{} failed: {error}", report.plugin_name));
        }
    }
    lines
}

fn describe_decision(decision: &Decision) -> String {
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

/// One timeline event as a line: time, kind, and what happened.
pub fn timeline_line(e: &TimelineEvent) -> String {
    line(e.at, &e.kind, &event_summary(e))
}

/// A progress line in the shape of [`timeline_line`].
pub fn line(at: u64, label: &str, text: &str) -> String {
    format!("{}  {label:<24}  {text}", time(at))
        .trim_end()
        .to_owned()
}

/// What one timeline event says, from its kind and detail.
pub fn event_summary(e: &TimelineEvent) -> String {
    let d = &e.detail;
    let s = |key: &str| d.get(key).and_then(Value::as_str).unwrap_or_default();
    let n = |key: &str| d.get(key).and_then(Value::as_u64);
    let by = e
        .actor
        .as_deref()
        .map(|a| format!(" by {a}"))
        .unwrap_or_default();
    let with_reason = |text: String| match s("reason") {
        "" => text,
        reason => format!("{text}: {reason}"),
    };
    match e.kind.as_str() {
        "requested" => format!("{} {} to {}{by}", s("solution"), s("version"), s("stage")),
        "scheduled" | "rescheduled" => match n("for") {
            Some(at) => format!("for {}{by}", time(at)),
            None => format!("as soon as possible{by}"),
        },
        "validation_started" => "validators running".into(),
        "validation_completed" => format!(
            "{} finding(s), {} error(s)",
            n("findings").unwrap_or(0),
            n("errors").unwrap_or(0)
        ),
        "pre_deployment_started" => match n("gates") {
            Some(0) => "no gates: waiting for an admin or external system".into(),
            Some(g) => format!("{g} gate(s)"),
            None => String::new(),
        },
        "gate_decision" => {
            let decision = d
                .get("decision")
                .cloned()
                .and_then(|v| serde_json::from_value::<Decision>(v).ok())
                .map_or_else(|| d["decision"].to_string(), |v| describe_decision(&v));
            format!("{}: {decision}", s("plugin"))
        }
        "vote" => {
            let verb = if d["approve"].as_bool() == Some(true) {
                "approve"
            } else {
                "reject"
            };
            match s("comment") {
                "" => format!("{verb}{by}"),
                comment => format!("{verb}{by}: {comment}"),
            }
        }
        "pre_deployment_completed" => {
            let outcome = match n("status") {
                Some(20) => "completed (20)",
                Some(30) => "rejected (30)",
                _ => "ended",
            };
            let mut text = with_reason(outcome.to_owned());
            if d["override"].as_bool() == Some(true) {
                text.push_str(&format!(", set{by}"));
                if !s("comment").is_empty() {
                    text.push_str(&format!(": {}", s("comment")));
                }
            }
            text
        }
        "artifact_retrieved" => {
            let size = d["managed"]["size"]
                .as_u64()
                .map(|b| format!(" ({b} bytes managed)"))
                .unwrap_or_default();
            if d["exported"].as_bool() == Some(true) {
                format!("exported from {}{size}", s("from"))
            } else {
                format!("the stored artifact{size}")
            }
        }
        "import_started" => format!("into {} (operation {})", s("environment"), s("operation")),
        "environment_retry" => format!(
            "{}: {} (attempt {})",
            s("step"),
            s("error"),
            n("attempt").unwrap_or(0)
        ),
        "deployment_started" => format!("importing (operation {})", s("operation")),
        "deployment_completed" => with_reason(s("status").to_owned()),
        "canceled" => format!("canceled{by}"),
        "retried" => format!("attempt {}{by}", n("attempt").unwrap_or(0)),
        _ => match d {
            Value::Null => String::new(),
            Value::Object(m) if m.is_empty() => String::new(),
            other => other.to_string(),
        },
    }
}
