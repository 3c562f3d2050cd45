//! The catalog's rules: which plugin may be bound where, with which configuration, and
//! what an environment needs to be registered. Bindings run over the real SQLite store
//! and a plugin port whose `check-config` answer each test chooses.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::environment::Environments;
use crate::environment::http::HttpEnvironments;
use crate::environment::memory::MemoryEnvironments;
use crate::pipeline::accounts::token_sha256;
use crate::pipeline::audit::now;
use crate::pipeline::model::{
    BindingMode, GateBinding, PipelineRecord, PipelineSettings, PluginRecord, new_id,
};
use crate::pipeline::plugin_admin::{InspectedPlugin, PluginLoadError, PluginStats};
use crate::pipeline::service_error::{Refused, ServiceError};
use crate::pipeline::store::{Audit, CatalogStore};
use crate::pipeline::{Config, PluginWorld};
use crate::store::SqlStore;

/// What the fake runtime's `check-config` answers.
#[derive(Clone)]
enum ConfigAnswer {
    Accept,
    Refuse(&'static str),
    Fail(&'static str),
}

struct Plugins {
    answer: Mutex<ConfigAnswer>,
}

#[async_trait]
impl PluginAdmin for Plugins {
    async fn inspect(&self, _bytes: Vec<u8>) -> Result<InspectedPlugin, PluginLoadError> {
        Err(PluginLoadError::Refused("not used by these tests".into()))
    }

    async fn activate(&self, _record: &PluginRecord, _bytes: Vec<u8>) -> Result<(), String> {
        Ok(())
    }

    fn deactivate(&self, _plugin_id: &str) {}

    async fn check_config(
        &self,
        _plugin_id: &str,
        _config: &Config,
    ) -> Result<Result<(), String>, String> {
        match self.answer.lock().expect("not poisoned").clone() {
            ConfigAnswer::Accept => Ok(Ok(())),
            ConfigAnswer::Refuse(message) => Ok(Err(message.to_owned())),
            ConfigAnswer::Fail(cause) => Err(cause.to_owned()),
        }
    }

    fn stats(&self, _plugin_id: &str) -> PluginStats {
        PluginStats::default()
    }
}

struct Fixture {
    store: SqlStore,
    plugins: Plugins,
    environments: Environments,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(answer: ConfigAnswer) -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        Fixture {
            store: SqlStore::connect(&url).await.expect("a store"),
            plugins: Plugins {
                answer: Mutex::new(answer),
            },
            environments: Environments::new(
                Arc::new(MemoryEnvironments::default()),
                HttpEnvironments::default(),
            ),
            _dir: dir,
        }
    }

    fn catalog(&self) -> Catalog<'_> {
        Catalog {
            store: &self.store,
            plugins: &self.plugins,
            environments: &self.environments,
        }
    }

    async fn plugin(&self, world: PluginWorld, enabled: bool) -> PluginRecord {
        // Each plugin gets its own bytes, so their blobs differ.
        let id = new_id();
        let component = format!("component {id}");
        let record = PluginRecord {
            name: format!("plugin-{id}"),
            id,
            version: "1.0.0".into(),
            world,
            description: String::new(),
            config_keys: vec!["timezone".into()],
            sha256: token_sha256(&component),
            size: component.len() as u64,
            enabled,
            limits: Default::default(),
            created_at: now(),
        };
        let audit = Audit {
            actor: "system".into(),
            action: "plugin.upload".into(),
            target: record.id.clone(),
            detail: json!({}),
            at: now(),
        };
        self.store
            .insert_plugin(&record, component.as_bytes(), &audit)
            .await
            .expect("stored");
        record
    }
}

fn pipeline() -> PipelineRecord {
    PipelineRecord {
        id: "p1".into(),
        name: "Expenses".into(),
        description: String::new(),
        development_environment_ids: Vec::new(),
        stages: Vec::new(),
        validators: Vec::new(),
        settings: PipelineSettings::default(),
        shares: Vec::new(),
        created_at: 1,
        updated_at: 1,
        revision: 0,
    }
}

fn refusal(result: Result<PluginRecord, ServiceError>) -> crate::pipeline::service_error::Refusal {
    match result {
        Err(ServiceError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn binding_an_unknown_plugin_is_refused_with_its_id() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let result = fx
        .catalog()
        .check_binding(&pipeline(), "nope", &Config::new(), PluginWorld::Approver)
        .await;
    let refusal = refusal(result);
    assert_eq!(refusal.reason, Refused::NotFound);
    assert!(
        refusal.detail.contains("plugin nope does not exist"),
        "{}",
        refusal.detail
    );
    assert_eq!(refusal.facts["plugin_id"], "nope");
}

#[tokio::test]
async fn binding_a_disabled_plugin_is_refused() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let plugin = fx.plugin(PluginWorld::Approver, false).await;
    let result = fx
        .catalog()
        .check_binding(
            &pipeline(),
            &plugin.id,
            &Config::new(),
            PluginWorld::Approver,
        )
        .await;
    let refusal = refusal(result);
    assert_eq!(refusal.reason, Refused::Conflict);
    assert!(refusal.detail.contains("is disabled"), "{}", refusal.detail);
}

#[tokio::test]
async fn a_validator_cannot_be_a_gate_nor_an_approver_a_validator() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let validator = fx.plugin(PluginWorld::Validator, true).await;
    let as_gate = refusal(
        fx.catalog()
            .check_binding(
                &pipeline(),
                &validator.id,
                &Config::new(),
                PluginWorld::Approver,
            )
            .await,
    );
    assert_eq!(as_gate.code, Some("wrong-plugin-world"));
    assert_eq!(as_gate.facts["plugin_world"], "validator");
    assert!(
        as_gate
            .detail
            .contains("PUT /api/v1/pipelines/p1/validators"),
        "{}",
        as_gate.detail
    );

    let approver = fx.plugin(PluginWorld::Approver, true).await;
    let as_validator = refusal(
        fx.catalog()
            .check_binding(
                &pipeline(),
                &approver.id,
                &Config::new(),
                PluginWorld::Validator,
            )
            .await,
    );
    assert_eq!(as_validator.code, Some("wrong-plugin-world"));
    assert!(
        as_validator.detail.contains("cannot be a validator"),
        "{}",
        as_validator.detail
    );
}

#[tokio::test]
async fn a_configuration_the_plugin_refuses_is_refused_in_its_words() {
    let fx = Fixture::new(ConfigAnswer::Refuse("timezone is not a zone")).await;
    let plugin = fx.plugin(PluginWorld::Approver, true).await;
    let refusal = refusal(
        fx.catalog()
            .check_binding(
                &pipeline(),
                &plugin.id,
                &Config::new(),
                PluginWorld::Approver,
            )
            .await,
    );
    assert_eq!(refusal.code, Some("plugin-config-refused"));
    assert_eq!(refusal.title, Some("The plugin refused its configuration"));
    assert_eq!(refusal.facts["plugin_message"], "timezone is not a zone");
}

#[tokio::test]
async fn a_plugin_that_fails_checking_its_configuration_refuses_the_binding() {
    let fx = Fixture::new(ConfigAnswer::Fail("out of fuel")).await;
    let plugin = fx.plugin(PluginWorld::Validator, true).await;
    let refusal = refusal(
        fx.catalog()
            .check_binding(
                &pipeline(),
                &plugin.id,
                &Config::new(),
                PluginWorld::Validator,
            )
            .await,
    );
    assert_eq!(refusal.code, Some("plugin-failed"));
    assert!(refusal.detail.contains("out of fuel"), "{}", refusal.detail);
}

#[tokio::test]
async fn an_enabled_plugin_of_the_right_world_with_an_accepted_configuration_binds() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let plugin = fx.plugin(PluginWorld::Approver, true).await;
    let bound = fx
        .catalog()
        .check_binding(
            &pipeline(),
            &plugin.id,
            &Config::new(),
            PluginWorld::Approver,
        )
        .await
        .expect("binds");
    assert_eq!(bound.id, plugin.id);
}

#[tokio::test]
async fn a_gate_with_a_zero_approval_timeout_is_refused_before_its_plugin_is_asked() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let gate = GateBinding {
        id: String::new(),
        plugin_id: "never-looked-up".into(),
        config: Config::new(),
        approval_timeout_seconds: Some(0),
        mode: BindingMode::Live,
    };
    let error = fx
        .catalog()
        .check_gates(&pipeline(), &[gate])
        .await
        .expect_err("refused");
    let refusal = error.refusal().expect("a refusal");
    assert!(
        refusal
            .detail
            .starts_with("approval_timeout_seconds must be at least 1")
    );
}

#[test]
fn a_stage_needs_a_name_that_is_not_blank() {
    assert!(check_stage_name("QA").is_ok());
    let error = check_stage_name("  ").expect_err("refused");
    assert_eq!(error.refusal().map(|r| r.reason), Some(Refused::Invalid));
}

#[test]
fn an_environment_needs_a_name_its_id_and_a_url_with_a_known_scheme() {
    assert!(check_fields("QA", "qa", "https://qa.example").is_ok());
    assert!(check_fields("QA", "qa", "memory://qa").is_ok());
    for (name, id, url, says) in [
        (" ", "qa", "memory://qa", "needs a name"),
        ("QA", "", "memory://qa", "environment_id"),
        ("QA", "qa", "ftp://qa", "must start with http://"),
        ("QA", "qa", "https://", "must start with http://"),
    ] {
        let error = check_fields(name, id, url).expect_err("refused");
        assert!(error.to_string().contains(says), "{url}: {error}");
    }
}

fn member(role: crate::pipeline::model::Role) -> crate::pipeline::model::User {
    crate::pipeline::model::User {
        id: "u1".into(),
        name: "u1".into(),
        display_name: "U One".into(),
        role,
        groups: Vec::new(),
        created_at: 1,
    }
}

fn stage(id: &str, previous: Option<&str>) -> crate::pipeline::model::StageRecord {
    crate::pipeline::model::StageRecord {
        id: id.into(),
        name: format!("stage {id}"),
        description: String::new(),
        previous_stage_id: previous.map(str::to_owned),
        target_environment_id: "env".into(),
        pre_deployment_step_required: false,
        gates: Vec::new(),
    }
}

#[tokio::test]
async fn a_stage_that_another_follows_cannot_be_deleted_and_the_refusal_names_it() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let mut chain = pipeline();
    chain.stages = vec![stage("qa", None), stage("prod", Some("qa"))];
    let admin = member(crate::pipeline::model::Role::Admin);
    let error = fx
        .catalog()
        .delete_stage(&admin, chain, "qa")
        .await
        .expect_err("refused");
    let refusal = error.refusal().expect("a refusal");
    assert_eq!(
        refusal.reason,
        crate::pipeline::service_error::Refused::Conflict
    );
    assert!(
        refusal.detail.contains("stage \"stage prod\" follows"),
        "{}",
        refusal.detail
    );
    assert_eq!(refusal.facts["next_stage_id"], "prod");
}

#[tokio::test]
async fn stage_changes_need_an_admin_and_a_stage_that_exists() {
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let mut chain = pipeline();
    chain.stages = vec![stage("qa", None)];
    let maker = member(crate::pipeline::model::Role::User);
    let refused = fx
        .catalog()
        .delete_stage(&maker, chain.clone(), "qa")
        .await
        .expect_err("a maker may not delete a stage");
    assert_eq!(
        refused.refusal().expect("a refusal").reason,
        crate::pipeline::service_error::Refused::Forbidden
    );
    let admin = member(crate::pipeline::model::Role::Admin);
    let missing = fx
        .catalog()
        .update_stage(&admin, chain, "nowhere", StageChange::default())
        .await
        .expect_err("no such stage");
    let refusal = missing.refusal().expect("a refusal");
    assert_eq!(
        refusal.reason,
        crate::pipeline::service_error::Refused::NotFound
    );
    assert!(
        refusal.detail.contains("has no stage nowhere"),
        "{}",
        refusal.detail
    );
}

#[tokio::test]
async fn validating_an_environment_outside_the_outbound_allow_list_says_the_host_refused() {
    let mut fx = Fixture::new(ConfigAnswer::Accept).await;
    let allow = "10.0.0.0/8".parse().expect("a valid allow-list");
    fx.environments = Environments::new(
        Arc::new(MemoryEnvironments::default()),
        HttpEnvironments::new(&allow).expect("a client"),
    );
    let admin = member(crate::pipeline::model::Role::Admin);
    let draft = EnvironmentDraft {
        name: "QA".into(),
        kind: crate::pipeline::EnvironmentKind::Target,
        environment_id: "qa".into(),
        url: "http://192.168.0.9:8090".into(),
        credential: None,
        access: Vec::new(),
    };
    let env = fx
        .catalog()
        .create_environment(&admin, draft)
        .await
        .expect("registered");
    let env = fx
        .catalog()
        .validate_environment(&admin, &env.id, false)
        .await
        .expect("validated, as a failure");
    assert_eq!(
        env.validation_status,
        crate::pipeline::model::ValidationStatus::Failed
    );
    assert!(
        env.validation_message.starts_with(
            "this host may not call the environment at http://192.168.0.9:8090: refused by \
             GATEHOUSE_OUTBOUND_ALLOW: 192.168.0.9 is not in the allowed list;"
        ),
        "{}",
        env.validation_message
    );
}

/// An environment at `memory://<name>`, stored as it is, used by `access`.
async fn memory_environment(
    fx: &Fixture,
    name: &str,
    kind: crate::pipeline::EnvironmentKind,
    access: Vec<crate::pipeline::model::Grantee>,
) -> crate::pipeline::model::EnvironmentRecord {
    let env = crate::pipeline::model::EnvironmentRecord {
        id: new_id(),
        name: name.into(),
        kind,
        environment_id: name.into(),
        url: format!("memory://{name}"),
        has_credential: false,
        validation_status: crate::pipeline::model::ValidationStatus::Success,
        validation_message: String::new(),
        access,
        created_at: now(),
        updated_at: now(),
    };
    let audit = Audit {
        actor: "system".into(),
        action: "environment.create".into(),
        target: env.id.clone(),
        detail: json!({}),
        at: now(),
    };
    fx.store
        .insert_environment(&env, None, &audit)
        .await
        .expect("stored");
    env
}

fn held(name: &str, version: &str) -> crate::pipeline::ports::SolutionVersion {
    crate::pipeline::ports::SolutionVersion {
        name: name.into(),
        version: version.into(),
        publisher_prefix: "con".into(),
        components: Vec::new(),
        package_size: 0,
        package_sha256: String::new(),
        unmanaged: None,
        manifest: None,
    }
}

#[tokio::test]
async fn a_source_lists_what_it_holds_to_those_who_may_deploy_from_it() {
    use crate::pipeline::EnvironmentKind::{Development, Target};
    use crate::pipeline::model::{Grantee, Role};
    let fx = Fixture::new(ConfigAnswer::Accept).await;
    let user = member(Role::User);
    let admin = member(Role::Admin);
    let theirs = vec![Grantee::User(user.id.clone())];
    let dev = memory_environment(&fx, "dev", Development, theirs.clone()).await;
    let qa = memory_environment(&fx, "qa", Target, theirs).await;
    let closed = memory_environment(&fx, "closed", Development, Vec::new()).await;
    fx.environments.memory.put("dev", held("crm", "1.0.0.3"));
    fx.environments.memory.put("dev", held("app", "2.0.0.0"));
    fx.environments
        .memory
        .put("closed", held("secret_app", "1.0.0.0"));

    let listed = fx
        .catalog()
        .source_solutions(&user, &dev.id)
        .await
        .expect("the source's solutions");
    let listed: Vec<(&str, &str)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.version.as_str()))
        .collect();
    assert_eq!(listed, [("app", "2.0.0.0"), ("crm", "1.0.0.3")], "by name");

    // Deploying from an environment needs access to it, for admins too.
    for actor in [&user, &admin] {
        let Err(ServiceError::Refused(refusal)) =
            fx.catalog().source_solutions(actor, &closed.id).await
        else {
            panic!(
                "{:?} listed an environment without access to it",
                actor.role
            );
        };
        assert_eq!(refusal.reason, Refused::Forbidden);
        assert!(refusal.detail.contains("closed"), "{}", refusal.detail);
    }
    let Err(ServiceError::Refused(refusal)) = fx.catalog().source_solutions(&user, &qa.id).await
    else {
        panic!("a target is no source");
    };
    assert_eq!(refusal.reason, Refused::Conflict);
    assert!(
        fx.catalog().source_solutions(&user, "nope").await.is_err(),
        "an unknown environment lists nothing"
    );
}
