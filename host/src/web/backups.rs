//! `GET /ui/artifacts/{solution}/{version}/{kind}`: a backup package, downloaded with the
//! console's session. The API's download takes only a bearer token, so the console
//! streams the file itself, from the same domain service and to the same people
//! ([`crate::pipeline::backups`]), and the Solutions page links here.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::error::PageError;
use super::layout::{bytes, path_segment};
use super::session::Viewer;
use crate::pipeline::backups::PackageKind;
use crate::pipeline::model::ArtifactRecord;
use crate::pipeline::services::Services;

/// Bytes read from the file at a time.
const CHUNK: usize = 256 * 1024;

pub async fn download(
    State(state): State<Services>,
    viewer: Viewer,
    Path((solution, version, kind)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let backup = state
        .backups()
        .package(&viewer.user, &solution, &version, &kind)
        .await?;
    let file = tokio::fs::File::open(&backup.path).await.map_err(|_| {
        PageError::not_found(format!(
            "the {kind} package of {solution} {version} is no longer stored"
        ))
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, CHUNK));
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

/// Where the console downloads one package of an artifact.
pub fn href(artifact: &ArtifactRecord, kind: PackageKind) -> String {
    format!(
        "/ui/artifacts/{}/{}/{}",
        path_segment(&artifact.solution_name),
        path_segment(&artifact.version),
        kind.as_str()
    )
}

/// A download link for each package of the artifact, with its size.
pub fn links(artifact: &ArtifactRecord) -> Markup {
    html! {
        ul class="backups" {
            @for kind in PackageKind::ALL {
                @let package = match kind {
                    PackageKind::Managed => &artifact.managed,
                    PackageKind::Unmanaged => &artifact.unmanaged,
                };
                li {
                    a class="download" href=(href(artifact, kind)) download
                        data-kind=(kind.as_str()) {
                        (kind.as_str()) " package"
                        span class="visually-hidden" {
                            " of " (artifact.solution_name) " " (artifact.version)
                        }
                    }
                    " " span class="muted" { "(zip, " (bytes(package.size)) ")" }
                }
            }
        }
    }
}
