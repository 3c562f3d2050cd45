//! `GET /ui/solutions`: each solution's versions, and where each version was installed,
//! by whom and when. Counted over the deployments of the pipelines the viewer can see;
//! artifacts are shown, with a link to download each package, to those who may download
//! them, as `GET /api/v1/artifacts` does.
//!
//! Without `?solution=` the page lists solutions by name, 50 a page, each with its newest
//! versions; with it, one solution's versions, 50 a page.

use std::collections::{HashMap, HashSet};

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::backups;
use super::directory::Directory;
use super::error::PageError;
use super::layout::{Nav, Shell, query_string, time};
use super::session::Viewer;
use crate::pipeline::Timestamp;
use crate::pipeline::access::may_see_artifact;
use crate::pipeline::console::{
    Installation, InstallationGroup, InstallationQuery, SolutionSummary, SolutionVersionSeen,
    VersionCursor,
};
use crate::pipeline::model::ArtifactRecord;
use crate::pipeline::reports::scope_of;
use crate::pipeline::services::Services;

/// Solutions per page of the list, and versions per page of one solution.
const PAGE_SIZE: u32 = 50;

/// Versions shown under each solution of the list.
const VERSIONS_IN_LIST: u32 = 5;

#[derive(Debug, Default, Deserialize)]
pub struct SolutionsQuery {
    /// One solution's versions.
    #[serde(default)]
    solution: String,
    /// The list's cursor: the last solution name of the previous page.
    #[serde(default)]
    after: String,
    /// One solution's cursor: `<ms>:<version>` of the last version of the previous page.
    #[serde(default)]
    before: String,
}

pub async fn page(
    State(state): State<Services>,
    viewer: Viewer,
    Query(query): Query<SolutionsQuery>,
) -> Result<Markup, PageError> {
    let directory = Directory::load(&state, &viewer.user).await?;
    let scope = scope_of(&viewer.user, &directory.pipelines);
    let one = Some(query.solution.trim()).filter(|s| !s.is_empty());
    let (solutions, next_solution) = match one {
        Some(name) => (vec![name.to_owned()], None),
        None => {
            let after = Some(query.after.as_str()).filter(|a| !a.is_empty());
            let mut list: Vec<SolutionSummary> =
                state.store.solutions(&scope, after, PAGE_SIZE + 1).await?;
            let next = (list.len() > PAGE_SIZE as usize).then(|| {
                list.truncate(PAGE_SIZE as usize);
                list.last().map(|s| s.name.clone()).unwrap_or_default()
            });
            (list.into_iter().map(|s| s.name).collect(), next)
        }
    };
    let per_solution = if one.is_some() {
        PAGE_SIZE
    } else {
        VERSIONS_IN_LIST
    };
    let before = one.and_then(|_| cursor(&query.before));
    // One more than shown tells whether there are more.
    let mut versions = state
        .store
        .solution_versions(&scope, &solutions, before.as_ref(), per_solution + 1)
        .await?;
    let mut more: HashSet<String> = HashSet::new();
    let mut shown: HashMap<String, u32> = HashMap::new();
    versions.retain(|v| {
        let n = shown.entry(v.solution_name.clone()).or_insert(0);
        *n += 1;
        if *n > per_solution {
            more.insert(v.solution_name.clone());
        }
        *n <= per_solution
    });
    let older_versions = one.filter(|name| more.contains(*name)).and_then(|name| {
        let last = versions.last()?;
        let before = format!("{}:{}", last.last_requested_at, last.version);
        Some(format!(
            "/ui/solutions{}",
            query_string(&[("solution", name), ("before", &before)])
        ))
    });
    let version_names: Vec<String> = unique(versions.iter().map(|v| v.version.clone()));
    let placed = InstallationQuery {
        scope: scope.clone(),
        stage_ids: Vec::new(),
        solutions: solutions.clone(),
        versions: version_names.clone(),
        per: InstallationGroup::SolutionVersionTarget,
    };
    let (installations, artifacts) = if versions.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        tokio::try_join!(
            state.store.installations(&placed),
            state.store.artifacts_of(&solutions, &version_names),
        )?
    };
    let current = if versions.is_empty() {
        Vec::new()
    } else {
        let by_stage = state
            .store
            .installations(&InstallationQuery {
                scope: scope.clone(),
                stage_ids: Vec::new(),
                solutions: solutions.clone(),
                versions: Vec::new(),
                per: InstallationGroup::StageSolution,
            })
            .await?;
        newest_per_target(by_stage)
    };
    let artifacts = visible_artifacts(&state, &viewer, artifacts).await;
    let shell = Shell::load(&state, &viewer).await?;
    let view = View {
        directory: &directory,
        versions: &versions,
        installations: &installations,
        current: &current,
        artifacts: &artifacts,
        more: &more,
        single: one.is_some(),
    };
    let body = html! {
        main id="solutions" {
            h1 {
                @if let Some(name) = one { "Solution " (name) } @else { "Solutions" }
            }
            @if one.is_some() { p { a href="/ui/solutions" { "All solutions" } } }
            @if solutions.is_empty() || (one.is_some() && versions.is_empty()) {
                p id="solutions-empty" class="empty" {
                    "No deployment of a solution in the pipelines you can see yet."
                }
            }
            @for name in &solutions {
                @if versions.iter().any(|v| &v.solution_name == name) { (view.solution(name)) }
            }
            nav class="pager" aria-label="Pages" {
                @if let Some(after) = &next_solution {
                    a id="next-page" rel="next" href=(format!("/ui/solutions{}", query_string(&[("after", after)]))) { "More solutions →" }
                }
                @if let Some(link) = &older_versions {
                    a id="next-page" rel="next" href=(link) { "Older versions →" }
                }
            }
        }
    };
    Ok(shell.page("Solutions", Nav::Solutions, false, body))
}

/// The artifacts the viewer may see, as the artifacts API decides, asking about each
/// source environment once.
async fn visible_artifacts(
    state: &Services,
    viewer: &Viewer,
    artifacts: Vec<ArtifactRecord>,
) -> Vec<ArtifactRecord> {
    let mut allowed: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(artifacts.len());
    for artifact in artifacts {
        let ok = match allowed.get(&artifact.source_environment_id) {
            Some(ok) => *ok,
            None => {
                let ok = may_see_artifact(state.store.as_ref(), &viewer.user, &artifact).await;
                allowed.insert(artifact.source_environment_id.clone(), ok);
                ok
            }
        };
        if ok {
            out.push(artifact);
        }
    }
    out
}

/// What each target has now, per solution: the newest of what its stages received.
fn newest_per_target(by_stage: Vec<Installation>) -> Vec<Installation> {
    let mut newest: HashMap<(String, String), Installation> = HashMap::new();
    for i in by_stage {
        let key = (i.solution_name.clone(), i.target_environment_id.clone());
        match newest.get(&key) {
            Some(kept)
                if (kept.finished_at, &kept.deployment_id) >= (i.finished_at, &i.deployment_id) => {
            }
            _ => {
                newest.insert(key, i);
            }
        }
    }
    let mut list: Vec<Installation> = newest.into_values().collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.finished_at));
    list
}

/// `<ms>:<version>`, as the next-page link writes it.
fn cursor(text: &str) -> Option<VersionCursor> {
    let (at, version) = text.split_once(':')?;
    Some(VersionCursor {
        last_requested_at: at.parse::<Timestamp>().ok()?,
        version: version.to_owned(),
    })
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

struct View<'a> {
    directory: &'a Directory,
    versions: &'a [SolutionVersionSeen],
    installations: &'a [Installation],
    current: &'a [Installation],
    artifacts: &'a [ArtifactRecord],
    more: &'a HashSet<String>,
    single: bool,
}

impl View<'_> {
    fn solution(&self, name: &str) -> Markup {
        let d = self.directory;
        let now_installed: Vec<&Installation> = self
            .current
            .iter()
            .filter(|i| i.solution_name == name)
            .collect();
        html! {
            section class="solution" data-solution=(name) aria-labelledby=(format!("s-{name}")) {
                @if !self.single {
                    h2 id=(format!("s-{name}")) {
                        a href=(format!("/ui/solutions{}", query_string(&[("solution", name)]))) { (name) }
                    }
                } @else {
                    h2 id=(format!("s-{name}")) class="visually-hidden" { (name) }
                }
                @if !now_installed.is_empty() {
                    p class="installed-now" {
                        "Installed now: "
                        @for (i, inst) in now_installed.iter().enumerate() {
                            @if i > 0 { ", " }
                            (d.environment_name(&inst.target_environment_id)) " "
                            strong class="version" { (inst.version) }
                        }
                    }
                }
                table class="versions" {
                    thead { tr { th { "Version" } th { "Installed in" } th { "By" } th { "When" } th { "Backup" } } }
                    tbody {
                        @for v in self.versions.iter().filter(|v| v.solution_name == name) {
                            (self.version_rows(v))
                        }
                    }
                }
                @if !self.single && self.more.contains(name) {
                    p { a href=(format!("/ui/solutions{}", query_string(&[("solution", name)]))) { "All versions of " (name) } }
                }
            }
        }
    }

    fn version_rows(&self, v: &SolutionVersionSeen) -> Markup {
        let d = self.directory;
        let places: Vec<&Installation> = self
            .installations
            .iter()
            .filter(|i| i.solution_name == v.solution_name && i.version == v.version)
            .collect();
        let backup = self
            .artifacts
            .iter()
            .find(|a| a.solution_name == v.solution_name && a.version == v.version);
        let rows = places.len().max(1);
        html! {
            @for i in 0..rows {
                tr data-version=(v.version) {
                    @if i == 0 {
                        td rowspan=(rows) class="version" { strong { (v.version) } }
                    }
                    @match places.get(i) {
                        Some(place) => {
                            td { a href=(format!("/ui/deployments/{}", place.deployment_id)) { (d.environment_name(&place.target_environment_id)) } }
                            td { (d.user(&place.requested_by)) }
                            td { (time(place.finished_at)) }
                        }
                        None => {
                            td class="muted" colspan="3" { "not installed anywhere yet (last requested " (time(v.last_requested_at)) ")" }
                        }
                    }
                    @if i == 0 {
                        td rowspan=(rows) class="backup" {
                            @match backup {
                                Some(artifact) => { (backups::links(artifact)) }
                                None => { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}
