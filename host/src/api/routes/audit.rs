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
    OpenApiRouter::new().routes(routes!(list_audit))
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
