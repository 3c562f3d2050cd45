//! `GET/POST /ui/deploy`: pick a pipeline, then a stage, a source, the solution (offered
//! from what the pipeline's development environments hold) and its version; run preflight
//! (the engine's, as `POST /api/v1/deployments/validate`), fill in the settings it asks
//! for, and deploy now or later (as `POST /api/v1/deployments`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::directory::{Directory, stages_in_order};
use super::error::{PageError, engine_refusal};
use super::form::{Fields, Submitted};
use super::layout::{Nav, Shell, csrf_input, error_message};
use super::session::Viewer;
use crate::pipeline::accounts::generate_token;
use crate::pipeline::console::{DeploymentScope, SolutionSummary};
use crate::pipeline::engine::EngineError;
use crate::pipeline::engine::{DeploymentRequest, Preflight};
use crate::pipeline::model::{DeploymentSettings, PipelineRecord, VariableSetting};
use crate::pipeline::ports::SolutionVersion;
use crate::pipeline::services::Services;
use crate::pipeline::{Severity, Timestamp};

/// Longest idempotency key the form may carry, as the API allows.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// Solution names offered as suggestions.
const SUGGESTED_SOLUTIONS: u32 = 50;

/// How long the form waits for a development environment to list what it holds.
const LISTING_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    stage: String,
}

/// What the form holds, as typed, so a re-rendered form keeps every value.
#[derive(Debug, Default)]
struct Draft {
    pipeline: String,
    stage: String,
    source: String,
    solution: String,
    version: String,
    notes: String,
    later: bool,
    scheduled_for: String,
    /// Variable name to (value, secret).
    variables: BTreeMap<String, (String, bool)>,
    connections: BTreeMap<String, String>,
    idempotency_key: String,
}

impl Draft {
    fn from_fields(fields: &Fields) -> Draft {
        let mut variables = BTreeMap::new();
        for (name, value) in fields.prefixed("var:") {
            let secret = fields.get(&format!("vartype:{name}")) == Some("secret");
            variables.insert(name.to_owned(), (value.to_owned(), secret));
        }
        Draft {
            pipeline: fields.text("pipeline"),
            stage: fields.text("stage"),
            source: fields.text("source"),
            solution: fields.text("solution"),
            version: fields.text("version"),
            notes: fields.get("notes").unwrap_or_default().to_owned(),
            later: fields.get("when") == Some("later"),
            scheduled_for: fields.text("scheduled_for"),
            variables,
            connections: fields
                .prefixed("conn:")
                .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
                .collect(),
            idempotency_key: fields.text("idempotency_key"),
        }
    }

    /// The request the API would receive for this form.
    fn request(&self) -> Result<DeploymentRequest, String> {
        let scheduled_for = if self.later {
            Some(parse_utc(&self.scheduled_for)?)
        } else {
            None
        };
        let environment_variables = self
            .variables
            .iter()
            .filter(|(_, (value, _))| !value.is_empty())
            .map(|(name, (value, secret))| VariableSetting {
                name: name.clone(),
                value: Some(value.clone()),
                secret: *secret,
            })
            .collect();
        let connection_references = self
            .connections
            .iter()
            .filter(|(_, id)| !id.is_empty())
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect();
        Ok(DeploymentRequest {
            pipeline_id: self.pipeline.clone(),
            stage_id: self.stage.clone(),
            source_environment_id: Some(self.source.clone()).filter(|s| !s.is_empty()),
            solution_name: self.solution.clone(),
            version: Some(self.version.clone()).filter(|v| !v.is_empty()),
            scheduled_for,
            notes: self.notes.clone(),
            settings: DeploymentSettings {
                environment_variables,
                connection_references,
            },
            idempotency_key: Some(self.idempotency_key.clone()),
        })
    }
}

/// A `datetime-local` value (`2025-01-31T09:00`), read as UTC.
fn parse_utc(text: &str) -> Result<Timestamp, String> {
    let parsed = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok());
    match parsed {
        Some(t) => Timestamp::try_from(t.and_utc().timestamp_millis())
            .map_err(|_| format!("{text} is before 1970")),
        None if text.is_empty() => {
            Err("choose when to deploy: a date and time in UTC, or deploy now".to_owned())
        }
        None => Err(format!(
            "{text:?} is not a date and time such as 2025-01-31T09:00 (UTC)"
        )),
    }
}

pub async fn page(
    State(state): State<Services>,
    viewer: Viewer,
    Query(choice): Query<Choice>,
) -> Result<Response, PageError> {
    let directory = Directory::load(&state, &viewer.user).await?;
    let shell = Shell::load(&state, &viewer).await?;
    if choice.pipeline.is_empty() {
        let body = choose_pipeline(&directory);
        return Ok(shell
            .page("Deploy", Nav::Deploy, false, body)
            .into_response());
    }
    let pipeline = chosen(&directory, &choice.pipeline)?;
    let draft = Draft {
        pipeline: pipeline.id.clone(),
        stage: choice.stage,
        idempotency_key: generate_token()?,
        ..Draft::default()
    };
    let body = deploy_form(
        &state,
        &viewer,
        &directory,
        pipeline,
        &draft,
        Outcome::Fresh,
    )
    .await?;
    Ok(shell
        .page("Deploy", Nav::Deploy, false, body)
        .into_response())
}

fn chosen<'a>(directory: &'a Directory, id: &str) -> Result<&'a PipelineRecord, PageError> {
    directory.pipeline(id).ok_or_else(|| {
        PageError::not_found(format!(
            "pipeline {id} does not exist or is not shared with you; choose one of yours on \
             the Deploy page"
        ))
    })
}

/// What the last submission came to, shown above the form.
enum Outcome {
    Fresh,
    Preflight(Preflight),
    Refused(String),
}

/// `POST /ui/deploy`: `action` is `preflight` or `deploy`.
pub async fn submit(
    State(state): State<Services>,
    Submitted { viewer, fields }: Submitted,
) -> Result<Response, PageError> {
    let directory = Directory::load(&state, &viewer.user).await?;
    let mut draft = Draft::from_fields(&fields);
    let pipeline = chosen(&directory, &draft.pipeline)?;
    if draft.idempotency_key.is_empty() || draft.idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        draft.idempotency_key = generate_token()?;
    }
    let preflight = fields.get("action") == Some("preflight");
    let (status, outcome) = match draft.request() {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Refused(message)),
        Ok(mut request) if preflight => {
            request.idempotency_key = None;
            match state.engine.preflight(&viewer.user, request).await {
                Ok(result) => (StatusCode::OK, Outcome::Preflight(result)),
                Err(error) => refused(error),
            }
        }
        Ok(request) => match state.engine.request(&viewer.user, request).await {
            Ok((deployment, _)) => {
                let location = format!("/ui/deployments/{}", deployment.id);
                return Ok(Redirect::to(&location).into_response());
            }
            Err(error) => refused(error),
        },
    };
    let shell = Shell::load(&state, &viewer).await?;
    let body = deploy_form(&state, &viewer, &directory, pipeline, &draft, outcome).await?;
    Ok((status, shell.page("Deploy", Nav::Deploy, false, body)).into_response())
}

fn refused(error: EngineError) -> (StatusCode, Outcome) {
    let (status, message) = engine_refusal(error);
    (status, Outcome::Refused(message))
}

fn choose_pipeline(directory: &Directory) -> Markup {
    html! {
        main id="deploy-page" class="narrow" {
            h1 { "Deploy" }
            p class="lede" {
                "Deploying takes two steps: choose the pipeline, then what to deploy, to which "
                "stage, and when. Preflight checks it before anything is deployed."
            }
            @if directory.pipelines.is_empty() {
                p id="no-pipelines" class="empty" {
                    "No pipeline is shared with you yet; an admin can share one with you."
                }
            } @else {
                form id="deploy" method="get" action="/ui/deploy" {
                    fieldset {
                        legend { "Step 1 of 2: the pipeline" }
                        label for="pipeline" { "Pipeline" }
                        select id="pipeline" name="pipeline" required aria-describedby="pipeline-hint" {
                            @for p in &directory.pipelines {
                                option value=(p.id) { (p.name) " (" (route(directory, p)) ")" }
                            }
                        }
                        p id="pipeline-hint" class="hint" {
                            "A pipeline takes a solution from its development environment "
                            "through its stages, in order; each stage deploys to one target. "
                            "Only the pipelines shared with you are listed."
                        }
                    }
                    div class="buttons" {
                        button id="choose-pipeline" type="submit" class="primary" {
                            "Next: what to deploy"
                        }
                    }
                }
            }
        }
    }
}

/// Where a pipeline goes: `Dev → QA → Production`.
fn route(directory: &Directory, pipeline: &PipelineRecord) -> String {
    let sources: Vec<&str> = pipeline
        .development_environment_ids
        .iter()
        .map(|id| directory.environment_name(id))
        .collect();
    let mut steps: Vec<String> = Vec::new();
    if !sources.is_empty() {
        steps.push(sources.join(" or "));
    }
    steps.extend(stages_in_order(pipeline).iter().map(|s| s.name.clone()));
    steps.join(" → ")
}

/// What one of the pipeline's development environments holds, or why that is not known.
struct SourceListing {
    name: String,
    held: Result<Vec<SolutionVersion>, String>,
}

/// Asks each development environment of the pipeline what it holds, all at once, each
/// for [`LISTING_WAIT`] at most: the form is shown either way.
async fn source_listings(
    state: &Services,
    viewer: &Viewer,
    directory: &Directory,
    pipeline: &PipelineRecord,
) -> Vec<SourceListing> {
    let asks = pipeline
        .development_environment_ids
        .iter()
        .map(|id| async move {
            let name = directory.environment_name(id).to_owned();
            let asked = tokio::time::timeout(
                LISTING_WAIT,
                state.catalog().source_solutions(&viewer.user, id),
            )
            .await;
            let held = match asked {
                Ok(Ok(list)) => Ok(list),
                Ok(Err(error)) => Err(match PageError::from(error) {
                    PageError::Status { message, .. } => message,
                    PageError::SignIn { .. } => "sign in again".to_owned(),
                }),
                Err(_) => Err(format!(
                    "{name} did not answer within {} seconds",
                    LISTING_WAIT.as_secs()
                )),
            };
            SourceListing { name, held }
        });
    futures_util::future::join_all(asks).await
}

/// How a solution reads in the list: `Contoso Expenses 1.0.0.0 in Development`.
fn offered(solution: &SolutionVersion, source: &str, several: bool) -> String {
    let mut text = solution
        .manifest
        .as_ref()
        .map(|m| m.display_name.clone())
        .filter(|name| !name.is_empty() && *name != solution.name)
        .map_or(String::new(), |name| format!("{name} "));
    text.push_str(&solution.version);
    if several {
        text.push_str(&format!(" in {source}"));
    }
    text
}

/// The solution field: typed, with what the sources hold offered as a list, and a hint
/// that says what was found.
fn solution_field(
    draft: &Draft,
    listings: &[SourceListing],
    deployed_before: &[SolutionSummary],
) -> Markup {
    let several = listings.len() > 1;
    let held: Vec<(&SolutionVersion, &str)> = listings
        .iter()
        .filter_map(|l| l.held.as_ref().ok().map(|list| (list, l.name.as_str())))
        .flat_map(|(list, source)| list.iter().map(move |s| (s, source)))
        .collect();
    let listed = |name: &str| held.iter().any(|(s, _)| s.name == name);
    html! {
        div class="field" {
            label for="solution" { "Solution" }
            input id="solution" name="solution" type="text" value=(draft.solution)
                list="solution-names" required autocomplete="off" spellcheck="false"
                placeholder="unique name" aria-describedby="solution-hint";
            datalist id="solution-names" {
                @for (s, source) in &held {
                    option value=(s.name) label=(offered(s, source, several)) {}
                }
                @for s in deployed_before.iter().filter(|s| !listed(&s.name)) {
                    option value=(s.name) label="deployed with this pipeline before" {}
                }
            }
            div id="solution-hint" class="hint" {
                @for l in listings {
                    @match &l.held {
                        Ok(list) if list.is_empty() => {
                            p class="held" {
                                (l.name) " holds no solution yet: a maker pushes one there first."
                            }
                        }
                        Ok(list) => {
                            p class="held" {
                                (l.name) " holds " (list.len())
                                @if list.len() == 1 { " solution" } @else { " solutions" }
                                ": pick one from the list, or type its unique name."
                            }
                        }
                        Err(why) => {
                            p class="unlisted" {
                                "What " (l.name) " holds could not be listed (" (why) "); "
                                "type the solution's unique name."
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn deploy_form(
    state: &Services,
    viewer: &Viewer,
    directory: &Directory,
    pipeline: &PipelineRecord,
    draft: &Draft,
    outcome: Outcome,
) -> Result<Markup, PageError> {
    let scope = DeploymentScope::Pipelines(vec![pipeline.id.clone()]);
    let (suggestions, listings) = tokio::join!(
        state.store.solutions(&scope, None, SUGGESTED_SOLUTIONS),
        source_listings(state, viewer, directory, pipeline),
    );
    let suggestions = suggestions?;
    let stages = stages_in_order(pipeline);
    // Inputs for what preflight asked for, and for what the form already carried.
    let mut variables: BTreeMap<String, (String, bool)> = draft.variables.clone();
    let mut connections: BTreeMap<String, (String, String)> = draft
        .connections
        .iter()
        .map(|(name, value)| (name.clone(), (value.clone(), String::new())))
        .collect();
    if let Outcome::Preflight(result) = &outcome {
        for missing in &result.missing_environment_variables {
            let entry = variables
                .entry(missing.schema_name.clone())
                .or_insert_with(|| (String::new(), false));
            entry.1 |= missing.kind == "secret";
        }
        for missing in &result.missing_connection_references {
            connections
                .entry(missing.logical_name.clone())
                .or_default()
                .1 = missing.connector.clone();
        }
    }
    Ok(html! {
        main id="deploy-page" {
            h1 { "Deploy with " (pipeline.name) }
            p class="lede" {
                "Step 2 of 2: what to deploy, to which stage, and when. "
                a href="/ui/deploy" { "Choose another pipeline" }
            }
            @match &outcome {
                Outcome::Refused(message) => { (error_message(message)) }
                Outcome::Preflight(result) => { (preflight_result(result)) }
                Outcome::Fresh => {}
            }
            form id="deploy" method="post" action="/ui/deploy" {
                (csrf_input(viewer))
                input type="hidden" name="pipeline" value=(pipeline.id);
                input type="hidden" name="idempotency_key" value=(draft.idempotency_key);
                div class="field" {
                    label for="stage" { "Stage" }
                    select id="stage" name="stage" required aria-describedby="stage-hint" {
                        @for s in &stages {
                            option value=(s.id) selected[s.id == draft.stage] {
                                (s.name) " (to " (directory.environment_name(&s.target_environment_id)) ")"
                            }
                        }
                    }
                    p id="stage-hint" class="hint" {
                        "The first stage deploys what the source holds; a later stage deploys "
                        "what its previous stage received."
                    }
                }
                div class="field" {
                    label for="source" { "Source environment" }
                    select id="source" name="source" required aria-describedby="source-hint" {
                        @for id in &pipeline.development_environment_ids {
                            option value=(id) selected[*id == draft.source] { (directory.environment_name(id)) }
                        }
                    }
                    p id="source-hint" class="hint" {
                        "The development environment the solution is exported from."
                    }
                }
                (solution_field(draft, &listings, &suggestions))
                div class="field" {
                    label for="version" { "Version" }
                    input id="version" name="version" type="text" value=(draft.version)
                        placeholder="1.0.0.0" pattern="[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+"
                        aria-describedby="version-hint";
                    p id="version-hint" class="hint" {
                        "Leave blank for the source's current version (the newest that "
                        "succeeded in the previous stage, for a later stage)."
                    }
                }
                div class="field" {
                    label for="notes" { "Notes" }
                    textarea id="notes" name="notes" rows="3" { (draft.notes) }
                }
                fieldset class="field" {
                    legend { "When" }
                    div {
                        input id="when-now" type="radio" name="when" value="now" checked[!draft.later];
                        label for="when-now" { "Now" }
                    }
                    div {
                        input id="when-later" type="radio" name="when" value="later" checked[draft.later];
                        label for="when-later" { "Later, at" }
                        " "
                        label for="scheduled_for" class="visually-hidden" { "Date and time (UTC)" }
                        input id="scheduled_for" name="scheduled_for" type="datetime-local"
                            value=(draft.scheduled_for);
                        " UTC"
                    }
                }
                @if !variables.is_empty() || !connections.is_empty() {
                    fieldset id="settings" class="field" {
                        legend { "Settings for the target" }
                        @for (name, (value, secret)) in &variables {
                            div class="field" {
                                label for=(format!("var-{name}")) {
                                    "Environment variable " code { (name) }
                                    @if *secret { " (secret)" }
                                }
                                input id=(format!("var-{name}")) name=(format!("var:{name}"))
                                    type=(if *secret { "password" } else { "text" }) value=(value)
                                    autocomplete="off";
                                @if *secret {
                                    input type="hidden" name=(format!("vartype:{name}")) value="secret";
                                }
                            }
                        }
                        @for (name, (value, connector)) in &connections {
                            div class="field" {
                                label for=(format!("conn-{name}")) {
                                    "Connection for " code { (name) }
                                    @if !connector.is_empty() { " (" (connector) ")" }
                                }
                                input id=(format!("conn-{name}")) name=(format!("conn:{name}"))
                                    type="text" value=(value) placeholder="connection id"
                                    autocomplete="off";
                            }
                        }
                    }
                }
                div class="buttons" {
                    button id="preflight" type="submit" name="action" value="preflight" { "Run preflight" }
                    button id="deploy-submit" type="submit" name="action" value="deploy" class="primary" { "Deploy" }
                }
            }
        }
    })
}

fn preflight_result(result: &Preflight) -> Markup {
    html! {
        section id="preflight-result" data-ok=(result.ok) class={ "preflight " (if result.ok { "ok" } else { "failed" }) }
            aria-live="polite" {
            h2 {
                @if result.ok { "Preflight passed" } @else { "Preflight found errors" }
            }
            p {
                (result.solution_name) " " strong class="version" { (result.version) }
                @match &result.installed_version {
                    Some(v) => { "; the target has " (v) " installed." }
                    None => { "; the target does not have it yet." }
                }
            }
            @if result.findings.is_empty() {
                p { "No findings." }
            } @else {
                ul class="findings" {
                    @for f in &result.findings {
                        @let severity = match f.finding.severity {
                            Severity::Error => "error", Severity::Warning => "warning", Severity::Info => "info",
                        };
                        li class={ "finding " (severity) } data-severity=(severity) {
                            strong { (severity) } " " (f.source) ": " (f.finding.message)
                            " " code { (f.finding.code) }
                        }
                    }
                }
            }
            @if !result.missing_environment_variables.is_empty() || !result.missing_connection_references.is_empty() {
                p { "Fill in the settings below, then run preflight again or deploy." }
            }
        }
    }
}
