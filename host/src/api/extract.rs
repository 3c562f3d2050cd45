//! axum's extractors, refusing with an [`ApiError`] so that a malformed body, query or
//! path also answers as a problem document.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// A JSON body in, or a JSON body out.
///
/// In, it reads the body as JSON Schema does: a number with no fractional part, such as
/// `30.0`, is an integer. A body of the wrong media type is a 415, one that is not JSON a
/// 400, and JSON that does not fit the type a 422 naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::unsupported_media_type(
                "this call takes a JSON body: send it with `Content-Type: application/json`",
            ));
        }
        let body = Bytes::from_request(request, state).await?;
        from_json(&body).map(Json)
    }
}

/// Whether the body is declared as JSON: `application/json` or `application/<x>+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(media_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// Reads a JSON body into `T`: 400 when it is not JSON, 422 when it does not fit `T`.
fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::invalid(format!(
            "the body is not what this call takes: {at}{}; compare it with the schema in \
             /api/v1/openapi.json",
            e.inner()
        ))
    })
}

/// Turns every number with no fractional part into an integer, as JSON Schema counts
/// `1.0` as an integer; numbers beyond 64 bits stay as they are.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
            {
                if (0.0..18_446_744_073_709_551_616.0).contains(&float) {
                    *value = Value::from(float as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&float) {
                    *value = Value::from(float as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
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

/// A JSON body that may be left out: an empty body, or `null`, is `T::default()`.
pub fn json_or_default<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Ok(from_json::<Option<T>>(body)?.unwrap_or_default())
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
