//! Deployments and approvals: thin handlers over [`crate::pipeline::engine::Engine`],
//! which checks who may do what and answers 404 for deployments of pipelines the caller
//! cannot see. Secret variable values come back masked.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, present};
use crate::api::pagination::{PageQuery, Paged};
use crate::api::problems::{EnvironmentDown, Forbidden, NotFound};
use crate::api::{ApiError, AppState};
use crate::pipeline::Timestamp;
use crate::pipeline::deployment_query::{DeploymentQuery, filter};
use crate::pipeline::engine::{DeploymentRequest, DeploymentView, Preflight};
use crate::pipeline::model::{DeploymentRecord, Id, PreDeploymentStatus};

/// The header that makes `POST /deployments` safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_deployment, list_deployments))
        .routes(routes!(preflight_deployment))
        .routes(routes!(get_deployment, reschedule_deployment))
        .routes(routes!(cancel_deployment))
        .routes(routes!(vote))
        .routes(routes!(set_pre_deployment_status))
        .routes(routes!(retry_deployment))
        .routes(routes!(list_approvals))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewVote {
    pub approve: bool,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PreDeploymentStatusChange {
    /// 20 completes the pre-deployment step, 30 rejects the deployment.
    #[schema(schema_with = outcome_schema)]
    pub status: PreDeploymentStatus,
    #[serde(default)]
    pub comment: String,
}

/// The schema of an override's status: 20 or 30, never 10 (pending).
fn outcome_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some([
            u16::from(PreDeploymentStatus::Completed),
            u16::from(PreDeploymentStatus::Rejected),
        ]))
        .examples([20])
        .build()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Reschedule {
    /// Milliseconds since the epoch, or null to deploy as soon as possible.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, required = true, maximum = 253402300799999_u64)]
    pub scheduled_for: Option<Option<Timestamp>>,
}

/// Requests a deployment of a solution version to a stage. With an `Idempotency-Key`
/// header, a repeat returns the deployment the first request made, with 200.
#[utoipa::path(post, path = "/deployments", tag = "deployments",
    request_body = DeploymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]([ -~]{0,198}[!-~])?$",
        description = "makes the request safe to repeat: the same key returns the same deployment. \
            1 to 200 visible ASCII characters, such as a UUID")),
    responses(
        (status = 201, body = DeploymentRecord, description = "a new deployment"),
        (status = 200, body = DeploymentRecord, description = "the deployment this key already made"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "no access to an environment of the pipeline"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline or stage, or not shared with the caller"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a source or target environment is not validated (`urn:gatehouse:problem:environment-not-validated`), the key was used for another request, or a rule of the pipeline refuses it (such as the version order)"),
        EnvironmentDown,
    ))]
async fn request_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    headers: HeaderMap,
    Json(mut request): Json<DeploymentRequest>,
) -> Result<(StatusCode, Json<DeploymentRecord>), ApiError> {
    request.idempotency_key = idempotency_key(&headers)?;
    let (deployment, created) = state.engine.request(&actor, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deployment)))
}

/// Preflight: the checks `POST /deployments` would meet, the pipeline's validators, and
/// the target's check of the package with these settings, without starting anything.
/// Lists the environment variables and connection references still to be supplied.
#[utoipa::path(post, path = "/deployments/validate", tag = "deployments",
    request_body = DeploymentRequest,
    responses(
        (status = 200, body = Preflight, description = "the findings; `ok` is false when one is an error, such as `environment_not_validated`"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "no access to an environment of the pipeline"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such pipeline or stage, or not shared with the caller"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a rule of the pipeline refuses it, such as the version order"),
        EnvironmentDown,
    ))]
async fn preflight_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Json(request): Json<DeploymentRequest>,
) -> Result<Json<Preflight>, ApiError> {
    Ok(Json(state.engine.preflight(&actor, request).await?))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII \
             characters, such as a UUID"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// The deployments of the pipelines the caller can see, newest first.
#[utoipa::path(get, path = "/deployments", tag = "deployments", params(DeploymentQuery),
    responses(
        (status = 200, body = Paged<DeploymentRecord>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a filter cannot be read"),
    ))]
async fn list_deployments(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<DeploymentQuery>,
) -> Result<Json<Paged<DeploymentRecord>>, ApiError> {
    let mut page = PageQuery {
        after: query.after.clone(),
        limit: query.limit,
    }
    .page()?;
    let filter = filter(&query)?;
    let wanted = page.limit as usize;
    // One more than asked tells whether another page exists.
    page.limit += 1;
    let mut items = state.engine.list(&actor, &filter, &page).await?;
    let next = if items.len() > wanted {
        items.truncate(wanted);
        items.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok(Json(Paged { items, next }))
}

/// A deployment with its votes and timeline.
#[utoipa::path(get, path = "/deployments/{id}", tag = "deployments",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = DeploymentView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such deployment, or its pipeline is not shared with the caller"),
    ))]
async fn get_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(state.engine.get(&actor, &id).await?))
}

/// Moves a deployment that has not started to another time; the requester or an admin.
#[utoipa::path(patch, path = "/deployments/{id}", tag = "deployments",
    params(("id" = String, Path)), request_body = Reschedule,
    responses(
        (status = 200, body = DeploymentRecord),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the deployment has started"),
    ))]
async fn reschedule_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<Reschedule>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    let Some(scheduled_for) = body.scheduled_for else {
        return Err(ApiError::invalid(
            "send scheduled_for: a time in milliseconds since the epoch, or null to deploy as \
             soon as possible",
        ));
    };
    Ok(Json(
        state.engine.reschedule(&actor, &id, scheduled_for).await?,
    ))
}

/// Cancels a deployment before it starts deploying; the requester or an admin.
#[utoipa::path(post, path = "/deployments/{id}/cancel", tag = "deployments",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = DeploymentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "neither the requester nor an admin"),
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "already deploying or finished"),
    ))]
async fn cancel_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    Ok(Json(state.engine.cancel(&actor, &id).await?))
}

/// Votes on a deployment waiting for approval. It counts only from an approver a gate
/// named, or an admin, and never from the requester.
#[utoipa::path(post, path = "/deployments/{id}/votes", tag = "deployments",
    params(("id" = String, Path)), request_body = NewVote,
    responses(
        (status = 200, body = DeploymentRecord),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not waiting for approval"),
    ))]
async fn vote(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<NewVote>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    Ok(Json(
        state
            .engine
            .vote(&actor, &id, body.approve, body.comment)
            .await?,
    ))
}

/// Completes (20) or rejects (30) the pre-deployment step, whatever the gates say: for
/// admins and external systems. Recorded with who did it.
#[utoipa::path(put, path = "/deployments/{id}/pre-deployment-status", tag = "deployments",
    params(("id" = String, Path)), request_body = PreDeploymentStatusChange,
    responses(
        (status = 200, body = DeploymentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the step is not pending"),
    ))]
async fn set_pre_deployment_status(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<PreDeploymentStatusChange>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    Ok(Json(
        state
            .engine
            .set_pre_deployment_status(&actor, &id, body.status, body.comment)
            .await?,
    ))
}

/// Runs a failed, rejected or canceled deployment again; the requester or an admin.
#[utoipa::path(post, path = "/deployments/{id}/retry", tag = "deployments",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = DeploymentRecord),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not failed, rejected or canceled"),
    ))]
async fn retry_deployment(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    Ok(Json(state.engine.retry(&actor, &id).await?))
}

/// What the caller may vote on now.
#[utoipa::path(get, path = "/approvals", tag = "deployments",
    responses((status = 200, body = Paged<DeploymentRecord>)))]
async fn list_approvals(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Paged<DeploymentRecord>>, ApiError> {
    let items = state.engine.approvals(&actor).await?;
    Ok(Json(Paged { items, next: None }))
}
