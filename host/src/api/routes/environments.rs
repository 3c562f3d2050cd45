//! Environments: where solutions come from and go to.
//!
//! Every signed-in user may read environments (the credential is never shown); only
//! admins change them.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pipelines::pipelines_using_environment;
use super::users::existing_grantees;
use crate::api::auth::{CurrentUser, require_admin};
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, present};
use crate::api::pagination::{PageQuery, Paged, collect_all, page_of};
use crate::api::{ApiError, AppState, audit, now};
use crate::pipeline::EnvironmentKind;
use crate::pipeline::model::{EnvironmentRecord, Grantee, Id, User, ValidationStatus, new_id};
use crate::pipeline::ports::EnvironmentError;
use crate::pipeline::rules::check_pipeline;
use crate::pipeline::store::CredentialChange;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_environment, list_environments))
        .routes(routes!(
            get_environment,
            update_environment,
            delete_environment
        ))
        .routes(routes!(validate_environment))
        .routes(routes!(set_environment_access))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewEnvironment {
    pub name: String,
    /// `development` or `target`.
    #[schema(value_type = String, example = "target")]
    pub kind: EnvironmentKind,
    /// The id the environment reports for itself in `GET /env/v1/info`.
    pub environment_id: String,
    /// `http(s)://…` or `memory://<name>`.
    pub url: String,
    /// A token for the environment's API; stored, never shown again.
    #[serde(default)]
    pub credential: Option<String>,
    /// Who may deploy to or from it, as `user:<id>` or `group:<name>`.
    #[serde(default)]
    pub access: Vec<Grantee>,
}

/// Changes to an environment; fields left out stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentPatch {
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub kind: Option<EnvironmentKind>,
    pub environment_id: Option<String>,
    pub url: Option<String>,
    /// A new credential; `null` removes the stored one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub credential: Option<Option<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentAccess {
    /// Replaces who may use the environment: `user:<id>` or `group:<name>`. Admins need
    /// an entry too.
    pub access: Vec<Grantee>,
}

fn check_fields(name: &str, environment_id: &str, url: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("the environment needs a name"));
    }
    if environment_id.trim().is_empty() {
        return Err(ApiError::invalid(
            "the environment needs the environment_id it reports in GET /env/v1/info",
        ));
    }
    let scheme_ok = ["http://", "https://", "memory://"]
        .iter()
        .any(|s| url.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if !scheme_ok {
        return Err(ApiError::invalid(format!(
            "url {url:?} must start with http://, https:// or memory:// and name a host"
        )));
    }
    Ok(())
}

/// Registers an environment. It starts `pending` until validated.
#[utoipa::path(post, path = "/environments", tag = "environments", request_body = NewEnvironment,
    responses(
        (status = 201, body = EnvironmentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Json(body): Json<NewEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentRecord>), ApiError> {
    let actor = actor.require_admin("registering an environment")?;
    check_fields(&body.name, &body.environment_id, &body.url)?;
    existing_grantees(&state, &body.access).await?;
    let credential = body.credential.filter(|c| !c.is_empty());
    let at = now();
    let env = EnvironmentRecord {
        id: new_id(),
        name: body.name,
        kind: body.kind,
        environment_id: body.environment_id,
        url: body.url,
        has_credential: credential.is_some(),
        validation_status: ValidationStatus::Pending,
        validation_message: "not validated yet: POST /api/v1/environments/{id}/validate".into(),
        access: body.access,
        created_at: at,
        updated_at: at,
    };
    let detail = json!({
        "name": env.name, "kind": env.kind, "environment_id": env.environment_id,
        "url": env.url, "has_credential": env.has_credential, "access": env.access,
    });
    state
        .store
        .insert_environment(
            &env,
            credential.as_deref(),
            &audit(actor, "environment.create", &env.id, detail),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(env)))
}

#[utoipa::path(get, path = "/environments", tag = "environments", params(PageQuery),
    responses((status = 200, body = Paged<EnvironmentRecord>)))]
async fn list_environments(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<EnvironmentRecord>>, ApiError> {
    let page = query.page()?;
    let store = &state.store;
    let envs = page_of(
        &page,
        move |p| async move { store.list_environments(&p).await },
        |e| e.id.clone(),
        |_| true,
    )
    .await?;
    Ok(Json(envs))
}

#[utoipa::path(get, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentRecord), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_environment(
    State(state): State<AppState>,
    _actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    Ok(Json(state.store.get_environment(&id).await?))
}

/// Changes an environment. A new url, environment_id, kind or credential sets it back to
/// `pending` until validated again.
#[utoipa::path(patch, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)), request_body = EnvironmentPatch,
    responses(
        (status = 200, body = EnvironmentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a pipeline using it would break a rule"),
    ))]
async fn update_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(patch): Json<EnvironmentPatch>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    let actor = actor.require_admin("changing an environment")?;
    let mut env = state.store.get_environment(&id).await?;
    let before = env.clone();
    if let Some(name) = patch.name {
        env.name = name;
    }
    if let Some(kind) = patch.kind {
        env.kind = kind;
    }
    if let Some(environment_id) = patch.environment_id {
        env.environment_id = environment_id;
    }
    if let Some(url) = patch.url {
        env.url = url;
    }
    check_fields(&env.name, &env.environment_id, &env.url)?;
    let credential = match patch.credential {
        None => CredentialChange::Keep,
        Some(None) => CredentialChange::Clear,
        Some(Some(c)) if c.is_empty() => CredentialChange::Clear,
        Some(Some(c)) => CredentialChange::Set(c),
    };
    let credential_changed = credential != CredentialChange::Keep;
    match &credential {
        CredentialChange::Keep => {}
        CredentialChange::Set(_) => env.has_credential = true,
        CredentialChange::Clear => env.has_credential = false,
    }
    let reaches_elsewhere = env.url != before.url
        || env.environment_id != before.environment_id
        || env.kind != before.kind
        || credential_changed;
    if reaches_elsewhere {
        env.validation_status = ValidationStatus::Pending;
        env.validation_message = "changed since the last validation; validate it again".into();
    }
    if env.kind != before.kind {
        // A pipeline may use it as the kind it was; check each with the new kind.
        let mut envs = environment_map(&state).await?;
        envs.insert(env.id.clone(), env.clone());
        for pipeline in pipelines_using_environment(&state, &env.id).await? {
            check_pipeline(&pipeline, &envs)
                .map_err(|e| ApiError::from(e).with("pipeline_id", pipeline.id.clone()))?;
        }
    }
    env.updated_at = now();
    let detail = json!({
        "name": env.name, "kind": env.kind, "environment_id": env.environment_id,
        "url": env.url, "credential_changed": credential_changed,
    });
    state
        .store
        .update_environment(
            &env,
            credential,
            &audit(actor, "environment.update", &env.id, detail),
        )
        .await?;
    Ok(Json(env))
}

/// Removes an environment that no pipeline uses.
#[utoipa::path(delete, path = "/environments/{id}", tag = "environments",
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "a pipeline uses it"),
    ))]
async fn delete_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    let actor = actor.require_admin("deleting an environment")?;
    let env = state.store.get_environment(&id).await?;
    let users = pipelines_using_environment(&state, &id).await?;
    if !users.is_empty() {
        let names: Vec<&str> = users.iter().map(|p| p.name.as_str()).collect();
        return Err(ApiError::conflict(format!(
            "environment {:?} is used by the pipeline(s) {}; remove it from them first",
            env.name,
            names.join(", ")
        ))
        .with(
            "pipelines",
            users.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        ));
    }
    let detail = json!({ "name": env.name });
    state
        .store
        .delete_environment(&id, &audit(actor, "environment.delete", &id, detail))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the environment about itself and records whether it is the one registered: the
/// same environment_id, the same kind, and, for a target, managed. A failed validation is
/// still a 200: the answer is in `validation_status` and `validation_message`.
#[utoipa::path(post, path = "/environments/{id}/validate", tag = "environments",
    params(("id" = String, Path), LinkQuery),
    responses(
        (status = 200, body = EnvironmentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn validate_environment(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Query(link): Query<LinkQuery>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    validate(&state, &actor.0, &id, link.force).await.map(Json)
}

/// Asks the environment about itself, links it to this host and records the verdict, as
/// `POST /environments/{id}/validate` and the web console's re-validate both do.
pub(crate) async fn validate(
    state: &AppState,
    actor: &User,
    id: &str,
    force: bool,
) -> Result<EnvironmentRecord, ApiError> {
    let actor = require_admin(actor, "validating an environment")?;
    let mut env = state.store.get_environment(id).await?;
    let credential = state.store.environment_credential(id).await?;
    let verdict = match state.environments.info(&env, credential.as_deref()).await {
        Err(EnvironmentError::Unreachable(cause)) => Err(format!(
            "the environment could not be reached at {}: {cause}; check the url and that its \
             Environment API is running",
            env.url
        )),
        Err(EnvironmentError::Refused(cause)) => Err(format!(
            "the environment at {} refused the request: {cause}; check the credential",
            env.url
        )),
        Ok(info) if info.environment_id != env.environment_id => Err(format!(
            "the environment at {} reports environment_id {:?}, not {:?}; fix the url or the \
             environment_id",
            env.url, info.environment_id, env.environment_id
        )),
        Ok(info) if info.kind != env.kind => Err(format!(
            "the environment reports itself as a {} environment, but is registered as a {} \
             environment; fix the kind",
            kind_name(info.kind),
            kind_name(env.kind)
        )),
        Ok(info) if env.kind == EnvironmentKind::Target && !info.managed => Err(
            "the environment is a target but does not report itself managed; make it a \
             managed environment, as deployment targets must be"
                .to_owned(),
        ),
        Ok(info) => Ok(info),
    };
    // An environment belongs to one host: link it to this one, or say whose it is.
    let verdict = match verdict {
        Ok(info) => {
            let host_id = state.store.host_id().await?;
            match state
                .environments
                .link(&env, credential.as_deref(), &host_id, force)
                .await
            {
                Ok(_) => Ok(format!(
                    "reachable; reports environment_id {:?} as a {} environment{}; linked to this host",
                    info.environment_id,
                    kind_name(info.kind),
                    if info.managed { ", managed" } else { "" }
                )),
                Err(err) => Err(format!(
                    "the environment could not be linked to this host: {err}; if it belongs to \
                     another host that no longer uses it, validate again with ?force=true"
                )),
            }
        }
        Err(message) => Err(message),
    };
    let (status, message) = match verdict {
        Ok(message) => (ValidationStatus::Success, message),
        Err(message) => (ValidationStatus::Failed, message),
    };
    env.validation_status = status;
    env.validation_message = message;
    env.updated_at = now();
    let detail = json!({ "status": env.validation_status, "message": env.validation_message });
    state
        .store
        .update_environment(
            &env,
            CredentialChange::Keep,
            &audit(actor, "environment.validate", &env.id, detail),
        )
        .await?;
    Ok(env)
}

/// `?force=true` links the environment to this host even when another host holds it.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    #[serde(default)]
    pub force: bool,
}

/// Replaces who may use the environment in a deployment. Running a pipeline needs access
/// to every environment in it, for admins too.
#[utoipa::path(put, path = "/environments/{id}/access", tag = "environments",
    params(("id" = String, Path)), request_body = EnvironmentAccess,
    responses(
        (status = 200, body = EnvironmentRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a grantee does not exist"),
    ))]
async fn set_environment_access(
    State(state): State<AppState>,
    actor: CurrentUser,
    Path(id): Path<Id>,
    Json(body): Json<EnvironmentAccess>,
) -> Result<Json<EnvironmentRecord>, ApiError> {
    let actor = actor.require_admin("changing who may use an environment")?;
    let mut env = state.store.get_environment(&id).await?;
    existing_grantees(&state, &body.access).await?;
    let mut access = body.access;
    access.sort();
    access.dedup();
    let detail = json!({ "before": env.access, "after": access });
    env.access = access;
    env.updated_at = now();
    state
        .store
        .update_environment(
            &env,
            CredentialChange::Keep,
            &audit(actor, "environment.set_access", &env.id, detail),
        )
        .await?;
    Ok(Json(env))
}

fn kind_name(kind: EnvironmentKind) -> &'static str {
    match kind {
        EnvironmentKind::Development => "development",
        EnvironmentKind::Target => "target",
    }
}

/// Every environment by id, as `rules::check_pipeline` takes them.
pub(super) async fn environment_map(
    state: &AppState,
) -> Result<HashMap<String, EnvironmentRecord>, ApiError> {
    let store = &state.store;
    let all = collect_all(
        move |p| async move { store.list_environments(&p).await },
        |e| e.id.clone(),
    )
    .await?;
    Ok(all.into_iter().map(|e| (e.id.clone(), e)).collect())
}
