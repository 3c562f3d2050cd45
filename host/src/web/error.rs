//! A page that cannot be shown: an HTML page with the right status, never a problem
//! document, or a redirect to the sign-in page.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout;
use crate::api::ApiError;
use crate::pipeline::engine::EngineError;
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

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError::new(error.status, error.detail)
    }
}

impl From<EngineError> for PageError {
    fn from(error: EngineError) -> PageError {
        ApiError::from(error).into()
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let location = format!("/ui/signin?next={}", layout::query_value(&next));
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
            }
            PageError::Status { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let body = html! {
                    main id="problem" {
                        h1 { (title) }
                        p id="error" role="alert" { (message) }
                        p { a href="/ui/" { "Back to the dashboard" } }
                    }
                };
                (status, layout::bare(title, body)).into_response()
            }
        }
    }
}
