//! Who sees which pipeline, who may use which environment, who is an admin, and what a
//! deployment shows of its secrets.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::pipeline::EnvironmentKind;
use crate::pipeline::model::{
    Grantee, PipelineSettings, Role, StageRecord, ValidationStatus, VariableSetting,
};
use crate::pipeline::service_error::Refused;

fn user(id: &str, role: Role, groups: &[&str]) -> User {
    User {
        id: id.into(),
        name: id.into(),
        display_name: id.into(),
        role,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        created_at: 1,
    }
}

fn pipeline(shares: Vec<Grantee>) -> PipelineRecord {
    PipelineRecord {
        id: "p1".into(),
        name: "Expenses".into(),
        description: String::new(),
        development_environment_ids: vec!["dev".into()],
        stages: vec![StageRecord {
            id: "s1".into(),
            name: "QA".into(),
            description: String::new(),
            previous_stage_id: None,
            target_environment_id: "qa".into(),
            pre_deployment_step_required: false,
            gates: Vec::new(),
        }],
        validators: Vec::new(),
        settings: PipelineSettings::default(),
        shares,
        created_at: 1,
        updated_at: 1,
        revision: 0,
    }
}

fn environment(id: &str, access: Vec<Grantee>) -> EnvironmentRecord {
    EnvironmentRecord {
        id: id.into(),
        name: id.to_uppercase(),
        kind: EnvironmentKind::Target,
        environment_id: id.into(),
        url: format!("memory://{id}"),
        has_credential: false,
        validation_status: ValidationStatus::Success,
        validation_message: String::new(),
        access,
        created_at: 1,
        updated_at: 1,
    }
}

fn environments(list: Vec<EnvironmentRecord>) -> HashMap<String, EnvironmentRecord> {
    list.into_iter().map(|e| (e.id.clone(), e)).collect()
}

/// Finds an environment by id as the store would answer.
fn find<'a>(
    map: &'a HashMap<String, EnvironmentRecord>,
    id: &str,
) -> Result<&'a EnvironmentRecord, StoreError> {
    map.get(id)
        .ok_or_else(|| StoreError::NotFound(format!("environment {id}")))
}

#[test]
fn an_admin_sees_every_pipeline_even_one_shared_with_nobody() {
    let admin = user("root", Role::Admin, &[]);
    assert!(can_use_pipeline(&admin, &pipeline(Vec::new())));
}

#[test]
fn a_user_sees_a_pipeline_shared_with_them_by_id() {
    let mona = user("mona", Role::User, &[]);
    assert!(can_use_pipeline(
        &mona,
        &pipeline(vec![Grantee::User("mona".into())])
    ));
    assert!(!can_use_pipeline(
        &mona,
        &pipeline(vec![Grantee::User("bob".into())])
    ));
}

#[test]
fn a_user_sees_a_pipeline_shared_with_one_of_their_groups_only() {
    let mona = user("mona", Role::User, &["makers"]);
    assert!(can_use_pipeline(
        &mona,
        &pipeline(vec![Grantee::Group("makers".into())])
    ));
    assert!(!can_use_pipeline(
        &mona,
        &pipeline(vec![Grantee::Group("approvers".into())])
    ));
    assert!(!can_use_pipeline(&mona, &pipeline(Vec::new())));
}

#[test]
fn running_a_pipeline_needs_access_to_every_environment_in_it() {
    let mona = user("mona", Role::User, &["makers"]);
    let makers = || vec![Grantee::Group("makers".into())];
    let all = environments(vec![
        environment("dev", makers()),
        environment("qa", makers()),
    ]);
    assert_eq!(
        check_environment_access(&mona, &pipeline(Vec::new()), |id| find(&all, id)),
        Ok(())
    );

    let target_closed = environments(vec![
        environment("dev", makers()),
        environment("qa", vec![]),
    ]);
    let refused =
        check_environment_access(&mona, &pipeline(Vec::new()), |id| find(&target_closed, id));
    let Err(EngineError::Forbidden(message)) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert!(message.contains("environment QA"), "{message}");
    assert!(
        message.contains("PUT /api/v1/environments/qa/access"),
        "{message}"
    );
}

#[test]
fn an_admin_needs_an_environment_grant_too() {
    let admin = user("root", Role::Admin, &[]);
    let all = environments(vec![environment("dev", vec![]), environment("qa", vec![])]);
    let refused = check_environment_access(&admin, &pipeline(Vec::new()), |id| find(&all, id));
    assert!(
        matches!(refused, Err(EngineError::Forbidden(_))),
        "{refused:?}"
    );
    assert!(!can_use_environment(&admin, &environment("qa", vec![])));
    assert!(can_use_environment(
        &admin,
        &environment("qa", vec![Grantee::User("root".into())])
    ));
}

#[test]
fn a_missing_environment_is_not_found_rather_than_allowed() {
    let mona = user("mona", Role::User, &[]);
    let only_dev = environments(vec![environment("dev", vec![Grantee::User("mona".into())])]);
    let refused = check_environment_access(&mona, &pipeline(Vec::new()), |id| find(&only_dev, id));
    assert!(
        matches!(refused, Err(EngineError::NotFound(_))),
        "{refused:?}"
    );
}

#[test]
fn only_an_admin_passes_require_admin() {
    let admin = user("root", Role::Admin, &[]);
    assert_eq!(
        require_admin(&admin, "deleting a plugin")
            .map(|u| u.id.as_str())
            .ok(),
        Some("root")
    );

    let mona = user("mona", Role::User, &["admins"]);
    let error = require_admin(&mona, "deleting a plugin").expect_err("refused");
    let refusal = error.refusal().expect("a refusal");
    assert_eq!(refusal.reason, Refused::Forbidden);
    assert_eq!(
        refusal.detail,
        "deleting a plugin needs the admin role, and you are a user; ask an admin to do it"
    );
    assert_eq!(refusal.facts["required_role"], "admin");
}

fn deployment(variables: Vec<VariableSetting>) -> DeploymentRecord {
    let mut d: DeploymentRecord = serde_json::from_value(json!({
        "id": "d1", "pipeline_id": "p1", "stage_id": "s1",
        "source_environment_id": "dev", "target_environment_id": "qa",
        "solution_name": "crm", "version": "1.0.0.0", "requested_by": "mona",
        "requested_at": 1, "notes": "", "settings": {}, "status": "queued",
        "status_reason": "", "gates": [], "validation": [], "attempt": 0,
        "artifact": {
            "name": "crm", "version": "1.0.0.0", "publisher_prefix": "c",
            "components": [], "package_size": 0, "package_sha256": ""
        },
        "created_at": 1, "updated_at": 1, "revision": 0
    }))
    .expect("a deployment record");
    d.settings.environment_variables = variables;
    d
}

#[test]
fn masking_hides_every_secret_value_and_keeps_the_rest() {
    let d = mask_secrets(deployment(vec![
        VariableSetting {
            name: "api_key".into(),
            value: Some("s3cr3t".into()),
            secret: true,
        },
        VariableSetting {
            name: "region".into(),
            value: Some("eu".into()),
            secret: false,
        },
        VariableSetting {
            name: "token".into(),
            value: Some("t0k3n".into()),
            secret: true,
        },
    ]));
    let values: Vec<(&str, Option<&str>)> = d
        .settings
        .environment_variables
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_deref()))
        .collect();
    assert_eq!(
        values,
        vec![("api_key", None), ("region", Some("eu")), ("token", None)]
    );
    let shown = serde_json::to_string(&d).expect("serializes");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
        "{shown}"
    );
}

#[test]
fn masking_leaves_a_deployment_without_secrets_unchanged() {
    let plain = deployment(vec![VariableSetting {
        name: "region".into(),
        value: Some("eu".into()),
        secret: false,
    }]);
    assert_eq!(mask_secrets(plain.clone()), plain);
}
