//! Solutions: what the environment holds, pushes into development environments, and
//! exports.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as With};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::blobs;
use super::errors::{self, EnvServerError, OrInternal, Result, bad_package, refused, wrong_kind};
use super::handlers::{Base, parse_json, read_package};
use super::store::{self, ExportRow, SolutionRow, now};
use super::{Kind, State};
use crate::environment::wire::{
    ComponentDoc, ExportDoc, ExportRequest, Items, PackageDoc, SolutionDoc,
};
use crate::solution::{Manifest, PackageError, Version};

type Shared = Arc<State>;

/// A held solution as the API shows it.
fn solution_doc(row: SolutionRow) -> Result<SolutionDoc> {
    let manifest = serde_json::from_str::<serde_json::Value>(&row.manifest).ok();
    let components = serde_json::from_str::<Manifest>(&row.manifest)
        .map(|m| m.components)
        .unwrap_or_default()
        .into_iter()
        .map(|c| ComponentDoc {
            kind: c.kind,
            name: c.name,
            path: c.path,
        })
        .collect();
    Ok(SolutionDoc {
        unique_name: row.unique_name,
        display_name: row.display_name,
        version: row.version,
        managed: row.managed,
        publisher_prefix: row.publisher_prefix,
        manifest,
        installed_at: row.installed_at,
        operation_id: row.operation_id,
        package_sha256: row.package_sha256,
        package_size: u64::try_from(row.package_size).or_500()?,
        components,
    })
}

pub(super) async fn list(With(state): With<Shared>) -> Result<Json<Items<SolutionDoc>>> {
    let rows = state.store.solutions().await.or_500()?;
    Ok(Json(Items {
        items: rows.into_iter().map(solution_doc).collect::<Result<_>>()?,
    }))
}

pub(super) async fn get(
    With(state): With<Shared>,
    Path(name): Path<String>,
) -> Result<Json<SolutionDoc>> {
    match state.store.solution(&name).await.or_500()? {
        Some(row) => Ok(Json(solution_doc(row)?)),
        None => Err(EnvServerError::not_found(format!(
            "this environment holds no solution {name}; GET /env/v1/solutions lists what it holds"
        ))),
    }
}

/// A maker pushes an unmanaged solution into a development environment.
pub(super) async fn push(
    With(state): With<Shared>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    if state.kind != Kind::Development {
        return Err(wrong_kind(
            "this is a target environment: it takes imports (POST /env/v1/imports), not pushes",
        ));
    }
    let written = state
        .blobs
        .write_body(body, state.limits.max_package_bytes)
        .await
        .map_err(errors::write_error)?;
    let info = read_package(&state, written.temp.path().to_owned())
        .await?
        .map_err(|e| bad_package(&e))?;
    let manifest = info.manifest;
    if manifest.unique_name != name {
        return Err(refused(
            "name_mismatch",
            format!(
                "the package holds {}, not {name}; push it to /env/v1/solutions/{}",
                manifest.unique_name, manifest.unique_name
            ),
        ));
    }
    if manifest.managed {
        return Err(refused(
            "managed_package",
            "a development environment holds unmanaged solutions; push the unmanaged package \
             (\"managed\": false)",
        ));
    }
    let sha256 = written.sha256.clone();
    written.temp.persist(&state.blobs, &sha256).await.or_500()?;
    let row = SolutionRow {
        unique_name: manifest.unique_name.clone(),
        display_name: manifest.display_name.clone(),
        version: manifest.version.to_string(),
        managed: false,
        publisher_prefix: manifest.publisher.prefix.clone(),
        manifest: serde_json::to_string(&manifest).or_500()?,
        package_sha256: sha256,
        package_size: i64::try_from(written.size).or_500()?,
        installed_at: now(),
        operation_id: None,
    };
    let mut tx = state.store.begin().await.or_500()?;
    let existed = store::solution_in(&mut *tx, &name)
        .await
        .or_500()?
        .is_some();
    store::put_solution(&mut tx, &row).await.or_500()?;
    tx.commit().await.or_500()?;
    tracing::info!(solution = %name, version = %row.version, "solution pushed");
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(solution_doc(row)?)).into_response())
}

/// An export as the API shows it, with links under `base`.
fn export_doc(row: ExportRow, base: &Base) -> Result<ExportDoc> {
    Ok(ExportDoc {
        manifest: serde_json::from_str(&row.manifest).unwrap_or(serde_json::Value::Null),
        managed: PackageDoc {
            href: base.package(&row.managed_sha256),
            sha256: row.managed_sha256,
            size: u64::try_from(row.managed_size).or_500()?,
        },
        unmanaged: PackageDoc {
            href: base.package(&row.unmanaged_sha256),
            sha256: row.unmanaged_sha256,
            size: u64::try_from(row.unmanaged_size).or_500()?,
        },
        unique_name: row.unique_name,
        version: row.version,
    })
}

/// Stamps a version into the pushed solution and stores its managed and unmanaged packages.
pub(super) async fn export(
    With(state): With<Shared>,
    Path(name): Path<String>,
    base: Base,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    if state.kind != Kind::Development {
        return Err(wrong_kind(
            "this is a target environment: solutions are exported from development environments",
        ));
    }
    let body: ExportRequest = parse_json(body)?.unwrap_or_default();
    let Some(pushed) = state.store.solution(&name).await.or_500()? else {
        return Err(EnvServerError::not_found(format!(
            "no solution {name} was pushed here; push it with PUT /env/v1/solutions/{name}"
        )));
    };
    let version: Version = match &body.version {
        Some(v) => v
            .parse()
            .map_err(|e| EnvServerError::bad_request(format!("{e}")))?,
        None => pushed.version.parse().or_500()?,
    };
    let text = version.to_string();
    if let Some(done) = state.store.export(&name, &text).await.or_500()? {
        return Ok((StatusCode::OK, Json(export_doc(done, &base)?)).into_response());
    }

    let restamped = {
        let state = state.clone();
        let source = state.blobs.path(&pushed.package_sha256);
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let managed = restamp_into_blob(&state, &source, &version, true)?;
            let unmanaged = restamp_into_blob(&state, &source, &version, false)?;
            Ok((managed, unmanaged))
        })
        .await
        .or_500()?
    };
    let ((managed_sha, managed_size, manifest), (unmanaged_sha, unmanaged_size, _)) = restamped
        .map_err(|e| match e.downcast::<PackageError>() {
            Ok(e) => bad_package(&e),
            Err(e) => errors::internal(format!("exporting {name}: {e:#}")),
        })?;
    let row = ExportRow {
        unique_name: name.clone(),
        version: text.clone(),
        manifest: serde_json::to_string(&manifest).or_500()?,
        managed_sha256: managed_sha,
        managed_size: i64::try_from(managed_size).or_500()?,
        unmanaged_sha256: unmanaged_sha,
        unmanaged_size: i64::try_from(unmanaged_size).or_500()?,
    };

    let mut tx = state.store.begin().await.or_500()?;
    if let Some(done) = store::export_in(&mut *tx, &name, &text).await.or_500()? {
        return Ok((StatusCode::OK, Json(export_doc(done, &base)?)).into_response());
    }
    let highest = store::export_versions_in(&mut tx, &name)
        .await
        .or_500()?
        .iter()
        .filter_map(|v| v.parse::<Version>().ok())
        .max();
    if let Some(highest) = highest
        && version < highest
    {
        return Err(refused(
            "version_downgrade",
            format!(
                "{name} {highest} was already exported; export {highest} again, or a later version"
            ),
        )
        .with("highest_exported", highest.to_string()));
    }
    store::insert_export(&mut tx, &row, &pushed.package_sha256)
        .await
        .or_500()?;
    tx.commit().await.or_500()?;
    tracing::info!(solution = %name, version = %text, "solution exported");
    Ok((StatusCode::CREATED, Json(export_doc(row, &base)?)).into_response())
}

/// Writes a restamped copy of `source` into a blob: its sha256, size and manifest.
fn restamp_into_blob(
    state: &State,
    source: &std::path::Path,
    version: &Version,
    managed: bool,
) -> anyhow::Result<(String, u64, Manifest)> {
    let input = std::io::BufReader::new(std::fs::File::open(source)?);
    let temp = state.blobs.temp()?;
    let out = std::fs::OpenOptions::new().write(true).open(temp.path())?;
    let info = crate::solution::restamp(input, out, version, managed, &state.limits)?;
    let (sha256, size) = blobs::hash_file(temp.path())?;
    temp.persist_blocking(state.blobs.dir(), &sha256)?;
    Ok((sha256, size, info.manifest))
}
