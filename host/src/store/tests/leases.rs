//! The engine's work queue: leases on due deployments, and one deployment deploying per
//! target.

use std::collections::HashSet;

use super::*;

async fn insert(store: &SqlStore, d: &DeploymentRecord) {
    store
        .insert_deployment(d, &[], &audit("deployment.create", &d.id))
        .await
        .unwrap();
}

fn ids(records: &[DeploymentRecord]) -> Vec<String> {
    records.iter().map(|d| d.id.clone()).collect()
}

#[tokio::test]
async fn due_deployments_are_leased_oldest_first_to_one_owner() {
    on_each_backend(|db| async move {
        let store = db.store;
        let late = deployment("qa", "1", Some(300));
        let early = deployment("prod", "1", Some(100));
        let waiting_for_people = DeploymentRecord {
            status: DeploymentStatus::PendingApproval,
            ..deployment("uat", "1", None)
        };
        let future = deployment("qa", "2", Some(10_000));
        let finished = DeploymentRecord {
            status: DeploymentStatus::Succeeded,
            ..deployment("qa", "3", Some(50))
        };
        let deploying = DeploymentRecord {
            status: DeploymentStatus::Deploying,
            ..deployment("dev", "4", Some(200))
        };
        for d in [
            &late,
            &early,
            &waiting_for_people,
            &future,
            &finished,
            &deploying,
        ] {
            insert(&store, d).await;
        }

        let claimed = store.claim_due(1000, "replica-a", 2000, 10).await.unwrap();
        assert_eq!(
            ids(&claimed),
            ids(&[early.clone(), deploying.clone(), late.clone()])
        );
        assert_eq!(claimed[0], early);
        assert!(
            store
                .claim_due(1500, "replica-b", 2500, 10)
                .await
                .unwrap()
                .is_empty(),
            "still leased"
        );

        // A saved deployment keeps its lease.
        store
            .save_deployment(
                &DeploymentRecord {
                    status: DeploymentStatus::Validating,
                    ..early.clone()
                },
                &[],
                None,
            )
            .await
            .unwrap();
        assert!(
            store
                .claim_due(1500, "replica-b", 2500, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Replica A dies; once its leases lapse, B takes the work over.
        let taken = store.claim_due(2001, "replica-b", 3000, 2).await.unwrap();
        assert_eq!(ids(&taken), ids(&[early.clone(), deploying.clone()]));
        assert_eq!(taken[0].status, DeploymentStatus::Validating);

        // A's late release changes nothing; B's own release frees the deployment.
        store.release_lease(&early.id, "replica-a").await.unwrap();
        assert_eq!(
            ids(&store.claim_due(2002, "replica-c", 4000, 10).await.unwrap()),
            std::slice::from_ref(&late.id)
        );
        store.release_lease(&early.id, "replica-b").await.unwrap();
        assert_eq!(
            ids(&store.claim_due(2003, "replica-c", 4000, 10).await.unwrap()),
            std::slice::from_ref(&early.id)
        );
        assert_not_found(
            store.release_lease("nope", "replica-c").await,
            "deployment nope",
        );

        store.release_all_leases().await.unwrap();
        let everything = store.claim_due(2004, "replica-d", 5000, 10).await.unwrap();
        assert_eq!(ids(&everything), ids(&[early, deploying, late]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_deployment() {
    on_each_backend(|db| async move {
        let store = db.store;
        let mut due = HashSet::new();
        for i in 0..60 {
            let d = deployment(&format!("target-{i}"), "1", Some(i));
            insert(&store, &d).await;
            due.insert(d.id);
        }
        let claimers: Vec<_> = (0..6)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = format!("replica-{n}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_due(1000, &owner, 100_000, 4).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|d| d.id));
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.unwrap());
        }
        let unique: HashSet<_> = claimed.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            claimed.len(),
            "a deployment was claimed twice"
        );
        assert_eq!(unique, due);
    })
    .await;
}

#[tokio::test]
async fn only_one_deployment_deploys_to_a_target_at_a_time() {
    on_each_backend(|db| async move {
        let store = db.store;
        let first = deployment("prod", "1", Some(1));
        let second = deployment("prod", "2", Some(1));
        let elsewhere = deployment("qa", "1", Some(1));
        for d in [&first, &second, &elsewhere] {
            insert(&store, d).await;
        }
        let deploying = |d: &DeploymentRecord| DeploymentRecord {
            status: DeploymentStatus::Deploying,
            ..d.clone()
        };

        let started = store
            .save_deployment_if_target_free(
                &deploying(&first),
                &[event(&first, 1, "deployment_started")],
                None,
            )
            .await
            .unwrap();
        assert_eq!(started, TargetClaim::Taken(1));
        assert_eq!(
            store
                .save_deployment_if_target_free(
                    &deploying(&second),
                    &[event(&second, 1, "deployment_started")],
                    None
                )
                .await
                .unwrap(),
            TargetClaim::Busy(None)
        );
        let waiting = store.get_deployment(&second.id).await.unwrap();
        assert_eq!(
            waiting, second,
            "a busy target leaves the deployment as it was"
        );
        assert!(store.timeline(&second.id).await.unwrap().is_empty());
        assert_conflict(
            store.save_deployment(&deploying(&second), &[], None).await,
            "already deploying to environment prod",
        );
        assert_eq!(
            store
                .save_deployment_if_target_free(&deploying(&elsewhere), &[], None)
                .await
                .unwrap(),
            TargetClaim::Taken(1)
        );

        // The deploying one may still save its own progress.
        let progressed = DeploymentRecord {
            status_reason: "importing".into(),
            revision: 1,
            ..deploying(&first)
        };
        assert_eq!(
            store
                .save_deployment_if_target_free(&progressed, &[], None)
                .await
                .unwrap(),
            TargetClaim::Taken(2)
        );
        let done = DeploymentRecord {
            status: DeploymentStatus::Succeeded,
            revision: 2,
            ..progressed
        };
        store.save_deployment(&done, &[], None).await.unwrap();
        assert_eq!(
            store
                .save_deployment_if_target_free(&deploying(&second), &[], None)
                .await
                .unwrap(),
            TargetClaim::Taken(1)
        );

        // A stale revision is still a conflict, not a busy target.
        assert_conflict(
            store
                .save_deployment_if_target_free(&deploying(&second), &[], None)
                .await,
            "not 0",
        );

        // A deployment that finds the target busy saves its waiting state instead, in
        // the same call.
        let third = deployment("prod", "3", Some(1));
        insert(&store, &third).await;
        let waits = DeploymentRecord {
            status_reason: "waiting for the target".into(),
            ..third.clone()
        };
        assert_eq!(
            store
                .save_deployment_if_target_free(
                    &deploying(&third),
                    &[event(&third, 1, "deployment_started")],
                    Some((&waits, &[event(&third, 1, "waiting")])),
                )
                .await
                .unwrap(),
            TargetClaim::Busy(Some(1))
        );
        let stored = store.get_deployment(&third.id).await.unwrap();
        assert_eq!(stored.status, third.status);
        assert_eq!(stored.status_reason, "waiting for the target");
        let kinds: Vec<String> = store
            .timeline(&third.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["waiting"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_starts_on_one_target_let_exactly_one_through() {
    on_each_backend(|db| async move {
        let store = db.store;
        for round in 0..5 {
            let target = format!("prod-{round}");
            let contenders: Vec<_> = (0..4)
                .map(|i| deployment(&target, &i.to_string(), Some(1)))
                .collect();
            for d in &contenders {
                insert(&store, d).await;
            }
            let starts: Vec<_> = contenders
                .into_iter()
                .map(|d| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let d = DeploymentRecord {
                            status: DeploymentStatus::Deploying,
                            ..d
                        };
                        store
                            .save_deployment_if_target_free(&d, &[], None)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut winners = 0;
            for start in starts {
                winners += usize::from(matches!(start.await.unwrap(), TargetClaim::Taken(_)));
            }
            assert_eq!(winners, 1, "round {round}");
        }
    })
    .await;
}
