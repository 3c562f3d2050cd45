//! Users, groups and bearer tokens.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, json_or_default};
use crate::api::pagination::{PageQuery, Paged, page_of};
use crate::api::problems::{Forbidden, NotFound};
use crate::api::{ApiError, AppState};
use crate::pipeline::accounts::{IssuedToken, UserDraft, may_issue_token};
use crate::pipeline::model::{Group, Id, Role, User};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(issue_token))
        .routes(routes!(create_group, list_groups))
        .routes(routes!(set_group_members))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// The login name, unique: 1 to 64 characters, without spaces.
    #[schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", max_length = 64)]
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
        Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
    ))]
async fn create_user(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let draft = UserDraft {
        name: body.name,
        display_name: body.display_name,
        role: body.role,
    };
    let user = state.accounts().create_user(&actor.0, draft).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Paged<User>), Forbidden))]
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

/// Issues a bearer token. Admins issue tokens for anyone; users only for themselves.
#[utoipa::path(post, path = "/users/{id}/tokens", tag = "users", request_body = Option<NewToken>,
    params(("id" = String, Path, description = "the user's id")),
    responses(
        (status = 201, body = IssuedToken),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "a user asking for someone else's token"),
        NotFound,
    ))]
async fn issue_token(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(user_id): Path<Id>,
    body: Bytes,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    // Refused before the body is read.
    may_issue_token(&actor, &user_id)?;
    let NewToken { label } = json_or_default(&body)?;
    let issued = state
        .accounts()
        .issue_token(&actor, &user_id, label)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewGroup {
    /// Unique; shares and approvers name it as `group:<name>`. 1 to 64 characters,
    /// without spaces.
    #[schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", max_length = 64)]
    pub name: String,
    /// User ids.
    #[serde(default)]
    pub members: Vec<Id>,
}

#[utoipa::path(post, path = "/groups", tag = "users", request_body = NewGroup,
    responses(
        (status = 201, body = Group),
        Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "a member does not exist"),
    ))]
async fn create_group(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    let group = state
        .accounts()
        .create_group(&actor.0, body.name, body.members)
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

#[utoipa::path(get, path = "/groups", tag = "users", params(PageQuery),
    responses((status = 200, body = Paged<Group>), Forbidden))]
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
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "the group, or a member, does not exist"),
    ))]
async fn set_group_members(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(group_id): Path<Id>,
    Json(body): Json<GroupMembers>,
) -> Result<Json<Group>, ApiError> {
    let group = state
        .accounts()
        .set_group_members(&actor.0, &group_id, body.members)
        .await?;
    Ok(Json(group))
}

/// The signed-in user, with their role and groups.
#[utoipa::path(get, path = "/me", tag = "users",
    responses((status = 200, body = User)))]
async fn me(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}
