//! Text for people: aligned tables, `field  value` summaries, and one line per timeline
//! event. `--output json` bypasses all of this and prints the API's JSON.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::Value;

use crate::pipeline::model::{
    DeploymentRecord, EnvironmentRecord, PipelineRecord, PluginRecord, TimelineEvent, User,
    VoteRecord,
};

/// `GET /deployments/{id}`: a deployment with its votes and timeline.
#[derive(Debug, Clone, Deserialize)]
pub struct View {
    pub deployment: DeploymentRecord,
    #[serde(default)]
    pub votes: Vec<VoteRecord>,
    #[serde(default)]
    pub timeline: Vec<TimelineEvent>,
    /// Display names by user id, for the people the deployment names.
    #[serde(default)]
    pub people: People,
}

/// Display names by user id.
pub type People = BTreeMap<String, String>;

/// A person's display name, or their id when the server did not name them.
pub fn person<'a>(people: &'a People, id: &'a str) -> &'a str {
    people.get(id).map_or(id, String::as_str)
}

/// Milliseconds since the epoch as RFC 3339 in UTC, to the second.
pub fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(headers.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// `name  value` lines, names padded to the longest; empty values are left out.
pub fn fields(rows: &[(&str, String)]) -> String {
    let shown: Vec<&(&str, String)> = rows.iter().filter(|(_, v)| !v.is_empty()).collect();
    let width = shown.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    shown
        .into_iter()
        .map(|(name, value)| format!("{name:<width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A footer saying more items exist, or nothing.
pub fn more(next: Option<&str>, shown: usize) -> String {
    match next {
        Some(_) => format!("\n(first {shown}; more exist: raise --limit to see them)"),
        None => String::new(),
    }
}

pub(super) fn list(items: &[String]) -> String {
    items.join(", ")
}

pub fn environments(items: &[EnvironmentRecord]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.name.clone(),
                kind(e),
                json_name(&e.validation_status),
                e.url.clone(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "KIND", "VALIDATION", "URL"], &rows)
}

fn kind(e: &EnvironmentRecord) -> String {
    json_name(&e.kind)
}

/// A unit enum's serialized name, such as `development`.
pub(super) fn json_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

pub fn environment(e: &EnvironmentRecord) -> String {
    let mut validation = json_name(&e.validation_status);
    if !e.validation_message.is_empty() {
        validation = format!("{validation}: {}", e.validation_message);
    }
    let access: Vec<String> = e.access.iter().map(ToString::to_string).collect();
    fields(&[
        ("id", e.id.clone()),
        ("name", e.name.clone()),
        ("kind", kind(e)),
        ("environment_id", e.environment_id.clone()),
        ("url", e.url.clone()),
        (
            "credential",
            if e.has_credential { "stored" } else { "none" }.into(),
        ),
        ("validation", validation),
        ("access", list(&access)),
        ("created", time(e.created_at)),
        ("updated", time(e.updated_at)),
    ])
}

pub fn pipelines(items: &[PipelineRecord]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            let stages: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            vec![p.id.clone(), p.name.clone(), stages.join(" → ")]
        })
        .collect();
    table(&["ID", "NAME", "STAGES"], &rows)
}

/// A pipeline and its stages; `env_names` maps environment ids to names where known.
pub fn pipeline(p: &PipelineRecord, env_names: &HashMap<String, String>) -> String {
    let env = |id: &String| env_names.get(id).cloned().unwrap_or_else(|| id.clone());
    let devs: Vec<String> = p.development_environment_ids.iter().map(env).collect();
    let shares: Vec<String> = p.shares.iter().map(ToString::to_string).collect();
    let validators: Vec<String> = p.validators.iter().map(|v| v.plugin_id.clone()).collect();
    let mut out = fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("description", p.description.clone()),
        ("development", list(&devs)),
        ("validators", list(&validators)),
        ("shared with", list(&shares)),
        (
            "settings",
            if p.settings.allow_redeploy_older_versions {
                "older versions may be redeployed".into()
            } else {
                String::new()
            },
        ),
        ("created", time(p.created_at)),
    ]);
    let stage_name = |id: &String| p.stage(id).map_or_else(|| id.clone(), |s| s.name.clone());
    let rows: Vec<Vec<String>> = p
        .stages
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.id.clone(),
                s.previous_stage_id
                    .as_ref()
                    .map(stage_name)
                    .unwrap_or_default(),
                env(&s.target_environment_id),
                match (s.pre_deployment_step_required, s.gates.len()) {
                    (false, _) => "none".into(),
                    (true, 0) => "manual".into(),
                    (true, n) => format!("{n} gate(s)"),
                },
            ]
        })
        .collect();
    out.push_str("\n\n");
    out.push_str(&table(
        &["STAGE", "ID", "AFTER", "TARGET", "PRE-DEPLOYMENT"],
        &rows,
    ));
    out
}

pub fn plugins(items: &[PluginRecord]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.version.clone(),
                p.world.to_string(),
                if p.enabled { "yes" } else { "no" }.into(),
                format!("{} KiB", p.size.div_ceil(1024)),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "VERSION", "WORLD", "ENABLED", "SIZE"],
        &rows,
    )
}

pub fn plugin(p: &PluginRecord) -> String {
    let limits = serde_json::to_value(p.limits)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("version", p.version.clone()),
        ("world", p.world.to_string()),
        ("description", p.description.clone()),
        ("config keys", list(&p.config_keys)),
        ("enabled", if p.enabled { "yes" } else { "no" }.into()),
        ("size", format!("{} bytes", p.size)),
        ("sha256", p.sha256.clone()),
        ("limits", limits),
        ("created", time(p.created_at)),
    ])
}

pub fn user(u: &User) -> String {
    fields(&[
        ("name", u.name.clone()),
        ("display name", u.display_name.clone()),
        ("id", u.id.clone()),
        ("role", json_name(&u.role)),
        ("groups", list(&u.groups)),
    ])
}

/// Deployments, newest first; `stage_names` maps stage ids to `Pipeline/Stage`.
pub fn deployments(items: &[DeploymentRecord], stage_names: &HashMap<String, String>) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.status.to_string(),
                d.solution_name.clone(),
                d.version.clone(),
                stage_names
                    .get(&d.stage_id)
                    .cloned()
                    .unwrap_or_else(|| d.stage_id.clone()),
                time(d.requested_at),
                super::terms::flags(&d.status_reason).into_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "SOLUTION",
            "VERSION",
            "STAGE",
            "REQUESTED",
            "REASON",
        ],
        &rows,
    )
}
