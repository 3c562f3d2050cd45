//! A deployment in text: its summary, gates, findings and votes, and its timeline, one
//! line per event, as `deployments get` shows it and `--wait` prints it live.

use std::collections::HashMap;

use serde_json::Value;

use super::render::{People, View, fields, json_name, list, person, time};
use super::terms;
use crate::pipeline::model::{DeploymentRecord, PreDeploymentStatus, TimelineEvent};
use crate::pipeline::timeline::{DeploymentEvent, describe_decision};

fn step(status: Option<PreDeploymentStatus>) -> String {
    match status {
        None => "none".into(),
        Some(PreDeploymentStatus::Pending) => "pending (10)".into(),
        Some(PreDeploymentStatus::Completed) => "completed (20)".into(),
        Some(PreDeploymentStatus::Rejected) => "rejected (30)".into(),
    }
}

/// A deployment in full: summary, gates, findings, votes and timeline. `names` maps the
/// ids of stages (to `Pipeline/Stage`) and environments to names, where known; people are
/// named as the view names them.
pub fn deployment(view: &View, names: &HashMap<String, String>) -> String {
    let d = &view.deployment;
    let people = &view.people;
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    let mut status = d.status.to_string();
    if !d.status_reason.is_empty() {
        status = format!("{status}: {}", reason(&d.status_reason, names));
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
            format!(
                "{} by {}",
                time(d.requested_at),
                person(people, &d.requested_by)
            ),
        ),
        ("scheduled", d.scheduled_for.map(time).unwrap_or_default()),
        ("notes", d.notes.clone()),
        ("settings", list(&settings)),
        ("pre-deployment", pre_deployment(d, people)),
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
    let width = view
        .votes
        .iter()
        .map(|v| person(people, &v.voter_id).chars().count())
        .max()
        .unwrap_or(0);
    let votes: Vec<String> = view
        .votes
        .iter()
        .map(|v| {
            let mut line = format!(
                "{}  {:<width$}  {}",
                time(v.at),
                person(people, &v.voter_id),
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
        view.timeline
            .iter()
            .map(|e| timeline_line(e, people))
            .collect(),
    );
    out
}

/// The pre-deployment step's status, and who set it from outside, if anyone did.
fn pre_deployment(d: &DeploymentRecord, people: &People) -> String {
    let status = step(d.pre_deployment_status);
    match &d.pre_deployment_override {
        Some(o) => {
            let mut text = format!(
                "{status}, set by {} at {}",
                person(people, &o.by),
                time(o.at)
            );
            if !o.comment.is_empty() {
                text.push_str(&format!(": {}", o.comment));
            }
            text
        }
        None => status,
    }
}

/// A status reason from the server, with the ids it names as names and the request's
/// fields as the flags of `gatehouse deploy`.
pub fn reason(text: &str, names: &HashMap<String, String>) -> String {
    let mut text = terms::flags(text).into_owned();
    for (id, name) in names {
        if text.contains(id.as_str()) {
            text = text.replace(id.as_str(), name);
        }
    }
    text
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
                terms::finding(f)
            );
            if let Some(component) = f.component.as_ref().filter(|c| !line.contains(c.as_str())) {
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

/// One timeline event as a line: time, kind, and what happened, with people by name.
pub fn timeline_line(e: &TimelineEvent, people: &People) -> String {
    line(e.at, &e.kind, &event_summary(e, people))
}

/// A progress line in the shape of [`timeline_line`].
pub fn line(at: u64, label: &str, text: &str) -> String {
    format!("{}  {label:<24}  {text}", time(at))
        .trim_end()
        .to_owned()
}

/// What one timeline event says, in a sentence, with the actor by name and the request's
/// fields as flags. A kind this client does not know is told by its details' names and
/// values, not as JSON.
pub fn event_summary(e: &TimelineEvent, people: &People) -> String {
    let actor = e.actor.as_deref().map(|id| person(people, id));
    match e.event() {
        DeploymentEvent::Other { detail, .. } => {
            let mut text = details(&detail);
            if let Some(actor) = actor {
                text = if text.is_empty() {
                    format!("by {actor}")
                } else {
                    format!("{text}, by {actor}")
                };
            }
            text
        }
        event => terms::flags(&event.sentence(actor)).into_owned(),
    }
}

/// Details as `name value` phrases, such as `attempt 2, reason timed out`.
fn details(detail: &Value) -> String {
    match detail {
        Value::Null => String::new(),
        Value::Object(members) => members
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), details(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items.iter().map(details).collect::<Vec<_>>().join(" and "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
