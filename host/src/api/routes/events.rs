//! The lifecycle event feed, for systems that poll. Admins only: the feed spans every
//! pipeline.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::extract::{Json, Query};
use crate::api::problems::Forbidden;
use crate::api::{ApiError, AppState};
use crate::pipeline::events::LifecycleEvent;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The `next` of the previous page; omit (or 0) to start from the oldest event kept.
    #[param(pattern = "^([0-9]{1,18})?$")]
    pub after: Option<String>,
    /// Events per page, 1 to 200; 50 when omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventPage {
    pub items: Vec<LifecycleEvent>,
    /// Always set: pass it as `after` next time. When `items` is empty it is the cursor
    /// you sent, so a poller keeps asking from the same place.
    pub next: String,
}

/// Lifecycle events after a cursor, oldest first, in one total order: a poller that
/// passes each page's `next` as the next `after` sees every event once, and each
/// deployment's events in the order they happened. Events appear here a fraction of a
/// second after their change commits.
#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery),
    responses(
        (status = 200, body = EventPage),
        Forbidden,
    ))]
async fn list_events(
    State(state): State<AppState>,
    actor: CurrentUser,
    Query(query): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let feed = state
        .operations()
        .events_after(&actor.0, query.after.as_deref(), query.limit)
        .await?;
    Ok(Json(EventPage {
        items: feed.items,
        next: feed.next.to_string(),
    }))
}
