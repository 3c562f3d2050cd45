//! Errors as problem documents (`application/problem+json`), in the host's style: they
//! are the host's [`ApiError`], with environment-specific wording and, on a 422, the
//! finding `code` that names the rule.

use axum::http::StatusCode;

pub(super) use crate::api::ApiError;

pub(super) type Result<T> = std::result::Result<T, ApiError>;

/// The challenge sent with a 401 for a missing token.
pub(super) const CHALLENGE: &str = "Bearer realm=\"gatehouse-environment\"";

/// The challenge sent with a 401 for a wrong token.
pub(super) const CHALLENGE_INVALID: &str =
    "Bearer realm=\"gatehouse-environment\", error=\"invalid_token\"";

/// A 422: well-formed, but refused by the rule `code` names.
pub(super) fn refused(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::invalid(detail).with("code", code)
}

/// A 409 for a call this kind of environment does not take.
pub(super) fn wrong_kind(detail: impl Into<String>) -> ApiError {
    ApiError::conflict(detail).with("code", "wrong_kind")
}

/// A 500 whose cause goes to the log.
pub(super) fn internal(cause: impl std::fmt::Display) -> ApiError {
    ApiError::internal(cause)
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
pub(super) fn bad_package(error: &crate::solution::PackageError) -> ApiError {
    use crate::solution::PackageError;
    match error {
        PackageError::TooLarge { .. } => ApiError::too_large(format!(
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
pub(super) fn write_error(error: super::blobs::WriteError) -> ApiError {
    use super::blobs::WriteError;
    match error {
        WriteError::TooLarge(limit) => ApiError::too_large(format!(
            "the package is larger than this environment's limit of {limit} bytes"
        )),
        WriteError::Body(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
            format!("the request body could not be read to its end ({e}); send it again"),
        ),
        WriteError::Io(e) => internal(format!("storing a package: {e}")),
    }
}
