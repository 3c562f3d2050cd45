//! Artifacts: the managed and unmanaged packages of every exported solution version, the
//! host's backups. Admins see every artifact; a user sees those exported from a
//! development environment they have access to.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::extract::Json;
use crate::api::extract::{Path, Query};
use crate::api::pagination::{Paged, page_of};
use crate::api::problems::NotFound;
use crate::api::{ApiError, AppState};
use crate::pipeline::access::may_see_artifact;
use crate::pipeline::model::ArtifactRecord;
use crate::pipeline::store::Page;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_artifacts))
        .routes(routes!(download_artifact))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactQuery {
    /// Only this solution's artifacts.
    pub solution: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// 1 to 200; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Exported solution versions, newest first.
#[utoipa::path(get, path = "/artifacts", tag = "artifacts", params(ArtifactQuery),
    responses(
        (status = 200, body = Paged<ArtifactRecord>),
    ))]
async fn list_artifacts(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<ArtifactQuery>,
) -> Result<Json<Paged<ArtifactRecord>>, ApiError> {
    let page = crate::api::pagination::PageQuery {
        after: query.after.clone(),
        limit: query.limit,
    }
    .page()?;
    let store = &state.store;
    let solution = query.solution.as_deref();
    let all = page_of(
        &page,
        move |p: Page| async move { store.list_artifacts(solution, &p).await },
        |a| a.id.clone(),
        |_| true,
    )
    .await?;
    // Access depends on the source environment; check each once.
    let mut allowed: HashMap<String, bool> = HashMap::new();
    let mut items = Vec::with_capacity(all.items.len());
    for artifact in all.items {
        let key = artifact.source_environment_id.clone();
        let ok = match allowed.get(&key) {
            Some(ok) => *ok,
            None => {
                let ok = may_see_artifact(state.store.as_ref(), &actor, &artifact).await;
                allowed.insert(key, ok);
                ok
            }
        };
        if ok {
            items.push(artifact);
        }
    }
    Ok(Json(Paged {
        items,
        next: all.next,
    }))
}

/// Downloads one package of an artifact, `managed` or `unmanaged`, as a zip.
#[utoipa::path(get, path = "/artifacts/{solution}/{version}/{kind}", tag = "artifacts",
    params(("solution" = String, Path), ("version" = String, Path),
        ("kind" = String, Path, description = "managed or unmanaged")),
    responses(
        (status = 200, content_type = "application/zip", description = "the package"),
        NotFound,
    ))]
async fn download_artifact(
    State(state): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Path((solution, version, kind)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let missing =
        || ApiError::not_found(format!("no artifact {solution} {version} that you can see"));
    let artifact = state
        .store
        .get_artifact(&solution, &version)
        .await?
        .ok_or_else(missing)?;
    if !may_see_artifact(state.store.as_ref(), &actor, &artifact).await {
        return Err(missing());
    }
    let package = match kind.as_str() {
        "managed" => &artifact.managed,
        "unmanaged" => &artifact.unmanaged,
        other => {
            return Err(ApiError::bad_request(format!(
                "{other:?} is not a package kind: use managed or unmanaged"
            )));
        }
    };
    let path = state
        .engine
        .package_path(&package.sha256)
        .ok_or_else(missing)?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        ApiError::not_found(format!(
            "the {kind} package of {solution} {version} is no longer stored"
        ))
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    let filename = format!("{solution}_{version}_{kind}.zip");
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, package.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}
