//! A page that cannot be shown: an HTML page with the right status, never a problem
//! document, or a redirect to the sign-in page. A signed-in viewer gets it inside the
//! navigation.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{self, Nav, Shell};
use super::session::SignedIn;
use crate::pipeline::engine::EngineError;
use crate::pipeline::service_error::{Refused, ServiceError};
use crate::pipeline::store::StoreError;

#[derive(Debug)]
pub enum PageError {
    /// Not signed in: 303 to the sign-in page, which comes back to `next`.
    SignIn { next: String },
    /// An error page with this status and message.
    Status { status: StatusCode, message: String },
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError::Status {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn invalid(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> PageError {
        match error {
            ServiceError::Refused(refusal) => {
                let status = match refusal.reason {
                    Refused::Malformed => StatusCode::BAD_REQUEST,
                    Refused::Forbidden => StatusCode::FORBIDDEN,
                    Refused::NotFound => StatusCode::NOT_FOUND,
                    Refused::Conflict => StatusCode::CONFLICT,
                    Refused::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                    Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    Refused::Failed => StatusCode::INTERNAL_SERVER_ERROR,
                };
                PageError::new(status, refusal.detail)
            }
            ServiceError::Engine(error) => error.into(),
            ServiceError::Store(error) => error.into(),
            ServiceError::Internal(cause) => {
                let (status, message) = internal(cause);
                PageError::new(status, message)
            }
        }
    }
}

impl From<EngineError> for PageError {
    fn from(error: EngineError) -> PageError {
        let (status, message) = engine_refusal(error);
        PageError::new(status, message)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        let (status, message) = store_refusal(error);
        PageError::new(status, message)
    }
}

/// The status and words for an engine's refusal, for a page that shows it beside a form.
pub fn engine_refusal(error: EngineError) -> (StatusCode, String) {
    match error {
        EngineError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            format!("{what} was not found, or is not shared with you; check the id"),
        ),
        EngineError::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
        EngineError::Invalid(detail) => (StatusCode::UNPROCESSABLE_ENTITY, detail),
        EngineError::Conflict(detail) => (StatusCode::CONFLICT, detail),
        EngineError::NotValidated(refusal) => (StatusCode::CONFLICT, refusal.to_string()),
        EngineError::Unavailable(detail) => (StatusCode::BAD_GATEWAY, detail),
        EngineError::Store(error) => store_refusal(error),
    }
}

fn store_refusal(error: StoreError) -> (StatusCode, String) {
    match error {
        StoreError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            format!("{what} was not found; check the id, or list the collection to find it"),
        ),
        StoreError::Conflict(what) => (
            StatusCode::CONFLICT,
            format!("{what}; reload it and try again, or pick another name"),
        ),
        StoreError::Backend(cause) => internal(format!("store: {cause}")),
    }
}

/// A failure the viewer cannot fix; the cause goes to the log, not to the page.
fn internal(cause: impl std::fmt::Display) -> (StatusCode, String) {
    tracing::error!(%cause, "page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not complete the request; try again, and if it keeps failing, an \
         admin will find the cause in the server log"
            .to_owned(),
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let location = format!("/ui/signin?next={}", layout::query_value(&next));
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
            }
            PageError::Status { status, message } => {
                let page = ErrorPage { status, message };
                // Without the navigation here; `with_navigation` adds it for a viewer.
                let mut response =
                    (status, layout::bare(page.title(), page.body())).into_response();
                response.extensions_mut().insert(page);
                response
            }
        }
    }
}

/// What an error page says, kept on its response so that [`with_navigation`] can show it
/// again inside the navigation.
#[derive(Debug, Clone)]
struct ErrorPage {
    status: StatusCode,
    message: String,
}

impl ErrorPage {
    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    fn body(&self) -> Markup {
        html! {
            main id="problem" {
                h1 { (self.title()) }
                p id="error" role="alert" { (self.message) }
                p { a href="/ui/" { "Back to the dashboard" } }
            }
        }
    }
}

/// Middleware: an error page answered to a signed-in user keeps the navigation, so a 403
/// or a 404 is a page of the console like any other, not a dead end. Anyone else gets it
/// without, as before signing in.
pub async fn with_navigation(mut request: Request, next: Next) -> Response {
    let signed_in = SignedIn::default();
    request.extensions_mut().insert(signed_in.clone());
    let response = next.run(request).await;
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let Some((state, viewer)) = signed_in.take() else {
        return response;
    };
    match Shell::load(&state, &viewer).await {
        Ok(shell) => (
            page.status,
            shell.page(page.title(), Nav::Elsewhere, false, page.body()),
        )
            .into_response(),
        // The page without the navigation still says what went wrong.
        Err(_) => response,
    }
}
