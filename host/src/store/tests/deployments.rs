//! Deployments: round trips, revisions, idempotency, lists and succeeded versions.

use super::*;
use crate::pipeline::Decision;
use crate::pipeline::store::DeploymentFilter;

#[tokio::test]
async fn deployments_round_trip_with_their_timeline() {
    on_each_backend(|db| async move {
        let store = db.store;
        let mut d = deployment("qa", "1.0.0.1", Some(5));
        d.gates.push(GateProgress {
            binding_id: "binding-1".into(),
            plugin_id: "p1".into(),
            plugin_name: "two-person-rule".into(),
            approved: false,
            decision: Some(Decision::Pending {
                message: "needs two".into(),
                approvers: vec!["group:qa".into()],
                recheck_after_seconds: Some(60),
            }),
            error: None,
            log: Vec::new(),
            started_at: Some(3),
            evaluated_at: Some(4),
            evaluations: 1,
            duration_us: 17,
            fuel_used: 1000,
        });
        d.pre_deployment_status = Some(PreDeploymentStatus::Pending);
        d.idempotency_key = Some("key-1".into());
        let events = [
            event(&d, 1, "requested"),
            event(&d, 2, "pre_deployment_started"),
        ];
        store
            .insert_deployment(&d, &events, &audit("deployment.create", &d.id))
            .await
            .unwrap();

        assert_eq!(store.get_deployment(&d.id).await.unwrap(), d);
        assert_eq!(store.timeline(&d.id).await.unwrap(), events);
        assert_not_found(store.get_deployment("nope").await, "deployment nope");
        assert_conflict(
            store
                .insert_deployment(
                    &DeploymentRecord {
                        idempotency_key: None,
                        ..d.clone()
                    },
                    &[],
                    &audit("deployment.create", &d.id),
                )
                .await,
            "already exists",
        );
        assert_eq!(audit_actions(&store).await, ["deployment.create"]);
    })
    .await;
}

#[tokio::test]
async fn saves_check_and_bump_the_revision() {
    on_each_backend(|db| async move {
        let store = db.store;
        let d = deployment("qa", "1.0.0.1", Some(5));
        store
            .insert_deployment(
                &d,
                &[event(&d, 1, "requested")],
                &audit("deployment.create", &d.id),
            )
            .await
            .unwrap();

        let validating = DeploymentRecord {
            status: DeploymentStatus::Validating,
            ..d.clone()
        };
        let revision = store
            .save_deployment(&validating, &[event(&d, 2, "validation_started")], None)
            .await
            .unwrap();
        assert_eq!(revision, 1);
        let stored = store.get_deployment(&d.id).await.unwrap();
        assert_eq!(
            stored,
            DeploymentRecord {
                revision: 1,
                ..validating.clone()
            }
        );

        // A writer holding the old revision loses.
        let stale = DeploymentRecord {
            status: DeploymentStatus::Canceled,
            ..d.clone()
        };
        assert_conflict(
            store
                .save_deployment(&stale, &[], Some(&audit("deployment.cancel", &d.id)))
                .await,
            "is at revision 1, not 0",
        );
        assert_eq!(
            store.get_deployment(&d.id).await.unwrap().status,
            DeploymentStatus::Validating
        );

        let canceled = DeploymentRecord {
            status: DeploymentStatus::Canceled,
            finished_at: Some(9),
            next_run_at: None,
            ..stored
        };
        let revision = store
            .save_deployment(
                &canceled,
                &[event(&d, 3, "canceled")],
                Some(&audit("deployment.cancel", &d.id)),
            )
            .await
            .unwrap();
        assert_eq!(revision, 2);
        let kinds: Vec<_> = store
            .timeline(&d.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["requested", "validation_started", "canceled"]);
        assert_eq!(
            audit_actions(&store).await,
            ["deployment.create", "deployment.cancel"]
        );

        let ghost = deployment("qa", "1.0.0.1", None);
        assert_not_found(
            store.save_deployment(&ghost, &[], None).await,
            &format!("deployment {}", ghost.id),
        );
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_is_used_once_per_requester() {
    on_each_backend(|db| async move {
        let store = db.store;
        let first = DeploymentRecord {
            idempotency_key: Some("retry-me".into()),
            ..deployment("qa", "1.0.0.1", Some(1))
        };
        store
            .insert_deployment(&first, &[], &audit("deployment.create", &first.id))
            .await
            .unwrap();
        assert_eq!(
            store
                .deployment_by_idempotency_key("maker-1", "retry-me")
                .await
                .unwrap(),
            Some(first.clone())
        );
        assert_eq!(
            store
                .deployment_by_idempotency_key("maker-1", "other")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .deployment_by_idempotency_key("maker-2", "retry-me")
                .await
                .unwrap(),
            None
        );

        let repeat = DeploymentRecord {
            id: new_id(),
            ..first.clone()
        };
        assert_conflict(
            store
                .insert_deployment(&repeat, &[], &audit("deployment.create", &repeat.id))
                .await,
            "user maker-1 already requested a deployment with idempotency key retry-me",
        );
        let other_user = DeploymentRecord {
            id: new_id(),
            requested_by: "maker-2".into(),
            ..first.clone()
        };
        store
            .insert_deployment(
                &other_user,
                &[],
                &audit("deployment.create", &other_user.id),
            )
            .await
            .unwrap();
        // Deployments without a key never collide.
        for _ in 0..2 {
            let keyless = deployment("qa", "1.0.0.1", None);
            store
                .insert_deployment(&keyless, &[], &audit("deployment.create", &keyless.id))
                .await
                .unwrap();
        }
        assert_eq!(audit_actions(&store).await.len(), 4);
    })
    .await;
}

#[tokio::test]
async fn deployments_page_newest_first() {
    on_each_backend(|db| async move {
        let store = db.store;
        let mut ids = Vec::new();
        for i in 0..7 {
            let d = deployment("qa", &format!("1.0.0.{i}"), None);
            store
                .insert_deployment(&d, &[], &audit("deployment.create", &d.id))
                .await
                .unwrap();
            ids.push(d.id);
        }
        ids.reverse();
        let filter = DeploymentFilter::default();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let batch = store
                .list_deployments(&filter, &page(after.as_deref(), 3))
                .await
                .unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 3);
            after = batch.last().map(|d| d.id.clone());
            seen.extend(batch.into_iter().map(|d| d.id));
        }
        assert_eq!(seen, ids);
    })
    .await;
}

#[tokio::test]
async fn every_filter_narrows_the_list() {
    on_each_backend(|db| async move {
        let store = db.store;
        let base = deployment("qa", "1.0.0.1", None);
        let variants = [
            base.clone(),
            DeploymentRecord {
                pipeline_id: "pipeline-2".into(),
                ..base.clone()
            },
            DeploymentRecord {
                stage_id: "stage-2".into(),
                ..base.clone()
            },
            DeploymentRecord {
                status: DeploymentStatus::Succeeded,
                ..base.clone()
            },
            DeploymentRecord {
                status: DeploymentStatus::Failed,
                ..base.clone()
            },
            DeploymentRecord {
                solution_name: "erp".into(),
                ..base.clone()
            },
            DeploymentRecord {
                version: "2.0.0.0".into(),
                ..base.clone()
            },
            DeploymentRecord {
                requested_by: "maker-2".into(),
                ..base.clone()
            },
            DeploymentRecord {
                target_environment_id: "prod".into(),
                ..base.clone()
            },
            DeploymentRecord {
                requested_at: base.requested_at + 1000,
                ..base.clone()
            },
        ];
        let mut ids = Vec::new();
        for v in variants {
            let d = DeploymentRecord { id: new_id(), ..v };
            store
                .insert_deployment(&d, &[], &audit("deployment.create", &d.id))
                .await
                .unwrap();
            ids.push(d.id);
        }
        let list = |filter: DeploymentFilter| {
            let store = store.clone();
            async move {
                let mut found: Vec<String> = store
                    .list_deployments(&filter, &page(None, 100))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.id)
                    .collect();
                found.reverse();
                found
            }
        };
        let all_but = |skip: &[usize]| -> Vec<String> {
            ids.iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, id)| id.clone())
                .collect()
        };
        assert_eq!(list(DeploymentFilter::default()).await, ids);
        assert_eq!(
            list(DeploymentFilter {
                pipeline_id: Some("pipeline-2".into()),
                ..Default::default()
            })
            .await,
            [ids[1].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                stage_id: Some("stage-2".into()),
                ..Default::default()
            })
            .await,
            [ids[2].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                statuses: vec![DeploymentStatus::Succeeded, DeploymentStatus::Failed],
                ..Default::default()
            })
            .await,
            [ids[3].clone(), ids[4].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                solution_name: Some("erp".into()),
                ..Default::default()
            })
            .await,
            [ids[5].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                version: Some("2.0.0.0".into()),
                ..Default::default()
            })
            .await,
            [ids[6].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                requested_by: Some("maker-2".into()),
                ..Default::default()
            })
            .await,
            [ids[7].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                target_environment_id: Some("prod".into()),
                ..Default::default()
            })
            .await,
            [ids[8].clone()]
        );
        let later = base.requested_at + 1;
        assert_eq!(
            list(DeploymentFilter {
                requested_after: Some(later),
                ..Default::default()
            })
            .await,
            [ids[9].clone()]
        );
        assert_eq!(
            list(DeploymentFilter {
                requested_before: Some(later),
                ..Default::default()
            })
            .await,
            all_but(&[9])
        );
        assert_eq!(
            list(DeploymentFilter {
                pipeline_id: Some("pipeline-1".into()),
                statuses: vec![DeploymentStatus::Queued],
                solution_name: Some("crm".into()),
                ..Default::default()
            })
            .await,
            all_but(&[1, 3, 4, 5])
        );
    })
    .await;
}

#[tokio::test]
async fn succeeded_versions_come_once_lowest_first() {
    on_each_backend(|db| async move {
        let store = db.store;
        let outcomes = [
            ("1.0.0.10", DeploymentStatus::Succeeded, "stage-1", "crm", 5),
            ("1.0.0.2", DeploymentStatus::Succeeded, "stage-1", "crm", 10),
            ("1.0.0.1", DeploymentStatus::Succeeded, "stage-1", "crm", 20),
            ("1.0.0.2", DeploymentStatus::Succeeded, "stage-1", "crm", 30),
            ("1.0.0.3", DeploymentStatus::Failed, "stage-1", "crm", 40),
            ("1.0.0.4", DeploymentStatus::Succeeded, "stage-2", "crm", 50),
            ("1.0.0.5", DeploymentStatus::Succeeded, "stage-1", "erp", 60),
        ];
        for (version, status, stage, solution, finished) in outcomes {
            let d = DeploymentRecord {
                status,
                stage_id: stage.into(),
                solution_name: solution.into(),
                finished_at: Some(finished),
                ..deployment("qa", version, None)
            };
            store
                .insert_deployment(&d, &[], &audit("deployment.create", &d.id))
                .await
                .unwrap();
        }
        assert_eq!(
            store.succeeded_versions("stage-1", "crm").await.unwrap(),
            ["1.0.0.1", "1.0.0.2", "1.0.0.10"]
        );
        assert_eq!(
            store.succeeded_versions("stage-2", "crm").await.unwrap(),
            ["1.0.0.4"]
        );
        assert!(
            store
                .succeeded_versions("stage-3", "crm")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_deployment_lose_cleanly() {
    on_each_backend(|db| async move {
        let store = db.store;
        let d = deployment("qa", "1.0.0.1", Some(5));
        store
            .insert_deployment(
                &d,
                &[event(&d, 0, "requested")],
                &audit("deployment.create", &d.id),
            )
            .await
            .unwrap();
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (store, d) = (store.clone(), d.clone());
                tokio::spawn(async move {
                    let changed = DeploymentRecord {
                        status_reason: format!("writer {i}"),
                        ..d.clone()
                    };
                    store
                        .save_deployment(&changed, &[event(&d, 0, &format!("writer {i}"))], None)
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(revision) => {
                    assert_eq!(revision, 1);
                    won += 1;
                }
                Err(StoreError::Conflict(_)) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won, 1);
        let timeline = store.timeline(&d.id).await.unwrap();
        assert_eq!(
            timeline.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2],
            "only the winner's event"
        );
    })
    .await;
}
