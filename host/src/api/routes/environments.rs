//! Environments: where solutions come from and go to.
//!
//! Every signed-in user may read environments (the credential is never shown); only
//! admins change them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, present};
use crate::api::pagination::{PageQuery, Paged, page_of};
use crate::api::problems::{Forbidden, NotFound};
use crate::api::{ApiError, AppState};
use crate::pipeline::EnvironmentKind;
use crate::pipeline::catalog::{EnvironmentChange, EnvironmentDraft};
use crate::pipeline::model::{EnvironmentRecord, Grantee, Id};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_environment, list_environments))
        .routes(routes!(
            get_environment,
            update_environment,
            delete_environment
        ))
        .routes(routes!(validate_environment))
        .routes(routes!(set_environment_access))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewEnvironment {
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub name: String,
    /// `development` or `target`.
    pub kind: EnvironmentKind,
    /// The id the environment reports for itself in `GET /env/v1/info`.
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub environment_id: String,
    /// `http(s)://…` or `memory://<name>`.
    #[schema(pattern = r"^(http|https|memory)://[\s\S]")]
    pub url: String,
    /// A token for the environment's API; stored, never shown again.
    #[serde(default)]
    pub credential: Option<String>,
    /// Who may deploy to or from it, as `user:<id>` or `group:<name>`.
    #[serde(default)]
    pub access: Vec<Grantee>,
}

/// Changes to an environment; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentPatch {
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub name: Option<String>,
    pub kind: Option<EnvironmentKind>,
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub environment_id: Option<String>,
    #[schema(pattern = r"^(http|https|memory)://[\s\S]")]
    pub url: Option<String>,
    /// A new credential; `null` removes the stored one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub credential: Option<Option<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentAccess {
    /// Replaces who may use the environment: `user:<id>` or `group:<name>`. Admins need
    /// an entry too.
    pub access: Vec<Grantee>,
}

/// Registers an environment. It starts `pending` until validated.
#[utoipa::path(post, path = "/environments", tag = "environments", request_body = NewEnvironment,
    responses(
        (status = 201, body = EnvironmentRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "a grantee in `access` does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
    ))]
async fn create_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentRecord>), ApiError> {
    let draft = EnvironmentDraft {
        name: body.name,
        kind: body.kind,
        environment_id: body.environment_id,
        url: body.url,
        credential: body.credential,
        access: body.access,
    };
    let env = state.catalog().create_environment(&actor.0, draft).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

#[utoipa::path(get, path = "/environments", tag = "environments", params(PageQuery),
    responses((status = 200, body = Paged<EnvironmentRecord>)))]
async fn list_environments(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<EnvironmentRecord>>, ApiError> {
    let page = query.page()?;
    let store = &state.store;
    let envs = page_of(
        &page,
        move |p| async move { store.list_environments(&p).await },
        |e| e.id.clone(),
        |_| true,
    )
    .await?;
    Ok(Json(envs))
}

#[utoipa::path(get, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentRecord), NotFound))]
async fn get_environment(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    Ok(Json(state.store.get_environment(&id).await?))
}

/// Changes an environment. A new url, environment_id, kind or credential sets it back to
/// `pending` until validated again.
#[utoipa::path(patch, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)), request_body = EnvironmentPatch,
    responses(
        (status = 200, body = EnvironmentRecord),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a pipeline using it would break a rule"),
    ))]
async fn update_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<EnvironmentPatch>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    let change = EnvironmentChange {
        name: patch.name,
        kind: patch.kind,
        environment_id: patch.environment_id,
        url: patch.url,
        credential: patch.credential,
    };
    let env = state
        .catalog()
        .update_environment(&actor.0, &id, change)
        .await?;
    Ok(Json(env))
}

/// Removes an environment that no pipeline uses.
#[utoipa::path(delete, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses(
        (status = 204),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a pipeline uses it"),
    ))]
async fn delete_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    state.catalog().delete_environment(&actor.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the environment about itself and records whether it is the one registered: the
/// same environment_id, the same kind, and, for a target, managed. A failed validation is
/// still a 200: the answer is in `validation_status` and `validation_message`.
#[utoipa::path(post, path = "/environments/{id}/validate", tag = "environments",
    params(("id" = String, Path), LinkQuery),
    responses(
        (status = 200, body = EnvironmentRecord),
        Forbidden,
        NotFound,
    ))]
async fn validate_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Query(link): Query<LinkQuery>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    let env = state
        .catalog()
        .validate_environment(&actor.0, &id, link.force)
        .await?;
    Ok(Json(env))
}

/// `?force=true` links the environment to this host even when another host holds it.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    #[serde(default)]
    pub force: bool,
}

/// Replaces who may use the environment in a deployment. Running a pipeline needs access
/// to every environment in it, for admins too.
#[utoipa::path(put, path = "/environments/{id}/access", tag = "environments",
    params(("id" = String, Path)), request_body = EnvironmentAccess,
    responses(
        (status = 200, body = EnvironmentRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "the environment, or a grantee, does not exist"),
    ))]
async fn set_environment_access(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<EnvironmentAccess>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    let env = state
        .catalog()
        .set_environment_access(&actor.0, &id, body.access)
        .await?;
    Ok(Json(env))
}
