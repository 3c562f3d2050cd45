//! `gatehouse solutions [NAME]`: where each version of each solution is installed, by whom
//! and when, and whether its backup is stored (`gatehouse artifacts download` fetches it).

use std::collections::HashSet;
use std::process::ExitCode;

use clap::Args;
use serde::Deserialize;
use serde_json::Value;

use super::commands::{DEFAULT_LIST, SCAN_LIMIT, connect, emit, typed};
use super::render::{more, table, time};
use super::{CliError, GlobalArgs};
use crate::cli::Output;

#[derive(Debug, Args)]
pub struct SolutionsArgs {
    /// Only this solution, by its unique name.
    name: Option<String>,
    /// Show at most this many solutions.
    #[arg(long, default_value_t = DEFAULT_LIST, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    #[command(flatten)]
    global: GlobalArgs,
}

/// A solution as `GET /solutions` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Solution {
    pub name: String,
    pub installations: Vec<Installed>,
}

/// Where a version went.
#[derive(Debug, Clone, Deserialize)]
pub struct Installed {
    pub version: String,
    pub environment_name: String,
    pub current: bool,
    pub requested_by_name: String,
    pub installed_at: u64,
}

pub async fn solutions(args: SolutionsArgs) -> Result<ExitCode, CliError> {
    let api = connect(&args.global)?;
    let name = args
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let filter: Vec<(&str, String)> = name
        .map(|n| vec![("solution", n.to_owned())])
        .unwrap_or_default();
    let page = api.list("/solutions", &filter, args.limit as usize).await?;
    if let Some(name) = name
        && page.items.is_empty()
    {
        return Err(CliError::Usage(format!(
            "no deployment of a solution named {name:?} in the pipelines you can see; \
             `gatehouse solutions` lists the solutions they have deployed"
        )));
    }
    let found: Vec<Solution> = typed(&Value::Array(page.items.clone()), "solution list")?;
    let backups = match args.global.output {
        Output::Text if !found.is_empty() => {
            let artifacts = api.list("/artifacts", &filter, SCAN_LIMIT).await?.items;
            stored(&artifacts)
        }
        _ => HashSet::new(),
    };
    emit(args.global.output, &page.to_json(), || {
        if found.is_empty() {
            return Ok("No solution has been deployed in the pipelines you can see.".into());
        }
        Ok(installations(&found, &backups) + &more(page.next.as_deref(), found.len()))
    })
}

/// `(solution, version)` of every stored artifact.
fn stored(artifacts: &[Value]) -> HashSet<(String, String)> {
    artifacts
        .iter()
        .filter_map(|a| {
            Some((
                a["solution_name"].as_str()?.to_owned(),
                a["version"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// One line per version and environment, newest first within each solution; a version an
/// environment has since replaced says so. `backups` holds the `(solution, version)` whose
/// packages are stored. Solutions deployed but not installed anywhere are named below.
pub fn installations(solutions: &[Solution], backups: &HashSet<(String, String)>) -> String {
    let mut rows = Vec::new();
    let mut nowhere = Vec::new();
    for s in solutions {
        if s.installations.is_empty() {
            nowhere.push(s.name.as_str());
        }
        for i in &s.installations {
            let backup = backups.contains(&(s.name.clone(), i.version.clone()));
            rows.push(vec![
                s.name.clone(),
                i.version.clone(),
                i.environment_name.clone(),
                if i.current { "installed" } else { "replaced" }.into(),
                i.requested_by_name.clone(),
                time(i.installed_at),
                if backup { "stored" } else { "-" }.into(),
            ]);
        }
    }
    let mut parts = Vec::new();
    if !rows.is_empty() {
        parts.push(table(
            &[
                "SOLUTION",
                "VERSION",
                "ENVIRONMENT",
                "STATE",
                "BY",
                "WHEN",
                "BACKUP",
            ],
            &rows,
        ));
    }
    if !nowhere.is_empty() {
        parts.push(format!(
            "Requested, but not installed anywhere yet: {}",
            nowhere.join(", ")
        ));
    }
    parts.join("\n\n")
}
