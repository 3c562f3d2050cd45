//! Pipelines and their shares. Stages, gates and validators are in [`super::stages`].
//!
//! A pipeline is visible only to admins and to the users and groups it is shared with.
//! To everyone else it answers 404, the same as a pipeline that does not exist, so that
//! its existence does not leak.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{IfMatch, Json, Path, Query, etag};
use crate::api::pagination::{PageQuery, Paged, page_of};
use crate::api::problems::{Forbidden, NotFound, StaleRevision};
use crate::api::{ApiError, AppState};
use crate::pipeline::access::{can_use_pipeline, visible_pipeline};
use crate::pipeline::accounts::existing_grantees;
use crate::pipeline::catalog::PipelineDraft;
use crate::pipeline::model::{Grantee, Id, PipelineRecord, PipelineSettings};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_pipeline, list_pipelines))
        .routes(routes!(get_pipeline, update_pipeline, delete_pipeline))
        .routes(routes!(add_share, remove_share))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewPipeline {
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// At least one is needed before the pipeline can run.
    #[serde(default)]
    pub development_environment_ids: Vec<Id>,
    #[serde(default)]
    pub settings: PipelineSettings,
    /// Who may see and run it: `user:<id>` or `group:<name>`.
    #[serde(default)]
    pub shares: Vec<Grantee>,
}

/// Changes to a pipeline; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PipelinePatch {
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub name: Option<String>,
    pub description: Option<String>,
    pub development_environment_ids: Option<Vec<Id>>,
    pub settings: Option<PipelineSettings>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Share {
    /// `user:<id>` or `group:<name>`.
    pub grantee: Grantee,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareQuery {
    /// The share to remove: `user:<id>` or `group:<name>`.
    #[param(value_type = String, pattern = r"^(user|group):[\s\S]")]
    pub grantee: Grantee,
}

/// Creates a pipeline. Add stages with POST /pipelines/{id}/stages.
#[utoipa::path(post, path = "/pipelines", tag = "pipelines", request_body = NewPipeline,
    responses(
        (status = 201, body = PipelineRecord),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "a development environment or a grantee does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken, or the pipeline would break a rule"),
    ))]
async fn create_pipeline(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewPipeline>,
) -> Result<(StatusCode, Json<PipelineRecord>), ApiError> {
    let draft = PipelineDraft {
        name: body.name,
        description: body.description,
        development_environment_ids: body.development_environment_ids,
        settings: body.settings,
        shares: body.shares,
    };
    let pipeline = state.catalog().create_pipeline(&actor.0, draft).await?;
    Ok((StatusCode::CREATED, Json(pipeline)))
}

/// The pipelines the caller may see: all for an admin, those shared with them otherwise.
#[utoipa::path(get, path = "/pipelines", tag = "pipelines", params(PageQuery),
    responses((status = 200, body = Paged<PipelineRecord>)))]
async fn list_pipelines(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<PipelineRecord>>, ApiError> {
    let page = query.page()?;
    let store = &state.store;
    let pipelines = page_of(
        &page,
        move |p| async move { store.list_pipelines(&p).await },
        |p| p.id.clone(),
        |p| can_use_pipeline(&actor, p),
    )
    .await?;
    Ok(Json(pipelines))
}

#[utoipa::path(get, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = PipelineRecord, headers(("ETag" = String, description = "the revision, for If-Match"))),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or not shared with the caller"),
    ))]
async fn get_pipeline(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let pipeline = visible_pipeline(state.store.as_ref(), &actor, &id).await?;
    Ok((etag(pipeline.revision), Json(pipeline)))
}

#[utoipa::path(patch, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412")), request_body = PipelinePatch,
    responses(
        (status = 200, body = PipelineRecord),
        Forbidden,
        StaleRevision,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or a development environment does not exist"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "breaks a pipeline rule"),
    ))]
async fn update_pipeline(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<PipelinePatch>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("changing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    if let Some(name) = patch.name {
        if crate::pipeline::rules::is_blank(&name) {
            return Err(ApiError::invalid("the pipeline needs a name"));
        }
        pipeline.name = name;
    }
    if let Some(description) = patch.description {
        pipeline.description = description;
    }
    if let Some(ids) = patch.development_environment_ids {
        pipeline.development_environment_ids = ids;
    }
    if let Some(settings) = patch.settings {
        pipeline.settings = settings;
    }
    let detail = json!({
        "name": pipeline.name,
        "description": pipeline.description,
        "development_environment_ids": pipeline.development_environment_ids,
        "settings": pipeline.settings,
    });
    let saved = state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.update", detail)
        .await?;
    Ok(Json(saved))
}

/// Deletes a pipeline with no deployment in flight.
#[utoipa::path(delete, path = "/pipelines/{id}", tag = "pipelines",
    params(("id" = String, Path)),
    responses(
        (status = 204),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a deployment is in flight"),
    ))]
async fn delete_pipeline(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    state.catalog().delete_pipeline(&actor.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shares the pipeline with a user or group, who may then see and run it.
#[utoipa::path(post, path = "/pipelines/{id}/shares", tag = "pipelines",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412")), request_body = Share,
    responses(
        (status = 200, body = PipelineRecord),
        Forbidden,
        StaleRevision,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or the grantee does not exist"),
    ))]
async fn add_share(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<Share>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("sharing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    if pipeline.shares.contains(&body.grantee) {
        return Ok(Json(pipeline));
    }
    existing_grantees(state.store.as_ref(), std::slice::from_ref(&body.grantee)).await?;
    pipeline.shares.push(body.grantee.clone());
    pipeline.shares.sort();
    let detail = json!({ "grantee": body.grantee });
    let saved = state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.share", detail)
        .await?;
    Ok(Json(saved))
}

/// Stops sharing the pipeline with a user or group.
#[utoipa::path(delete, path = "/pipelines/{id}/shares", tag = "pipelines",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag of the pipeline as last read; a change to an older revision is refused with 412"), ShareQuery),
    responses(
        (status = 200, body = PipelineRecord),
        Forbidden,
        StaleRevision,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline, or not shared with the grantee"),
    ))]
async fn remove_share(
    State(state): State<AppState>,
    if_match: IfMatch,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Query(query): Query<ShareQuery>,
) -> Result<Json<PipelineRecord>, ApiError> {
    let actor = actor.require_admin("unsharing a pipeline")?;
    let mut pipeline = state.store.get_pipeline(&id).await?;
    if_match.check(&format!("pipeline {:?}", pipeline.name), pipeline.revision)?;
    let before = pipeline.shares.len();
    pipeline.shares.retain(|g| *g != query.grantee);
    if pipeline.shares.len() == before {
        return Err(ApiError::not_found(format!(
            "pipeline {:?} is not shared with {}; its shares are listed in GET \
             /api/v1/pipelines/{id}",
            pipeline.name, query.grantee
        )));
    }
    let detail = json!({ "grantee": query.grantee });
    let saved = state
        .catalog()
        .save_pipeline(actor, pipeline, "pipeline.unshare", detail)
        .await?;
    Ok(Json(saved))
}
