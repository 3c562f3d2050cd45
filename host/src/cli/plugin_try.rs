//! `gatehouse plugin try`: the plugin author's inner loop.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use super::Output;
use crate::pipeline::{
    Config, Decision, DeploymentFacts, Finding, LogLine, PluginInfo, PluginWorld, Principal, Vote,
};
use crate::plugins::{Invocation, LoadedPlugin, PluginLimits, Runtime, RuntimeOptions};

#[derive(Debug, Args)]
pub struct TryArgs {
    /// The component to run (`.wasm`).
    component: PathBuf,
    /// The deployment to decide, as JSON (see examples/deployment.json).
    #[arg(long)]
    deployment: PathBuf,
    /// A vote, as `USER[@GROUP,GROUP…]:yes|no[:COMMENT]`. Repeat for more votes.
    #[arg(long = "vote", value_name = "VOTE")]
    votes: Vec<String>,
    /// A configuration entry for the binding, as `KEY=VALUE`. Repeat for more.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The evaluation time (RFC 3339, such as 2026-11-26T09:30:00Z); default now.
    #[arg(long)]
    now: Option<String>,
    /// Limits for the call, as JSON, such as '{"fuel": 1000000, "wall_time": 200}'.
    #[arg(long)]
    limits: Option<String>,
    /// Print text for people or JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// What `plugin try` prints with `--output json`.
#[derive(Debug, Serialize)]
struct Report {
    plugin: PluginInfo,
    world: PluginWorld,
    sha256: String,
    compile_ms: f64,
    config_check: Option<String>,
    decision: Option<Decision>,
    findings: Option<Vec<Finding>>,
    error: Option<ReportError>,
    duration_us: f64,
    fuel_used: u64,
    log: Vec<LogLine>,
}

#[derive(Debug, Serialize)]
struct ReportError {
    code: &'static str,
    message: String,
}

/// Exit codes: 0 when the plugin answered, 1 when the call failed (a trap, a limit), and
/// 2 when the input was unusable or the component was refused.
pub async fn run(args: TryArgs) -> ExitCode {
    match try_plugin(&args).await {
        Ok(report) => {
            let failed = report.error.is_some() || report.config_check.is_some();
            print(&report, args.output);
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn try_plugin(args: &TryArgs) -> anyhow::Result<Report> {
    let deployment: DeploymentFacts = {
        let text = std::fs::read_to_string(&args.deployment)
            .with_context(|| format!("could not read {}", args.deployment.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a deployment", args.deployment.display()))?
    };
    let votes = args
        .votes
        .iter()
        .map(|v| parse_vote(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = parse_config(&args.config)?;
    let now = match &args.now {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?
            .timestamp_millis()
            .try_into()
            .context("--now must be after 1970")?,
        None => crate::plugins::now_millis(),
    };
    let limits = match &args.limits {
        Some(json) => {
            let limits: PluginLimits =
                serde_json::from_str(json).context("--limits is not valid")?;
            limits.validate()?;
            limits
        }
        None => PluginLimits::default(),
    };

    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("could not read {}", args.component.display()))?;
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(std::env::temp_dir().join("gatehouse-plugin-cache")),
        ..RuntimeOptions::default()
    })?;
    let plugin = runtime
        .load(bytes)
        .await
        .with_context(|| format!("{} was refused", args.component.display()))?
        .with_limits(limits);

    let check = runtime.check_config(&plugin, &config, now).await;
    match &check.result {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => {
            let refusal = refusal.clone();
            return Ok(report(&plugin, Some(refusal), check, |_| {}));
        }
        Err(err) => bail!("check-config failed: {err}"),
    }

    let deployment = Arc::new(deployment);
    Ok(match plugin.world() {
        PluginWorld::Approver => {
            let call = runtime
                .evaluate(&plugin, deployment, &votes, &config, now)
                .await;
            report(&plugin, None, call, |(r, d)| r.decision = Some(d))
        }
        PluginWorld::Validator => {
            let call = runtime.validate(&plugin, deployment, &config, now).await;
            report(&plugin, None, call, |(r, f)| r.findings = Some(f))
        }
    })
}

fn report<T>(
    plugin: &LoadedPlugin,
    config_check: Option<String>,
    call: Invocation<T>,
    fill: impl FnOnce((&mut Report, T)),
) -> Report {
    let mut report = Report {
        plugin: plugin.info().clone(),
        world: plugin.world(),
        sha256: plugin.sha256().to_owned(),
        compile_ms: plugin.compile_time().as_secs_f64() * 1e3,
        config_check,
        decision: None,
        findings: None,
        error: None,
        duration_us: call.duration.as_secs_f64() * 1e6,
        fuel_used: call.fuel_used,
        log: call.log,
    };
    match call.result {
        Ok(value) => fill((&mut report, value)),
        Err(err) => {
            report.error = Some(ReportError {
                code: err.code(),
                message: err.to_string(),
            })
        }
    }
    report
}

fn print(report: &Report, output: Output) {
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("a report serializes")
        );
        return;
    }
    println!(
        "plugin    {} {} ({}), compiled in {:.1} ms",
        report.plugin.name, report.plugin.version, report.world, report.compile_ms
    );
    if let Some(refusal) = &report.config_check {
        println!("config    refused: {refusal}");
    }
    match &report.decision {
        Some(Decision::Approve { reason }) => println!("decision  approve: {reason}"),
        Some(Decision::Reject { reason }) => println!("decision  reject: {reason}"),
        Some(Decision::Pending {
            message,
            approvers,
            recheck_after_seconds,
        }) => {
            println!("decision  pending: {message}");
            println!("          approvers: {}", approvers.join(", "));
            if let Some(secs) = recheck_after_seconds {
                println!("          recheck after {secs} s");
            }
        }
        None => {}
    }
    if let Some(findings) = &report.findings {
        if findings.is_empty() {
            println!("findings  none");
        }
        for f in findings {
            let component = f.component.as_deref().unwrap_or("-");
            println!(
                "finding   {:?} {} [{component}]: {}",
                f.severity, f.code, f.message
            );
        }
    }
    if let Some(err) = &report.error {
        println!("error     {}: {}", err.code, err.message);
    }
    println!(
        "cost      {:.1} µs, {} fuel",
        report.duration_us, report.fuel_used
    );
    for line in &report.log {
        println!(
            "log       {:?} {:?}: {}",
            line.stream, line.level, line.message
        );
    }
}

fn parse_config(entries: &[String]) -> anyhow::Result<Config> {
    let mut config = Config::new();
    for entry in entries {
        let Some((key, value)) = entry.split_once('=') else {
            bail!("--config {entry:?} must be KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--config {entry:?} has an empty key");
        }
        config.insert(key.to_owned(), value.to_owned());
    }
    Ok(config)
}

/// Parses `USER[@GROUP,GROUP…]:yes|no[:COMMENT]`.
fn parse_vote(text: &str) -> anyhow::Result<Vote> {
    let mut parts = text.splitn(3, ':');
    let who = parts.next().unwrap_or_default();
    let choice = parts.next().unwrap_or_default();
    let comment = parts.next().unwrap_or_default().to_owned();
    let (id, groups) = match who.split_once('@') {
        Some((id, groups)) => (
            id,
            groups
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => (who, Vec::new()),
    };
    if id.is_empty() {
        bail!("--vote {text:?} has no user: use USER[@GROUP,…]:yes|no[:COMMENT]");
    }
    let approve = match choice {
        "yes" | "approve" => true,
        "no" | "reject" => false,
        _ => bail!("--vote {text:?} must say yes or no after the user, as alice:yes"),
    };
    Ok(Vote {
        voter: Principal {
            id: id.to_owned(),
            display_name: id.to_owned(),
            groups,
        },
        approve,
        comment,
        at: crate::plugins::now_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_parse_with_groups_and_comments() {
        let vote = parse_vote("alice@release,qa:yes:ship it: now").unwrap();
        assert_eq!(vote.voter.id, "alice");
        assert_eq!(vote.voter.groups, ["release", "qa"]);
        assert!(vote.approve);
        assert_eq!(vote.comment, "ship it: now");
        assert!(!parse_vote("bob:no").unwrap().approve);
        assert!(parse_vote("bob:maybe").is_err());
        assert!(parse_vote(":yes").is_err());
    }

    #[test]
    fn config_entries_need_a_key_and_an_equals_sign() {
        let config = parse_config(&["a=1".into(), "b=x=y".into()]).unwrap();
        assert_eq!(config["b"], "x=y");
        assert!(parse_config(&["novalue".into()]).is_err());
        assert!(parse_config(&["=1".into()]).is_err());
    }
}
