//! Artifacts: the managed and unmanaged packages of every exported solution version, the
//! host's backups. Admins see every artifact; a user sees those exported from a
//! development environment they have access to.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CurrentUser;
use crate::api::extract::Json;
use crate::api::extract::{Path, Query};
use crate::api::pagination::{Paged, page_of};
use crate::api::problems::NotFound;
use crate::api::{ApiError, Services};
use crate::pipeline::access::may_see_artifact;
use crate::pipeline::audit::rfc3339;
use crate::pipeline::model::ArtifactRecord;
use crate::pipeline::store::Page;

pub(super) fn routes() -> OpenApiRouter<Services> {
    OpenApiRouter::new()
        .routes(routes!(list_artifacts))
        .routes(routes!(download_artifact))
}

/// An artifact as the API answers it: the record, and its time in RFC 3339 too.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Artifact {
    #[serde(flatten)]
    pub record: ArtifactRecord,
    /// When it was exported: `created_at` in RFC 3339, UTC, to the millisecond
    /// (`2026-11-26T10:00:00.000Z`), as the Environment API writes its times.
    #[schema(format = DateTime, example = "2026-11-26T10:00:00.000Z")]
    pub created_at_rfc3339: String,
}

impl From<ArtifactRecord> for Artifact {
    fn from(record: ArtifactRecord) -> Artifact {
        let created_at_rfc3339 = rfc3339(record.created_at);
        Artifact {
            record,
            created_at_rfc3339,
        }
    }
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
        (status = 200, body = Paged<Artifact>),
    ))]
async fn list_artifacts(
    State(state): State<Services>,
    CurrentUser(actor): CurrentUser,
    Query(query): Query<ArtifactQuery>,
) -> Result<Json<Paged<Artifact>>, ApiError> {
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
            items.push(Artifact::from(artifact));
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
    State(state): State<Services>,
    CurrentUser(actor): CurrentUser,
    Path((solution, version, kind)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let backup = state
        .backups()
        .package(&actor, &solution, &version, &kind)
        .await?;
    let file = tokio::fs::File::open(&backup.path).await.map_err(|_| {
        ApiError::not_found(format!(
            "the {kind} package of {solution} {version} is no longer stored"
        ))
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, backup.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", backup.filename),
            ),
        ],
        body,
    )
        .into_response())
}
