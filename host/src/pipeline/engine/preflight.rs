//! `POST /deployments/validate`: what a deployment would meet, without starting one.

use super::requests::{Prepared, Unvalidated, mark_secrets};
use super::*;

/// A finding of a preflight, and who found it: a validator plugin or the target.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PreflightFinding {
    pub source: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub finding: gate::Finding,
}

/// What `POST /deployments/validate` answers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Preflight {
    /// True when nothing found is an error.
    pub ok: bool,
    pub solution_name: String,
    pub version: String,
    pub installed_version: Option<String>,
    pub findings: Vec<PreflightFinding>,
    /// Environment variables that need a value in `settings`.
    pub missing_environment_variables: Vec<crate::pipeline::ports::MissingVariable>,
    /// Connection references that need a connection in `settings`.
    pub missing_connection_references: Vec<crate::pipeline::ports::MissingConnection>,
}

impl Engine {
    /// `POST /deployments/validate`: what a deployment would meet, without starting one.
    /// Runs the request's checks, the pipeline's validators, and the target's own check
    /// of the package with these settings, and says which settings are still missing.
    pub async fn preflight(&self, actor: &User, req: DeploymentRequest) -> EngineResult<Preflight> {
        if let Some(at) = req.scheduled_for {
            crate::pipeline::rules::check_time("scheduled_for", at)
                .map_err(EngineError::Invalid)?;
        }
        let Prepared {
            pipeline,
            stage,
            source_id,
            artifact,
            target,
            environments,
            not_validated,
        } = self.prepare(actor, &req, Unvalidated::Report).await?;
        let mut manifest = match artifact.manifest.clone() {
            Some(m) => m,
            None => {
                let source = environments.get(&source_id)?;
                self.environments
                    .export(
                        source,
                        environments.credential(&source_id),
                        &artifact.name,
                        &artifact.version,
                    )
                    .await
                    .map_err(|e| {
                        EngineError::Conflict(format!(
                            "cannot read {} from {}: {e}",
                            artifact.name, source.name
                        ))
                    })?
                    .manifest
            }
        };
        if let Ok(version) = artifact.version.parse() {
            manifest.version = version;
        }
        manifest.managed = true;
        let mut settings = req.settings.clone();
        mark_secrets(&mut settings, Some(&manifest));
        let credential = environments.credential(&target.id);
        let check = self
            .environments
            .check(
                &target,
                credential,
                &manifest,
                &settings,
                pipeline.settings.allow_redeploy_older_versions,
            )
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!("cannot check with {}: {e}", target.name))
            })?;
        let mut findings: Vec<PreflightFinding> = not_validated
            .iter()
            .map(|refusal| PreflightFinding {
                source: format!("environment {}", refusal.name),
                finding: gate::Finding {
                    severity: Severity::Error,
                    code: "environment_not_validated".into(),
                    message: refusal.to_string(),
                    component: None,
                },
            })
            .collect();
        findings.extend(check.findings.iter().map(|f| PreflightFinding {
            source: format!("environment {}", target.name),
            finding: f.clone(),
        }));
        let now = now_ms();
        let draft = DeploymentRecord {
            id: "preflight".into(),
            pipeline_id: pipeline.id.clone(),
            stage_id: stage.id.clone(),
            source_environment_id: source_id.clone(),
            target_environment_id: target.id.clone(),
            solution_name: artifact.name.clone(),
            version: artifact.version.clone(),
            requested_by: actor.id.clone(),
            requested_at: now,
            scheduled_for: req.scheduled_for,
            notes: req.notes.clone(),
            settings,
            status: DeploymentStatus::Validating,
            status_reason: String::new(),
            pre_deployment_status: None,
            pre_deployment_override: None,
            gate_bindings: Vec::new(),
            gates: Vec::new(),
            validation: Vec::new(),
            attempt: 1,
            attempt_started_at: now,
            next_run_at: None,
            idempotency_key: None,
            installed_version: check.installed_version.clone(),
            artifact: artifact.clone(),
            environment_attempts: 0,
            import_started: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            revision: 0,
        };
        let view = Arc::new(self.gate_view(&draft, &pipeline, &environments).await?);
        for binding in &pipeline.validators {
            let outcome = self
                .gates
                .validate(&binding.plugin_id, view.clone(), &binding.config, now)
                .await;
            let source = self.plugin_name(&binding.plugin_id).await;
            match outcome.result {
                Ok(found) => findings.extend(found.into_iter().map(|finding| PreflightFinding {
                    source: source.clone(),
                    finding,
                })),
                Err(cause) => findings.push(PreflightFinding {
                    source: source.clone(),
                    finding: gate::Finding {
                        severity: Severity::Error,
                        code: "validator_failed".into(),
                        message: format!("validator {source} failed: {cause}"),
                        component: None,
                    },
                }),
            }
        }
        Ok(Preflight {
            ok: findings
                .iter()
                .all(|f| f.finding.severity != Severity::Error),
            solution_name: artifact.name,
            version: artifact.version,
            installed_version: check.installed_version,
            findings,
            missing_environment_variables: check.missing_environment_variables,
            missing_connection_references: check.missing_connection_references,
        })
    }
}
