//! The web console under `/ui`: server-rendered pages (maud), an embedded stylesheet and
//! a few lines of script, served by the same binary as the API.
//!
//! Pages sit beside the API, never importing it, and call the same domain services its
//! handlers call (the engine, the catalog, access, reports), so a page shows and changes
//! exactly what the caller could through the API, and every change lands in the audit log
//! the same way. Browsers sign in with a bearer token and then hold a session
//! cookie ([`session`]); every form carries the session's CSRF token ([`form`]).
//! This module never touches wasmtime.

mod admin;
mod approvals;
mod backups;
mod charts;
mod dashboard;
mod deploy;
mod deployments;
mod directory;
mod error;
mod form;
mod layout;
mod pipelines;
mod session;
mod solutions;

#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};

use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;
use crate::pipeline::services::Services;
pub use error::PageError;
pub use session::SESSION_COOKIE;
use session::Viewer;

/// Where the console lives.
pub const UI: &str = "/ui";

/// The stylesheet and script, compiled into the binary: no CDN, no build step.
const STYLESHEET: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

/// What the browser may load and where forms may go: this origin only, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console's routes, to merge into the app's router.
pub fn router() -> Router<Services> {
    // A plugin upload is a multipart body: the component plus a few small fields.
    let upload_limit = DefaultBodyLimit::max(MAX_COMPONENT_BYTES + (64 << 10));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route(UI, get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(dashboard::page))
        .route(
            "/ui/signin",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/ui/signout", post(session::sign_out))
        .route("/ui/pipelines", get(pipelines::page))
        .route("/ui/deployments", get(deployments::history))
        .route("/ui/deployments/{id}", get(deployments::detail))
        .route("/ui/deployments/{id}/cancel", post(deployments::cancel))
        .route("/ui/deployments/{id}/vote", post(approvals::vote))
        .route("/ui/deploy", get(deploy::page).post(deploy::submit))
        .route("/ui/solutions", get(solutions::page))
        .route(
            "/ui/artifacts/{solution}/{version}/{kind}",
            get(backups::download),
        )
        .route("/ui/approvals", get(approvals::inbox))
        .route(
            "/ui/admin/plugins",
            get(admin::plugins).post(admin::upload).layer(upload_limit),
        )
        .route("/ui/admin/plugins/{id}/toggle", post(admin::toggle))
        .route("/ui/admin/environments", get(admin::environments))
        .route(
            "/ui/admin/environments/{id}/validate",
            post(admin::revalidate),
        )
        .route("/ui/static/{file}", get(asset))
        .route("/ui/{*rest}", any(unknown_page))
        .layer(middleware::from_fn(error::with_navigation))
        .layer(middleware::from_fn(page_headers))
}

/// `GET /ui/static/{file}`: the embedded assets, cacheable for a day.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, media_type) = match file.as_str() {
        "console.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return no_such_page().into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, media_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// Any other path under `/ui`: 404, without a detour through the sign-in page. Asking
/// who is signed in lets the page show them the navigation.
async fn unknown_page(_signed_in: Result<Viewer, PageError>) -> PageError {
    no_such_page()
}

fn no_such_page() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "there is no such page; the console's pages are linked from the dashboard",
    )
}

/// Headers every console answer carries: pages are private to the signed-in user and
/// never framed, and the browser runs only this origin's script.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}
