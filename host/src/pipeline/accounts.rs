//! Users, groups and their tokens: how a token is made and kept, and which grantees exist.
//!
//! Tokens are 256 random bits shown once as hex; the host keeps only their SHA-256. A hash
//! is enough because the token has full entropy; a slow hash (Argon2) would cost more
//! than the whole request. Console session ids and CSRF tokens are made the same way.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::pipeline::access::require_admin;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::console::WebSession;
use crate::pipeline::model::{Grantee, Group, Id, Role, User, new_id};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{Store, StoreError, scan_all};

/// Longest user or group name accepted.
const MAX_NAME_LEN: usize = 64;

/// Users, groups and tokens over the store; cheap to make for each request.
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub store: &'a dyn Store,
}

/// A new user, as an admin describes them.
#[derive(Debug, Clone)]
pub struct UserDraft {
    /// The login name, unique, without spaces.
    pub name: String,
    /// The name when `None` or blank.
    pub display_name: Option<String>,
    /// `user` when `None`.
    pub role: Option<Role>,
}

/// A token just issued: the only time its value is known.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Send as `Authorization: Bearer <token>`. The host keeps only its SHA-256, so it
    /// cannot be shown again.
    pub token: String,
    pub user_id: Id,
    pub label: String,
}

/// How long a console session lasts; signing in again starts a new one.
pub const SESSION_HOURS: u64 = 12;

/// A console session just started: its id, for the cookie and shown only now, and what
/// the store keeps of it.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub id: String,
    pub session: WebSession,
}

/// A user or group name: 1 to 64 characters, no spaces; `what` is "the user" or
/// "the group".
pub fn check_name(what: &str, name: &str) -> ServiceResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "{what} name {name:?} must be 1 to {MAX_NAME_LEN} characters without spaces"
        )))
    }
}

/// Admins issue tokens for anyone; users only for themselves.
pub fn may_issue_token(actor: &User, user_id: &str) -> ServiceResult<()> {
    if actor.is_admin() || actor.id == user_id {
        return Ok(());
    }
    Err(ServiceError::forbidden(
        "issuing a token for another user needs the admin role; issue one for yourself with \
         your own id (see GET /api/v1/me)",
    )
    .with("required_role", "admin"))
}

impl Accounts<'_> {
    /// Who holds this bearer token, if anyone.
    pub async fn user_by_token(&self, token: &str) -> ServiceResult<Option<User>> {
        Ok(self.store.user_by_token(&token_sha256(token)).await?)
    }

    /// Starts a console session for `user`, who signed in with `token`: a random id kept
    /// only as its SHA-256, with its own CSRF token, for [`SESSION_HOURS`].
    pub async fn start_web_session(
        &self,
        user: User,
        token: &str,
    ) -> ServiceResult<StartedSession> {
        let id = generate_token()?;
        let at = now();
        let session = WebSession {
            sha256: token_sha256(&id),
            token_sha256: token_sha256(token),
            csrf: generate_token()?,
            created_at: at,
            expires_at: at + SESSION_HOURS * 3_600_000,
            user,
        };
        let entry = audit(
            &session.user,
            "session.sign_in",
            &session.user.id,
            json!({ "via": "web console" }),
        );
        self.store.insert_web_session(&session, &entry).await?;
        Ok(StartedSession { id, session })
    }

    /// The live session with this id, if it has not expired or been ended.
    pub async fn web_session(&self, id: &str) -> ServiceResult<Option<WebSession>> {
        Ok(self.store.web_session(&token_sha256(id), now()).await?)
    }

    /// Ends a session; one already gone is ended too.
    pub async fn end_web_session(&self, user: &User, session_sha256: &str) -> ServiceResult<()> {
        let entry = audit(
            user,
            "session.sign_out",
            &user.id,
            json!({ "via": "web console" }),
        );
        match self.store.delete_web_session(session_sha256, &entry).await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Creates a user. They have no token until one is issued.
    pub async fn create_user(&self, actor: &User, draft: UserDraft) -> ServiceResult<User> {
        let actor = require_admin(actor, "creating a user")?;
        check_name("the user", &draft.name)?;
        let user = User {
            id: new_id(),
            display_name: draft
                .display_name
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| draft.name.clone()),
            name: draft.name,
            role: draft.role.unwrap_or(Role::User),
            groups: Vec::new(),
            created_at: now(),
        };
        let detail = json!({ "name": user.name, "role": user.role });
        self.store
            .insert_user(&user, &audit(actor, "user.create", &user.id, detail))
            .await?;
        Ok(user)
    }

    /// Issues a bearer token; the caller has passed [`may_issue_token`].
    pub async fn issue_token(
        &self,
        actor: &User,
        user_id: &str,
        label: String,
    ) -> ServiceResult<IssuedToken> {
        may_issue_token(actor, user_id)?;
        let user = self.store.get_user(user_id).await?;
        let token = generate_token()?;
        let detail = json!({ "label": label });
        self.store
            .insert_token(
                &user.id,
                &token_sha256(&token),
                &label,
                &audit(actor, "token.create", &user.id, detail),
            )
            .await?;
        Ok(IssuedToken {
            token,
            user_id: user.id,
            label,
        })
    }

    /// Creates a group with the given members.
    pub async fn create_group(
        &self,
        actor: &User,
        name: String,
        members: Vec<Id>,
    ) -> ServiceResult<Group> {
        let actor = require_admin(actor, "creating a group")?;
        check_name("the group", &name)?;
        let members = self.existing_users(members).await?;
        let group = Group {
            id: new_id(),
            name,
            members,
            created_at: now(),
        };
        let detail = json!({ "name": group.name, "members": group.members });
        self.store
            .insert_group(&group, &audit(actor, "group.create", &group.id, detail))
            .await?;
        Ok(group)
    }

    /// Replaces a group's members.
    pub async fn set_group_members(
        &self,
        actor: &User,
        group_id: &str,
        members: Vec<Id>,
    ) -> ServiceResult<Group> {
        let actor = require_admin(actor, "changing a group's members")?;
        let group = self.store.get_group(group_id).await?;
        let members = self.existing_users(members).await?;
        let detail = json!({ "name": group.name, "before": group.members, "after": members });
        self.store
            .set_group_members(
                &group.id,
                &members,
                &audit(actor, "group.set_members", &group.id, detail),
            )
            .await?;
        Ok(self.store.get_group(&group.id).await?)
    }

    /// The ids, without repeats, after checking that each names a user.
    async fn existing_users(&self, ids: Vec<Id>) -> ServiceResult<Vec<Id>> {
        let mut members: Vec<Id> = Vec::with_capacity(ids.len());
        for id in ids {
            if members.contains(&id) {
                continue;
            }
            match self.store.get_user(&id).await {
                Ok(_) => members.push(id),
                Err(StoreError::NotFound(_)) => {
                    return Err(ServiceError::not_found(format!(
                        "user {id} does not exist; create it with POST /api/v1/users first"
                    )));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(members)
    }
}

/// A new bearer token: 32 random bytes as 64 lower-case hex characters.
pub fn generate_token() -> ServiceResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Internal(format!("the system random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the store keeps for a token: its SHA-256, lower-case hex.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks that each `user:<id>` and `group:<name>` names someone who exists.
pub async fn existing_grantees(store: &dyn Store, grantees: &[Grantee]) -> ServiceResult<()> {
    let mut groups: Option<Vec<Group>> = None;
    for grantee in grantees {
        match grantee {
            Grantee::User(id) => match store.get_user(id).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => {
                    return Err(ServiceError::not_found(format!(
                        "{grantee} names no user; use a user's id from GET /api/v1/users"
                    )));
                }
                Err(error) => return Err(error.into()),
            },
            Grantee::Group(name) => {
                if groups.is_none() {
                    groups = Some(
                        scan_all(
                            move |p| async move { store.list_groups(&p).await },
                            |g| g.id.clone(),
                        )
                        .await?,
                    );
                }
                if !groups.iter().flatten().any(|g| g.name == *name) {
                    return Err(ServiceError::not_found(format!(
                        "{grantee} names no group; create it with POST /api/v1/groups first"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The display names of these users, by id, as people are shown to one another. A user
/// who no longer exists is left out; show their id instead.
pub async fn display_names(
    store: &dyn Store,
    ids: BTreeSet<&str>,
) -> Result<BTreeMap<Id, String>, StoreError> {
    let mut names = BTreeMap::new();
    for id in ids {
        match store.get_user(id).await {
            Ok(user) => {
                names.insert(user.id, user.display_name);
            }
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_64_hex_characters_and_never_repeats() {
        let a = generate_token().expect("a token");
        let b = generate_token().expect("a token");
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    fn user(id: &str, role: Role) -> User {
        User {
            id: id.into(),
            name: id.into(),
            display_name: id.into(),
            role,
            groups: Vec::new(),
            created_at: 1,
        }
    }

    #[test]
    fn a_user_issues_tokens_for_themselves_and_an_admin_for_anyone() {
        assert!(may_issue_token(&user("mona", Role::User), "mona").is_ok());
        assert!(may_issue_token(&user("root", Role::Admin), "mona").is_ok());
        let error = may_issue_token(&user("mona", Role::User), "bob").expect_err("refused");
        let refusal = error.refusal().expect("a refusal");
        assert_eq!(
            refusal.reason,
            crate::pipeline::service_error::Refused::Forbidden
        );
        assert_eq!(refusal.facts["required_role"], "admin");
    }

    #[test]
    fn names_are_1_to_64_characters_without_spaces() {
        assert!(check_name("the user", "mona").is_ok());
        assert!(check_name("the user", &"m".repeat(64)).is_ok());
        for bad in ["", "mona lisa", "tab\there", &"m".repeat(65)] {
            assert!(check_name("the user", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_kept_hash_is_the_sha256_of_the_token() {
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
