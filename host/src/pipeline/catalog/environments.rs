//! Environments: registering, changing, validating and removing them, and who may use
//! them. Every signed-in user may read environments; only admins change them.

use std::collections::HashMap;

use serde_json::json;

use super::Catalog;
use crate::pipeline::EnvironmentKind;
use crate::pipeline::access::{can_use_environment, require_admin};
use crate::pipeline::accounts::existing_grantees;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::engine::EngineError;
use crate::pipeline::model::{EnvironmentRecord, Grantee, User, ValidationStatus, new_id};
use crate::pipeline::ports::{EnvironmentError, SolutionVersion};
use crate::pipeline::rules::check_pipeline;
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{CredentialChange, StoreResult, scan_all};

/// A new environment, as an admin describes it.
#[derive(Debug, Clone)]
pub struct EnvironmentDraft {
    pub name: String,
    pub kind: EnvironmentKind,
    /// The id the environment reports for itself in `GET /env/v1/info`.
    pub environment_id: String,
    /// `http(s)://…` or `memory://<name>`.
    pub url: String,
    /// A token for the environment's API; stored, never shown again.
    pub credential: Option<String>,
    /// Who may deploy to or from it.
    pub access: Vec<Grantee>,
}

/// Changes to an environment; fields left `None` stay as they are.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentChange {
    pub name: Option<String>,
    pub kind: Option<EnvironmentKind>,
    pub environment_id: Option<String>,
    pub url: Option<String>,
    /// `Some(None)` removes the stored credential.
    pub credential: Option<Option<String>>,
}

/// The fields every environment needs: a name, the id it reports, and a url it can be
/// reached at.
pub fn check_fields(name: &str, environment_id: &str, url: &str) -> ServiceResult<()> {
    if crate::pipeline::rules::is_blank(name) {
        return Err(ServiceError::invalid("the environment needs a name"));
    }
    if crate::pipeline::rules::is_blank(environment_id) {
        return Err(ServiceError::invalid(
            "the environment needs the environment_id it reports in GET /env/v1/info",
        ));
    }
    let scheme_ok = ["http://", "https://", "memory://"]
        .iter()
        .any(|s| url.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if !scheme_ok {
        return Err(ServiceError::invalid(format!(
            "url {url:?} must start with http://, https:// or memory:// and name a host"
        )));
    }
    Ok(())
}

impl Catalog<'_> {
    /// Registers an environment. It starts `pending` until validated.
    pub async fn create_environment(
        &self,
        actor: &User,
        body: EnvironmentDraft,
    ) -> ServiceResult<EnvironmentRecord> {
        let actor = require_admin(actor, "registering an environment")?;
        check_fields(&body.name, &body.environment_id, &body.url)?;
        existing_grantees(self.store, &body.access).await?;
        let credential = body.credential.filter(|c| !c.is_empty());
        let at = now();
        let id = new_id();
        let validation_message =
            format!("not validated yet; validate it with POST /api/v1/environments/{id}/validate");
        let env = EnvironmentRecord {
            id,
            name: body.name,
            kind: body.kind,
            environment_id: body.environment_id,
            url: body.url,
            has_credential: credential.is_some(),
            validation_status: ValidationStatus::Pending,
            validation_message,
            access: body.access,
            created_at: at,
            updated_at: at,
        };
        let detail = json!({
            "name": env.name, "kind": env.kind, "environment_id": env.environment_id,
            "url": env.url, "has_credential": env.has_credential, "access": env.access,
        });
        self.store
            .insert_environment(
                &env,
                credential.as_deref(),
                &audit(actor, "environment.create", &env.id, detail),
            )
            .await?;
        Ok(env)
    }

    /// Changes an environment. A new url, environment_id, kind or credential sets it back
    /// to `pending` until validated again.
    pub async fn update_environment(
        &self,
        actor: &User,
        id: &str,
        change: EnvironmentChange,
    ) -> ServiceResult<EnvironmentRecord> {
        let actor = require_admin(actor, "changing an environment")?;
        let mut env = self.store.get_environment(id).await?;
        let before = env.clone();
        if let Some(name) = change.name {
            env.name = name;
        }
        if let Some(kind) = change.kind {
            env.kind = kind;
        }
        if let Some(environment_id) = change.environment_id {
            env.environment_id = environment_id;
        }
        if let Some(url) = change.url {
            env.url = url;
        }
        check_fields(&env.name, &env.environment_id, &env.url)?;
        let credential = match change.credential {
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
            let mut envs = self.environment_map().await?;
            envs.insert(env.id.clone(), env.clone());
            for pipeline in self.pipelines_using_environment(&env.id).await? {
                check_pipeline(&pipeline, &envs)
                    .map_err(|e| ServiceError::from(e).with("pipeline_id", pipeline.id.clone()))?;
            }
        }
        env.updated_at = now();
        let detail = json!({
            "name": env.name, "kind": env.kind, "environment_id": env.environment_id,
            "url": env.url, "credential_changed": credential_changed,
        });
        self.store
            .update_environment(
                &env,
                credential,
                &audit(actor, "environment.update", &env.id, detail),
            )
            .await?;
        Ok(env)
    }

    /// Removes an environment that no pipeline uses.
    pub async fn delete_environment(&self, actor: &User, id: &str) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting an environment")?;
        let env = self.store.get_environment(id).await?;
        let users = self.pipelines_using_environment(id).await?;
        if !users.is_empty() {
            let names: Vec<&str> = users.iter().map(|p| p.name.as_str()).collect();
            return Err(ServiceError::conflict(format!(
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
        self.store
            .delete_environment(id, &audit(actor, "environment.delete", id, detail))
            .await?;
        Ok(())
    }

    /// Asks the environment about itself, links it to this host and records the verdict:
    /// the same environment_id, the same kind, and, for a target, managed. A failed
    /// validation is still an answer, in `validation_status` and `validation_message`.
    pub async fn validate_environment(
        &self,
        actor: &User,
        id: &str,
        force: bool,
    ) -> ServiceResult<EnvironmentRecord> {
        let actor = require_admin(actor, "validating an environment")?;
        let mut env = self.store.get_environment(id).await?;
        let credential = self.store.environment_credential(id).await?;
        let verdict = match self.environments.info(&env, credential.as_deref()).await {
            Err(EnvironmentError::Unreachable(cause)) => Err(format!(
                "the environment could not be reached at {}: {cause}; check the url and that its \
                 Environment API is running",
                env.url
            )),
            Err(EnvironmentError::Refused(cause)) => Err(format!(
                "the environment at {} refused the request: {cause}; check the credential",
                env.url
            )),
            Err(EnvironmentError::NotAllowed(cause)) => Err(format!(
                "this host may not call the environment at {}: {cause}; fix the url, or allow \
                 the environment's address or host name in the host's outbound allow-list",
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
        // The link secret it issues goes with every import; `None` keeps the old one.
        let mut link_secret = None;
        let verdict = match verdict {
            Ok(info) => {
                let host_id = self.store.host_id().await?;
                match self
                    .environments
                    .link(&env, credential.as_deref(), &host_id, force)
                    .await
                {
                    Ok(linked) => {
                        let how = match &linked.link_secret {
                            Some(_) => "linked to this host with a link secret",
                            None => {
                                "linked to this host, but not with a link secret: the \
                                 environment issued none (an Environment API before 1.1), so \
                                 its imports are not bound to this link"
                            }
                        };
                        link_secret = Some(linked.link_secret);
                        Ok(format!(
                            "reachable; reports environment_id {:?} as a {} environment{}; {how}",
                            info.environment_id,
                            kind_name(info.kind),
                            if info.managed { ", managed" } else { "" }
                        ))
                    }
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
        let entry = audit(actor, "environment.validate", &env.id, detail);
        match link_secret {
            Some(secret) => {
                self.store
                    .record_link(&env, secret.as_deref(), &entry)
                    .await?
            }
            None => {
                self.store
                    .update_environment(&env, CredentialChange::Keep, &entry)
                    .await?
            }
        }
        Ok(env)
    }

    /// Replaces who may use the environment in a deployment. Running a pipeline needs
    /// access to every environment in it, for admins too.
    pub async fn set_environment_access(
        &self,
        actor: &User,
        id: &str,
        access: Vec<Grantee>,
    ) -> ServiceResult<EnvironmentRecord> {
        let actor = require_admin(actor, "changing who may use an environment")?;
        let mut env = self.store.get_environment(id).await?;
        existing_grantees(self.store, &access).await?;
        let mut access = access;
        access.sort();
        access.dedup();
        let detail = json!({ "before": env.access, "after": access });
        env.access = access;
        env.updated_at = now();
        self.store
            .update_environment(
                &env,
                CredentialChange::Keep,
                &audit(actor, "environment.set_access", &env.id, detail),
            )
            .await?;
        Ok(env)
    }

    /// What a development environment holds now, by name: what a deployment from it could
    /// take. Asking needs access to it, as deploying from it does.
    pub async fn source_solutions(
        &self,
        actor: &User,
        id: &str,
    ) -> ServiceResult<Vec<SolutionVersion>> {
        let env = self.store.get_environment(id).await?;
        if !can_use_environment(actor, &env) {
            return Err(ServiceError::forbidden(format!(
                "you have no access to environment {}; an admin can grant it with PUT \
                 /api/v1/environments/{}/access",
                env.name, env.id
            )));
        }
        if env.kind != EnvironmentKind::Development {
            return Err(ServiceError::conflict(format!(
                "{} is a target environment; deployments come from development environments",
                env.name
            )));
        }
        let credential = self.store.environment_credential(id).await?;
        self.environments
            .solutions(&env, credential.as_deref())
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!("cannot list the solutions of {}: {e}", env.name))
                    .into()
            })
    }

    /// Every environment by id, as `rules::check_pipeline` takes them.
    pub async fn environment_map(&self) -> StoreResult<HashMap<String, EnvironmentRecord>> {
        let store = self.store;
        let all = scan_all(
            move |p| async move { store.list_environments(&p).await },
            |e| e.id.clone(),
        )
        .await?;
        Ok(all.into_iter().map(|e| (e.id.clone(), e)).collect())
    }
}

fn kind_name(kind: EnvironmentKind) -> &'static str {
    match kind {
        EnvironmentKind::Development => "development",
        EnvironmentKind::Target => "target",
    }
}
