//! Bearer tokens: who is calling, and whether they may. How tokens are made and kept is
//! the domain's rule ([`crate::pipeline::accounts`]); who may do what is
//! [`crate::pipeline::access`]'s.

use super::{ApiError, Services};
use crate::pipeline::access;
use crate::pipeline::model::User;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// The challenge sent with a 401 for a missing token.
const CHALLENGE: &str = "Bearer realm=\"gatehouse\"";

/// The challenge sent with a 401 for a token the host does not know.
const CHALLENGE_INVALID: &str = "Bearer realm=\"gatehouse\", error=\"invalid_token\"";

/// The signed-in user, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<Services> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Services,
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
        match state.accounts().user_by_token(token).await? {
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
        Ok(access::require_admin(&self.0, action)?)
    }
}

/// An admin, checked before the body is read: for calls whose bodies are large.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<Services> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Services) -> Result<Admin, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let action = format!("{} {}", parts.method, parts.uri.path());
        user.require_admin(&action)?;
        Ok(Admin(user.0))
    }
}
