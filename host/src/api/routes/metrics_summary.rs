//! `GET /metrics/summary`: what the dashboard shows, for the pipelines the caller can see.
//! Deployment counts and lead times are grouped by the database; plugin figures come from
//! the plugin registry's in-process statistics.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::extract::Json;
use crate::api::{ApiError, AppState};
use crate::pipeline::access::visible_pipelines;
use crate::pipeline::reports::{MetricsSummary, summary};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics_summary))
}

/// The dashboard's figures for the pipelines the caller can see: deployments per day by
/// status, success rate and median lead time per stage over the last 14 days, pending
/// approvals, and the slowest and most failing plugins.
#[utoipa::path(get, path = "/metrics/summary", tag = "metrics",
    responses(
        (status = 200, body = MetricsSummary),
    ))]
async fn metrics_summary(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<MetricsSummary>, ApiError> {
    let pipelines = visible_pipelines(state.store.as_ref(), &actor).await?;
    let figures = summary(
        state.store.as_ref(),
        &state.engine,
        state.plugins.as_ref(),
        &actor,
        &pipelines,
    )
    .await?;
    Ok(Json(figures))
}
