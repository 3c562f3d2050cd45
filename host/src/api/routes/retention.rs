//! Retention jobs: admins schedule the deletion of old finished deployments and old
//! artifacts, or a dry run that only reports what would go.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Admin;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query};
use crate::api::pagination::{PageQuery, Paged};
use crate::api::problems::{Forbidden, NotFound};
use crate::api::{ApiError, AppState};
use crate::pipeline::Timestamp;
use crate::pipeline::model::Id;
use crate::pipeline::operations::RetentionJobDraft;
use crate::pipeline::retention::{ArtifactRule, DeploymentRule, RetentionJob};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job, list_jobs))
        .routes(routes!(get_job, delete_job))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRetentionJob {
    /// 1 to 200 characters, not all blank.
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]", max_length = 200)]
    pub name: String,
    /// Delete finished deployments older than this, with these final statuses.
    #[serde(default)]
    pub deployments: Option<DeploymentRule>,
    /// Delete artifacts beyond the newest N versions of each solution.
    #[serde(default)]
    pub artifacts: Option<ArtifactRule>,
    /// Run again every this many hours (1 to 8760); once when omitted.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 8760)]
    pub every_hours: Option<u32>,
    /// Report what would go and delete nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// First run at this time (ms since the epoch); now when omitted.
    #[serde(default)]
    #[schema(value_type = Option<u64>, maximum = 253402300799999_u64)]
    pub start_at: Option<Timestamp>,
}

impl From<NewRetentionJob> for RetentionJobDraft {
    fn from(body: NewRetentionJob) -> RetentionJobDraft {
        RetentionJobDraft {
            name: body.name,
            deployments: body.deployments,
            artifacts: body.artifacts,
            every_hours: body.every_hours,
            dry_run: body.dry_run,
            start_at: body.start_at,
        }
    }
}

/// Schedules a retention job; it first runs at `start_at`, or within a second.
#[utoipa::path(post, path = "/retention/jobs", tag = "retention", request_body = NewRetentionJob,
    responses(
        (status = 201, body = RetentionJob),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
    ))]
async fn create_job(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<NewRetentionJob>,
) -> Result<(StatusCode, Json<RetentionJob>), ApiError> {
    let job = state
        .operations()
        .create_retention_job(&actor, body.into())
        .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Retention jobs, newest first, each with its last run.
#[utoipa::path(get, path = "/retention/jobs", tag = "retention", params(PageQuery),
    responses(
        (status = 200, body = Paged<RetentionJob>),
        Forbidden,
    ))]
async fn list_jobs(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<RetentionJob>>, ApiError> {
    let page = query.page()?;
    let listing = state.operations().retention_jobs(&actor, &page).await?;
    Ok(Json(listing.into()))
}

/// A retention job with what its last run deleted (or would delete).
#[utoipa::path(get, path = "/retention/jobs/{id}", tag = "retention", params(("id" = String, Path)),
    responses(
        (status = 200, body = RetentionJob),
        Forbidden,
        NotFound,
    ))]
async fn get_job(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
) -> Result<Json<RetentionJob>, ApiError> {
    Ok(Json(state.operations().retention_job(&actor, &id).await?))
}

/// Unschedules a retention job. What it deleted stays deleted.
#[utoipa::path(delete, path = "/retention/jobs/{id}", tag = "retention", params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        Forbidden,
        NotFound,
    ))]
async fn delete_job(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    state.operations().delete_retention_job(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// States in the schema what `RetentionJob::validate` refuses: a job must name
/// `deployments`, `artifacts` or both, or it would delete nothing.
pub(super) struct RetentionNeedsARule;

impl utoipa::Modify for RetentionNeedsARule {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, Type};

        let Some(schemas) = openapi.components.as_mut().map(|c| &mut c.schemas) else {
            return;
        };
        let Some(schema) = schemas.get_mut("NewRetentionJob") else {
            return;
        };
        let RefOr::T(Schema::Object(job)) = schema else {
            return;
        };
        let names = |field: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .required(field)
                .property(field, ObjectBuilder::new().schema_type(Type::Object))
        };
        let rule = AnyOfBuilder::new()
            .item(names("deployments"))
            .item(names("artifacts"))
            .description(Some("a job deletes deployments, artifacts, or both"));
        *schema = RefOr::T(Schema::AllOf(
            AllOfBuilder::new().item(job.clone()).item(rule).build(),
        ));
    }
}
