//! Who may see or run what: the one answer the API, the console and the engine give.
//!
//! A pipeline is seen by admins and by the users and groups it is shared with; to anyone
//! else it does not exist. Running it needs access to every environment in it, for admins
//! too. An artifact is seen by whoever may use the environment it was exported from.
//! Secret values are never shown once stored.

use crate::pipeline::engine::EngineError;
use crate::pipeline::model::{
    ArtifactRecord, DeploymentRecord, EnvironmentRecord, PipelineRecord, User,
};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{Store, StoreError, StoreResult, scan_all};

/// Whether the user may see and run the pipeline: admins always, others when it is shared
/// with them or with one of their groups.
pub fn can_use_pipeline(user: &User, pipeline: &PipelineRecord) -> bool {
    user.is_admin() || pipeline.shares.iter().any(|g| user.matches(g))
}

/// Whether the user may deploy to or from the environment. Admins need an entry too.
pub fn can_use_environment(user: &User, environment: &EnvironmentRecord) -> bool {
    environment.access.iter().any(|g| user.matches(g))
}

/// Running a pipeline needs access to every environment in it; `environment` finds one
/// by id as the store would.
pub fn check_environment_access<'e>(
    actor: &User,
    pipeline: &PipelineRecord,
    environment: impl Fn(&str) -> Result<&'e EnvironmentRecord, StoreError>,
) -> Result<(), EngineError> {
    let ids = pipeline
        .development_environment_ids
        .iter()
        .chain(pipeline.stages.iter().map(|s| &s.target_environment_id));
    for id in ids {
        let env = environment(id)?;
        if !can_use_environment(actor, env) {
            return Err(EngineError::Forbidden(format!(
                "you have no access to environment {}, which pipeline {} uses; an admin can grant it with PUT /api/v1/environments/{}/access",
                env.name, pipeline.name, env.id
            )));
        }
    }
    Ok(())
}

/// Secret values are never shown once stored.
pub fn mask_secrets(mut d: DeploymentRecord) -> DeploymentRecord {
    for v in &mut d.settings.environment_variables {
        if v.secret {
            v.value = None;
        }
    }
    d
}

/// Refuses anyone but an admin; `action` completes "… needs the admin role".
pub fn require_admin<'a>(user: &'a User, action: &str) -> ServiceResult<&'a User> {
    if user.is_admin() {
        Ok(user)
    } else {
        Err(ServiceError::forbidden(format!(
            "{action} needs the admin role, and you are a user; ask an admin to do it"
        ))
        .with("required_role", "admin"))
    }
}

/// Every pipeline the user may see, as `GET /pipelines` lists them, by id.
pub async fn visible_pipelines(store: &dyn Store, user: &User) -> StoreResult<Vec<PipelineRecord>> {
    let mut pipelines = scan_all(
        move |p| async move { store.list_pipelines(&p).await },
        |p| p.id.clone(),
    )
    .await?;
    pipelines.retain(|p| can_use_pipeline(user, p));
    Ok(pipelines)
}

/// The pipeline, if the user may see it; otherwise NotFound whether or not it exists, so
/// that its existence does not leak.
pub async fn visible_pipeline(
    store: &dyn Store,
    user: &User,
    id: &str,
) -> ServiceResult<PipelineRecord> {
    match store.get_pipeline(id).await {
        Ok(p) if can_use_pipeline(user, &p) => Ok(p),
        Ok(_) | Err(StoreError::NotFound(_)) => Err(ServiceError::not_found(format!(
            "pipeline {id} does not exist or is not shared with you; GET /api/v1/pipelines \
             lists the ones you can see"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Whether the user may see an artifact: admins always, others with access to the
/// environment it was exported from.
pub async fn may_see_artifact(store: &dyn Store, user: &User, artifact: &ArtifactRecord) -> bool {
    if user.is_admin() {
        return true;
    }
    match store.get_environment(&artifact.source_environment_id).await {
        Ok(env) => can_use_environment(user, &env),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
