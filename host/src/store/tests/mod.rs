//! The store's behaviour, on a fresh SQLite file and, when `GATEHOUSE_TEST_DATABASE_URL`
//! names a PostgreSQL server, on a fresh PostgreSQL database made for each test.

mod accounts;
mod catalog;
mod deployments;
mod history;
mod leases;
mod operations;
mod reports;
mod schema;

use std::future::Future;

use sqlx::Connection;

use super::{Backend, SqlStore};
use crate::pipeline::model::*;
use crate::pipeline::ports::SolutionVersion;
use crate::pipeline::store::{
    AccountStore, ArtifactStore, Audit, AuditStore, CatalogStore, DeploymentStore, EventStore,
    Page, ReportStore, RetentionStore, SessionStore, StoreError, TargetClaim, WebhookStore,
};
use crate::pipeline::{ComponentRef, EnvironmentKind};

/// A store on a database of its own, and the URL that opens it again.
pub(super) struct TestDb {
    pub store: SqlStore,
    pub url: String,
}

const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// Runs `scenario` on a fresh SQLite file, then on a fresh PostgreSQL database when
/// `GATEHOUSE_TEST_DATABASE_URL` is set.
pub(super) async fn on_each_backend<F, Fut>(scenario: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    let store = SqlStore::connect(&url).await.expect("SQLite opens");
    eprintln!("scenario on SQLite");
    scenario(TestDb {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;

    let Ok(server_url) = std::env::var(POSTGRES_URL_VAR) else {
        return;
    };
    let database = format!("gh_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::AnyConnection::connect(&server_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL refused: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("a test database is created");
    let url = with_database(&server_url, &database);
    let store = SqlStore::connect(&url).await.expect("PostgreSQL opens");
    eprintln!("scenario on PostgreSQL database {database}");
    // A panic inside the task still lets the database be dropped before it propagates.
    let outcome = tokio::spawn(scenario(TestDb {
        store: store.clone(),
        url,
    }))
    .await;
    store.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("the test database is dropped");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

pub(super) fn audit(action: &str, target: &str) -> Audit {
    Audit {
        actor: "admin-1".into(),
        action: action.into(),
        target: target.into(),
        detail: serde_json::json!({ "why": "test" }),
        at: 1_700_000_000_000,
    }
}

/// The actions of the whole audit log, oldest first.
pub(super) async fn audit_actions(store: &SqlStore) -> Vec<String> {
    let mut entries = store.list_audit(None, 10_000).await.expect("audit log");
    entries.reverse();
    entries.into_iter().map(|e| e.action).collect()
}

pub(super) fn user(name: &str, role: Role) -> User {
    User {
        id: new_id(),
        name: name.into(),
        display_name: format!("{name} (display)"),
        role,
        groups: Vec::new(),
        created_at: 1_700_000_000_001,
    }
}

pub(super) fn environment(name: &str, kind: EnvironmentKind) -> EnvironmentRecord {
    EnvironmentRecord {
        id: new_id(),
        name: name.into(),
        kind,
        environment_id: format!("ext-{name}"),
        url: format!("memory://{name}"),
        has_credential: false,
        validation_status: ValidationStatus::Pending,
        validation_message: String::new(),
        access: vec![Grantee::Group("makers".into())],
        created_at: 1_700_000_000_002,
        updated_at: 1_700_000_000_002,
    }
}

/// A pipeline from `dev` to one stage per target, each after the previous one.
pub(super) fn pipeline(name: &str, dev: &str, targets: &[&str]) -> PipelineRecord {
    let mut stages: Vec<StageRecord> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        stages.push(StageRecord {
            id: new_id(),
            name: format!("stage {i}"),
            description: String::new(),
            previous_stage_id: stages.last().map(|s| s.id.clone()),
            target_environment_id: (*target).into(),
            pre_deployment_step_required: i > 0,
            gates: Vec::new(),
        });
    }
    PipelineRecord {
        id: new_id(),
        name: name.into(),
        description: "from dev to prod".into(),
        development_environment_ids: vec![dev.into()],
        stages,
        validators: Vec::new(),
        settings: PipelineSettings::default(),
        shares: vec![Grantee::Group("makers".into())],
        created_at: 1_700_000_000_003,
        updated_at: 1_700_000_000_003,
        revision: 0,
    }
}

pub(super) fn plugin(name: &str, version: &str, component: &[u8]) -> PluginRecord {
    use sha2::Digest;
    PluginRecord {
        id: new_id(),
        name: name.into(),
        version: version.into(),
        world: crate::pipeline::PluginWorld::Approver,
        description: format!("{name} gate"),
        config_keys: vec!["approvers".into()],
        sha256: hex::encode(sha2::Sha256::digest(component)),
        size: component.len() as u64,
        enabled: true,
        limits: crate::pipeline::plugin_limits::PluginLimits::default(),
        created_at: 1_700_000_000_004,
    }
}

/// A queued deployment of `version` of `crm` to `target`, due at `next_run_at`.
pub(super) fn deployment(
    target: &str,
    version: &str,
    next_run_at: Option<u64>,
) -> DeploymentRecord {
    DeploymentRecord {
        id: new_id(),
        pipeline_id: "pipeline-1".into(),
        stage_id: "stage-1".into(),
        source_environment_id: "dev-1".into(),
        target_environment_id: target.into(),
        solution_name: "crm".into(),
        version: version.into(),
        requested_by: "maker-1".into(),
        requested_at: 1_700_000_000_000,
        scheduled_for: None,
        notes: "please".into(),
        settings: DeploymentSettings {
            environment_variables: vec![VariableSetting {
                name: "api_key".into(),
                value: Some("s3cret".into()),
                secret: true,
            }],
            connection_references: [("sql".to_owned(), "conn-1".to_owned())].into(),
        },
        status: DeploymentStatus::Queued,
        status_reason: String::new(),
        pre_deployment_status: None,
        pre_deployment_override: None,
        gate_bindings: Vec::new(),
        gates: Vec::new(),
        validation: Vec::new(),
        attempt: 1,
        attempt_started_at: 0,
        next_run_at,
        idempotency_key: None,
        installed_version: None,
        artifact: SolutionVersion {
            name: "crm".into(),
            version: version.into(),
            publisher_prefix: "contoso".into(),
            components: vec![ComponentRef {
                kind: "table".into(),
                name: "account".into(),
            }],
            package_size: 4096,
            package_sha256: "ab".repeat(32),
            unmanaged: None,
            manifest: None,
        },
        environment_attempts: 0,
        import_started: false,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        finished_at: None,
        revision: 0,
    }
}

pub(super) fn event(deployment: &DeploymentRecord, seq: u32, kind: &str) -> TimelineEvent {
    TimelineEvent {
        deployment_id: deployment.id.clone(),
        seq,
        at: 1_700_000_000_000 + u64::from(seq),
        kind: kind.into(),
        actor: Some("maker-1".into()),
        detail: serde_json::json!({ "seq": seq }),
    }
}

pub(super) fn page(after: Option<&str>, limit: u32) -> Page {
    Page {
        after: after.map(str::to_owned),
        limit,
    }
}

#[track_caller]
pub(super) fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Conflict(message)) if message.contains(needle) => {}
        other => panic!("expected a conflict saying {needle:?}, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(message)) if message == what => {}
        other => panic!("expected {what:?} not found, got {other:?}"),
    }
}

#[test]
fn test_database_urls_keep_their_host_and_options() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "gh_x"),
        "postgres://postgres@127.0.0.1:5432/gh_x"
    );
    assert_eq!(
        with_database("postgres://u:p@db/test?sslmode=disable", "gh_x"),
        "postgres://u:p@db/gh_x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://db", "gh_x"), "postgres://db/gh_x");
}

#[tokio::test]
async fn both_backends_report_themselves() {
    on_each_backend(|db| async move {
        let expected = if db.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(db.store.backend(), expected);
    })
    .await;
}
