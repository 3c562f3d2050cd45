//! The approvals inbox (`GET /ui/approvals`): what the signed-in user may vote on now, as
//! `GET /api/v1/approvals` lists it, and the vote (`POST /ui/deployments/{id}/vote`),
//! through the engine's vote like `POST /api/v1/deployments/{id}/votes`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::directory::Directory;
use super::error::PageError;
use super::form::Submitted;
use super::layout::{Nav, Shell, csrf_input, flash, query_string, time};
use super::session::Viewer;
use crate::pipeline::Decision;
use crate::pipeline::model::DeploymentRecord;
use crate::pipeline::services::Services;

#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    /// The deployment just voted on, for the flash message.
    #[serde(default)]
    voted: String,
    #[serde(default)]
    decision: String,
    /// The last deployment of the previous page.
    #[serde(default)]
    after: String,
}

/// Deployments per page of the inbox.
const PAGE_SIZE: usize = 50;

pub async fn inbox(
    State(state): State<Services>,
    viewer: Viewer,
    Query(query): Query<InboxQuery>,
) -> Result<Markup, PageError> {
    let (items, directory) = tokio::try_join!(
        async { Ok::<_, PageError>(state.engine.approvals(&viewer.user).await?) },
        Directory::load(&state, &viewer.user),
    )?;
    let voted = if query.voted.is_empty() {
        None
    } else {
        // Named if the viewer can still see it; the vote was recorded either way.
        let what = match state.engine.get(&viewer.user, &query.voted).await {
            Ok(view) => format!(
                "{} {}",
                view.deployment.solution_name, view.deployment.version
            ),
            Err(_) => format!("deployment {}", query.voted),
        };
        let verb = if query.decision == "reject" {
            "rejection"
        } else {
            "approval"
        };
        Some(format!("Your {verb} of {what} was recorded."))
    };
    let shell = Shell::with_pending(&viewer, items.len());
    // Newest first, as the engine lists them; a page starts after the cursor.
    let start = match items.iter().position(|d| d.id == query.after) {
        Some(i) => i + 1,
        None => 0,
    };
    let page: Vec<&DeploymentRecord> = items.iter().skip(start).take(PAGE_SIZE).collect();
    let next = (items.len() > start + PAGE_SIZE)
        .then(|| page.last().map(|d| d.id.clone()))
        .flatten();
    let body = html! {
        main id="approvals" {
            h1 { "Approvals" }
            @if let Some(message) = &voted { (flash(message)) }
            p class="lede" {
                "Deployments whose pending gate names you (or one of your groups) as an approver. "
                "Your vote never counts on your own deployments."
            }
            @if items.is_empty() {
                p id="inbox-empty" class="empty" { "Nothing is waiting for your vote." }
            }
            @for d in &page { (item(d, &viewer, &directory)) }
            @if let Some(after) = &next {
                nav class="pager" aria-label="Pages" {
                    a id="next-page" rel="next" href=(format!("/ui/approvals{}", query_string(&[("after", after)]))) { "Older →" }
                }
            }
        }
    };
    Ok(shell.page("Approvals", Nav::Approvals, true, body))
}

fn item(d: &DeploymentRecord, viewer: &Viewer, directory: &Directory) -> Markup {
    let comment_id = format!("comment-{}", d.id);
    let waiting = d.gates.iter().find(|g| !g.approved);
    html! {
        article class="approval" data-deployment=(d.id) aria-labelledby=(format!("a-{}", d.id)) {
            h2 id=(format!("a-{}", d.id)) {
                a href=(format!("/ui/deployments/{}", d.id)) {
                    span class="solution" { (d.solution_name) } " "
                    span class="version" { (d.version) }
                }
                " → " span class="stage" { (directory.stage_name(&d.pipeline_id, &d.stage_id)) }
            }
            dl class="facts" {
                dt { "Pipeline" } dd { (directory.pipeline_name(&d.pipeline_id)) }
                dt { "Target" } dd { (directory.environment_name(&d.target_environment_id)) }
                dt { "Requested by" } dd class="requester" { (directory.user(&d.requested_by)) }
                dt { "Requested" } dd { (time(d.requested_at)) }
                @if let Some(gate) = waiting {
                    dt { "Waiting on" }
                    dd {
                        (gate.plugin_name)
                        @if let Some(Decision::Pending { message, .. }) = &gate.decision {
                            ": " (message)
                        }
                    }
                }
            }
            div class="notes" {
                h3 { "Notes" }
                @if d.notes.is_empty() { p class="empty" { "No notes." } }
                @else { p class="notes" { (d.notes) } }
            }
            form method="post" action=(format!("/ui/deployments/{}/vote", d.id)) class="vote" {
                (csrf_input(viewer))
                label for=(comment_id) { "Comment (optional)" }
                textarea id=(comment_id) name="comment" rows="2" {}
                div class="buttons" {
                    button type="submit" name="decision" value="approve" class="approve" { "Approve" }
                    button type="submit" name="decision" value="reject" class="reject" { "Reject" }
                }
            }
        }
    }
}

/// `POST /ui/deployments/{id}/vote`: `decision` is `approve` or `reject`.
pub async fn vote(
    State(state): State<Services>,
    Path(id): Path<String>,
    Submitted { viewer, fields }: Submitted,
) -> Result<Response, PageError> {
    let approve = match fields.get("decision") {
        Some("approve") => true,
        Some("reject") => false,
        _ => {
            return Err(PageError::invalid(
                "a vote is either Approve or Reject; press one of the two buttons",
            ));
        }
    };
    let comment = fields.text("comment");
    state
        .engine
        .vote(&viewer.user, &id, approve, comment)
        .await?;
    let decision = if approve { "approve" } else { "reject" };
    let location = format!(
        "/ui/approvals{}",
        query_string(&[("voted", &id), ("decision", decision)])
    );
    Ok(Redirect::to(&location).into_response())
}
