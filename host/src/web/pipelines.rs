//! `GET /ui/pipelines`: each pipeline the viewer can see as a chain, from its development
//! environments through its stages, with what each stage's target last received.

use std::collections::HashMap;

use axum::extract::State;
use maud::{Markup, html};

use super::directory::{Directory, stages_in_order};
use super::error::PageError;
use super::layout::{Nav, Shell, time};
use super::session::Viewer;
use crate::pipeline::console::{Installation, InstallationGroup, InstallationQuery};
use crate::pipeline::model::{PipelineRecord, StageRecord};
use crate::pipeline::reports::scope_of;
use crate::pipeline::services::Services;
use crate::pipeline::store::scan_all;

pub async fn page(State(state): State<Services>, viewer: Viewer) -> Result<Markup, PageError> {
    let directory = Directory::load(&state, &viewer.user).await?;
    let stage_ids: Vec<String> = directory
        .pipelines
        .iter()
        .flat_map(|p| p.stages.iter().map(|s| s.id.clone()))
        .collect();
    let installed = if stage_ids.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .installations(&InstallationQuery {
                scope: scope_of(&viewer.user, &directory.pipelines),
                stage_ids,
                solutions: Vec::new(),
                versions: Vec::new(),
                per: InstallationGroup::StageSolution,
            })
            .await?
    };
    let mut by_stage: HashMap<&str, Vec<&Installation>> = HashMap::new();
    for installation in &installed {
        by_stage
            .entry(installation.stage_id.as_str())
            .or_default()
            .push(installation);
    }
    let store = &state.store;
    let plugins: HashMap<String, String> = scan_all(
        move |p| async move { store.list_plugins(&p).await },
        |p| p.id.clone(),
    )
    .await?
    .into_iter()
    .map(|p| (p.id, p.name))
    .collect();
    let shell = Shell::load(&state, &viewer).await?;
    let body = html! {
        main id="pipelines" {
            h1 { "Pipelines" }
            @if directory.pipelines.is_empty() {
                p id="no-pipelines" class="empty" {
                    "No pipeline is shared with you yet; an admin can share one with you or "
                    "your group."
                }
            }
            @for pipeline in &directory.pipelines {
                (chain(pipeline, &directory, &by_stage, &plugins))
            }
        }
    };
    Ok(shell.page("Pipelines", Nav::Pipelines, false, body))
}

fn chain(
    pipeline: &PipelineRecord,
    directory: &Directory,
    by_stage: &HashMap<&str, Vec<&Installation>>,
    plugins: &HashMap<String, String>,
) -> Markup {
    let stages = stages_in_order(pipeline);
    html! {
        section class="pipeline" data-pipeline=(pipeline.id) aria-labelledby=(format!("p-{}", pipeline.id)) {
            h2 id=(format!("p-{}", pipeline.id)) { (pipeline.name) }
            @if !pipeline.description.is_empty() { p { (pipeline.description) } }
            ol class="chain" {
                li class="node development" {
                    span class="kind" { "Development" }
                    @for (i, id) in pipeline.development_environment_ids.iter().enumerate() {
                        @if i > 0 { ", " }
                        strong { (directory.environment_name(id)) }
                    }
                    @if pipeline.development_environment_ids.is_empty() {
                        em { "none linked yet" }
                    }
                }
                @for (i, stage) in stages.iter().enumerate() {
                    (stage_node(pipeline, stage, i, &stages, directory, by_stage, plugins))
                }
            }
            @if stages.is_empty() {
                p class="empty" { "This pipeline has no stage yet." }
            }
            p class="actions" {
                a href=(format!("/ui/deploy?pipeline={}", pipeline.id)) { "Deploy with this pipeline" }
                " · "
                a href=(format!("/ui/deployments?pipeline={}", pipeline.id)) { "Its history" }
            }
        }
    }
}

fn stage_node(
    pipeline: &PipelineRecord,
    stage: &StageRecord,
    index: usize,
    ordered: &[&StageRecord],
    directory: &Directory,
    by_stage: &HashMap<&str, Vec<&Installation>>,
    plugins: &HashMap<String, String>,
) -> Markup {
    // A stage that does not follow the one drawn before it says which it follows.
    let drawn_before = index.checked_sub(1).map(|i| ordered[i].id.as_str());
    let follows = stage
        .previous_stage_id
        .as_deref()
        .filter(|previous| Some(*previous) != drawn_before);
    let installed = by_stage.get(stage.id.as_str());
    html! {
        li class="node stage" data-stage=(stage.id) {
            span class="kind" { "Stage " (pipeline.depth(&stage.id)) }
            h3 { (stage.name) }
            @if let Some(previous) = follows {
                p class="muted" { "after " (directory.stage_name(&pipeline.id, previous)) }
            }
            p { "Target: " strong { (directory.environment_name(&stage.target_environment_id)) } }
            @if !stage.gates.is_empty() {
                p class="gates" {
                    "Gates: "
                    @for (i, gate) in stage.gates.iter().enumerate() {
                        @if i > 0 { " → " }
                        (plugins.get(&gate.plugin_id).map_or(gate.plugin_id.as_str(), String::as_str))
                    }
                }
            } @else if stage.pre_deployment_step_required {
                p class="gates" { "Waits for a pre-deployment decision" }
            }
            @match installed {
                Some(list) => {
                    ul class="installed" {
                        @for i in list {
                            li {
                                a href=(format!("/ui/deployments/{}", i.deployment_id)) {
                                    (i.solution_name) " " strong class="version" { (i.version) }
                                }
                                br;
                                span class="muted" {
                                    (directory.user(&i.requested_by)) ", " (time(i.finished_at))
                                }
                            }
                        }
                    }
                }
                None => { p class="empty" { "Nothing deployed yet" } }
            }
        }
    }
}
