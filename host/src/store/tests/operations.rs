//! The event feed, webhook deliveries and retention sweeps.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::pipeline::events::LifecycleEvent;
use crate::pipeline::retention::{ArtifactRule, DeploymentRule, RetentionJob, SweepQuery};
use crate::pipeline::webhooks::{DeliveryAttempt, DeliveryStatus, WebhookRecord, after_attempt};

fn timeline(d: &DeploymentRecord, kinds: &[&str]) -> Vec<TimelineEvent> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| event(d, i as u32 + 1, kind))
        .collect()
}

async fn feed(store: &SqlStore) -> Vec<LifecycleEvent> {
    store.events_after(0, 10_000).await.expect("the feed reads")
}

#[tokio::test]
async fn lifecycle_events_get_positions_once_in_timeline_order() {
    on_each_backend(|db| async move {
        let store = db.store;
        let a = deployment("qa", "1.0.0.1", Some(5));
        let b = deployment("uat", "1.0.0.1", Some(5));
        for d in [&a, &b] {
            let events = timeline(
                d,
                &["requested", "validation_started", "pre_deployment_started"],
            );
            store
                .insert_deployment(d, &events, &audit("deployment.create", &d.id))
                .await
                .unwrap();
        }
        assert!(
            feed(&store).await.is_empty(),
            "nothing is in the feed before it is numbered"
        );
        assert_eq!(store.sequence_events(500).await.unwrap(), 4);

        let mut done = a.clone();
        done.status = DeploymentStatus::Succeeded;
        done.finished_at = Some(1_700_000_000_100);
        let mut completed = event(&done, 0, "deployment_completed");
        completed.detail = serde_json::json!({ "status": "succeeded", "reason": "" });
        store
            .save_deployment(&done, &[event(&done, 0, "vote"), completed], None)
            .await
            .unwrap();
        assert_eq!(store.sequence_events(500).await.unwrap(), 1);
        assert_eq!(
            store.sequence_events(500).await.unwrap(),
            0,
            "numbered once"
        );

        let events = feed(&store).await;
        let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5]);
        let of_a: Vec<(&str, u32)> = events
            .iter()
            .filter(|e| e.deployment_id == a.id)
            .map(|e| (e.event.as_str(), e.seq))
            .collect();
        assert_eq!(
            of_a,
            [
                ("deployment_requested", 1),
                ("pre_deployment_started", 3),
                ("deployment_completed", 5)
            ]
        );
        let last = events.last().unwrap();
        assert_eq!(last.status.as_deref(), Some("succeeded"));
        assert_eq!(
            (last.solution.as_str(), last.version.as_str()),
            ("crm", "1.0.0.1")
        );
        assert_eq!(last.pipeline_id, "pipeline-1");
        assert_eq!(store.events_after(4, 10).await.unwrap().len(), 1);
        assert!(store.events_after(5, 10).await.unwrap().is_empty());
    })
    .await;
}

/// Writers commit in any order while a sequencer runs and a poller follows the feed: the
/// poller sees every lifecycle event once, each deployment's in timeline order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poller_misses_nothing_while_writers_commit_concurrently() {
    on_each_backend(|db| async move {
        let store = std::sync::Arc::new(db.store);
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let mut d = deployment(&format!("t{w}-{i}"), "1.0.0.1", Some(1));
                        let first = timeline(&d, &["requested", "pre_deployment_started"]);
                        store
                            .insert_deployment(&d, &first, &audit("deployment.create", &d.id))
                            .await
                            .unwrap();
                        for kind in ["pre_deployment_completed", "deployment_started"] {
                            d.revision = store
                                .save_deployment(&d, &[event(&d, 0, kind)], None)
                                .await
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        let sequencer = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    store.sequence_events(7).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut seen: Vec<LifecycleEvent> = Vec::new();
        let mut after = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.len() < 8 * 10 * 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "saw only {} events",
                seen.len()
            );
            let page = store.events_after(after, 13).await.unwrap();
            if let Some(last) = page.last() {
                after = last.position;
            }
            seen.extend(page);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        for writer in writers {
            writer.await.unwrap();
        }
        sequencer.abort();
        let positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        let mut per_deployment: HashMap<&str, Vec<u32>> = HashMap::new();
        for e in &seen {
            per_deployment
                .entry(&e.deployment_id)
                .or_default()
                .push(e.seq);
        }
        assert_eq!(per_deployment.len(), 80);
        for seqs in per_deployment.values() {
            assert_eq!(
                seqs,
                &[1, 2, 3, 4],
                "each deployment's events in order, none twice"
            );
        }
    })
    .await;
}

fn webhook(events: &[&str], pipeline: Option<&str>) -> WebhookRecord {
    WebhookRecord {
        id: new_id(),
        url: "http://127.0.0.1:9/hook".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        pipeline_id: pipeline.map(str::to_owned),
        stage_id: None,
        description: String::new(),
        enabled: true,
        give_up_after_seconds: 3600,
        created_at: 1,
        updated_at: 1,
    }
}

fn answered(attempt: u32, at: u64, code: u16) -> DeliveryAttempt {
    DeliveryAttempt {
        attempt,
        at,
        status_code: Some(code),
        error: None,
        duration_ms: 3,
    }
}

#[tokio::test]
async fn deliveries_are_queued_retried_after_a_lapsed_lease_and_recorded() {
    on_each_backend(|db| async move {
        let store = db.store;
        let hook = webhook(&["deployment_requested"], Some("pipeline-1"));
        let other = webhook(&["deployment_requested"], Some("another-pipeline"));
        store
            .insert_webhook(&hook, "whsec_1", &audit("webhook.create", &hook.id))
            .await
            .unwrap();
        store
            .insert_webhook(&other, "whsec_2", &audit("webhook.create", &other.id))
            .await
            .unwrap();
        let d = deployment("qa", "1.0.0.1", Some(5));
        store
            .insert_deployment(
                &d,
                &timeline(&d, &["requested"]),
                &audit("deployment.create", &d.id),
            )
            .await
            .unwrap();
        store.sequence_events(500).await.unwrap();

        let now = crate::pipeline::engine::now_ms();
        let first = store.claim_deliveries(now, now + 30_000, 10).await.unwrap();
        assert_eq!(first.len(), 1, "only the webhook of this pipeline gets it");
        let due = &first[0];
        assert_eq!(
            (due.webhook_id.as_str(), due.attempt),
            (hook.id.as_str(), 1)
        );
        assert_eq!(due.secret, "whsec_1");
        let body: serde_json::Value = serde_json::from_str(&due.payload).unwrap();
        assert_eq!(body["event"], "deployment_requested");
        assert_eq!(body["data"]["deployment_id"], d.id.as_str());
        assert!(
            store
                .claim_deliveries(now, now + 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // The sender died: after its lease the delivery is due again, as attempt 2.
        let later = now + 31_000;
        let second = store
            .claim_deliveries(later, later + 30_000, 10)
            .await
            .unwrap();
        assert_eq!(second[0].attempt, 2);
        let failed = answered(2, later, 500);
        let after = after_attempt(&failed, later, due.give_up_at);
        assert_eq!(after.status, DeliveryStatus::Pending);
        store.record_attempt(&due.id, &failed, after).await.unwrap();
        let retry_at = after.next_attempt_at.unwrap();
        assert!(
            store
                .claim_deliveries(retry_at - 1, retry_at + 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let third = store
            .claim_deliveries(retry_at, retry_at + 30_000, 10)
            .await
            .unwrap();
        let ok = answered(3, retry_at, 200);
        store
            .record_attempt(
                &third[0].id,
                &ok,
                after_attempt(&ok, retry_at, due.give_up_at),
            )
            .await
            .unwrap();

        let listed = store
            .list_deliveries(&hook.id, &page(None, 10))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, DeliveryStatus::Delivered);
        assert_eq!(listed[0].last_status_code, Some(200));
        let codes: Vec<Option<u16>> = listed[0]
            .attempt_log
            .iter()
            .map(|a| a.status_code)
            .collect();
        assert_eq!(
            codes,
            [Some(500), Some(200)],
            "the crashed attempt left no answer"
        );

        let again = store
            .redeliver(
                &hook.id,
                &due.id,
                retry_at,
                retry_at + 60_000,
                &audit("webhook.redeliver", &due.id),
            )
            .await
            .unwrap();
        assert_eq!(
            (again.status, again.next_attempt_at),
            (DeliveryStatus::Pending, Some(retry_at))
        );
        assert_not_found(
            store
                .redeliver(&other.id, &due.id, 0, 0, &audit("webhook.redeliver", "x"))
                .await,
            &format!("delivery {} of webhook {}", due.id, other.id),
        );
        store
            .delete_webhook(&hook.id, &audit("webhook.delete", &hook.id))
            .await
            .unwrap();
        assert!(
            store
                .list_deliveries(&hook.id, &page(None, 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_not_found(
            store.get_webhook(&hook.id).await,
            &format!("webhook {}", hook.id),
        );
    })
    .await;
}

/// A deployment that finished at `finished_at`, with a timeline of two events.
async fn finished(
    store: &SqlStore,
    target: &str,
    version: &str,
    status: DeploymentStatus,
    finished_at: u64,
) -> DeploymentRecord {
    let mut d = deployment(target, version, None);
    d.status = status;
    d.finished_at = Some(finished_at);
    store
        .insert_deployment(
            &d,
            &timeline(&d, &["requested", "deployment_completed"]),
            &audit("deployment.create", &d.id),
        )
        .await
        .unwrap();
    d
}

const DAY: u64 = 24 * 3600 * 1000;

#[tokio::test]
async fn a_sweep_deletes_old_finished_deployments_but_not_the_installed_one() {
    on_each_backend(|db| async move {
        let store = db.store;
        let now = 1_800_000_000_000;
        let old = now - 40 * DAY;
        let older = finished(
            &store,
            "qa",
            "1.0.0.1",
            DeploymentStatus::Succeeded,
            old - 10,
        )
        .await;
        let installed = finished(&store, "qa", "1.0.0.2", DeploymentStatus::Succeeded, old).await;
        let failed = finished(&store, "qa", "1.0.0.3", DeploymentStatus::Failed, old + 10).await;
        let recent = finished(&store, "qa", "1.0.0.4", DeploymentStatus::Failed, now - DAY).await;
        let unfinished = deployment("qa", "1.0.0.5", Some(1));
        store
            .insert_deployment(
                &unfinished,
                &timeline(&unfinished, &["requested"]),
                &audit("deployment.create", "u"),
            )
            .await
            .unwrap();
        store.sequence_events(500).await.unwrap();
        let unsequenced = finished(&store, "uat", "1.0.0.1", DeploymentStatus::Failed, old).await;
        let rule = DeploymentRule {
            older_than_days: 30,
            statuses: Vec::new(),
        };
        let mut job = RetentionJob {
            id: new_id(),
            name: "old".into(),
            deployments: Some(rule.clone()),
            artifacts: None,
            every_hours: None,
            dry_run: true,
            created_by: "admin-1".into(),
            created_at: now,
            next_run_at: Some(now),
            runs: 0,
            last_run: None,
        };
        job.validate().unwrap();
        let mut query = SweepQuery {
            finished_before: RetentionJob::cutoff(&rule, now),
            statuses: job.deployments.clone().unwrap().statuses,
            keep: store
                .installed_deployments()
                .await
                .unwrap()
                .into_iter()
                .collect(),
            after: None,
            limit: 1,
            delete: false,
        };
        assert!(query.keep.contains(&installed.id) && !query.keep.contains(&older.id));
        // The unsequenced deployment's events are not yet in the feed: it waits for them.
        let mut would_go = Vec::new();
        loop {
            let batch = store.sweep_deployments(&query).await.unwrap();
            would_go.extend(batch.deployments);
            match batch.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(would_go, [older.id.clone(), failed.id.clone()]);
        assert!(
            store.get_deployment(&older.id).await.is_ok(),
            "a dry run deletes nothing"
        );

        store.sequence_events(500).await.unwrap();
        query.after = None;
        query.delete = true;
        query.limit = 500;
        let batch = store.sweep_deployments(&query).await.unwrap();
        assert_eq!(batch.deployments.len(), 3);
        assert_eq!(batch.timeline_events, 6);
        assert!(batch.next.is_none());
        for gone in [&older, &failed, &unsequenced] {
            assert_not_found(
                store.get_deployment(&gone.id).await,
                &format!("deployment {}", gone.id),
            );
            assert!(store.timeline(&gone.id).await.unwrap().is_empty());
        }
        for kept in [&installed, &recent, &unfinished] {
            assert!(
                store.get_deployment(&kept.id).await.is_ok(),
                "{} is kept",
                kept.version
            );
        }
        let seen: HashSet<String> = feed(&store)
            .await
            .into_iter()
            .map(|e| e.deployment_id)
            .collect();
        assert!(
            !seen.contains(&older.id),
            "the feed holds no event of a deleted deployment"
        );
    })
    .await;
}

fn artifact(version: &str, managed: &str) -> ArtifactRecord {
    let manifest = serde_json::from_value(serde_json::json!({
        "unique_name": "crm", "display_name": "CRM", "version": version,
        "publisher": { "unique_name": "contoso", "prefix": "contoso" },
    }))
    .expect("a manifest");
    ArtifactRecord {
        id: new_id(),
        solution_name: "crm".into(),
        version: version.into(),
        managed: crate::pipeline::ports::PackageRef {
            sha256: managed.repeat(64),
            size: 1,
        },
        unmanaged: crate::pipeline::ports::PackageRef {
            sha256: format!("{version}-u"),
            size: 1,
        },
        manifest,
        source_environment_id: "dev-1".into(),
        deployment_id: "d".into(),
        created_at: 1,
    }
}

#[tokio::test]
async fn artifacts_beyond_the_newest_versions_go_unless_installed_or_in_flight() {
    on_each_backend(|db| async move {
        let store = db.store;
        let dir = tempfile::tempdir().unwrap();
        // 1.0.0.2 and 1.0.0.3 share a managed package.
        for (version, managed) in [
            ("1.0.0.1", "a"),
            ("1.0.0.2", "b"),
            ("1.0.0.3", "b"),
            ("1.0.0.4", "c"),
            ("1.0.0.5", "d"),
            ("1.0.0.6", "e"),
        ] {
            store
                .insert_artifact(&artifact(version, managed))
                .await
                .unwrap();
            std::fs::write(dir.path().join(managed.repeat(64)), b"zip").unwrap();
        }
        finished(&store, "qa", "1.0.0.1", DeploymentStatus::Succeeded, 10).await;
        let in_flight = deployment("uat", "1.0.0.4", Some(1));
        store
            .insert_deployment(&in_flight, &[], &audit("deployment.create", "x"))
            .await
            .unwrap();
        let job = RetentionJob {
            id: new_id(),
            name: "artifacts".into(),
            deployments: None,
            artifacts: Some(ArtifactRule { keep_versions: 2 }),
            every_hours: Some(24),
            dry_run: false,
            created_by: "admin-1".into(),
            created_at: 0,
            next_run_at: Some(0),
            runs: 0,
            last_run: None,
        };
        store
            .insert_retention_job(&job, &audit("retention.create", &job.id))
            .await
            .unwrap();
        let claimed = store
            .claim_retention_job(5, 1000)
            .await
            .unwrap()
            .expect("due");
        assert!(
            store.claim_retention_job(6, 1000).await.unwrap().is_none(),
            "leased"
        );
        let ran = crate::pipeline::retention::run_job(&store, dir.path(), claimed)
            .await
            .unwrap();
        let run = ran.last_run.clone().unwrap();
        assert_eq!(run.error, None);
        assert_eq!(run.artifacts, 2, "{run:?}");
        let mut kept: Vec<String> = store
            .list_artifacts(Some("crm"), &page(None, 50))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.version)
            .collect();
        kept.sort();
        assert_eq!(kept, ["1.0.0.1", "1.0.0.4", "1.0.0.5", "1.0.0.6"]);
        // Only b's package lost every artifact that used it.
        assert_eq!(run.package_files, 1);
        assert!(!dir.path().join("b".repeat(64)).exists());
        assert!(dir.path().join("a".repeat(64)).exists());
        let stored = store.get_retention_job(&job.id).await.unwrap();
        assert_eq!((stored.runs, stored.last_run.is_some()), (1, true));
        assert!(stored.next_run_at.unwrap() >= run.finished_at + 24 * 3600 * 1000);
        assert!(
            audit_actions(&store)
                .await
                .contains(&"retention.run".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_is_deleted_only_by_its_own_retention_call() {
    on_each_backend(|db| async move {
        let store = db.store;
        for at in [1_000, 2_000, 3_000] {
            let line = Audit {
                at,
                ..audit("user.sign_in", "u")
            };
            store.append_audit(&line).await.unwrap();
        }
        let direct = sqlx::query("DELETE FROM audit_log")
            .execute(&store.db.writer)
            .await;
        assert!(
            direct.unwrap_err().to_string().contains("append-only"),
            "a plain DELETE is refused"
        );
        let update = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
            .execute(&store.db.writer)
            .await;
        assert!(update.is_err(), "no line is ever changed");

        let purge = audit("audit.retention", "audit_log");
        assert_eq!(store.purge_audit(2_500, &purge).await.unwrap(), 2);
        assert_eq!(
            audit_actions(&store).await,
            ["user.sign_in", "audit.retention"]
        );
        let newest = store.list_audit(None, 1).await.unwrap().remove(0);
        assert_eq!(newest.detail["deleted"], 2);
        let again = sqlx::query("DELETE FROM audit_log")
            .execute(&store.db.writer)
            .await;
        assert!(again.is_err(), "the permit closes with the call");
    })
    .await;
}
