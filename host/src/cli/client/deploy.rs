//! `gatehouse deploy`: names resolved to ids, `--set`/`--connection` made into the
//! deployment settings, one request made safe to repeat; and `deployments list` filters.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::commands::{DEFAULT_LIST, all, connect, emit, typed};
use super::http::Api;
use super::output::out;
use super::wait::wait;
use super::{CliError, GlobalArgs, resolve, terms};
use crate::cli::Output;
use crate::pipeline::model::{DeploymentRecord, DeploymentSettings, VariableSetting, new_id};

/// Longest idempotency key the server takes.
const MAX_KEY_LEN: usize = 200;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The pipeline, by name or id.
    #[arg(long)]
    pipeline: String,
    /// The stage, by name or id.
    #[arg(long)]
    stage: String,
    /// The solution's unique name.
    #[arg(long)]
    solution: String,
    /// The development environment to deploy from, by name or id; needed when the
    /// pipeline has several.
    #[arg(long, value_name = "DEV_ENV")]
    source: Option<String>,
    /// The four-part version [default: what the source holds, for a first stage]
    #[arg(long)]
    version: Option<String>,
    /// An environment variable's value in the target, as NAME=VALUE. Repeat for more.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// A connection for a connection reference, as REFERENCE=CONNECTION. Repeat for more.
    #[arg(long = "connection", value_name = "REF=CONNECTION")]
    connections: Vec<String>,
    /// Deploy later, at this time (RFC 3339, such as 2026-03-01T22:00:00Z).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Notes for the approvers and the history.
    #[arg(long, default_value = "")]
    notes: String,
    /// Follow the deployment until it ends: exit 0 when it succeeds, 1 otherwise.
    #[arg(long)]
    wait: bool,
    /// Print only the new deployment's id, for scripts: `id=$(gatehouse deploy … --quiet)`.
    #[arg(long, short = 'q', conflicts_with = "wait")]
    quiet: bool,
    /// Makes the request safe to repeat: the same key returns the same deployment
    /// [default: a new one]
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct ListDeploymentsArgs {
    /// A pipeline, by name or id.
    #[arg(long)]
    pipeline: Option<String>,
    /// A stage, by name or id.
    #[arg(long)]
    stage: Option<String>,
    /// Statuses, such as pending_approval or failed,rejected.
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// A solution's unique name.
    #[arg(long)]
    solution: Option<String>,
    #[arg(long)]
    version: Option<String>,
    /// Who requested them: a user id, or `me`.
    #[arg(long)]
    requester: Option<String>,
    /// Show at most this many.
    #[arg(long, default_value_t = DEFAULT_LIST, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

impl Default for ListDeploymentsArgs {
    /// The newest deployments, as `deployments` alone lists them.
    fn default() -> Self {
        ListDeploymentsArgs {
            pipeline: None,
            stage: None,
            status: Vec::new(),
            solution: None,
            version: None,
            requester: None,
            limit: DEFAULT_LIST,
        }
    }
}

/// The deployment settings for `--set NAME=VALUE` and `--connection REF=CONNECTION`.
pub fn settings(set: &[String], connections: &[String]) -> Result<DeploymentSettings, CliError> {
    let mut variables: Vec<VariableSetting> = Vec::new();
    for entry in set {
        let (name, value) = pair("--set", "NAME=VALUE", entry)?;
        if variables.iter().any(|v| v.name == name) {
            return Err(CliError::Usage(format!(
                "--set {name} is given twice; give each variable once"
            )));
        }
        variables.push(VariableSetting {
            name,
            value: Some(value),
            secret: false,
        });
    }
    let mut references = BTreeMap::new();
    for entry in connections {
        let (reference, connection) = pair("--connection", "REFERENCE=CONNECTION", entry)?;
        if connection.is_empty() {
            return Err(CliError::Usage(format!(
                "--connection {entry:?} names no connection; use REFERENCE=CONNECTION"
            )));
        }
        if references.insert(reference.clone(), connection).is_some() {
            return Err(CliError::Usage(format!(
                "--connection {reference} is given twice; bind each reference once"
            )));
        }
    }
    Ok(DeploymentSettings {
        environment_variables: variables,
        connection_references: references,
    })
}

/// `NAME=VALUE`, split at the first `=`: the name trimmed and without spaces, the value as
/// given.
fn pair(flag: &str, shape: &str, entry: &str) -> Result<(String, String), CliError> {
    let Some((name, value)) = entry.split_once('=') else {
        return Err(CliError::Usage(format!(
            "{flag} {entry:?} has no `=`; use {shape}"
        )));
    };
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(CliError::Usage(format!(
            "{flag} {entry:?} needs a name without spaces before the `=`; use {shape}"
        )));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// An RFC 3339 time as milliseconds since the epoch (UTC).
pub fn parse_at(text: &str) -> Result<u64, CliError> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--at {text:?} is not an RFC 3339 time such as 2026-03-01T22:00:00Z"
            ))
        })
}

fn check_key(key: &str) -> Result<(), CliError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CliError::Usage(format!(
            "--idempotency-key must be 1 to {MAX_KEY_LEN} visible ASCII characters, such as \
             a UUID"
        )));
    }
    Ok(())
}

pub async fn deploy(args: DeployArgs) -> Result<ExitCode, CliError> {
    let settings = settings(&args.set, &args.connections)?;
    let scheduled_for = args.at.as_deref().map(parse_at).transpose()?;
    let key = args.idempotency_key.clone().unwrap_or_else(new_id);
    check_key(&key)?;
    let output = args.global.output;
    let api = connect(&args.global)?;

    let pipelines = all(&api, "/pipelines").await?;
    let pipeline = resolve::one("pipeline", &pipelines, &args.pipeline, &["name"])?;
    let stages = pipeline["stages"].as_array().cloned().unwrap_or_default();
    let stage = resolve::one("stage", &stages, &args.stage, &["name"]).map_err(|e| match e {
        CliError::Usage(m) => CliError::Usage(format!(
            "in pipeline {}: {m}",
            pipeline["name"].as_str().unwrap_or_default()
        )),
        other => other,
    })?;
    let source = match &args.source {
        None => None,
        Some(wanted) => {
            // The pipeline's own development environments first, so a name that is
            // ambiguous elsewhere still settles; then any, for the server to judge.
            let environments = all(&api, "/environments").await?;
            let fields = ["name", "environment_id"];
            let devs: Vec<Value> = environments
                .iter()
                .filter(|e| {
                    pipeline["development_environment_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.contains(&e["id"]))
                })
                .cloned()
                .collect();
            let env = match resolve::one("environment", &devs, wanted, &fields) {
                Ok(env) => env,
                Err(_) => resolve::one("environment", &environments, wanted, &fields)?,
            };
            env["id"].as_str().map(str::to_owned)
        }
    };
    let request = json!({
        "pipeline_id": pipeline["id"],
        "stage_id": stage["id"],
        "source_environment_id": source,
        "solution_name": args.solution,
        "version": args.version,
        "scheduled_for": scheduled_for,
        "notes": args.notes,
        "settings": settings,
    });
    let (status, value) = request_once(&api, &request, &key, args.idempotency_key.is_none())
        .await
        .map_err(terms::refusal)?;
    let view_id = value["id"].as_str().unwrap_or_default().to_owned();
    if args.quiet {
        out(view_id)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.wait {
        if output == Output::Text && status == 200 {
            out(format!(
                "Deployment {view_id} was already requested with this idempotency key."
            ))?;
        }
        return wait(&api, &view_id, output).await;
    }
    let d: DeploymentRecord = typed(&value, "deployment")?;
    emit(output, &value, || {
        let how = if status == 200 {
            "was already requested with this idempotency key"
        } else {
            "requested"
        };
        Ok(format!(
            "Deployment {} {how}: {} {} to {}, {}.\nFollow it with `gatehouse deployments wait {}`.",
            d.id,
            d.solution_name,
            d.version,
            stage["name"].as_str().unwrap_or_default(),
            d.status,
            d.id
        ))
    })
}

/// `POST /deployments`, repeated with the same key when the answer is lost on the way.
async fn request_once(
    api: &Api,
    request: &Value,
    key: &str,
    generated: bool,
) -> Result<(u16, Value), CliError> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api
            .post_with("/deployments", Some(request), &[("Idempotency-Key", key)])
            .await
        {
            Err(CliError::Connection(_))
            | Err(CliError::Api(super::http::ServerProblem {
                status: 502..=504, ..
            })) if attempt < 4 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(CliError::Connection(message)) if generated => {
                return Err(CliError::Connection(format!(
                    "{message}\nThe deployment may or may not have been requested; to try again \
                     safely, add --idempotency-key {key}"
                )));
            }
            other => return other,
        }
    }
}

/// The query of `deployments list`, with names resolved to ids.
pub async fn list_filters(
    api: &Api,
    args: &ListDeploymentsArgs,
) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut query = Vec::new();
    let mut pipeline = None;
    if args.pipeline.is_some() || args.stage.is_some() {
        let pipelines = all(api, "/pipelines").await?;
        if let Some(wanted) = &args.pipeline {
            let found = resolve::one("pipeline", &pipelines, wanted, &["name"])?.clone();
            query.push((
                "pipeline",
                found["id"].as_str().unwrap_or_default().to_owned(),
            ));
            pipeline = Some(found);
        }
        if let Some(wanted) = &args.stage {
            let stages: Vec<Value> = match &pipeline {
                Some(p) => p["stages"].as_array().cloned().unwrap_or_default(),
                None => pipelines
                    .iter()
                    .flat_map(|p| p["stages"].as_array().cloned().unwrap_or_default())
                    .collect(),
            };
            let stage = resolve::one("stage", &stages, wanted, &["name"])?;
            query.push(("stage", stage["id"].as_str().unwrap_or_default().to_owned()));
        }
    }
    if !args.status.is_empty() {
        query.push(("status", args.status.join(",")));
    }
    if let Some(solution) = &args.solution {
        query.push(("solution", solution.clone()));
    }
    if let Some(version) = &args.version {
        query.push(("version", version.clone()));
    }
    match args.requester.as_deref() {
        None => {}
        Some("me") => {
            let me = api.get("/me").await?;
            query.push((
                "requested_by",
                me["id"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        Some(id) => query.push(("requested_by", id.to_owned())),
    }
    Ok(query)
}
