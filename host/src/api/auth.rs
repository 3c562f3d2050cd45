//! Bearer tokens: who is calling, and whether they may.
//!
//! Tokens are 256 random bits shown once as hex; the host keeps only their SHA-256. A hash
//! is enough because the token has full entropy; a slow hash (Argon2) would cost more
//! than the whole request.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::pipeline::model::{PipelineRecord, User};

/// The challenge sent with a 401 for a missing token.
const CHALLENGE: &str = "Bearer realm=\"gatehouse\"";

/// The challenge sent with a 401 for a token the host does not know.
const CHALLENGE_INVALID: &str = "Bearer realm=\"gatehouse\", error=\"invalid_token\"";

/// A new bearer token: 32 random bytes as 64 lower-case hex characters.
pub fn generate_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("the system random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the store keeps for a token: its SHA-256, lower-case hex.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in user, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<CurrentUser, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "this call needs `Authorization: Bearer <token>`; an admin can issue you a \
                 token with POST /api/v1/users/{id}/tokens",
                CHALLENGE,
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "the Authorization header is not `Bearer <token>`; send the token after the \
                 word `Bearer` and one space",
                CHALLENGE_INVALID,
            ));
        };
        match state.store.user_by_token(&token_sha256(token)).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(ApiError::unauthorized(
                "the bearer token is not known to this host; check that it was copied whole, \
                 or ask an admin for a new one",
                CHALLENGE_INVALID,
            )),
        }
    }
}

impl CurrentUser {
    /// Refuses anyone but an admin; `action` completes "… needs the admin role".
    pub fn require_admin(&self, action: &str) -> Result<&User, ApiError> {
        require_admin(&self.0, action)
    }
}

/// Refuses anyone but an admin; `action` completes "… needs the admin role". The API and
/// the web console both ask this.
pub fn require_admin<'a>(user: &'a User, action: &str) -> Result<&'a User, ApiError> {
    if user.is_admin() {
        Ok(user)
    } else {
        Err(ApiError::forbidden(format!(
            "{action} needs the admin role, and you are a user; ask an admin to do it"
        ))
        .with("required_role", "admin"))
    }
}

/// Whether the user may see and run the pipeline: admins always, others when it is shared
/// with them or with one of their groups.
pub fn can_see_pipeline(user: &User, pipeline: &PipelineRecord) -> bool {
    user.is_admin() || pipeline.shares.iter().any(|g| user.matches(g))
}

/// An admin, checked before the body is read: for calls whose bodies are large.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let action = format!("{} {}", parts.method, parts.uri.path());
        user.require_admin(&action)?;
        Ok(Admin(user.0))
    }
}
