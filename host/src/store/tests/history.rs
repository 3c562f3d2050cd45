//! A deployment's history: its timeline, its votes, and the audit log.

use super::*;

#[tokio::test]
async fn the_store_numbers_timeline_events() {
    on_each_backend(|db| async move {
        let store = db.store;
        let d = deployment("qa", "1.0.0.1", Some(5));
        // The numbers given are ignored.
        let given = [event(&d, 7, "requested"), event(&d, 7, "scheduled")];
        store
            .insert_deployment(&d, &given, &audit("deployment.create", &d.id))
            .await
            .unwrap();
        store
            .save_deployment(&d, &[event(&d, 1, "validation_started")], None)
            .await
            .unwrap();
        let timeline = store.timeline(&d.id).await.unwrap();
        let numbered: Vec<_> = timeline.iter().map(|e| (e.seq, e.kind.as_str())).collect();
        assert_eq!(
            numbered,
            [
                (1, "requested"),
                (2, "scheduled"),
                (3, "validation_started")
            ]
        );
        assert_eq!(
            timeline[0],
            TimelineEvent {
                seq: 1,
                ..given[0].clone()
            }
        );
        assert!(store.timeline("nope").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn votes_are_written_with_the_deployment_they_change() {
    on_each_backend(|db| async move {
        let store = db.store;
        let d = DeploymentRecord {
            status: DeploymentStatus::PendingApproval,
            ..deployment("qa", "1.0.0.1", None)
        };
        store
            .insert_deployment(
                &d,
                &[event(&d, 1, "requested")],
                &audit("deployment.create", &d.id),
            )
            .await
            .unwrap();
        let vote = |voter: &str, approve: bool, at: u64| VoteRecord {
            id: new_id(),
            deployment_id: d.id.clone(),
            voter_id: voter.into(),
            approve,
            comment: format!("{voter} says {approve}"),
            at,
        };
        let later = vote("approver-2", false, 200);
        let earlier = vote("approver-1", true, 100);
        let revision = store
            .insert_vote(
                &later,
                &d,
                &[event(&d, 0, "vote")],
                &audit("deployment.vote", &d.id),
            )
            .await
            .unwrap();
        assert_eq!(revision, 1);
        let rechecked = DeploymentRecord {
            status_reason: "one more approval".into(),
            revision: 1,
            ..d.clone()
        };
        let revision = store
            .insert_vote(
                &earlier,
                &rechecked,
                &[event(&d, 0, "vote")],
                &audit("deployment.vote", &d.id),
            )
            .await
            .unwrap();
        assert_eq!(revision, 2);
        assert_eq!(
            store.votes(&d.id).await.unwrap(),
            vec![earlier.clone(), later.clone()]
        );
        assert_eq!(
            store.get_deployment(&d.id).await.unwrap(),
            DeploymentRecord {
                revision: 2,
                ..rechecked.clone()
            }
        );
        assert_eq!(store.timeline(&d.id).await.unwrap().len(), 3);

        // A vote counted against a stale deployment is not kept.
        let stale = vote("approver-3", true, 300);
        assert_conflict(
            store
                .insert_vote(
                    &stale,
                    &d,
                    &[event(&d, 0, "vote")],
                    &audit("deployment.vote", &d.id),
                )
                .await,
            "is at revision 2, not 0",
        );
        assert_eq!(store.votes(&d.id).await.unwrap().len(), 2);
        assert_eq!(store.timeline(&d.id).await.unwrap().len(), 3);

        let ghost = deployment("qa", "1", None);
        let orphan = VoteRecord {
            deployment_id: ghost.id.clone(),
            ..vote("x", true, 1)
        };
        assert_not_found(
            store
                .insert_vote(&orphan, &ghost, &[], &audit("deployment.vote", &ghost.id))
                .await,
            &format!("deployment {}", ghost.id),
        );
        assert_eq!(
            audit_actions(&store).await,
            ["deployment.create", "deployment.vote", "deployment.vote"]
        );
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    on_each_backend(|db| async move {
        let store = db.store;
        for i in 0..5 {
            store
                .append_audit(&audit(&format!("user.sign_in.{i}"), "u"))
                .await
                .unwrap();
        }
        let first = store.list_audit(None, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["user.sign_in.4", "user.sign_in.3"]
        );
        let rest = store.list_audit(Some(first[1].id), 10).await.unwrap();
        assert_eq!(
            rest.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["user.sign_in.2", "user.sign_in.1", "user.sign_in.0"]
        );
        let entry = &rest[0];
        assert_eq!(
            (entry.actor.as_str(), entry.target.as_str(), entry.at),
            ("admin-1", "u", 1_700_000_000_000)
        );
        assert_eq!(entry.detail, serde_json::json!({ "why": "test" }));
    })
    .await;
}
