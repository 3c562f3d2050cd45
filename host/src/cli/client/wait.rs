//! `--wait`: follows a deployment's timeline live, one line per new event, until it ends.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::CliError;
use super::commands::{environment_names, pretty, typed};
use super::http::Api;
use super::output::{note, out};
use super::render::View;
use super::timeline;
use crate::cli::Output;
use crate::pipeline::gate::Severity;
use crate::pipeline::model::DeploymentStatus;

/// How often `--wait` asks.
const POLL: Duration = Duration::from_millis(500);
/// How long `--wait` keeps trying while the server cannot be reached.
const UNREACHABLE_FOR: Duration = Duration::from_secs(120);

/// Follows a deployment, printing each new timeline event (and what it waits for) as it
/// happens, until it ends. Exit 0 when it succeeded, 1 when it failed, was rejected or
/// canceled, 130 when Ctrl-C stopped the waiting (the deployment goes on).
pub async fn wait(api: &Api, id: &str, output: Output) -> Result<ExitCode, CliError> {
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let listener = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    let result = follow(api, id, output, &mut stop).await;
    listener.abort();
    result
}

async fn follow(
    api: &Api,
    id: &str,
    output: Output,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<ExitCode, CliError> {
    // Progress goes to stdout for people; with --output json, stdout holds only the
    // final document, so progress goes to stderr.
    let say = |line: String| match output {
        Output::Text => out(line),
        Output::Json => {
            note(line);
            Ok(())
        }
    };
    // Environment names for the reasons that name an environment by id.
    let names = environment_names(api).await;
    let mut seen = 0u32;
    let mut waiting_for = String::new();
    let mut unreachable_since: Option<Instant> = None;
    let path = format!("/deployments/{id}");
    loop {
        let answer = tokio::select! {
            Ok(_) = stop.wait_for(|s| *s) => return Ok(interrupted(id)),
            answer = api.get(&path) => answer,
        };
        let value = match answer {
            Ok(value) => {
                unreachable_since = None;
                value
            }
            Err(error) if retryable(&error) => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    if let CliError::Connection(m) | CliError::Usage(m) = &error {
                        note(format_args!("warning: {m}; still trying"));
                    } else {
                        note("warning: the server is unavailable; still trying");
                    }
                    Instant::now()
                });
                if since.elapsed() > UNREACHABLE_FOR {
                    return Err(error);
                }
                if pause(stop).await.is_some() {
                    return Ok(interrupted(id));
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        let view: View = typed(&value, "deployment")?;
        let before = seen;
        for event in view.timeline.iter().filter(|e| e.seq > before) {
            say(timeline::timeline_line(event, &view.people))?;
            seen = seen.max(event.seq);
        }
        let d = &view.deployment;
        let waits = matches!(
            d.status,
            DeploymentStatus::PendingApproval | DeploymentStatus::Scheduled
        );
        if waits && !d.status_reason.is_empty() && d.status_reason != waiting_for {
            let why = timeline::reason(&d.status_reason, &names);
            say(timeline::line(now_ms(), "waiting", &why))?;
            waiting_for = d.status_reason.clone();
        }
        if d.status.is_final() {
            return finished(&view, &value, output, &names);
        }
        if pause(stop).await.is_some() {
            return Ok(interrupted(id));
        }
    }
}

/// Sleeps for one poll; `Some` when Ctrl-C came first. (When no Ctrl-C handler could be
/// installed, the sender is gone and the branch is disabled: then it only sleeps.)
async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>) -> Option<()> {
    tokio::select! {
        Ok(_) = stop.wait_for(|s| *s) => Some(()),
        _ = tokio::time::sleep(POLL) => None,
    }
}

/// Worth asking again: no answer, or the server says it is briefly unavailable.
fn retryable(error: &CliError) -> bool {
    match error {
        CliError::Connection(_) => true,
        CliError::Api(problem) => matches!(problem.status, 502..=504),
        CliError::Usage(_) | CliError::Output(_) => false,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn interrupted(id: &str) -> ExitCode {
    note(format!(
        "\nStopped waiting; deployment {id} goes on. See it with `gatehouse deployments get \
         {id}`, or follow it again with `gatehouse deployments wait {id}`."
    ));
    ExitCode::from(130)
}

/// Prints how the deployment ended; exit 0 only when it succeeded.
fn finished(
    view: &View,
    value: &Value,
    output: Output,
    names: &HashMap<String, String>,
) -> Result<ExitCode, CliError> {
    let d = &view.deployment;
    if output == Output::Json {
        out(pretty(value))?;
    }
    if d.status == DeploymentStatus::Succeeded {
        if output == Output::Text {
            out(format!(
                "Deployment {} succeeded: {} {} is in the target.",
                d.id, d.solution_name, d.version
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let errors = d
        .validation
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.severity == Severity::Error)
        .count();
    // Validation's errors are listed below, each with what fixes it; the reason repeats
    // them in one line.
    let headline = if d.status == DeploymentStatus::Failed && errors > 0 {
        format!(
            "Deployment {} failed validation with {errors} error(s):",
            d.id
        )
    } else {
        format!(
            "Deployment {} {}: {}",
            d.id,
            d.status,
            if d.status_reason.is_empty() {
                "no reason was given".to_owned()
            } else {
                timeline::reason(&d.status_reason, names)
            }
        )
    };
    let mut lines = vec![headline];
    lines.extend(timeline::findings(d).into_iter().map(|f| format!("  {f}")));
    for gate in &d.gates {
        if let Some(error) = &gate.error {
            lines.push(format!("  gate {} failed: {error}", gate.plugin_name));
        }
    }
    match output {
        Output::Text => {
            out(lines.join("\n"))?;
            note(format_args!("error: deployment {} {}", d.id, d.status));
        }
        Output::Json => note(format_args!("error: {}", lines.join("\n"))),
    }
    Ok(ExitCode::from(1))
}
