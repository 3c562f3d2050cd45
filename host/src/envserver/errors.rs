//! The server's one error type: every failure answers as an RFC 9457 problem document
//! (`application/problem+json`) that says what happened and what to do, and, on a refusal,
//! the `code` that names the rule.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The media type of every error body.
const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`; the suffix names the kind, such as `not-found`.
const PROBLEM_TYPE_PREFIX: &str = "urn:gatehouse:problem:";

pub(super) type Result<T> = std::result::Result<T, EnvServerError>;

/// The challenge sent with a 401 for a missing token.
pub(super) const CHALLENGE: &str = "Bearer realm=\"gatehouse-environment\"";

/// The challenge sent with a 401 for a wrong token.
pub(super) const CHALLENGE_INVALID: &str =
    "Bearer realm=\"gatehouse-environment\", error=\"invalid_token\"";

/// A failed request. Build one with the constructors, then add extension members with
/// [`EnvServerError::with`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {kind}: {detail}", status.as_u16())]
pub struct EnvServerError {
    status: StatusCode,
    /// The last part of the `type` URI, such as `not-found`.
    kind: &'static str,
    title: &'static str,
    detail: String,
    extensions: Map<String, Value>,
    /// The `WWW-Authenticate` challenge a 401 carries.
    challenge: Option<&'static str>,
}

impl EnvServerError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> EnvServerError {
        EnvServerError {
            status,
            kind,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            challenge: None,
        }
    }

    /// Adds an extension member, such as the rule's `code`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> EnvServerError {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
            detail,
        )
    }

    /// No token, or one the environment does not know.
    pub fn unauthorized(detail: impl Into<String>, challenge: &'static str) -> EnvServerError {
        let mut error = EnvServerError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication is required",
            detail,
        );
        error.challenge = Some(challenge);
        error
    }

    pub fn not_found(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflicts with the current state",
            detail,
        )
    }

    pub fn too_large(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request body is too large",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is not ready",
            detail,
        )
    }

    /// Well-formed, but breaks a rule.
    pub fn invalid(detail: impl Into<String>) -> EnvServerError {
        EnvServerError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "The request breaks a rule",
            detail,
        )
    }

    /// A failure the caller cannot fix; the cause goes to the log, not to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> EnvServerError {
        tracing::error!(%cause, "request failed");
        EnvServerError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server could not complete the request; try again, and if it keeps failing, \
             an admin will find the cause in the server log",
        )
    }

    /// The problem document.
    pub fn to_problem(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            format!("{PROBLEM_TYPE_PREFIX}{}", self.kind).into(),
        );
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        for (key, value) in &self.extensions {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for EnvServerError {
    fn into_response(self) -> Response {
        let body = self.to_problem().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// A 422: well-formed, but refused by the rule `code` names.
pub(super) fn refused(code: &'static str, detail: impl Into<String>) -> EnvServerError {
    EnvServerError::invalid(detail).with("code", code)
}

/// A 403 for an import that did not present the secret of the environment's link.
pub(super) fn link_refused(refusal: &crate::environment::link::LinkRefusal) -> EnvServerError {
    EnvServerError::new(
        StatusCode::FORBIDDEN,
        "link-secret-refused",
        "The import did not present this environment's link secret",
        refusal.to_string(),
    )
    .with("code", "link_secret_refused")
}

/// A 409 for a call this kind of environment does not take.
pub(super) fn wrong_kind(detail: impl Into<String>) -> EnvServerError {
    EnvServerError::conflict(detail).with("code", "wrong_kind")
}

/// A 500 whose cause goes to the log.
pub(super) fn internal(cause: impl std::fmt::Display) -> EnvServerError {
    EnvServerError::internal(cause)
}

/// Turns storage failures into 500s.
pub(super) trait OrInternal<T> {
    fn or_500(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for std::result::Result<T, E> {
    fn or_500(self) -> Result<T> {
        self.map_err(internal)
    }
}

/// A refused package: the reader's own message, which names the entry or field.
pub(super) fn bad_package(error: &crate::solution::PackageError) -> EnvServerError {
    use crate::solution::PackageError;
    match error {
        PackageError::TooLarge { .. } => EnvServerError::too_large(format!(
            "{error}; split the solution, or shrink its components"
        )),
        PackageError::Io(e) => internal(format!("reading a package: {e}")),
        _ => refused(
            "bad_package",
            format!("the package is refused: {error}; see docs/solution-format.md"),
        ),
    }
}

/// The status a stored body's failure answers with.
pub(super) fn write_error(error: super::blobs::WriteError) -> EnvServerError {
    use super::blobs::WriteError;
    match error {
        WriteError::TooLarge(limit) => EnvServerError::too_large(format!(
            "the package is larger than this environment's limit of {limit} bytes"
        )),
        WriteError::Body(e) => EnvServerError::bad_request(format!(
            "the request body could not be read to its end ({e}); send it again"
        )),
        WriteError::Io(e) => internal(format!("storing a package: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_problem_with_its_rule() {
        let error = refused("bad_package", "the package is refused");
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            error.to_problem(),
            serde_json::json!({
                "type": "urn:gatehouse:problem:invalid",
                "title": "The request breaks a rule",
                "status": 422,
                "detail": "the package is refused",
                "code": "bad_package",
            })
        );
        let response = EnvServerError::unauthorized("no token", CHALLENGE).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
    }
}
