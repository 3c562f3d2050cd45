//! Requesting a deployment: the checks a request passes, the artifact it deploys, and
//! the record it starts.

use super::*;

/// What a maker asks for in `POST /deployments`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DeploymentRequest {
    #[schema(required = true)]
    pub pipeline_id: Id,
    #[schema(required = true)]
    pub stage_id: Id,
    /// Needed for a first stage when the pipeline has more than one development
    /// environment. A later stage deploys what its previous stage did, and comes from
    /// where that came from; a source named here must be that one.
    pub source_environment_id: Option<Id>,
    #[schema(required = true, pattern = r"[^\s\x00-\x1f\x7f-\x9f]")]
    pub solution_name: String,
    /// Four-part, such as `1.0.0.0`; the source's current version when omitted.
    #[schema(pattern = r"^[0-9]{1,19}(\.[0-9]{1,19}){3}$")]
    pub version: Option<String>,
    /// Run later, at this time (ms since the epoch, UTC).
    #[schema(value_type = Option<u64>, maximum = 253402300799999_u64)]
    pub scheduled_for: Option<Timestamp>,
    pub notes: String,
    pub settings: DeploymentSettings,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// What a request passed its checks with.
pub(super) struct Prepared {
    pub(super) pipeline: PipelineRecord,
    pub(super) stage: StageRecord,
    pub(super) source_id: Id,
    pub(super) artifact: SolutionVersion,
    pub(super) target: EnvironmentRecord,
    /// Every environment of the pipeline, with its credential.
    pub(super) environments: LoadedEnvironments,
    /// The source or target, when not validated; a preflight reports them.
    pub(super) not_validated: Vec<rules::NotValidated>,
}

/// What a request does with an environment that is not validated: a deployment is
/// refused, a preflight reports it as a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unvalidated {
    Refuse,
    Report,
}

/// Marks the variables the manifest types as `secret`, whatever the maker said, so the
/// API never shows their values.
pub(super) fn mark_secrets(
    settings: &mut DeploymentSettings,
    manifest: Option<&crate::pipeline::ports::Manifest>,
) {
    let Some(manifest) = manifest else { return };
    for v in &mut settings.environment_variables {
        if manifest
            .environment_variables
            .iter()
            .any(|d| d.schema_name == v.name && d.kind == crate::solution::VariableType::Secret)
        {
            v.secret = true;
        }
    }
}

/// The answer to a request whose Idempotency-Key already made `existing`: that deployment,
/// unless the request asks for something else, which is refused rather than answered
/// with a deployment it did not ask for.
fn repeated(
    key: &str,
    req: &DeploymentRequest,
    existing: DeploymentRecord,
) -> EngineResult<(DeploymentRecord, bool)> {
    let differs = existing.pipeline_id != req.pipeline_id
        || existing.stage_id != req.stage_id
        || existing.solution_name != req.solution_name
        || req.version.as_ref().is_some_and(|v| *v != existing.version)
        || req
            .source_environment_id
            .as_ref()
            .is_some_and(|s| *s != existing.source_environment_id);
    if differs {
        return Err(EngineError::Conflict(format!(
            "Idempotency-Key {key:?} was already used for deployment {} ({} {} to stage {}), \
             a different request; use a new key for a new request",
            existing.id, existing.solution_name, existing.version, existing.stage_id
        )));
    }
    Ok((mask_secrets(existing), false))
}

impl Engine {
    /// Starts a deployment, or returns the one this idempotency key already started.
    pub async fn request(
        &self,
        actor: &User,
        req: DeploymentRequest,
    ) -> EngineResult<(DeploymentRecord, bool)> {
        if let Some(key) = &req.idempotency_key
            && let Some(existing) = self
                .store
                .deployment_by_idempotency_key(&actor.id, key)
                .await?
        {
            return repeated(key, &req, existing);
        }
        if let Some(at) = req.scheduled_for {
            rules::check_time("scheduled_for", at).map_err(EngineError::Invalid)?;
        }
        let now = now_ms();
        if let Some(at) = req.scheduled_for
            && at + 1000 < now
        {
            return Err(EngineError::Conflict(
                "scheduled_for is in the past; omit it to deploy now".into(),
            ));
        }
        let Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
            not_validated: _,
        } = self.prepare(actor, &req, Unvalidated::Refuse).await?;
        let installed_version = self
            .environments
            .solution(&target, environments.credential(&target.id), &artifact.name)
            .await
            .ok()
            .flatten()
            .map(|s| s.version);
        let mut settings = req.settings.clone();
        mark_secrets(&mut settings, artifact.manifest.as_ref());

        let scheduled = req.scheduled_for.filter(|at| *at > now);
        let mut d = DeploymentRecord {
            id: new_id(),
            pipeline_id: pipeline.id.clone(),
            stage_id: stage.id.clone(),
            source_environment_id: source_id,
            target_environment_id: stage.target_environment_id.clone(),
            solution_name: artifact.name.clone(),
            version: artifact.version.clone(),
            requested_by: actor.id.clone(),
            requested_at: now,
            scheduled_for: scheduled,
            notes: req.notes.clone(),
            settings,
            status: if scheduled.is_some() {
                DeploymentStatus::Scheduled
            } else {
                DeploymentStatus::Queued
            },
            status_reason: String::new(),
            pre_deployment_status: None,
            pre_deployment_override: None,
            gate_bindings: Vec::new(),
            gates: Vec::new(),
            validation: Vec::new(),
            attempt: 1,
            attempt_started_at: now,
            next_run_at: Some(scheduled.unwrap_or(now)),
            idempotency_key: req.idempotency_key.clone(),
            installed_version,
            artifact,
            environment_attempts: 0,
            import_started: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            revision: 0,
        };
        if let Some(at) = scheduled {
            d.status_reason = format!("scheduled for {}", format_time(at));
        }
        let requested = DeploymentEvent::Requested {
            solution: d.solution_name.clone(),
            version: d.version.clone(),
            stage: stage.name.clone(),
        };
        let mut events = vec![event(&d, requested, Some(&actor.id))];
        if let Some(at) = scheduled {
            let scheduled = DeploymentEvent::Scheduled { at: Some(at) };
            events.push(event(&d, scheduled, Some(&actor.id)));
        }
        let entry = audit(
            &actor.id,
            "deployment.request",
            &d.id,
            serde_json::json!({
                "pipeline": pipeline.id, "stage": stage.id, "solution": d.solution_name, "version": d.version,
            }),
        );
        match self.store.insert_deployment(&d, &events, &entry).await {
            Ok(()) => {}
            Err(StoreError::Conflict(msg)) => {
                if let Some(key) = &req.idempotency_key
                    && let Some(existing) = self
                        .store
                        .deployment_by_idempotency_key(&actor.id, key)
                        .await?
                {
                    return repeated(key, &req, existing);
                }
                return Err(EngineError::Conflict(msg));
            }
            Err(err) => return Err(err.into()),
        }
        self.wake();
        Ok((mask_secrets(d), true))
    }

    /// The checks a deployment request passes before anything is stored: the pipeline
    /// and stage, the source, access to every environment, their validation, the version
    /// rules.
    pub(super) async fn prepare(
        &self,
        actor: &User,
        req: &DeploymentRequest,
        unvalidated: Unvalidated,
    ) -> EngineResult<Prepared> {
        let pipeline = self.visible_pipeline(actor, &req.pipeline_id).await?;
        rules::check_runnable(&pipeline).map_err(|e| EngineError::Conflict(e.to_string()))?;
        let stage = pipeline
            .stage(&req.stage_id)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "stage {} of pipeline {}",
                    req.stage_id, pipeline.name
                ))
            })?
            .clone();
        let source_id = self.source_for(&pipeline, &stage, req).await?;
        let environments = LoadedEnvironments::load(
            self.store.as_ref(),
            pipeline
                .development_environment_ids
                .iter()
                .chain(pipeline.stages.iter().map(|s| &s.target_environment_id)),
        )
        .await?;
        access::check_environment_access(actor, &pipeline, |id| environments.get(id))?;
        let not_validated = rules::unvalidated_environments(
            environments.get(&source_id)?,
            environments.get(&stage.target_environment_id)?,
        );
        if unvalidated == Unvalidated::Refuse
            && let Some(refusal) = not_validated.first()
        {
            return Err(EngineError::NotValidated(refusal.clone()));
        }
        if rules::is_blank(&req.solution_name) {
            return Err(EngineError::Invalid("solution_name is required".into()));
        }
        let artifact = self
            .artifact_for(&pipeline, &stage, &source_id, req, &environments)
            .await?;
        // A later stage deploys what its previous stage did, wherever that came from,
        // unless the request names another source.
        if stage.previous_stage_id.is_none() || req.source_environment_id.is_some() {
            self.check_origin(&artifact, &source_id).await?;
        }
        self.check_version_order(&pipeline, &stage, &artifact)
            .await?;
        let target = environments.get(&stage.target_environment_id)?.clone();
        Ok(Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
            not_validated,
        })
    }

    /// The first stage takes the solution from the source; later stages reuse the
    /// artifact that succeeded in the previous stage.
    async fn artifact_for(
        &self,
        pipeline: &PipelineRecord,
        stage: &StageRecord,
        source_id: &str,
        req: &DeploymentRequest,
        environments: &LoadedEnvironments,
    ) -> EngineResult<SolutionVersion> {
        if let Some(version) = &req.version
            && rules::compare_versions(version, version).is_none()
        {
            return Err(EngineError::Invalid(format!(
                "version {version:?} is not a four-part version such as 1.0.0.0"
            )));
        }
        match &stage.previous_stage_id {
            Some(previous) => {
                let (version, prior) = self.promoted(pipeline, previous, req).await?;
                if let Some(stored) = self
                    .store
                    .get_artifact(&req.solution_name, &version)
                    .await?
                {
                    return Ok(stored.solution_version());
                }
                prior.map(|d| d.artifact).ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "no artifact of {} {version} was kept",
                        req.solution_name
                    ))
                })
            }
            None => {
                if let Some(version) = &req.version
                    && let Some(stored) =
                        self.store.get_artifact(&req.solution_name, version).await?
                {
                    // Exported before: every stage deploys the same packages.
                    return Ok(stored.solution_version());
                }
                let source = environments.get(source_id)?;
                let credential = environments.credential(source_id);
                let mut artifact = self
                    .environments
                    .solution(source, credential, &req.solution_name)
                    .await
                    .map_err(|e| {
                        EngineError::Unavailable(format!(
                            "cannot read {} from {}: {e}",
                            req.solution_name, source.name
                        ))
                    })?
                    .ok_or_else(|| {
                        EngineError::Conflict(format!(
                            "solution {} is not in development environment {}; push it there first",
                            req.solution_name, source.name
                        ))
                    })?;
                // The export stamps the requested version; the package comes with it.
                if let Some(version) = &req.version {
                    artifact.version = version.clone();
                }
                artifact.package_sha256 = String::new();
                artifact.package_size = 0;
                artifact.unmanaged = None;
                Ok(artifact)
            }
        }
    }

    /// The development environment the deployment comes from: the one the request names,
    /// or the pipeline's only one. A later stage deploys its previous stage's artifact, so
    /// without a name it comes from where that deployment came from.
    async fn source_for(
        &self,
        pipeline: &PipelineRecord,
        stage: &StageRecord,
        req: &DeploymentRequest,
    ) -> EngineResult<Id> {
        let several = || {
            EngineError::Conflict(format!(
                "pipeline {} has several development environments; name one as source_environment_id",
                pipeline.name
            ))
        };
        match (
            &req.source_environment_id,
            pipeline.development_environment_ids.as_slice(),
        ) {
            (Some(id), ids) if ids.contains(id) => Ok(id.clone()),
            (Some(id), _) => Err(EngineError::Conflict(format!(
                "environment {id} is not a development environment of pipeline {}",
                pipeline.name
            ))),
            (None, [only]) => Ok(only.clone()),
            (None, _) => match &stage.previous_stage_id {
                Some(previous) => {
                    let (_, prior) = self.promoted(pipeline, previous, req).await?;
                    prior.map(|d| d.source_environment_id).ok_or_else(several)
                }
                None => Err(several()),
            },
        }
    }

    /// The version a later stage deploys (the one asked for, or the last its previous
    /// stage succeeded with) and the previous stage's successful deployment of it.
    async fn promoted(
        &self,
        pipeline: &PipelineRecord,
        previous: &Id,
        req: &DeploymentRequest,
    ) -> EngineResult<(String, Option<DeploymentRecord>)> {
        let prev_name = pipeline
            .stage(previous)
            .map_or(previous.as_str(), |s| s.name.as_str());
        let succeeded = self
            .store
            .succeeded_versions(previous, &req.solution_name)
            .await?;
        let version = match &req.version {
            Some(v) => v.clone(),
            None => succeeded.last().cloned().ok_or_else(|| {
                EngineError::Conflict(format!(
                    "{} has not succeeded in stage {prev_name} yet; deploy it there first",
                    req.solution_name
                ))
            })?,
        };
        if !succeeded.contains(&version) {
            return Err(EngineError::Conflict(format!(
                "version {version} of {} has not succeeded in stage {prev_name}; a stage only receives versions its previous stage succeeded with",
                req.solution_name
            )));
        }
        let filter = DeploymentFilter {
            stage_id: Some(previous.clone()),
            solution_name: Some(req.solution_name.clone()),
            version: Some(version.clone()),
            statuses: vec![DeploymentStatus::Succeeded],
            ..DeploymentFilter::default()
        };
        let page = Page {
            after: None,
            limit: 1,
        };
        let prior = self.store.list_deployments(&filter, &page).await?;
        Ok((version, prior.into_iter().next()))
    }

    /// Refuses a version already exported from another development environment: the
    /// deployment would import that environment's package, not the source's.
    async fn check_origin(&self, artifact: &SolutionVersion, source_id: &str) -> EngineResult<()> {
        let Some(stored) = self
            .store
            .get_artifact(&artifact.name, &artifact.version)
            .await?
        else {
            return Ok(());
        };
        if stored.source_environment_id == source_id {
            return Ok(());
        }
        let origin = self
            .store
            .get_environment(&stored.source_environment_id)
            .await
            .map_or(stored.source_environment_id, |e| e.name);
        Err(EngineError::Conflict(format!(
            "{} {} was exported from development environment {origin}; deploy it from there \
             (leave source_environment_id out for a later stage), or ask for another version",
            artifact.name, artifact.version
        )))
    }

    async fn check_version_order(
        &self,
        pipeline: &PipelineRecord,
        stage: &StageRecord,
        artifact: &SolutionVersion,
    ) -> EngineResult<()> {
        if pipeline.settings.allow_redeploy_older_versions {
            return Ok(());
        }
        let succeeded = self
            .store
            .succeeded_versions(&stage.id, &artifact.name)
            .await?;
        let highest = succeeded
            .iter()
            .filter(|v| rules::compare_versions(v, &artifact.version).is_some())
            .max_by(|a, b| rules::compare_versions(a, b).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(highest) = highest
            && rules::compare_versions(&artifact.version, highest) == Some(std::cmp::Ordering::Less)
        {
            return Err(EngineError::Conflict(format!(
                "stage {} already has {} {highest}; versions only move up unless the pipeline allows redeploying older versions",
                stage.name, artifact.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployment of crm 1.0.0.1 to stage `prod`, with one secret and one plain value.
    fn stored() -> DeploymentRecord {
        let json = serde_json::json!({
            "id": "d1", "pipeline_id": "p", "stage_id": "prod", "source_environment_id": "dev",
            "target_environment_id": "qa", "solution_name": "crm", "version": "1.0.0.1",
            "requested_by": "maker", "requested_at": 0, "scheduled_for": null, "notes": "",
            "settings": { "environment_variables": [
                { "name": "con_ApiKey", "value": "s3cret", "secret": true },
                { "name": "con_Region", "value": "eu", "secret": false },
            ] },
            "status": "queued", "status_reason": "", "pre_deployment_status": null,
            "pre_deployment_override": null, "gates": [], "validation": [], "attempt": 1,
            "next_run_at": 0, "idempotency_key": "k1", "installed_version": null,
            "artifact": { "name": "crm", "version": "1.0.0.1", "publisher_prefix": "con",
                          "components": [], "package_size": 0, "package_sha256": "" },
            "created_at": 0, "updated_at": 0, "finished_at": null, "revision": 1,
        });
        serde_json::from_value(json).expect("a stored deployment")
    }

    fn request(solution: &str, version: Option<&str>) -> DeploymentRequest {
        DeploymentRequest {
            pipeline_id: "p".into(),
            stage_id: "prod".into(),
            solution_name: solution.into(),
            version: version.map(str::to_owned),
            ..DeploymentRequest::default()
        }
    }

    #[test]
    fn a_repeated_key_answers_the_first_deployment_with_its_secrets_hidden() {
        let (d, created) =
            repeated("k1", &request("crm", None), stored()).expect("the same request");
        assert!(!created);
        assert_eq!(d.id, "d1");
        let values: Vec<Option<&str>> = d
            .settings
            .environment_variables
            .iter()
            .map(|v| v.value.as_deref())
            .collect();
        assert_eq!(values, [None, Some("eu")]);
    }

    #[test]
    fn a_key_reused_for_another_request_is_refused_naming_the_first() {
        for other in [request("erp", None), request("crm", Some("1.0.0.2"))] {
            match repeated("k1", &other, stored()) {
                Err(EngineError::Conflict(message)) => {
                    assert!(
                        message.contains("\"k1\"") && message.contains("deployment d1"),
                        "{message}"
                    );
                }
                answer => panic!("expected a refusal, got {answer:?}"),
            }
        }
    }

    #[test]
    fn a_variable_the_manifest_types_as_secret_is_secret_whatever_the_maker_said() {
        let manifest: crate::pipeline::ports::Manifest =
            serde_json::from_value(serde_json::json!({
                "unique_name": "crm", "display_name": "CRM", "version": "1.0.0.1",
                "publisher": { "unique_name": "contoso", "prefix": "con" },
                "environment_variables": [{ "schema_name": "con_Region", "type": "secret" }],
            }))
            .expect("a manifest");
        let mut settings = stored().settings;
        mark_secrets(&mut settings, Some(&manifest));
        assert!(settings.environment_variables.iter().all(|v| v.secret));
        let mut untouched = stored().settings;
        mark_secrets(&mut untouched, None);
        assert!(!untouched.environment_variables[1].secret);
    }
}
