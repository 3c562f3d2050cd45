//! axum's extractors, refusing with an [`ApiError`] so that a malformed body, query or
//! path also answers as a problem document.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// A JSON body in, or a JSON body out.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The query string.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The path parameters.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A JSON body that may be left out: an empty body is `T::default()`.
pub fn json_or_default<T: serde::de::DeserializeOwned + Default>(
    body: &axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!(
            "the body is not the JSON this call takes: {e}; compare it with the schema in \
             /api/v1/openapi.json"
        ))
    })
}

/// Tells a field left out (`None`) from one set to null (`Some(None)`), for PATCH bodies.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// `If-Match: "<revision>"`: the revision of a pipeline the caller read and changed.
/// Absent, or `*`, matches any revision; the store still refuses a change that raced
/// with another one.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<u64>);

impl IfMatch {
    /// 412 unless the caller's revision is `current`.
    pub fn check(self, what: &str, current: u64) -> Result<(), ApiError> {
        match self.0 {
            Some(expected) if expected != current => Err(ApiError::new(
                axum::http::StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "The resource has changed",
                format!(
                    "{what} is at revision \"{current}\", not \"{expected}\" as If-Match says: \
                     someone changed it since you read it; read it again and repeat the change"
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        text.trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .map(|revision| IfMatch(Some(revision)))
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "If-Match must be the ETag a GET returned, such as \"3\"; got {text:?}"
                ))
            })
    }
}

/// The `ETag` header of a resource at `revision`.
pub fn etag(revision: u64) -> [(axum::http::HeaderName, String); 1] {
    [(axum::http::header::ETAG, format!("\"{revision}\""))]
}
