//! A deployment in text: its summary, gates, findings and votes, and its timeline, one
//! line per event, as `deployments get` shows it and `--wait` prints it live.

use std::collections::HashMap;

use super::render::{View, fields, json_name, list, time};
use crate::pipeline::model::{DeploymentRecord, PreDeploymentStatus, TimelineEvent};
use crate::pipeline::timeline::describe_decision;

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

/// What one timeline event says, in a sentence.
pub fn event_summary(e: &TimelineEvent) -> String {
    e.sentence()
}
