//! Web sessions and the console's aggregate reads, on both backends.

use super::*;
use crate::pipeline::console::*;

const DAY: u64 = 86_400_000;
/// Noon UTC on some day, so that "the same day" is unambiguous.
const NOON: u64 = 1_700_050_000_000 - (1_700_050_000_000 % DAY) + DAY / 2;

fn session(user: &User, token_sha256: &str, id: &str, created_at: u64) -> WebSession {
    WebSession {
        sha256: id.into(),
        token_sha256: token_sha256.into(),
        user: user.clone(),
        csrf: format!("csrf-{id}"),
        created_at,
        expires_at: created_at + 1_000,
    }
}

#[tokio::test]
async fn sessions_last_until_they_expire_or_are_deleted_and_follow_their_token() {
    on_each_backend(|db| async move {
        let store = db.store;
        let ana = user("ana", Role::User);
        store
            .insert_user(&ana, &audit("user.create", &ana.id))
            .await
            .unwrap();
        let token = "a".repeat(64);
        store
            .insert_token(&ana.id, &token, "web", &audit("token.issue", &ana.id))
            .await
            .unwrap();

        store
            .insert_web_session(
                &session(&ana, &token, "s1", 10_000),
                &audit("session.sign_in", &ana.id),
            )
            .await
            .unwrap();
        let found = store
            .web_session("s1", 10_500)
            .await
            .unwrap()
            .expect("a live session");
        assert_eq!(found.user.id, ana.id);
        assert_eq!(found.csrf, "csrf-s1");
        assert_eq!(found.expires_at, 11_000);
        assert!(
            store.web_session("s1", 11_000).await.unwrap().is_none(),
            "expired"
        );
        assert!(store.web_session("other", 10_500).await.unwrap().is_none());

        // A new session sweeps the expired ones away.
        store
            .insert_web_session(
                &session(&ana, &token, "s2", 20_000),
                &audit("session.sign_in", &ana.id),
            )
            .await
            .unwrap();
        assert!(store.web_session("s1", 10_500).await.unwrap().is_none());

        store
            .delete_web_session("s2", &audit("session.sign_out", &ana.id))
            .await
            .unwrap();
        assert!(store.web_session("s2", 20_500).await.unwrap().is_none());
        assert_not_found(
            store
                .delete_web_session("s2", &audit("session.sign_out", &ana.id))
                .await,
            "session",
        );
        let actions = audit_actions(&store).await;
        assert_eq!(
            actions.iter().filter(|a| a.starts_with("session.")).count(),
            3,
            "{actions:?}"
        );

        // A session needs a token that exists.
        let unknown = store
            .insert_web_session(
                &session(&ana, &"f".repeat(64), "s3", 30_000),
                &audit("session.sign_in", &ana.id),
            )
            .await;
        assert!(unknown.is_err());
    })
    .await;
}

/// Stores a deployment of `stage` in `pipeline` with this outcome.
async fn stored(
    store: &SqlStore,
    pipeline: &str,
    stage: &str,
    version: &str,
    status: DeploymentStatus,
    requested_at: u64,
    lead_ms: u64,
) -> DeploymentRecord {
    let mut d = deployment(&format!("target-of-{stage}"), version, None);
    d.pipeline_id = pipeline.into();
    d.stage_id = stage.into();
    d.status = status;
    d.requested_at = requested_at;
    if status.is_final() {
        d.finished_at = Some(requested_at + lead_ms);
    }
    store
        .insert_deployment(&d, &[], &audit("deployment.request", &d.id))
        .await
        .unwrap();
    d
}

#[tokio::test]
async fn stats_count_per_day_and_take_the_median_lead_time_per_stage() {
    on_each_backend(|db| async move {
        let store = db.store;
        use DeploymentStatus::*;
        for lead in [1_000, 5_000, 2_000] {
            stored(&store, "p1", "qa", "1.0.0.1", Succeeded, NOON, lead).await;
        }
        for lead in [1_000, 3_000, 8_000, 4_000] {
            stored(&store, "p1", "prod", "1.0.0.1", Succeeded, NOON - DAY, lead).await;
        }
        stored(&store, "p1", "qa", "1.0.0.2", Failed, NOON - DAY, 10).await;
        stored(&store, "p1", "prod", "1.0.0.2", PendingApproval, NOON, 0).await;
        stored(&store, "p2", "other", "1.0.0.1", Succeeded, NOON, 60_000).await;
        stored(&store, "p2", "other", "1.0.0.1", PendingApproval, NOON, 0).await;
        // Before the period: counted nowhere.
        stored(
            &store,
            "p1",
            "qa",
            "0.9.0.0",
            Succeeded,
            NOON - 30 * DAY,
            99_000,
        )
        .await;

        let since = NOON - DAY - DAY / 2;
        let all = store
            .deployment_stats(&DeploymentScope::All, since)
            .await
            .unwrap();
        assert_eq!(all.pending_approval, 2);
        let day = (NOON / DAY) as i64;
        let count = |stats: &DeploymentStats, d: i64, status| {
            stats
                .per_day
                .iter()
                .find(|c| c.day == d && c.status == status)
                .map_or(0, |c| c.count)
        };
        assert_eq!(count(&all, day, Succeeded), 4);
        assert_eq!(count(&all, day - 1, Succeeded), 4);
        assert_eq!(count(&all, day - 1, Failed), 1);
        assert_eq!(count(&all, day - 30, Succeeded), 0);
        let median = |stats: &DeploymentStats, stage: &str| {
            stats
                .lead_times
                .iter()
                .find(|l| l.stage_id == stage)
                .map(|l| (l.median_ms, l.samples))
        };
        assert_eq!(median(&all, "qa"), Some((2_000, 3)));
        assert_eq!(
            median(&all, "prod"),
            Some((3_500, 4)),
            "the mean of 3000 and 4000"
        );
        assert_eq!(median(&all, "other"), Some((60_000, 1)));

        let mine = store
            .deployment_stats(&DeploymentScope::Pipelines(vec!["p1".into()]), since)
            .await
            .unwrap();
        assert_eq!(mine.pending_approval, 1);
        assert_eq!(count(&mine, day, Succeeded), 3);
        assert_eq!(median(&mine, "other"), None);
        let none = store
            .deployment_stats(&DeploymentScope::Pipelines(vec![]), since)
            .await
            .unwrap();
        assert_eq!(none, DeploymentStats::default());
    })
    .await;
}

#[tokio::test]
async fn installations_solutions_and_versions_read_the_newest_of_each_group() {
    on_each_backend(|db| async move {
        let store = db.store;
        use DeploymentStatus::*;
        let old = stored(&store, "p1", "qa", "1.0.0.1", Succeeded, NOON, 10).await;
        let newer = stored(&store, "p1", "qa", "1.0.0.2", Succeeded, NOON + 100, 10).await;
        stored(&store, "p1", "qa", "1.0.0.3", Failed, NOON + 200, 10).await;
        let prod = stored(&store, "p1", "prod", "1.0.0.1", Succeeded, NOON + 300, 10).await;
        stored(&store, "p2", "other", "2.0.0.0", Succeeded, NOON, 10).await;

        let by_stage = store
            .installations(&InstallationQuery {
                scope: DeploymentScope::Pipelines(vec!["p1".into()]),
                stage_ids: vec!["qa".into(), "prod".into()],
                solutions: vec![],
                versions: vec![],
                per: InstallationGroup::StageSolution,
            })
            .await
            .unwrap();
        let ids: Vec<&str> = by_stage.iter().map(|i| i.deployment_id.as_str()).collect();
        assert_eq!(
            ids,
            [prod.id.as_str(), newer.id.as_str()],
            "newest finish first"
        );
        assert_eq!(by_stage[1].version, "1.0.0.2");
        assert_eq!(by_stage[1].target_environment_id, "target-of-qa");

        let by_version = store
            .installations(&InstallationQuery {
                scope: DeploymentScope::All,
                stage_ids: vec![],
                solutions: vec!["crm".into()],
                versions: vec!["1.0.0.1".into()],
                per: InstallationGroup::SolutionVersionTarget,
            })
            .await
            .unwrap();
        let mut ids: Vec<&str> = by_version
            .iter()
            .map(|i| i.deployment_id.as_str())
            .collect();
        ids.sort();
        let mut expected = vec![old.id.as_str(), prod.id.as_str()];
        expected.sort();
        assert_eq!(ids, expected, "1.0.0.1 went to qa and to prod");

        let solutions = store
            .solutions(&DeploymentScope::All, None, 10)
            .await
            .unwrap();
        assert_eq!(solutions.len(), 1);
        assert_eq!(solutions[0].name, "crm");
        assert_eq!(solutions[0].versions, 4);
        assert_eq!(solutions[0].deployments, 5);
        assert!(
            store
                .solutions(&DeploymentScope::All, Some("crm"), 10)
                .await
                .unwrap()
                .is_empty()
        );

        let scope = DeploymentScope::Pipelines(vec!["p1".into()]);
        let crm = vec!["crm".to_owned()];
        let first = store
            .solution_versions(&scope, &crm, None, 2)
            .await
            .unwrap();
        let names: Vec<&str> = first.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(
            names,
            ["1.0.0.1", "1.0.0.3"],
            "by last request, newest first"
        );
        let cursor = VersionCursor {
            last_requested_at: first[1].last_requested_at,
            version: first[1].version.clone(),
        };
        let rest = store
            .solution_versions(&scope, &crm, Some(&cursor), 2)
            .await
            .unwrap();
        let names: Vec<&str> = rest.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(names, ["1.0.0.2"]);
    })
    .await;
}
