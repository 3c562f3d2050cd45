//! Users, groups and bearer tokens.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, json_or_default};
use crate::api::pagination::{PageQuery, Paged, page_of};
use crate::api::{ApiError, AppState, audit, now};
use crate::pipeline::accounts::{generate_token, token_sha256};
use crate::pipeline::model::{Group, Id, Role, User, new_id};
use crate::pipeline::store::StoreError;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(issue_token))
        .routes(routes!(create_group, list_groups))
        .routes(routes!(set_group_members))
        .routes(routes!(me))
}

/// Longest user or group name accepted.
const MAX_NAME_LEN: usize = 64;

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} name {name:?} must be 1 to {MAX_NAME_LEN} characters without spaces"
        )))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// The login name, unique, without spaces.
    pub name: String,
    /// Shown in the dashboard; the name when omitted.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `user` when omitted.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Creates a user. They have no token until one is issued.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
    ))]
async fn create_user(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let actor = actor.require_admin("creating a user")?;
    check_name("the user", &body.name)?;
    let user = User {
        id: new_id(),
        display_name: body
            .display_name
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| body.name.clone()),
        name: body.name,
        role: body.role.unwrap_or(Role::User),
        groups: Vec::new(),
        created_at: now(),
    };
    let detail = json!({ "name": user.name, "role": user.role });
    state
        .store
        .insert_user(&user, &audit(actor, "user.create", &user.id, detail))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Paged<User>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_users(
    State(state): State<AppState>,
    actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<User>>, ApiError> {
    actor.require_admin("listing users")?;
    let page = query.page()?;
    let store = &state.store;
    let users = page_of(
        &page,
        move |p| async move { store.list_users(&p).await },
        |u| u.id.clone(),
        |_| true,
    )
    .await?;
    Ok(Json(users))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// What the token is for, such as `ci` or `laptop`.
    #[serde(default)]
    pub label: String,
}

/// A token, shown in full this once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Send as `Authorization: Bearer <token>`. The host keeps only its SHA-256, so it
    /// cannot be shown again.
    pub token: String,
    pub user_id: Id,
    pub label: String,
}

/// Issues a bearer token. Admins issue tokens for anyone; users only for themselves.
#[utoipa::path(post, path = "/users/{id}/tokens", tag = "users", request_body = NewToken,
    params(("id" = String, Path, description = "the user's id")),
    responses(
        (status = 201, body = IssuedToken),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "a user asking for someone else's token"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn issue_token(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(user_id): Path<Id>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    if !actor.is_admin() && actor.id != user_id {
        return Err(ApiError::forbidden(
            "issuing a token for another user needs the admin role; issue one for yourself \
             with your own id (see GET /api/v1/me)",
        )
        .with("required_role", "admin"));
    }
    let NewToken { label } = json_or_default(&body)?;
    let user = state.store.get_user(&user_id).await?;
    let token = generate_token()?;
    let detail = json!({ "label": label });
    state
        .store
        .insert_token(
            &user.id,
            &token_sha256(&token),
            &label,
            &audit(&actor, "token.create", &user.id, detail),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token,
            user_id: user.id,
            label,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewGroup {
    /// Unique; shares and approvers name it as `group:<name>`.
    pub name: String,
    /// User ids.
    #[serde(default)]
    pub members: Vec<Id>,
}

#[utoipa::path(post, path = "/groups", tag = "users", request_body = NewGroup,
    responses(
        (status = 201, body = Group),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a member does not exist"),
    ))]
async fn create_group(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    let actor = actor.require_admin("creating a group")?;
    check_name("the group", &body.name)?;
    let members = existing_users(&state, body.members).await?;
    let group = Group {
        id: new_id(),
        name: body.name,
        members,
        created_at: now(),
    };
    let detail = json!({ "name": group.name, "members": group.members });
    state
        .store
        .insert_group(&group, &audit(actor, "group.create", &group.id, detail))
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

#[utoipa::path(get, path = "/groups", tag = "users", params(PageQuery),
    responses((status = 200, body = Paged<Group>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_groups(
    State(state): State<AppState>,
    actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<Group>>, ApiError> {
    actor.require_admin("listing groups")?;
    let page = query.page()?;
    let store = &state.store;
    let groups = page_of(
        &page,
        move |p| async move { store.list_groups(&p).await },
        |g| g.id.clone(),
        |_| true,
    )
    .await?;
    Ok(Json(groups))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GroupMembers {
    /// User ids; they replace the group's members.
    pub members: Vec<Id>,
}

/// Replaces a group's members.
#[utoipa::path(put, path = "/groups/{id}/members", tag = "users", request_body = GroupMembers,
    params(("id" = String, Path, description = "the group's id")),
    responses(
        (status = 200, body = Group),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a member does not exist"),
    ))]
async fn set_group_members(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(group_id): Path<Id>,
    Json(body): Json<GroupMembers>,
) -> Result<Json<Group>, ApiError> {
    let actor = actor.require_admin("changing a group's members")?;
    let group = state.store.get_group(&group_id).await?;
    let members = existing_users(&state, body.members).await?;
    let detail = json!({ "name": group.name, "before": group.members, "after": members });
    state
        .store
        .set_group_members(
            &group.id,
            &members,
            &audit(actor, "group.set_members", &group.id, detail),
        )
        .await?;
    Ok(Json(state.store.get_group(&group.id).await?))
}

/// The signed-in user, with their role and groups.
#[utoipa::path(get, path = "/me", tag = "users",
    responses((status = 200, body = User), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn me(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}

/// The ids, without repeats, after checking that each names a user.
async fn existing_users(state: &AppState, ids: Vec<Id>) -> Result<Vec<Id>, ApiError> {
    let mut members: Vec<Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if members.contains(&id) {
            continue;
        }
        match state.store.get_user(&id).await {
            Ok(_) => members.push(id),
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::invalid(format!(
                    "user {id} does not exist; create it with POST /api/v1/users first"
                )));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(members)
}
