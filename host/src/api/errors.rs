//! The API's one error type. Every failure answers as an RFC 9457 problem document
//! (`application/problem+json`) that says what happened and what to do.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::pipeline::engine::EngineError;
use crate::pipeline::service_error::{Refused, ServiceError};
use crate::pipeline::store::StoreError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`; the suffix names the kind, such as `not-found`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:gatehouse:problem:";

/// An RFC 9457 problem, as documented in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:gatehouse:problem:<kind>`: stable, for programs to switch on.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem; the same for every problem of one type.
    pub title: String,
    pub status: u16,
    /// What happened in this case, and what to do about it.
    pub detail: String,
}

/// A failed request. Build one with the constructors, then add extension members with
/// [`ApiError::with`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The last part of the `type` URI, such as `not-found`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
    /// The `WWW-Authenticate` challenge a 401 carries.
    challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            challenge: None,
        }
    }

    /// Adds an extension member, such as the plugin's own message.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed",
            detail,
        )
    }

    /// No token, or one the host does not know.
    pub fn unauthorized(detail: impl Into<String>, challenge: &'static str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication is required",
            detail,
        );
        error.challenge = Some(challenge);
        error
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You may not do this",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflicts with the current state",
            detail,
        )
    }

    /// Well-formed, but breaks a rule.
    pub fn invalid(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "The request breaks a rule",
            detail,
        )
    }

    pub fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request body is too large",
            detail,
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The request body has the wrong media type",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is not ready",
            detail,
        )
    }

    /// A failure the caller cannot fix; the cause goes to the log, not to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server could not complete the request; try again, and if it keeps failing, \
             an admin will find the cause in the server log",
        )
    }

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

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(format!(
                "{what} was not found; check the id, or list the collection to find it"
            )),
            StoreError::Conflict(what) => ApiError::conflict(format!(
                "{what}; reload it and try again, or pick another name"
            )),
            StoreError::Backend(cause) => ApiError::internal(format!("store: {cause}")),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::NotFound(what) => ApiError::not_found(format!(
                "{what} was not found, or is not shared with you; check the id"
            )),
            EngineError::Forbidden(detail) => ApiError::forbidden(detail),
            EngineError::Invalid(detail) => ApiError::invalid(detail),
            EngineError::Conflict(detail) => ApiError::conflict(detail),
            EngineError::NotValidated(refusal) => ApiError::new(
                StatusCode::CONFLICT,
                "environment-not-validated",
                "An environment is not validated",
                refusal.to_string(),
            )
            .with("environment_id", refusal.id),
            EngineError::Unavailable(detail) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "environment-unavailable",
                "An environment did not answer",
                detail,
            ),
            EngineError::Store(error) => error.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let refusal = match error {
            ServiceError::Refused(refusal) => refusal,
            ServiceError::Engine(error) => return error.into(),
            ServiceError::Store(error) => return error.into(),
            ServiceError::Internal(cause) => return ApiError::internal(cause),
        };
        let mut problem = match refusal.reason {
            Refused::Malformed => ApiError::bad_request(refusal.detail),
            Refused::Forbidden => ApiError::forbidden(refusal.detail),
            Refused::NotFound => ApiError::not_found(refusal.detail),
            Refused::Conflict => ApiError::conflict(refusal.detail),
            Refused::Invalid => ApiError::invalid(refusal.detail),
            Refused::TooLarge => ApiError::too_large(refusal.detail),
            Refused::Failed => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                refusal.detail,
            ),
        };
        if let Some(code) = refusal.code {
            problem.kind = code;
        }
        if let Some(title) = refusal.title {
            problem.title = title;
        }
        problem.extensions = refusal.facts;
        problem
    }
}

/// An extractor's refusal, kept in its own words but as a problem document.
fn rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(format!(
            "{text}; send a smaller body (plugins may be at most {} MiB)",
            crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES >> 20
        )),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media_type(format!(
            "{text}; send `Content-Type: application/json`"
        )),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::invalid(format!(
            "{text}; compare the body with the schema in /api/v1/openapi.json"
        )),
        _ if status.is_server_error() => ApiError::internal(text),
        _ => ApiError::bad_request(text),
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        rejection(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        rejection(r.status(), r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        rejection(r.status(), r.body_text())
    }
}
