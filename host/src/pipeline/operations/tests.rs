//! The operations' rules: what a webhook may filter on, the bounds of retention jobs and
//! of the audit purge, and that only admins reach any of it. They run over the real
//! SQLite store.

use serde_json::json;

use super::*;
use crate::pipeline::audit::now;
use crate::pipeline::model::{PipelineRecord, PipelineSettings, Role, User};
use crate::pipeline::retention::{ArtifactRule, DeploymentRule};
use crate::pipeline::service_error::{Refusal, Refused, ServiceError};
use crate::pipeline::store::{Audit, CatalogStore};
use crate::store::SqlStore;

struct Fixture {
    store: SqlStore,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        Fixture {
            store: SqlStore::connect(&url).await.expect("a store"),
            _dir: dir,
        }
    }

    fn operations(&self) -> Operations<'_> {
        Operations { store: &self.store }
    }

    /// Stores a pipeline `p1` without stages.
    async fn pipeline(&self) {
        let pipeline = PipelineRecord {
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
        };
        let audit = Audit {
            actor: "system".into(),
            action: "pipeline.create".into(),
            target: "p1".into(),
            detail: json!({}),
            at: now(),
        };
        self.store
            .insert_pipeline(&pipeline, &audit)
            .await
            .expect("stored");
    }
}

fn user(role: Role) -> User {
    User {
        id: format!("{role:?}").to_lowercase(),
        name: format!("{role:?}").to_lowercase(),
        display_name: String::new(),
        role,
        groups: Vec::new(),
        created_at: 1,
    }
}

fn refusal<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> Refusal {
    match result {
        Err(ServiceError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn draft() -> WebhookDraft {
    WebhookDraft {
        url: " https://example.com/hook ".into(),
        events: vec!["deployment_completed".into()],
        ..WebhookDraft::default()
    }
}

#[tokio::test]
async fn a_webhook_on_a_stage_its_pipeline_lacks_is_refused_naming_both() {
    let fx = Fixture::new().await;
    fx.pipeline().await;
    let result = fx
        .operations()
        .create_webhook(
            &user(Role::Admin),
            WebhookDraft {
                pipeline_id: Some("p1".into()),
                stage_id: Some("s9".into()),
                ..draft()
            },
        )
        .await;
    let refusal = refusal(result);
    assert_eq!(refusal.reason, Refused::NotFound);
    assert_eq!(refusal.detail, "stage_id s9 is not a stage of pipeline p1");
}

#[tokio::test]
async fn a_webhook_on_an_unknown_pipeline_or_stage_is_refused() {
    let fx = Fixture::new().await;
    fx.pipeline().await;
    let admin = user(Role::Admin);
    let unknown_pipeline = WebhookDraft {
        pipeline_id: Some("nope".into()),
        ..draft()
    };
    let refused = refusal(
        fx.operations()
            .create_webhook(&admin, unknown_pipeline)
            .await,
    );
    assert_eq!(refused.detail, "pipeline_id nope names no pipeline");
    let unknown_stage = WebhookDraft {
        stage_id: Some("s9".into()),
        ..draft()
    };
    let refused = refusal(fx.operations().create_webhook(&admin, unknown_stage).await);
    assert_eq!(refused.detail, "stage_id s9 names no stage");
}

#[tokio::test]
async fn a_new_webhook_gets_defaults_a_secret_and_an_audit_line_without_it() {
    let fx = Fixture::new().await;
    let admin = user(Role::Admin);
    let blank_filter = WebhookDraft {
        pipeline_id: Some(String::new()),
        ..draft()
    };
    let (webhook, secret) = fx
        .operations()
        .create_webhook(&admin, blank_filter)
        .await
        .expect("created");
    assert_eq!(webhook.url, "https://example.com/hook");
    assert_eq!(webhook.pipeline_id, None);
    assert!(webhook.enabled);
    assert_eq!(webhook.give_up_after_seconds, 24 * 3600);
    assert!(secret.starts_with("whsec_"), "{secret}");
    let log = fx
        .operations()
        .audit_log(&admin, None, None)
        .await
        .expect("read");
    let line = log
        .items
        .iter()
        .find(|e| e.action == "webhook.create")
        .expect("an audit line");
    assert_eq!(line.target, webhook.id);
    assert!(!line.detail.to_string().contains(&secret));
}

#[tokio::test]
async fn a_webhook_change_keeps_what_it_leaves_out_and_rotates_on_request() {
    let fx = Fixture::new().await;
    let admin = user(Role::Admin);
    let (webhook, first) = fx
        .operations()
        .create_webhook(&admin, draft())
        .await
        .expect("created");
    let change = WebhookChange {
        description: Some("for the pager".into()),
        ..WebhookChange::default()
    };
    let (changed, secret) = fx
        .operations()
        .update_webhook(&admin, &webhook.id, change)
        .await
        .expect("changed");
    assert_eq!(secret, None);
    assert_eq!(changed.description, "for the pager");
    assert_eq!(changed.url, webhook.url);
    assert_eq!(changed.events, webhook.events);
    let rotate = WebhookChange {
        rotate_secret: true,
        give_up_after_seconds: Some(10),
        ..WebhookChange::default()
    };
    let refused = refusal(
        fx.operations()
            .update_webhook(&admin, &webhook.id, rotate.clone())
            .await,
    );
    assert_eq!(refused.reason, Refused::Invalid);
    let rotate = WebhookChange {
        give_up_after_seconds: None,
        ..rotate
    };
    let (_, secret) = fx
        .operations()
        .update_webhook(&admin, &webhook.id, rotate)
        .await
        .expect("rotated");
    let secret = secret.expect("a new secret");
    assert_ne!(secret, first);
}

#[tokio::test]
async fn retention_jobs_keep_their_bounds_and_dry_runs_are_kept_as_such() {
    let fx = Fixture::new().await;
    let admin = user(Role::Admin);
    for days in [0, 36_501] {
        let job = RetentionJobDraft {
            name: "old".into(),
            deployments: Some(DeploymentRule {
                older_than_days: days,
                statuses: Vec::new(),
            }),
            ..RetentionJobDraft::default()
        };
        let refused = refusal(fx.operations().create_retention_job(&admin, job).await);
        assert_eq!(refused.reason, Refused::Invalid);
        assert!(
            refused.detail.contains(&format!(
                "deployments.older_than_days is {days}, but must be 1 to 36500"
            )),
            "{}",
            refused.detail
        );
    }
    let nothing = RetentionJobDraft {
        name: "nothing".into(),
        ..RetentionJobDraft::default()
    };
    let refused = refusal(fx.operations().create_retention_job(&admin, nothing).await);
    assert!(
        refused.detail.contains("deletes nothing"),
        "{}",
        refused.detail
    );
    let dry = RetentionJobDraft {
        name: "artifacts".into(),
        artifacts: Some(ArtifactRule { keep_versions: 3 }),
        dry_run: true,
        start_at: Some(42),
        ..RetentionJobDraft::default()
    };
    let job = fx
        .operations()
        .create_retention_job(&admin, dry)
        .await
        .expect("scheduled");
    assert!(job.dry_run);
    assert_eq!(job.next_run_at, Some(42));
    assert_eq!(job.created_by, admin.id);
    let stored = fx
        .operations()
        .retention_job(&admin, &job.id)
        .await
        .expect("stored");
    assert_eq!(stored, job);
}

#[tokio::test]
async fn the_audit_log_keeps_at_least_a_month() {
    let fx = Fixture::new().await;
    let admin = user(Role::Admin);
    for days in [0, 29, 36_501] {
        let refused = refusal(fx.operations().purge_audit(&admin, days).await);
        assert_eq!(refused.reason, Refused::Invalid);
        assert_eq!(
            refused.detail,
            format!(
                "older_than_days is {days}, but must be 30 to 36500: the audit log keeps at \
                 least a month"
            )
        );
    }
    let asked = now();
    let purged = fx
        .operations()
        .purge_audit(&admin, 30)
        .await
        .expect("purged");
    let month = 30 * 24 * 3600 * 1000;
    assert!(purged.before >= asked - month && purged.before <= now() - month);
    let log = fx
        .operations()
        .audit_log(&admin, None, None)
        .await
        .expect("read");
    assert_eq!(log.items[0].action, "audit.retention");
}

#[tokio::test]
async fn non_admins_are_refused_every_operation() {
    let fx = Fixture::new().await;
    let user = user(Role::User);
    let ops = fx.operations();
    let refusals = [
        refusal(ops.create_webhook(&user, draft()).await),
        refusal(ops.list_webhooks(&user, &Default::default()).await),
        refusal(ops.delete_webhook(&user, "w").await),
        refusal(ops.redeliver(&user, "w", "d").await),
        refusal(
            ops.create_retention_job(&user, RetentionJobDraft::default())
                .await,
        ),
        refusal(ops.delete_retention_job(&user, "j").await),
        refusal(ops.purge_audit(&user, 90).await),
        // The role is checked before the cursor is read.
        refusal(ops.audit_log(&user, Some("x".into()), None).await),
        refusal(ops.events_after(&user, Some("x"), None).await),
    ];
    for refused in refusals {
        assert_eq!(refused.reason, Refused::Forbidden, "{}", refused.detail);
        assert_eq!(refused.facts["required_role"], "admin");
    }
}

#[tokio::test]
async fn feed_and_log_cursors_must_be_their_own_kind() {
    let fx = Fixture::new().await;
    let admin = user(Role::Admin);
    let ops = fx.operations();
    let refused = refusal(ops.events_after(&admin, Some("-1"), None).await);
    assert_eq!(refused.reason, Refused::Malformed);
    assert!(refused.detail.contains("is not an event cursor"));
    let refused = refusal(ops.events_after(&admin, None, Some(201)).await);
    assert_eq!(refused.detail, "limit is 201, but must be 1 to 200");
    let refused = refusal(ops.audit_log(&admin, Some("abc".into()), None).await);
    assert_eq!(refused.reason, Refused::Malformed);
    assert!(refused.detail.contains("is not an audit entry id"));
    let empty = ops
        .events_after(&admin, Some(" 7 "), None)
        .await
        .expect("read");
    assert_eq!(empty.next, 7);
}
