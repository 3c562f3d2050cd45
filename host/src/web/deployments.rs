//! The run history (`GET /ui/deployments`), one deployment (`GET /ui/deployments/{id}`)
//! and its cancel button. Lists and reads go through the engine, as
//! `GET /api/v1/deployments` does, so a maker sees only the pipelines shared with them.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::directory::{Directory, stages_in_order};
use super::error::PageError;
use super::form::Submitted;
use super::layout::{
    self, Nav, Shell, csrf_input, duration, maybe_time, query_string, status_badge, status_label,
    time, time_to_second,
};
use super::session::Viewer;
use crate::pipeline::deployment_query::{DeploymentQuery, filter};
use crate::pipeline::engine::DeploymentView;
use crate::pipeline::model::{
    DeploymentRecord, DeploymentStatus, GateProgress, PreDeploymentStatus, ValidatorReport,
};
use crate::pipeline::services::Services;
use crate::pipeline::store::Page;
use crate::pipeline::{Decision, LogLine};

/// Rows per page of the history.
const PAGE_SIZE: u32 = 50;

/// The history's filters, as the form sends them; blank means any.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    solution: String,
    #[serde(default)]
    requested_by: String,
    #[serde(default)]
    after: String,
}

pub async fn history(
    State(state): State<Services>,
    viewer: Viewer,
    Query(query): Query<HistoryQuery>,
) -> Result<Markup, PageError> {
    let requested_by = match query.requested_by.as_str() {
        "me" => viewer.user.id.clone(),
        other => other.to_owned(),
    };
    let some = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let filter = filter(&DeploymentQuery {
        pipeline: some(&query.pipeline),
        stage: some(&query.stage),
        status: some(&query.status),
        solution: some(&query.solution),
        requested_by: some(&requested_by),
        ..DeploymentQuery::default()
    })?;
    // One more than a page tells whether another page exists.
    let page = Page {
        after: some(&query.after),
        limit: PAGE_SIZE + 1,
    };
    let (mut rows, directory, shell) = tokio::try_join!(
        async { Ok::<_, PageError>(state.engine.list(&viewer.user, &filter, &page).await?) },
        Directory::load(&state, &viewer.user),
        Shell::load(&state, &viewer),
    )?;
    let next = if rows.len() > PAGE_SIZE as usize {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|d| d.id.clone())
    } else {
        None
    };
    let next_link = next.map(|after| {
        format!(
            "/ui/deployments{}",
            query_string(&[
                ("pipeline", &query.pipeline),
                ("stage", &query.stage),
                ("status", &query.status),
                ("solution", &query.solution),
                ("requested_by", &query.requested_by),
                ("after", &after),
            ])
        )
    });
    let body = html! {
        main id="history-page" {
            h1 { "Run history" }
            (filters(&query, &viewer, &directory))
            @if rows.is_empty() {
                p id="history-empty" class="empty" { "No deployment matches these filters." }
            }
            table id="history" {
                thead {
                    tr {
                        th { "Requested" } th { "Solution" } th { "Version" } th { "Pipeline" }
                        th { "Stage" } th { "Status" } th { "Requested by" } th { "Finished" }
                    }
                }
                tbody {
                    @for d in &rows {
                        tr data-deployment=(d.id) data-status=(d.status.as_str()) {
                            td { (time(d.requested_at)) }
                            td { a href=(format!("/ui/deployments/{}", d.id)) { (d.solution_name) } }
                            td class="version" { (d.version) }
                            td { (directory.pipeline_name(&d.pipeline_id)) }
                            td { (directory.stage_name(&d.pipeline_id, &d.stage_id)) }
                            td class="state" { (status_badge(d.status)) }
                            td { (directory.user(&d.requested_by)) }
                            td { (maybe_time(d.finished_at)) }
                        }
                    }
                }
            }
            nav class="pager" aria-label="Pages" {
                @if !query.after.is_empty() {
                    a id="first-page" href=(format!("/ui/deployments{}", query_string(&[
                        ("pipeline", &query.pipeline), ("stage", &query.stage),
                        ("status", &query.status), ("solution", &query.solution),
                        ("requested_by", &query.requested_by),
                    ]))) { "Newest" }
                }
                @if let Some(link) = &next_link {
                    a id="next-page" href=(link) rel="next" { "Older →" }
                }
            }
        }
    };
    Ok(shell.page("Run history", Nav::History, true, body))
}

fn filters(query: &HistoryQuery, viewer: &Viewer, directory: &Directory) -> Markup {
    let selected = |value: &str, current: &str| value == current;
    html! {
        form id="filters" method="get" action="/ui/deployments" class="filters" {
            div {
                label for="filter-pipeline" { "Pipeline" }
                select id="filter-pipeline" name="pipeline" {
                    option value="" { "Any" }
                    @for p in &directory.pipelines {
                        option value=(p.id) selected[selected(&p.id, &query.pipeline)] { (p.name) }
                    }
                }
            }
            div {
                label for="filter-stage" { "Stage" }
                select id="filter-stage" name="stage" {
                    option value="" { "Any" }
                    @for p in &directory.pipelines {
                        optgroup label=(p.name) {
                            @for s in stages_in_order(p) {
                                option value=(s.id) selected[selected(&s.id, &query.stage)] { (s.name) }
                            }
                        }
                    }
                }
            }
            div {
                label for="filter-status" { "Status" }
                select id="filter-status" name="status" {
                    option value="" { "Any" }
                    @for s in DeploymentStatus::ALL {
                        option value=(s.as_str()) selected[selected(s.as_str(), &query.status)] {
                            (layout::status_label(s))
                        }
                    }
                }
            }
            div {
                label for="filter-solution" { "Solution" }
                input id="filter-solution" name="solution" type="text" value=(query.solution)
                    placeholder="unique name";
            }
            div {
                label for="filter-requested-by" { "Requested by" }
                select id="filter-requested-by" name="requested_by" {
                    option value="" { "Anyone" }
                    option value="me" selected[selected("me", &query.requested_by)] { "Me" }
                    @if viewer.user.is_admin() {
                        @for (id, name) in directory.users() {
                            option value=(id) selected[selected(id, &query.requested_by)] { (name) }
                        }
                    }
                }
            }
            div class="submit" {
                button id="apply-filters" type="submit" { "Filter" }
                " "
                a href="/ui/deployments" { "Clear" }
            }
        }
    }
}

pub async fn detail(
    State(state): State<Services>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let (view, directory, shell) = tokio::try_join!(
        async { Ok::<_, PageError>(state.engine.get(&viewer.user, &id).await?) },
        Directory::load(&state, &viewer.user),
        Shell::load(&state, &viewer),
    )?;
    let d = &view.deployment;
    let title = format!("{} {}", d.solution_name, d.version);
    let live = !d.status.is_final();
    Ok(shell.page(
        &title,
        Nav::History,
        live,
        detail_body(&view, &viewer, &directory),
    ))
}

fn detail_body(view: &DeploymentView, viewer: &Viewer, directory: &Directory) -> Markup {
    let d = &view.deployment;
    // The engine refuses anyone else; the button is shown only to those it would accept.
    let may_cancel =
        d.status.is_cancelable() && (d.requested_by == viewer.user.id || viewer.user.is_admin());
    html! {
        main id="deployment" data-deployment=(d.id) {
            p class="crumbs" { a href="/ui/deployments" { "Run history" } " / " (d.id) }
            h1 {
                (d.solution_name) " " span class="version" { (d.version) }
                " → " (directory.stage_name(&d.pipeline_id, &d.stage_id))
            }
            p class="state" {
                span id="status" class={ "status s-" (d.status.as_str()) } data-status=(d.status.as_str()) {
                    (status_label(d.status))
                }
                @if !d.status_reason.is_empty() {
                    " " span id="status-reason" { (d.status_reason) }
                }
            }
            @if may_cancel {
                form id="cancel" method="post" action=(format!("/ui/deployments/{}/cancel", d.id)) {
                    (csrf_input(viewer))
                    button id="cancel-submit" type="submit" class="danger" { "Cancel deployment" }
                }
            }
            (facts(d, directory))
            section aria-labelledby="notes-heading" {
                h2 id="notes-heading" { "Notes" }
                @if d.notes.is_empty() { p class="empty" { "No notes." } }
                @else { p id="notes" class="notes" { (d.notes) } }
            }
            section aria-labelledby="timeline-heading" {
                h2 id="timeline-heading" { "Timeline" }
                ol id="timeline" class="timeline" {
                    @for e in &view.timeline {
                        li data-kind=(e.kind) {
                            (time_to_second(e.at)) " "
                            strong { (e.kind.replace('_', " ")) }
                            @if let Some(actor) = &e.actor { " by " (directory.user(actor)) }
                            @let said = e.event().sentence(None);
                            @if !said.is_empty() { ": " span class="detail" { (said) } }
                        }
                    }
                }
            }
            section id="validation" aria-labelledby="validation-heading" {
                h2 id="validation-heading" { "Validation" }
                @if d.validation.is_empty() { p class="empty" { "No validator has reported yet." } }
                @for report in &d.validation { (validator(report)) }
            }
            section id="gates" aria-labelledby="gates-heading" {
                h2 id="gates-heading" { "Approval gates" }
                @if d.gates.is_empty() { p class="empty" { "No gate has been asked yet." } }
                @for gate in &d.gates { (gate_card(gate, directory)) }
            }
            section aria-labelledby="votes-heading" {
                h2 id="votes-heading" { "Votes" }
                @if view.votes.is_empty() { p class="empty" { "No votes." } }
                @else {
                    table id="votes" {
                        thead { tr { th { "Voter" } th { "Vote" } th { "Comment" } th { "When" } } }
                        tbody {
                            @for v in &view.votes {
                                tr {
                                    td { (directory.user(&v.voter_id)) }
                                    td { @if v.approve { "approve" } @else { "reject" } }
                                    td { (v.comment) }
                                    td { (time_to_second(v.at)) }
                                }
                            }
                        }
                    }
                }
            }
            (settings(d))
        }
    }
}

fn facts(d: &DeploymentRecord, directory: &Directory) -> Markup {
    let pre = d.pre_deployment_status.map(pre_deployment_label);
    html! {
        dl class="facts" {
            dt { "Pipeline" } dd { (directory.pipeline_name(&d.pipeline_id)) }
            dt { "From" } dd { (directory.environment_name(&d.source_environment_id)) }
            dt { "To" } dd { (directory.environment_name(&d.target_environment_id)) }
            dt { "Requested by" } dd { (directory.user(&d.requested_by)) }
            dt { "Requested" } dd { (time(d.requested_at)) }
            @if let Some(at) = d.scheduled_for { dt { "Scheduled for" } dd { (time(at)) } }
            dt { "Finished" } dd { (maybe_time(d.finished_at)) }
            @if let Some(finished) = d.finished_at {
                dt { "Took" } dd { (duration(finished.saturating_sub(d.requested_at))) }
            }
            dt { "Installed before" } dd { (d.installed_version.as_deref().unwrap_or("nothing")) }
            dt { "Attempt" } dd { (d.attempt) }
            dt { "Pre-deployment step" } dd { (pre.unwrap_or("not started")) }
            @if let Some(o) = &d.pre_deployment_override {
                dt { "Override" }
                dd {
                    "set to " (pre_deployment_label(o.status)) " by " (directory.user(&o.by))
                    ", " (time_to_second(o.at)) ": " (o.comment)
                }
            }
            @if !d.artifact.package_sha256.is_empty() {
                dt { "Package" }
                dd { code { (d.artifact.package_sha256.get(..12).unwrap_or_default()) } " · " (d.artifact.package_size) " bytes" }
            }
        }
    }
}

/// How the pre-deployment step's status reads: in words, not the API's code.
fn pre_deployment_label(status: PreDeploymentStatus) -> &'static str {
    match status {
        PreDeploymentStatus::Pending => "pending",
        PreDeploymentStatus::Completed => "completed",
        PreDeploymentStatus::Rejected => "rejected",
    }
}

fn validator(report: &ValidatorReport) -> Markup {
    html! {
        article class="report" data-plugin=(report.plugin_id) {
            h3 { (report.plugin_name) " " span class="muted" { (duration(report.duration_us / 1000)) } }
            @if let Some(error) = &report.error { p class="error" { "Failed: " (error) } }
            @if report.findings.is_empty() && report.error.is_none() { p { "No findings." } }
            @else if !report.findings.is_empty() {
                table class="findings" {
                    thead { tr { th { "Severity" } th { "Code" } th { "Message" } th { "Component" } } }
                    tbody {
                        @for f in &report.findings {
                            @let severity = format!("{:?}", f.severity).to_lowercase();
                            tr class={ "finding " (severity) } {
                                td { (severity) } td { code { (f.code) } } td { (f.message) }
                                td { (f.component.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
            (log(&report.log))
        }
    }
}

fn gate_card(gate: &GateProgress, directory: &Directory) -> Markup {
    html! {
        article class="gate" data-plugin=(gate.plugin_id) data-approved=(gate.approved) {
            h3 { (gate.plugin_name) }
            p class="decision" {
                @match &gate.decision {
                    Some(Decision::Approve { reason }) => { strong { "approved" } ": " (reason) }
                    Some(Decision::Reject { reason }) => { strong { "rejected" } ": " (reason) }
                    Some(Decision::Pending { message, approvers, .. }) => {
                        strong { "pending" } ": " (message)
                        @if !approvers.is_empty() {
                            br; "Approvers: "
                            @for (i, a) in approvers.iter().enumerate() {
                                @if i > 0 { ", " }
                                (approver(a, directory))
                            }
                        }
                    }
                    None => { "not asked yet" }
                }
            }
            @if let Some(error) = &gate.error { p class="error" { "Failed: " (error) } }
            p class="muted" {
                (gate.evaluations) " evaluation(s)"
                @if let Some(at) = gate.evaluated_at { ", last " (time_to_second(at)) }
                ", " (gate.duration_us) " µs"
            }
            (log(&gate.log))
        }
    }
}

/// `user:<id>` as the user's name, `group:<name>` as the group.
fn approver(entry: &str, directory: &Directory) -> String {
    match entry.split_once(':') {
        Some(("user", id)) => directory.user(id).to_owned(),
        Some(("group", name)) => format!("group {name}"),
        _ => entry.to_owned(),
    }
}

fn log(lines: &[LogLine]) -> Markup {
    html! {
        @if !lines.is_empty() {
            details class="log" {
                summary { "Plugin log (" (lines.len()) " lines)" }
                pre {
                    @for line in lines {
                        (format!("{:?}", line.level).to_lowercase()) " " (line.message) "\n"
                    }
                }
            }
        }
    }
}

fn settings(d: &DeploymentRecord) -> Markup {
    let s = &d.settings;
    html! {
        section aria-labelledby="settings-heading" {
            h2 id="settings-heading" { "Deployment settings" }
            @if s.environment_variables.is_empty() && s.connection_references.is_empty() {
                p class="empty" { "No settings were supplied." }
            } @else {
                table id="settings" {
                    thead { tr { th { "Setting" } th { "Value" } } }
                    tbody {
                        @for v in &s.environment_variables {
                            tr data-variable=(v.name) {
                                td { code { (v.name) } }
                                td {
                                    @if v.secret { span class="masked" { "•••••• (secret)" } }
                                    @else { (v.value.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                        @for (logical, connection) in &s.connection_references {
                            tr data-connection=(logical) {
                                td { code { (logical) } " (connection)" }
                                td { (connection) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /ui/deployments/{id}/cancel`: the engine's cancel, then back to the page.
pub async fn cancel(
    State(state): State<Services>,
    Path(id): Path<String>,
    Submitted { viewer, .. }: Submitted,
) -> Result<Response, PageError> {
    state.engine.cancel(&viewer.user, &id).await?;
    Ok(Redirect::to(&format!("/ui/deployments/{id}")).into_response())
}
