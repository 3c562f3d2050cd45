//! Posted forms. Every console form posts through [`Submitted`], which refuses, with 403
//! and before the handler runs, a form that does not carry the session's CSRF token.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;

use super::error::PageError;
use super::session::Viewer;
use crate::pipeline::services::Services;

/// The name of the hidden input that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The fields of an `application/x-www-form-urlencoded` body, in order.
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new(pairs: Vec<(String, String)>) -> Fields {
        Fields(pairs)
    }

    /// The first value of a field, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The field's value trimmed, or "" when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_owned()
    }

    /// `(suffix, value)` of every field named `<prefix><suffix>`.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0.iter().filter_map(move |(key, value)| {
            key.strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(|rest| (rest, value.as_str()))
        })
    }
}

/// A form posted by a signed-in user, with the session's CSRF token checked.
pub struct Submitted {
    pub viewer: Viewer,
    pub fields: Fields,
}

impl FromRequest<Services> for Submitted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &Services) -> Result<Submitted, PageError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|rejection| {
                PageError::new(
                    rejection.status(),
                    format!(
                        "the form could not be read ({}); reload the page and send it again",
                        rejection.body_text()
                    ),
                )
            })?;
        let fields = Fields::new(pairs);
        if !viewer.csrf_matches(fields.get(CSRF_FIELD)) {
            return Err(csrf_refused());
        }
        Ok(Submitted { viewer, fields })
    }
}

/// The answer to a form without the session's CSRF token: nothing was changed.
pub fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "the form did not carry this session's security token, so nothing was changed; \
         reload the page and try again",
    )
}
