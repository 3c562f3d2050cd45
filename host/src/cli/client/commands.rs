//! The commands: each reads its flags, calls the API, and prints the answer.

use std::collections::HashMap;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::config::{self, SavedLogin};
use super::http::{Api, Collected, normalize_server};
use super::output::out;
use super::render::{self, View};
use super::{
    CliError, ClientCommand, DeploymentsCommand, GlobalArgs, ListArgs, PluginsCommand,
    RecordCommand, artifacts, deploy, resolve, solutions, timeline, vote, wait,
};
use crate::cli::Output;
use crate::pipeline::model::{
    DeploymentRecord, EnvironmentRecord, PipelineRecord, PluginRecord, User,
};

/// The most records read to resolve a name.
pub const SCAN_LIMIT: usize = 1000;

pub async fn dispatch(command: ClientCommand) -> Result<ExitCode, CliError> {
    match command {
        ClientCommand::Login(global) => login(&global).await,
        ClientCommand::Logout(global) => logout(&global),
        ClientCommand::Me(global) => {
            let api = connect(&global)?;
            let me = api.get("/me").await?;
            emit(global.output, &me, || {
                Ok(render::user(&typed(&me, "user")?))
            })
        }
        ClientCommand::Environments { command, global } => {
            let command = command.unwrap_or_else(|| RecordCommand::List(list_of(&global)));
            records(command, global, "/environments", "environment").await
        }
        ClientCommand::Pipelines { command, global } => {
            let command = command.unwrap_or_else(|| RecordCommand::List(list_of(&global)));
            records(command, global, "/pipelines", "pipeline").await
        }
        ClientCommand::Plugins { command, global } => {
            let command = command.unwrap_or_else(|| PluginsCommand::List(list_of(&global)));
            plugins(command, global).await
        }
        ClientCommand::Deployments { command, global } => {
            let command = command.unwrap_or_else(|| {
                DeploymentsCommand::List(deploy::ListDeploymentsArgs::default())
            });
            deployments(command, global).await
        }
        ClientCommand::Solutions(args) => solutions::solutions(args).await,
        ClientCommand::Artifacts { command, global } => artifacts::run(command, global).await,
        ClientCommand::Approvals(args) => {
            let api = connect(&args.global)?;
            let page = api.list("/approvals", &[], args.limit as usize).await?;
            print_deployments(
                &api,
                args.global.output,
                &page,
                "Nothing waits for your vote.",
            )
            .await
        }
        ClientCommand::Approve(args) => vote::vote(args, true).await,
        ClientCommand::Reject(args) => vote::vote(args, false).await,
        ClientCommand::Deploy(args) => deploy::deploy(args).await,
    }
}

/// `list` with its defaults, for a command given alone.
fn list_of(global: &GlobalArgs) -> ListArgs {
    ListArgs {
        limit: DEFAULT_LIST,
        global: global.clone(),
    }
}

/// How many records a list shows unless `--limit` says otherwise.
pub const DEFAULT_LIST: u32 = 50;

/// The API client for the flags, the environment and the saved login.
pub fn connect(global: &GlobalArgs) -> Result<Api, CliError> {
    let token = global
        .token
        .as_deref()
        .map(config::read_token)
        .transpose()?;
    let saved = match (&global.server, &token) {
        // Both given: the saved login is not needed, nor its warnings.
        (Some(_), Some(_)) => None,
        _ => config::load(&config::config_path()?)?,
    };
    let credentials =
        config::credentials(global.server.as_deref(), token.as_deref(), saved.as_ref())?;
    Api::new(&credentials.server, &credentials.token)
}

/// Reads an answer as a record of this client's version.
pub fn typed<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, CliError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        CliError::Connection(format!(
            "the server's answer is not a {what} this client can read ({e}); is the server the \
             same version as this client? `--output json` prints it as it is"
        ))
    })
}

/// Prints the JSON, or the text `text` makes of it.
pub fn emit(
    output: Output,
    value: &Value,
    text: impl FnOnce() -> Result<String, CliError>,
) -> Result<ExitCode, CliError> {
    match output {
        Output::Json => out(pretty(value))?,
        Output::Text => out(text()?)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

async fn login(global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let server = global.server.as_deref().ok_or_else(|| {
        CliError::Usage(
            "which server? pass --server URL (or set GATEHOUSE_SERVER), such as \
             http://127.0.0.1:8080"
                .into(),
        )
    })?;
    let token = global.token.as_deref().ok_or_else(|| {
        CliError::Usage(
            "pass --token TOKEN, --token - to read it from stdin, or set GATEHOUSE_TOKEN".into(),
        )
    })?;
    let token = config::read_token(token)?;
    let path = config::config_path()?;
    let api = Api::new(server, &token)?;
    let me = api.get("/me").await?;
    let user: User = typed(&me, "user")?;
    let saved = SavedLogin {
        server: normalize_server(server)?,
        token,
    };
    config::save(&path, &saved)?;
    emit(global.output, &me, || {
        Ok(format!(
            "Logged in to {} as {} ({}, {}). Saved to {}.",
            saved.server,
            user.display_name,
            user.name,
            serde_json::to_value(user.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            path.display()
        ))
    })
}

fn logout(global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let path = config::config_path()?;
    let saved = config::load(&path).ok().flatten();
    let removed = config::remove(&path)?;
    let value = json!({ "logged_out": removed, "config": path.display().to_string() });
    emit(global.output, &value, || {
        Ok(match (removed, saved) {
            (true, Some(saved)) => format!(
                "Logged out of {}; removed {}. The token itself is still valid on the server \
                 until it is revoked there.",
                saved.server,
                path.display()
            ),
            (true, None) => format!("Removed {}.", path.display()),
            (false, _) => format!("Not logged in (no {}).", path.display()),
        })
    })
}

/// Every record of a list, for resolving a name.
pub async fn all(api: &Api, path: &str) -> Result<Vec<Value>, CliError> {
    Ok(api.list(path, &[], SCAN_LIMIT).await?.items)
}

/// Fetches a record by id, or by name through the list.
async fn fetch(api: &Api, path: &str, what: &str, id_or_name: &str) -> Result<Value, CliError> {
    if resolve::looks_like_id(id_or_name) {
        return api.get(&format!("{path}/{}", id_or_name.trim())).await;
    }
    let items = all(api, path).await?;
    let found = resolve::one(what, &items, id_or_name, &["name", "environment_id"])?;
    Ok(found.clone())
}

async fn records(
    command: RecordCommand,
    global: GlobalArgs,
    path: &str,
    what: &str,
) -> Result<ExitCode, CliError> {
    let api = connect(&global)?;
    match command {
        RecordCommand::List(ListArgs { limit, .. }) => {
            let page = api.list(path, &[], limit as usize).await?;
            emit(global.output, &page.to_json(), || {
                if page.items.is_empty() {
                    return Ok(format!("No {what}s."));
                }
                let text = if what == "pipeline" {
                    let items: Vec<PipelineRecord> =
                        typed(&Value::Array(page.items.clone()), "pipeline list")?;
                    render::pipelines(&items)
                } else {
                    let items: Vec<EnvironmentRecord> =
                        typed(&Value::Array(page.items.clone()), "environment list")?;
                    render::environments(&items)
                };
                Ok(text + &render::more(page.next.as_deref(), page.items.len()))
            })
        }
        RecordCommand::Get { id } => {
            let record = fetch(&api, path, what, &id).await?;
            if what == "pipeline" {
                let pipeline: PipelineRecord = typed(&record, what)?;
                let names = if global.output == Output::Text {
                    environment_names(&api).await
                } else {
                    HashMap::new()
                };
                emit(global.output, &record, || {
                    Ok(render::pipeline(&pipeline, &names))
                })
            } else {
                let environment: EnvironmentRecord = typed(&record, what)?;
                emit(global.output, &record, || {
                    Ok(render::environment(&environment))
                })
            }
        }
    }
}

/// Environment names by id, where the caller may list them; empty otherwise.
pub async fn environment_names(api: &Api) -> HashMap<String, String> {
    let items = all(api, "/environments").await.unwrap_or_default();
    names_by_id(&items)
}

fn names_by_id(items: &[Value]) -> HashMap<String, String> {
    items
        .iter()
        .filter_map(|i| Some((i["id"].as_str()?.to_owned(), i["name"].as_str()?.to_owned())))
        .collect()
}

/// `Pipeline/Stage` by stage id, for the pipelines the caller can see.
pub async fn stage_names(api: &Api) -> HashMap<String, String> {
    let pipelines = all(api, "/pipelines").await.unwrap_or_default();
    let mut names = HashMap::new();
    for p in &pipelines {
        let pipeline = p["name"].as_str().unwrap_or_default();
        for s in p["stages"].as_array().into_iter().flatten() {
            if let (Some(id), Some(stage)) = (s["id"].as_str(), s["name"].as_str()) {
                names.insert(id.to_owned(), format!("{pipeline}/{stage}"));
            }
        }
    }
    names
}

async fn plugins(command: PluginsCommand, global: GlobalArgs) -> Result<ExitCode, CliError> {
    let api = connect(&global)?;
    match command {
        PluginsCommand::List(ListArgs { limit, .. }) => {
            let page = api.list("/plugins", &[], limit as usize).await?;
            emit(global.output, &page.to_json(), || {
                let items: Vec<PluginRecord> =
                    typed(&Value::Array(page.items.clone()), "plugin list")?;
                if items.is_empty() {
                    return Ok("No plugins.".into());
                }
                Ok(render::plugins(&items) + &render::more(page.next.as_deref(), items.len()))
            })
        }
        PluginsCommand::Get { id } => {
            let record = fetch(&api, "/plugins", "plugin", &id).await?;
            let plugin: PluginRecord = typed(&record, "plugin")?;
            emit(global.output, &record, || Ok(render::plugin(&plugin)))
        }
        PluginsCommand::Upload {
            file,
            name,
            version,
        } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                CliError::Usage(format!("cannot read the component {}: {e}", file.display()))
            })?;
            let mut query = Vec::new();
            if let Some(name) = name {
                query.push(("name", name));
            }
            if let Some(version) = version {
                query.push(("version", version));
            }
            let record = api
                .upload("/plugins", &query, "application/wasm", bytes)
                .await?;
            let plugin: PluginRecord = typed(&record, "plugin")?;
            emit(global.output, &record, || {
                Ok(format!(
                    "Uploaded {} {} ({}) as {}.",
                    plugin.name, plugin.version, plugin.world, plugin.id
                ))
            })
        }
    }
}

async fn deployments(
    command: DeploymentsCommand,
    global: GlobalArgs,
) -> Result<ExitCode, CliError> {
    let api = connect(&global)?;
    match command {
        DeploymentsCommand::List(args) => {
            let filters = deploy::list_filters(&api, &args).await?;
            let page = api
                .list("/deployments", &filters, args.limit as usize)
                .await?;
            print_deployments(&api, global.output, &page, "No deployments.").await
        }
        DeploymentsCommand::Get { id } => {
            let value = api.get(&format!("/deployments/{}", id.trim())).await?;
            let view: View = typed(&value, "deployment")?;
            let mut names = HashMap::new();
            if global.output == Output::Text {
                names = stage_names(&api).await;
                names.extend(environment_names(&api).await);
            }
            emit(global.output, &value, || {
                Ok(timeline::deployment(&view, &names))
            })
        }
        DeploymentsCommand::Cancel { id } => {
            let value = api
                .post(&format!("/deployments/{}/cancel", id.trim()), None)
                .await?;
            let d: DeploymentRecord = typed(&value, "deployment")?;
            emit(global.output, &value, || {
                Ok(format!("Deployment {} is {}.", d.id, d.status))
            })
        }
        DeploymentsCommand::Retry { id, wait } => {
            let value = api
                .post(&format!("/deployments/{}/retry", id.trim()), None)
                .await?;
            let d: DeploymentRecord = typed(&value, "deployment")?;
            if wait {
                return wait::wait(&api, &d.id, global.output).await;
            }
            emit(global.output, &value, || {
                Ok(format!(
                    "Deployment {} is {} again (attempt {}). Follow it with `gatehouse \
                     deployments wait {}`.",
                    d.id, d.status, d.attempt, d.id
                ))
            })
        }
        DeploymentsCommand::Wait { id } => wait::wait(&api, id.trim(), global.output).await,
    }
}

async fn print_deployments(
    api: &Api,
    output: Output,
    page: &Collected,
    empty: &str,
) -> Result<ExitCode, CliError> {
    let items: Vec<DeploymentRecord> = typed(&Value::Array(page.items.clone()), "deployment list")?;
    let names = match output {
        Output::Text if !items.is_empty() => stage_names(api).await,
        _ => HashMap::new(),
    };
    emit(output, &page.to_json(), || {
        if items.is_empty() {
            return Ok(empty.to_owned());
        }
        Ok(render::deployments(&items, &names) + &render::more(page.next.as_deref(), items.len()))
    })
}
