//! The rules a pipeline must keep, checked before anything is stored.

use std::collections::{HashMap, HashSet};

use super::gate::EnvironmentKind;
use super::model::{EnvironmentRecord, PipelineRecord, ValidationStatus};

/// Whether a name has nothing to show: only whitespace and control characters. The API's
/// schema states the same rule as the pattern [`HAS_TEXT`].
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || c.is_control())
}

/// The JSON Schema pattern of a name that is not blank (see [`is_blank`]).
pub const HAS_TEXT: &str = r"[^\s\x00-\x1f\x7f-\x9f]";

/// The latest time a request may name: 9999-12-31T23:59:59.999Z, in ms since the epoch.
/// The API's schema states it as the `maximum` of every time field.
pub const LAST_TIME: super::Timestamp = 253_402_300_799_999;

/// Refuses a time past [`LAST_TIME`], naming the field.
pub fn check_time(field: &str, at: super::Timestamp) -> Result<(), String> {
    if at > LAST_TIME {
        return Err(format!(
            "{field} is {at}, past the latest time the host takes ({LAST_TIME}, the end of \
             year 9999 in ms since the epoch)"
        ));
    }
    Ok(())
}

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 7;

/// A pipeline that breaks a rule, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a pipeline has at most {MAX_STAGES} stages; remove one before adding another")]
    TooManyStages,
    #[error("stage names must be unique within a pipeline: {0:?} is used twice")]
    DuplicateStageName(String),
    #[error("stage {stage:?} names a previous stage {previous:?} that is not in this pipeline")]
    UnknownPreviousStage { stage: String, previous: String },
    #[error(
        "stage {0:?} is its own previous stage, directly or through others; stages cannot form a cycle"
    )]
    Cycle(String),
    #[error(
        "stages {0:?} and {1:?} both follow the same previous stage; each stage has at most one next stage"
    )]
    Branch(String, String),
    #[error("only one stage may have no previous stage, but {0:?} and {1:?} both have none")]
    TwoFirstStages(String, String),
    #[error("environment {0} does not exist")]
    UnknownEnvironment(String),
    #[error(
        "environment {name:?} is a {actual} environment, but is used as a {wanted} environment"
    )]
    WrongKind {
        name: String,
        actual: &'static str,
        wanted: &'static str,
    },
    #[error(
        "environment {0:?} is a development environment of this pipeline and cannot also be a stage's target"
    )]
    TargetIsDevelopment(String),
    #[error(
        "a pipeline needs at least one development environment and one stage before it can run"
    )]
    NotRunnable,
}

fn kind_name(kind: EnvironmentKind) -> &'static str {
    match kind {
        EnvironmentKind::Development => "development",
        EnvironmentKind::Target => "target",
    }
}

/// Checks the stage chain and the environments a pipeline uses. A pipeline may be stored
/// while still incomplete (no stage yet); [`check_runnable`] says whether it can run.
pub fn check_pipeline(
    pipeline: &PipelineRecord,
    environments: &HashMap<String, EnvironmentRecord>,
) -> Result<(), RuleError> {
    if pipeline.stages.len() > MAX_STAGES {
        return Err(RuleError::TooManyStages);
    }
    let mut names = HashSet::new();
    for stage in &pipeline.stages {
        if !names.insert(stage.name.to_lowercase()) {
            return Err(RuleError::DuplicateStageName(stage.name.clone()));
        }
    }
    let by_id: HashMap<&str, &super::model::StageRecord> =
        pipeline.stages.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut first: Option<&str> = None;
    let mut followers: HashMap<&str, &str> = HashMap::new();
    for stage in &pipeline.stages {
        match &stage.previous_stage_id {
            None => {
                if let Some(other) = first {
                    return Err(RuleError::TwoFirstStages(
                        other.to_owned(),
                        stage.name.clone(),
                    ));
                }
                first = Some(&stage.name);
            }
            Some(previous) => {
                let Some(prev) = by_id.get(previous.as_str()) else {
                    return Err(RuleError::UnknownPreviousStage {
                        stage: stage.name.clone(),
                        previous: previous.clone(),
                    });
                };
                if let Some(other) = followers.insert(prev.id.as_str(), stage.name.as_str()) {
                    return Err(RuleError::Branch(other.to_owned(), stage.name.clone()));
                }
            }
        }
        // Walk back; a chain longer than the stage count has looped.
        let mut current = stage;
        for _ in 0..=pipeline.stages.len() {
            match current
                .previous_stage_id
                .as_deref()
                .and_then(|p| by_id.get(p))
            {
                Some(prev) if prev.id == stage.id => {
                    return Err(RuleError::Cycle(stage.name.clone()));
                }
                Some(prev) => current = prev,
                None => break,
            }
        }
        if current.previous_stage_id.is_some() {
            return Err(RuleError::Cycle(stage.name.clone()));
        }
    }

    let env = |id: &str| {
        environments
            .get(id)
            .ok_or_else(|| RuleError::UnknownEnvironment(id.to_owned()))
    };
    for id in &pipeline.development_environment_ids {
        let e = env(id)?;
        if e.kind != EnvironmentKind::Development {
            return Err(RuleError::WrongKind {
                name: e.name.clone(),
                actual: kind_name(e.kind),
                wanted: "development",
            });
        }
    }
    for stage in &pipeline.stages {
        let e = env(&stage.target_environment_id)?;
        if pipeline
            .development_environment_ids
            .contains(&stage.target_environment_id)
        {
            return Err(RuleError::TargetIsDevelopment(e.name.clone()));
        }
        if e.kind != EnvironmentKind::Target {
            return Err(RuleError::WrongKind {
                name: e.name.clone(),
                actual: kind_name(e.kind),
                wanted: "target",
            });
        }
    }
    Ok(())
}

/// Whether a pipeline has what it needs to run.
pub fn check_runnable(pipeline: &PipelineRecord) -> Result<(), RuleError> {
    if pipeline.development_environment_ids.is_empty() || pipeline.stages.is_empty() {
        return Err(RuleError::NotRunnable);
    }
    Ok(())
}

/// Compares four-part versions (`major.minor.build.revision`) numerically.
pub fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let parse = |v: &str| -> Option<Vec<u64>> {
        let parts: Vec<u64> = v
            .split('.')
            .map(|p| {
                // Digits only: `parse` would also take a leading `+`.
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        (parts.len() == 4).then_some(parts)
    };
    Some(parse(a)?.cmp(&parse(b)?))
}

/// An environment that may not take part in a new deployment, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{role} environment {name:?} is not validated ({status}: {message}); an admin must run \
     POST /api/v1/environments/{id}/validate and it must succeed before it takes new deployments"
)]
pub struct NotValidated {
    /// `source` or `target`.
    pub role: &'static str,
    pub id: String,
    pub name: String,
    /// `pending` or `failed`.
    pub status: &'static str,
    pub message: String,
}

/// Why a new deployment from `source` to `target` is refused: each environment must be
/// validated, and a target must be managed. A target validates only when it reports itself
/// managed and a target, so a success covers both; anything else names what to run.
/// Deployments already in flight never ask this again.
pub fn unvalidated_environments(
    source: &EnvironmentRecord,
    target: &EnvironmentRecord,
) -> Vec<NotValidated> {
    [("source", source), ("target", target)]
        .into_iter()
        .filter_map(|(role, env)| {
            let status = match env.validation_status {
                ValidationStatus::Success if role == "source" => return None,
                ValidationStatus::Success if env.kind == EnvironmentKind::Target => return None,
                ValidationStatus::Success => "not a managed target",
                ValidationStatus::Pending => "pending",
                ValidationStatus::Failed => "failed",
            };
            Some(NotValidated {
                role,
                id: env.id.clone(),
                name: env.name.clone(),
                status,
                message: env.validation_message.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::model::{PipelineSettings, StageRecord};

    fn env(id: &str, kind: EnvironmentKind) -> EnvironmentRecord {
        EnvironmentRecord {
            id: id.into(),
            name: id.to_uppercase(),
            kind,
            environment_id: id.into(),
            url: format!("memory://{id}"),
            has_credential: false,
            validation_status: ValidationStatus::Success,
            validation_message: String::new(),
            access: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    fn stage(id: &str, previous: Option<&str>, target: &str) -> StageRecord {
        StageRecord {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            previous_stage_id: previous.map(Into::into),
            target_environment_id: target.into(),
            pre_deployment_step_required: false,
            gates: vec![],
        }
    }

    fn pipeline(stages: Vec<StageRecord>) -> PipelineRecord {
        PipelineRecord {
            id: "p".into(),
            name: "p".into(),
            description: String::new(),
            development_environment_ids: vec!["dev".into()],
            stages,
            validators: vec![],
            settings: PipelineSettings::default(),
            shares: vec![],
            created_at: 0,
            updated_at: 0,
            revision: 0,
        }
    }

    fn envs() -> HashMap<String, EnvironmentRecord> {
        [
            env("dev", EnvironmentKind::Development),
            env("qa", EnvironmentKind::Target),
            env("prod", EnvironmentKind::Target),
        ]
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect()
    }

    #[test]
    fn a_chain_of_stages_is_accepted() {
        let p = pipeline(vec![
            stage("qa", None, "qa"),
            stage("prod", Some("qa"), "prod"),
        ]);
        assert_eq!(check_pipeline(&p, &envs()), Ok(()));
        assert_eq!(p.depth("prod"), 2);
        assert_eq!(check_runnable(&p), Ok(()));
    }

    #[test]
    fn cycles_branches_and_unknown_stages_are_refused() {
        let cycle = pipeline(vec![
            stage("a", Some("b"), "qa"),
            stage("b", Some("a"), "prod"),
        ]);
        assert!(matches!(
            check_pipeline(&cycle, &envs()),
            Err(RuleError::Cycle(_))
        ));
        let branch = pipeline(vec![
            stage("a", None, "qa"),
            stage("b", Some("a"), "prod"),
            stage("c", Some("a"), "prod"),
        ]);
        assert!(matches!(
            check_pipeline(&branch, &envs()),
            Err(RuleError::Branch(..))
        ));
        let unknown = pipeline(vec![stage("a", Some("zz"), "qa")]);
        assert!(matches!(
            check_pipeline(&unknown, &envs()),
            Err(RuleError::UnknownPreviousStage { .. })
        ));
    }

    #[test]
    fn more_than_seven_stages_are_refused() {
        let mut stages = vec![stage("s0", None, "qa")];
        for i in 1..8 {
            stages.push(stage(&format!("s{i}"), Some(&format!("s{}", i - 1)), "qa"));
        }
        assert_eq!(
            check_pipeline(&pipeline(stages), &envs()),
            Err(RuleError::TooManyStages)
        );
    }

    #[test]
    fn a_development_environment_is_never_a_target_of_the_same_pipeline() {
        let p = pipeline(vec![stage("a", None, "dev")]);
        assert!(matches!(
            check_pipeline(&p, &envs()),
            Err(RuleError::TargetIsDevelopment(_))
        ));
        let mut wrong_kind = pipeline(vec![]);
        wrong_kind.development_environment_ids = vec!["qa".into()];
        assert!(matches!(
            check_pipeline(&wrong_kind, &envs()),
            Err(RuleError::WrongKind { .. })
        ));
        assert_eq!(check_runnable(&wrong_kind), Err(RuleError::NotRunnable));
    }

    #[test]
    fn versions_compare_numerically_by_part() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10.0.0", "1.9.0.0"), Some(Greater));
        assert_eq!(compare_versions("1.0.0.1", "1.0.0.1"), Some(Equal));
        assert_eq!(compare_versions("1.0.0", "1.0.0.1"), None);
    }

    fn with_status(
        id: &str,
        kind: EnvironmentKind,
        status: ValidationStatus,
        message: &str,
    ) -> EnvironmentRecord {
        let mut e = env(id, kind);
        e.validation_status = status;
        e.validation_message = message.into();
        e
    }

    #[test]
    fn validated_source_and_target_may_deploy() {
        let dev = env("dev", EnvironmentKind::Development);
        let prod = env("prod", EnvironmentKind::Target);
        assert_eq!(unvalidated_environments(&dev, &prod), []);
    }

    #[test]
    fn a_pending_source_is_refused_naming_it_and_the_validate_call() {
        let dev = with_status(
            "dev",
            EnvironmentKind::Development,
            ValidationStatus::Pending,
            "not validated yet",
        );
        let prod = env("prod", EnvironmentKind::Target);
        let refused = unvalidated_environments(&dev, &prod);
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].role, refused[0].status), ("source", "pending"));
        let message = refused[0].to_string();
        assert!(message.contains("\"DEV\""), "{message}");
        assert!(
            message.contains("POST /api/v1/environments/dev/validate"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_target_is_refused_with_its_validation_message() {
        let dev = env("dev", EnvironmentKind::Development);
        let prod = with_status(
            "prod",
            EnvironmentKind::Target,
            ValidationStatus::Failed,
            "the environment is a target but does not report itself managed",
        );
        let refused = unvalidated_environments(&dev, &prod);
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].role, refused[0].status), ("target", "failed"));
        assert!(
            refused[0]
                .to_string()
                .contains("does not report itself managed")
        );
    }

    #[test]
    fn a_target_that_validated_as_another_kind_is_not_a_managed_target() {
        let dev = env("dev", EnvironmentKind::Development);
        let other = env("other", EnvironmentKind::Development);
        let refused = unvalidated_environments(&dev, &other);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].status, "not a managed target");
    }

    #[test]
    fn both_are_named_when_neither_is_validated() {
        let dev = with_status(
            "dev",
            EnvironmentKind::Development,
            ValidationStatus::Failed,
            "x",
        );
        let prod = with_status(
            "prod",
            EnvironmentKind::Target,
            ValidationStatus::Pending,
            "y",
        );
        let roles: Vec<&str> = unvalidated_environments(&dev, &prod)
            .iter()
            .map(|n| n.role)
            .collect();
        assert_eq!(roles, ["source", "target"]);
    }
}
