//! Admin pages: plugins (`/ui/admin/plugins`: upload, list with stats, enable and
//! disable) and environments (`/ui/admin/environments`: validation status, re-validate).
//! Every change goes through the catalog service the API calls too, so the checks, the
//! size limit and the audit lines are the same.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::PageError;
use super::form::{CSRF_FIELD, Submitted, csrf_refused};
use super::layout::{Nav, Shell, csrf_input, error_message, flash, query_string, time};
use super::session::Viewer;
use crate::pipeline::access::require_admin;
use crate::pipeline::catalog::{ExpectedPlugin, PluginChange};
use crate::pipeline::model::{EnvironmentRecord, PluginRecord, ValidationStatus};
use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;
use crate::pipeline::services::Services;
use crate::pipeline::store::scan_all;
use crate::pipeline::{EnvironmentKind, PluginWorld};

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    /// A plugin just uploaded, enabled or disabled, or an environment just validated.
    #[serde(default)]
    done: String,
    #[serde(default)]
    name: String,
}

fn admin_only(viewer: &Viewer, page: &str) -> Result<(), PageError> {
    require_admin(&viewer.user, page)?;
    Ok(())
}

pub async fn plugins(
    State(state): State<Services>,
    viewer: Viewer,
    Query(notice): Query<Notice>,
) -> Result<Markup, PageError> {
    admin_only(&viewer, "the plugins page")?;
    let message = match notice.done.as_str() {
        "uploaded" => Some(format!("Plugin {} was uploaded and enabled.", notice.name)),
        "enabled" => Some(format!("Plugin {} is enabled.", notice.name)),
        "disabled" => Some(format!("Plugin {} is disabled.", notice.name)),
        _ => None,
    };
    plugins_page(&state, &viewer, message.as_deref(), None).await
}

async fn plugins_page(
    state: &Services,
    viewer: &Viewer,
    message: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let store = state.store.as_ref();
    let mut plugins: Vec<PluginRecord> = scan_all(
        move |p| async move { store.list_plugins(&p).await },
        |p| p.id.clone(),
    )
    .await?;
    plugins.sort_by(|a, b| a.name.cmp(&b.name).then(b.created_at.cmp(&a.created_at)));
    let shell = Shell::load(state, viewer).await?;
    let body = html! {
        main id="admin-plugins" {
            h1 { "Plugins" }
            @if let Some(m) = message { (flash(m)) }
            @if let Some(e) = error { (error_message(e)) }
            section aria-labelledby="upload-heading" {
                h2 id="upload-heading" { "Upload a plugin" }
                form id="plugin-upload" method="post" action="/ui/admin/plugins"
                    enctype="multipart/form-data" {
                    (csrf_input(viewer))
                    div class="field" {
                        label for="component" { "Component (.wasm, built for wasm32-wasip2)" }
                        input id="component" name="component" type="file" accept=".wasm,application/wasm" required;
                        p class="hint" {
                            "At most " (MAX_COMPONENT_BYTES >> 20) " MiB. It is checked whole "
                            "before anything is stored."
                        }
                    }
                    button id="upload-submit" type="submit" { "Upload" }
                }
            }
            section aria-labelledby="plugins-heading" {
                h2 id="plugins-heading" { "Loaded plugins" }
                @if plugins.is_empty() { p class="empty" { "No plugin is loaded." } }
                @else {
                    table id="plugins" {
                        thead {
                            tr {
                                th { "Name" } th { "Version" } th { "World" } th { "Enabled" }
                                th class="num" { "Calls" } th class="num" { "Errors" }
                                th class="num" { "p50" } th class="num" { "p99" } th { "Loaded" } th { "" }
                            }
                        }
                        tbody {
                            @for p in &plugins { (plugin_row(state, viewer, p)) }
                        }
                    }
                }
            }
        }
    };
    Ok(shell.page("Plugins", Nav::Plugins, false, body))
}

fn plugin_row(state: &Services, viewer: &Viewer, p: &PluginRecord) -> Markup {
    let stats = state.plugins.stats(&p.id);
    let errors: u64 = stats.errors.values().sum();
    let micros = |us: Option<u64>| us.map_or("—".to_owned(), |us| format!("{us} µs"));
    let world = match p.world {
        PluginWorld::Approver => "approver",
        PluginWorld::Validator => "validator",
    };
    html! {
        tr data-plugin=(p.id) data-enabled=(p.enabled) {
            td { strong { (p.name) } @if !p.description.is_empty() { br; span class="muted" { (p.description) } } }
            td { (p.version) }
            td { (world) }
            td { @if p.enabled { "yes" } @else { "no" } }
            td class="num" { (stats.calls) }
            td class="num" title=(format!("{:?}", stats.errors)) { (errors) }
            td class="num" { (micros(stats.p50_us)) }
            td class="num" { (micros(stats.p99_us)) }
            td { (time(p.created_at)) }
            td class="actions" {
                form method="post" action=(format!("/ui/admin/plugins/{}/toggle", p.id)) {
                    (csrf_input(viewer))
                    input type="hidden" name="enabled" value=(!p.enabled);
                    button type="submit" class="toggle" {
                        @if p.enabled { "Disable" } @else { "Enable" }
                        span class="visually-hidden" { " " (p.name) " " (p.version) }
                    }
                }
            }
        }
    }
}

/// `POST /ui/admin/plugins`: a multipart form with the CSRF token and the component.
pub async fn upload(
    State(state): State<Services>,
    viewer: Viewer,
    request: Request,
) -> Result<Response, PageError> {
    // Refused before the body is read, like the API's upload.
    admin_only(&viewer, "uploading a plugin")?;
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|r| PageError::new(r.status(), r.body_text()))?;
    let mut csrf = None;
    let mut component: Option<Bytes> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(body_error(e.status(), e.body_text())),
        };
        let name = field.name().map(str::to_owned);
        match name.as_deref() {
            Some(CSRF_FIELD) => csrf = field.text().await.ok(),
            Some("component") => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| body_error(e.status(), e.body_text()))?;
                component = Some(bytes);
            }
            _ => {}
        }
    }
    if !viewer.csrf_matches(csrf.as_deref()) {
        return Err(csrf_refused());
    }
    let refusal = match component.filter(|c| !c.is_empty()) {
        None => PageError::invalid("choose a .wasm file to upload"),
        Some(bytes) => {
            let loaded = state
                .catalog()
                .load_plugin(&viewer.user, bytes.to_vec(), &ExpectedPlugin::default())
                .await;
            match loaded {
                Ok(record) => {
                    let name = format!("{} {}", record.name, record.version);
                    let location = format!(
                        "/ui/admin/plugins{}",
                        query_string(&[("done", "uploaded"), ("name", &name)])
                    );
                    return Ok(Redirect::to(&location).into_response());
                }
                Err(error) => PageError::from(error),
            }
        }
    };
    let PageError::Status { status, message } = refusal else {
        return Err(refusal);
    };
    let page = plugins_page(&state, &viewer, None, Some(&message)).await?;
    Ok((status, page).into_response())
}

/// A body that could not be read; an upload over the limit says what the limit is.
fn body_error(status: StatusCode, text: String) -> PageError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::new(
            status,
            format!(
                "the upload is over the limit of {} MiB; a plugin must be smaller",
                MAX_COMPONENT_BYTES >> 20
            ),
        )
    } else {
        PageError::new(status, format!("the upload could not be read: {text}"))
    }
}

/// `POST /ui/admin/plugins/{id}/toggle`: `enabled` is `true` or `false`.
pub async fn toggle(
    State(state): State<Services>,
    Path(id): Path<String>,
    Submitted { viewer, fields }: Submitted,
) -> Result<Response, PageError> {
    admin_only(&viewer, "changing a plugin")?;
    let enabled = match fields.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(PageError::invalid(
                "say whether to enable or disable the plugin",
            ));
        }
    };
    let change = PluginChange {
        enabled: Some(enabled),
        limits: None,
    };
    let record = state
        .catalog()
        .change_plugin(&viewer.user, &id, change)
        .await?;
    let name = format!("{} {}", record.name, record.version);
    let done = if record.enabled {
        "enabled"
    } else {
        "disabled"
    };
    let location = format!(
        "/ui/admin/plugins{}",
        query_string(&[("done", done), ("name", &name)])
    );
    Ok(Redirect::to(&location).into_response())
}

pub async fn environments(
    State(state): State<Services>,
    viewer: Viewer,
    Query(notice): Query<Notice>,
) -> Result<Markup, PageError> {
    admin_only(&viewer, "the environments page")?;
    let store = state.store.as_ref();
    let mut envs: Vec<EnvironmentRecord> = scan_all(
        move |p| async move { store.list_environments(&p).await },
        |e| e.id.clone(),
    )
    .await?;
    envs.sort_by(|a, b| a.name.cmp(&b.name));
    let message = (notice.done == "validated")
        .then(|| format!("Environment {} was validated again.", notice.name));
    let shell = Shell::load(&state, &viewer).await?;
    let body = html! {
        main id="admin-environments" {
            h1 { "Environments" }
            @if let Some(m) = &message { (flash(m)) }
            @if envs.is_empty() { p class="empty" { "No environment is registered." } }
            @else {
                table id="environments" {
                    thead {
                        tr { th { "Name" } th { "Kind" } th { "URL" } th { "Validation" } th { "Message" } th { "" } }
                    }
                    tbody {
                        @for e in &envs { (environment_row(&viewer, e)) }
                    }
                }
            }
        }
    };
    Ok(shell.page("Environments", Nav::Environments, false, body))
}

fn environment_row(viewer: &Viewer, e: &EnvironmentRecord) -> Markup {
    let (status, class) = match e.validation_status {
        ValidationStatus::Pending => ("pending", "s-queued"),
        ValidationStatus::Success => ("success", "s-succeeded"),
        ValidationStatus::Failed => ("failed", "s-failed"),
    };
    let kind = match e.kind {
        EnvironmentKind::Development => "development",
        EnvironmentKind::Target => "target",
    };
    html! {
        tr data-environment=(e.id) data-validation=(status) {
            td { strong { (e.name) } br; span class="muted" { (e.environment_id) } }
            td { (kind) }
            td { code { (e.url) } }
            td class="state" { span class={ "status " (class) } { (status) } }
            td { (e.validation_message) }
            td class="actions" {
                form method="post" action=(format!("/ui/admin/environments/{}/validate", e.id)) {
                    (csrf_input(viewer))
                    button type="submit" class="revalidate" {
                        "Re-validate" span class="visually-hidden" { " " (e.name) }
                    }
                }
            }
        }
    }
}

/// `POST /ui/admin/environments/{id}/validate`.
pub async fn revalidate(
    State(state): State<Services>,
    Path(id): Path<String>,
    Submitted { viewer, .. }: Submitted,
) -> Result<Response, PageError> {
    admin_only(&viewer, "validating an environment")?;
    let env = state
        .catalog()
        .validate_environment(&viewer.user, &id, false)
        .await?;
    let location = format!(
        "/ui/admin/environments{}",
        query_string(&[("done", "validated"), ("name", &env.name)])
    );
    Ok(Redirect::to(&location).into_response())
}
