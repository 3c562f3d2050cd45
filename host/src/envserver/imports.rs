//! Imports: `POST /env/v1/imports`, `GET /env/v1/imports/{operation_id}`, and the worker
//! that performs them.
//!
//! Posting stores the operation as `running` and answers 202; the worker then reads the
//! package, runs the checks and, in one transaction, installs the solution and marks the
//! operation `succeeded` (or marks it `failed`). The transaction updates the operation
//! only while it is still `running`, so an operation installs at most once, even when two
//! workers (an old process and a new one) reach it. Operations still `running` at open
//! are resumed. The worker runs one import at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State as With};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, watch};

use super::State;
use super::errors::{EnvServerError, OrInternal, Result, bad_package, internal, link_refused};
use super::handlers::{check_sha, parse_json, read_package, required};
use super::store::{self, ImportRow, SolutionRow, now};
use crate::environment::import_rules::{self, Target};
use crate::environment::link::{LINK_SECRET_HEADER, check_link_secret};
use crate::environment::wire::{
    ImportSettings, OperationDoc, OperationStatus, Report, StartImportRequest,
};
use crate::solution::{Manifest, PackageInfo, VariableType, Version};

/// What replaces a secret's value in a finished operation's stored settings.
const REDACTED: &str = "<redacted>";

/// Longest operation id.
const MAX_OPERATION_ID: usize = 200;

/// An import operation as the API shows it; never with its settings.
fn operation_doc(row: ImportRow) -> Result<OperationDoc> {
    let status = OperationStatus::parse(&row.status).ok_or_else(|| {
        internal(format!(
            "operation {} has the unknown status {:?}",
            row.operation_id, row.status
        ))
    })?;
    let findings = row
        .findings
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    Ok(OperationDoc {
        operation_id: row.operation_id,
        status,
        error: row.error,
        findings,
        unique_name: row.unique_name,
        version: row.version,
        started_at: row.started_at,
        finished_at: row.finished_at,
    })
}

/// `POST /env/v1/imports`.
pub(super) async fn start(
    With(state): With<Arc<State>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    if state.is_stopping() {
        return Err(EnvServerError::unavailable(
            "this environment is shutting down; post the same operation_id again once it is back",
        ));
    }
    let presented = headers
        .get(LINK_SECRET_HEADER)
        .and_then(|v| v.to_str().ok());
    check_link_secret(state.link_secret_sha256().as_deref(), presented)
        .map_err(|refusal| link_refused(&refusal))?;
    let body: StartImportRequest = required(parse_json(body)?)?;
    let id = body.operation_id.as_str();
    if id.is_empty() || id.len() > MAX_OPERATION_ID || id.chars().any(char::is_control) {
        return Err(EnvServerError::bad_request(format!(
            "operation_id must be 1 to {MAX_OPERATION_ID} bytes without control characters"
        )));
    }
    check_sha(&body.package_sha256)?;
    if let Some(op) = state.store.import(id).await.or_500()? {
        return existing(op, &body.package_sha256);
    }
    if !state.blobs.exists(&body.package_sha256).await {
        return Err(EnvServerError::not_found(format!(
            "this environment has no package {0}; upload it first with PUT \
             /env/v1/packages/{0}",
            body.package_sha256
        )));
    }
    let info = read_package(&state, state.blobs.path(&body.package_sha256))
        .await?
        .map_err(|e| bad_package(&e))?;
    let row = ImportRow {
        operation_id: id.to_owned(),
        package_sha256: body.package_sha256.clone(),
        settings: serde_json::to_string(&body.settings).or_500()?,
        allow_downgrade: body.allow_downgrade,
        status: OperationStatus::Running.as_str().into(),
        error: None,
        findings: None,
        unique_name: info.manifest.unique_name,
        version: info.manifest.version.to_string(),
        started_at: now(),
        finished_at: None,
    };
    let mut tx = state.store.begin().await.or_500()?;
    if let Some(op) = store::import_in(&mut tx, id).await.or_500()? {
        return existing(op, &body.package_sha256);
    }
    store::insert_import(&mut tx, &row).await.or_500()?;
    tx.commit().await.or_500()?;
    tracing::info!(operation_id = id, solution = %row.unique_name, version = %row.version, "import started");
    // Without a worker (shutting down), the next open resumes it.
    let _ = state.queue.send(row.operation_id.clone());
    Ok((StatusCode::ACCEPTED, Json(operation_doc(row)?)).into_response())
}

/// The same operation posted again: its current state, or 409 for another package.
fn existing(op: ImportRow, package_sha256: &str) -> Result<Response> {
    if op.package_sha256 != package_sha256 {
        return Err(EnvServerError::conflict(format!(
            "operation {} imports package {}, not {package_sha256}; a new import needs a new \
             operation_id",
            op.operation_id, op.package_sha256
        ))
        .with("code", "operation_conflict"));
    }
    Ok((StatusCode::OK, Json(operation_doc(op)?)).into_response())
}

/// `GET /env/v1/imports/{operation_id}`.
pub(super) async fn get(
    With(state): With<Arc<State>>,
    Path(id): Path<String>,
) -> Result<Json<OperationDoc>> {
    match state.store.import(&id).await.or_500()? {
        Some(op) => Ok(Json(operation_doc(op)?)),
        None => Err(EnvServerError::not_found(format!(
            "this environment has no import operation {id}"
        ))),
    }
}

/// Runs the checks against what the environment holds now, read through `conn` (inside
/// the install transaction, for an import).
pub(super) async fn check_in(
    state: &State,
    conn: &mut SqliteConnection,
    manifest: &Manifest,
    settings: &ImportSettings,
    allow_downgrade: bool,
) -> sqlx::Result<Report> {
    let installed: BTreeMap<String, Version> = store::installed_in(conn)
        .await?
        .into_iter()
        .filter_map(|(name, version)| Some((name, version.parse().ok()?)))
        .collect();
    let connections: BTreeMap<String, String> =
        store::connections_in(conn).await?.into_iter().collect();
    let target = Target {
        kind: state.kind,
        managed: state.managed(),
        installed: &installed,
        connections: &connections,
    };
    Ok(import_rules::check(
        manifest,
        settings,
        allow_downgrade,
        &target,
    ))
}

/// The settings as a finished operation keeps them: secret values replaced, and every
/// value when the manifest is unknown.
fn redact(settings: &ImportSettings, manifest: Option<&Manifest>) -> ImportSettings {
    let mut out = settings.clone();
    for (name, value) in out.environment_variables.iter_mut() {
        let secret = manifest.is_none_or(|m| {
            m.environment_variables
                .iter()
                .any(|v| v.schema_name == *name && v.kind == VariableType::Secret)
        });
        if secret {
            REDACTED.clone_into(value);
        }
    }
    out
}

/// The worker: resumes what a stop interrupted, then imports what is posted, one at a
/// time, until `stop` turns true or its sender is dropped.
pub(super) async fn run(
    state: Arc<State>,
    mut queue: mpsc::UnboundedReceiver<String>,
    mut stop: watch::Receiver<bool>,
) {
    match state.store.running_imports().await {
        Ok(ids) => {
            if !ids.is_empty() {
                tracing::info!(count = ids.len(), "resuming interrupted imports");
            }
            for id in ids {
                if !process(&state, &id, &mut stop).await {
                    return;
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not list interrupted imports; they resume at the next start")
        }
    }
    loop {
        let id = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            id = queue.recv() => match id {
                Some(id) => id,
                None => return,
            },
        };
        if !process(&state, &id, &mut stop).await {
            return;
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Performs one operation, retrying storage failures; `false` when stopped first.
async fn process(state: &State, id: &str, stop: &mut watch::Receiver<bool>) -> bool {
    let mut backoff = Duration::from_millis(200);
    loop {
        match attempt(state, id, stop).await {
            Ok(finished) => return finished,
            Err(e) => {
                tracing::error!(operation_id = id, error = %format!("{e:#}"), "import could not run; retrying");
                tokio::select! {
                    biased;
                    _ = stopped(stop) => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// One try at an operation: `Ok(false)` when stopped before installing; an error for a
/// failure worth retrying (the database, the disk).
async fn attempt(
    state: &State,
    id: &str,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let Some(op) = state.store.import(id).await? else {
        return Ok(true);
    };
    if op.status != "running" {
        return Ok(true);
    }
    if !state.import_delay.is_zero() {
        tokio::select! {
            biased;
            _ = stopped(stop) => return Ok(false),
            _ = tokio::time::sleep(state.import_delay) => {}
        }
    }
    let path = state.blobs.path(&op.package_sha256);
    let package: std::result::Result<(PackageInfo, u64), String> =
        match state.blobs.open_blob(&op.package_sha256).await? {
            None => Err(format!(
                "package {} is no longer in this environment; upload it again and import it \
                 with a new operation_id",
                op.package_sha256
            )),
            Some((_, size)) => {
                let limits = state.limits;
                tokio::task::spawn_blocking(move || {
                    crate::solution::read_package_file(&path, &limits)
                })
                .await?
                .map(|info| (info, size))
                .map_err(|e| format!("the package is refused: {e}"))
            }
        };
    let settings: std::result::Result<ImportSettings, String> = serde_json::from_str(&op.settings)
        .map_err(|e| format!("the operation's stored settings are unreadable: {e}"));

    let mut tx = state.store.begin().await?;
    let (status, error, findings, kept_settings) = match (package, settings) {
        (Ok((info, size)), Ok(settings)) => {
            let report = check_in(
                state,
                &mut tx,
                &info.manifest,
                &settings,
                op.allow_downgrade,
            )
            .await?;
            let kept = redact(&settings, Some(&info.manifest));
            if report.ok {
                let manifest = &info.manifest;
                let row = SolutionRow {
                    unique_name: manifest.unique_name.clone(),
                    display_name: manifest.display_name.clone(),
                    version: manifest.version.to_string(),
                    managed: manifest.managed,
                    publisher_prefix: manifest.publisher.prefix.clone(),
                    manifest: serde_json::to_string(manifest)?,
                    package_sha256: op.package_sha256.clone(),
                    package_size: i64::try_from(size)?,
                    installed_at: now(),
                    operation_id: Some(op.operation_id.clone()),
                };
                store::put_solution(&mut tx, &row).await?;
                ("succeeded", None, report.findings, kept)
            } else {
                let error = report.error_summary();
                ("failed", Some(error), report.findings, kept)
            }
        }
        (Err(error), settings) => {
            let kept = settings.map(|s| redact(&s, None)).unwrap_or_default();
            ("failed", Some(error), Vec::new(), kept)
        }
        (Ok(_), Err(error)) => ("failed", Some(error), Vec::new(), ImportSettings::default()),
    };
    let findings = serde_json::to_string(&findings)?;
    let kept_settings = serde_json::to_string(&kept_settings)?;
    let finished = store::finish_import(
        &mut tx,
        id,
        status,
        error.as_deref(),
        Some(&findings),
        &kept_settings,
    )
    .await?;
    if !finished {
        // Another worker finished it first; install nothing.
        tx.rollback().await?;
        return Ok(true);
    }
    tx.commit().await?;
    match &error {
        None => {
            tracing::info!(operation_id = id, solution = %op.unique_name, version = %op.version, "import succeeded")
        }
        Some(error) => {
            tracing::warn!(operation_id = id, solution = %op.unique_name, %error, "import failed")
        }
    }
    Ok(true)
}
