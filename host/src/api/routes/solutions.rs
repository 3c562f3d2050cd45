//! Solutions: where each version of each solution is installed, by whom and when, as the
//! succeeded deployments of the pipelines the caller can see tell it (all of them for an
//! admin). The packages themselves are under `/artifacts`.

use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::extract::{Json, Query};
use crate::api::pagination::{PageQuery, Paged};
use crate::api::{ApiError, Services};
use crate::pipeline::access::visible_pipelines;
use crate::pipeline::installations::{SolutionInstallations, solution_installations};

pub(super) fn routes() -> OpenApiRouter<Services> {
    OpenApiRouter::new().routes(routes!(list_solutions))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SolutionQuery {
    /// Only this solution (its unique name).
    pub solution: Option<String>,
    /// The `next` of the previous page: a solution name.
    pub after: Option<String>,
    /// 1 to 200; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The solutions the caller's pipelines have deployed, by name, each with where its
/// versions are installed: the newest succeeded deployment of each version to each
/// target environment, newest first, with who requested it and when it finished.
/// `current` marks what each environment has now.
#[utoipa::path(get, path = "/solutions", tag = "solutions", params(SolutionQuery),
    responses(
        (status = 200, body = Paged<SolutionInstallations>),
    ))]
async fn list_solutions(
    State(state): State<Services>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<SolutionQuery>,
) -> Result<Json<Paged<SolutionInstallations>>, ApiError> {
    let page = PageQuery {
        after: query.after.clone(),
        limit: query.limit,
    }
    .page()?;
    let store = state.store.as_ref();
    let visible = visible_pipelines(store, &actor).await?;
    let solution = query.solution.as_deref().filter(|s| !s.is_empty());
    let (items, next) = solution_installations(store, &actor, &visible, solution, &page).await?;
    Ok(Json(Paged { items, next }))
}
