//! The audit log: every change, who made it and when. Admins only.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Query};
use crate::api::pagination::{PageQuery, Paged};
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
    /// 30 to 36500.
    pub older_than_days: u32,
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
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "older_than_days is below 30"),
    ))]
async fn purge_audit(
    State(state): State<AppState>,
    crate::api::auth::Admin(actor): crate::api::auth::Admin,
    Json(body): Json<AuditRetention>,
) -> Result<Json<AuditPurged>, ApiError> {
    if !(30..=36_500).contains(&body.older_than_days) {
        return Err(ApiError::invalid(format!(
            "older_than_days is {}, but must be 30 to 36500: the audit log keeps at least \
             a month",
            body.older_than_days
        )));
    }
    let now = crate::api::now();
    let before = now.saturating_sub(u64::from(body.older_than_days) * 24 * 3600 * 1000);
    let line = crate::api::audit(
        &actor,
        "audit.retention",
        "audit_log",
        serde_json::json!({ "older_than_days": body.older_than_days, "before": before }),
    );
    let deleted = state.store.purge_audit(before, &line).await?;
    Ok(Json(AuditPurged { deleted, before }))
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(PageQuery),
    responses(
        (status = 200, body = Paged<AuditEntry>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "`after` is not an audit entry id"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<AuditEntry>>, ApiError> {
    actor.require_admin("reading the audit log")?;
    let page = query.page()?;
    let after = page
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "after={a:?} is not an audit entry id; pass the `next` value of the \
                     previous page"
                ))
            })
        })
        .transpose()?;
    // One more than asked tells whether another page exists.
    let mut items = state.store.list_audit(after, page.limit + 1).await?;
    let next = if items.len() > page.limit as usize {
        items.truncate(page.limit as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Json(Paged { items, next }))
}
