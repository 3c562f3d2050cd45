//! The frame every page shares (head, navigation, the signed-in user, sign-out) and the
//! small pieces pages format with: times, durations, statuses, query strings.

use maud::{DOCTYPE, Markup, html};

use super::error::PageError;
use super::form::CSRF_FIELD;
use super::session::Viewer;
use crate::pipeline::Timestamp;
use crate::pipeline::model::DeploymentStatus;
use crate::pipeline::services::Services;

/// Seconds between reloads of pages that hold live deployments.
pub const REFRESH_SECONDS: u32 = 5;

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Pipelines,
    History,
    Deploy,
    Solutions,
    Approvals,
    Plugins,
    Environments,
    /// None of them: an error page.
    Elsewhere,
}

/// What the frame of a signed-in page shows: who is signed in, and how many deployments
/// wait for their vote.
pub struct Shell<'a> {
    viewer: &'a Viewer,
    pending: usize,
}

impl<'a> Shell<'a> {
    /// Counts what the viewer may vote on now, as `GET /api/v1/approvals` lists it.
    pub async fn load(state: &Services, viewer: &'a Viewer) -> Result<Shell<'a>, PageError> {
        let pending = state.engine.approvals(&viewer.user).await?.len();
        Ok(Shell { viewer, pending })
    }

    /// For a page that has already counted the viewer's approvals.
    pub fn with_pending(viewer: &'a Viewer, pending: usize) -> Shell<'a> {
        Shell { viewer, pending }
    }

    /// A whole page. `refresh` reloads it every few seconds, for live deployments.
    pub fn page(&self, title: &str, current: Nav, refresh: bool, main: Markup) -> Markup {
        let user = &self.viewer.user;
        let link = |nav: Nav, href: &str, text: &str| {
            html! {
                li {
                    a href=(href) aria-current=[(nav == current).then_some("page")] { (text) }
                }
            }
        };
        let header = html! {
            header class="top" {
                a class="brand" href="/ui/" { "Gatehouse" }
                nav aria-label="Main" {
                    ul {
                        (link(Nav::Dashboard, "/ui/", "Dashboard"))
                        (link(Nav::Pipelines, "/ui/pipelines", "Pipelines"))
                        (link(Nav::History, "/ui/deployments", "History"))
                        (link(Nav::Deploy, "/ui/deploy", "Deploy"))
                        (link(Nav::Solutions, "/ui/solutions", "Solutions"))
                        li {
                            a href="/ui/approvals" id="nav-approvals"
                                aria-current=[(current == Nav::Approvals).then_some("page")] {
                                "Approvals "
                                span.count.attention[self.pending > 0] id="approvals-count"
                                    title="Waiting for your vote" {
                                    (self.pending)
                                }
                            }
                        }
                        @if user.is_admin() {
                            (link(Nav::Plugins, "/ui/admin/plugins", "Plugins"))
                            (link(Nav::Environments, "/ui/admin/environments", "Environments"))
                        }
                    }
                }
                div class="who" {
                    span id="signed-in-user" title=(user.name) { (user.display_name) }
                    @if user.is_admin() { " " span class="badge" { "admin" } }
                    form id="signout" method="post" action="/ui/signout" {
                        (csrf_input(self.viewer))
                        button type="submit" id="signout-submit" { "Sign out" }
                    }
                }
            }
        };
        document(title, refresh, header, main)
    }
}

/// A page without the navigation: sign-in and error pages.
pub fn bare(title: &str, main: Markup) -> Markup {
    let header = html! {
        header class="top" { a class="brand" href="/ui/" { "Gatehouse" } }
    };
    document(title, false, header, main)
}

fn document(title: &str, refresh: bool, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh {
                    // Without script the browser reloads by itself; with it, console.js
                    // waits while the user is typing.
                    noscript {
                        meta http-equiv="refresh" content=(REFRESH_SECONDS);
                    }
                }
                title { (title) " · Gatehouse" }
                link rel="stylesheet" href=(asset_url("console.css"));
                script src=(asset_url("console.js")) defer {}
            }
            body data-refresh=[refresh.then_some(REFRESH_SECONDS)] {
                (header)
                (main)
            }
        }
    }
}

/// An embedded asset's URL; the version makes a new release fetch it afresh.
fn asset_url(file: &str) -> String {
    format!("/ui/static/{file}?v={}", env!("CARGO_PKG_VERSION"))
}

/// The hidden input that carries the session's CSRF token in every form.
pub fn csrf_input(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf); }
}

/// A time as `2025-01-31 09:00 UTC`, in a `<time>` element.
pub fn time(ms: Timestamp) -> Markup {
    formatted_time(ms, "%Y-%m-%d %H:%M UTC")
}

/// A time to the second, `2025-01-31 09:00:07 UTC`: for the steps of a timeline and the
/// votes, which often happen within one minute of each other.
pub fn time_to_second(ms: Timestamp) -> Markup {
    formatted_time(ms, "%Y-%m-%d %H:%M:%S UTC")
}

fn formatted_time(ms: Timestamp, format: &str) -> Markup {
    match chrono::DateTime::from_timestamp_millis(ms as i64) {
        Some(t) => html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
                (t.format(format))
            }
        },
        None => html! { "—" },
    }
}

/// An optional time, or a dash.
pub fn maybe_time(ms: Option<Timestamp>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { "—" },
    }
}

/// A duration in the largest units that matter: `850 ms`, `42 s`, `3 min 5 s`, `2 h 10 min`.
pub fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", seconds / 60, seconds % 60),
        3_600_000..86_400_000 => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{} d {} h", seconds / 86_400, (seconds % 86_400) / 3600),
    }
}

/// A status as a badge whose class gives its colour.
pub fn status_badge(status: DeploymentStatus) -> Markup {
    html! { span class={ "status s-" (status.as_str()) } { (status_label(status)) } }
}

/// How a status reads in a sentence.
pub fn status_label(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::PendingApproval => "pending approval",
        other => other.as_str(),
    }
}

/// A size in bytes as people read it: `850 bytes`, `12.3 KiB`, `4.0 MiB`.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / KIB),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / (KIB * KIB)),
        _ => format!("{:.1} GiB", n as f64 / (KIB * KIB * KIB)),
    }
}

/// A value for one segment of a path, percent-encoded, `/` included.
pub fn path_segment(value: &str) -> String {
    query_value(value).replace('/', "%2F")
}

/// A value for a query string, percent-encoded.
pub fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `?a=1&b=2` of the pairs whose values are not empty, or "" when none is.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A flash message after a change, announced to screen readers.
pub fn flash(message: &str) -> Markup {
    html! { p id="flash" class="flash" role="status" { (message) } }
}

/// An error shown on a page that still renders its form.
pub fn error_message(message: &str) -> Markup {
    html! { p id="error" class="error" role="alert" { (message) } }
}
