//! The audit log: every change, who made it and when. Admins only.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{Admin, CurrentUser};
use crate::api::extract::{Json, Query};
use crate::api::pagination::Paged;
use crate::api::problems::Forbidden;
use crate::api::{ApiError, AppState};
use crate::pipeline::model::AuditEntry;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(purge_audit))
}

/// The audit log's own retention: lines older than this many days go.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRetention {
    /// 30 to 36500: the audit log keeps at least a month.
    #[schema(minimum = 30, maximum = 36500)]
    pub older_than_days: u32,
}

/// A page of the audit log.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The `next` of the previous page (an audit entry's number); omit for the newest.
    #[param(pattern = "^([0-9]{1,18})?$")]
    pub after: Option<String>,
    /// Entries per page, 1 to 200; 50 when omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// What an audit retention call deleted.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPurged {
    pub deleted: u64,
    /// Lines written before this time (ms since the epoch) were deleted.
    pub before: u64,
}

/// Deletes audit lines older than `older_than_days`, and records that it did, as the
/// newest line. Retention jobs never touch the audit log; only this call does.
#[utoipa::path(post, path = "/audit/retention", tag = "audit", request_body = AuditRetention,
    responses(
        (status = 200, body = AuditPurged),
        Forbidden,
    ))]
async fn purge_audit(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<AuditRetention>,
) -> Result<Json<AuditPurged>, ApiError> {
    let purged = state
        .operations()
        .purge_audit(&actor, body.older_than_days)
        .await?;
    Ok(Json(AuditPurged {
        deleted: purged.deleted,
        before: purged.before,
    }))
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, body = Paged<AuditEntry>),
        Forbidden,
    ))]
async fn list_audit(
    State(state): State<AppState>,
    actor: CurrentUser,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Paged<AuditEntry>>, ApiError> {
    let listing = state
        .operations()
        .audit_log(&actor.0, query.after, query.limit)
        .await?;
    Ok(Json(listing.into()))
}
