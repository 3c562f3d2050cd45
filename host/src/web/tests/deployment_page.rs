//! One deployment's page says its steps in words and to the second.

use axum::http::StatusCode;

use super::*;

/// 2026-11-26T10:00:07Z: steps a few seconds apart fall in one minute.
const REQUESTED_AT: u64 = 1_795_687_207_000;

#[tokio::test]
async fn the_pre_deployment_step_reads_in_words_and_timeline_steps_show_seconds() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    d.requested_at = REQUESTED_AT;
    d.status = DeploymentStatus::Deploying;
    d.pre_deployment_status = Some(PreDeploymentStatus::Completed);
    d.pre_deployment_override = Some(PreDeploymentOverride {
        status: PreDeploymentStatus::Completed,
        by: app.admin.id.clone(),
        at: REQUESTED_AT + 30_000,
        comment: "hotfix".into(),
    });
    let step = |seq: u32, seconds: u64, kind: &str| TimelineEvent {
        deployment_id: d.id.clone(),
        seq,
        at: REQUESTED_AT + seconds * 1000,
        kind: kind.into(),
        actor: None,
        detail: json!({}),
    };
    let events = [
        step(1, 0, "requested"),
        step(2, 2, "pre_deployment_started"),
        step(3, 41, "pre_deployment_completed"),
    ];
    let audit = Audit {
        actor: ana.id.clone(),
        action: "deployment.request".into(),
        target: d.id.clone(),
        detail: json!({}),
        at: d.requested_at,
    };
    app.store
        .insert_deployment(&d, &events, &audit)
        .await
        .unwrap();

    let browser = sign_in(&app, &ana).await;
    let page = browser
        .get(&app, &format!("/ui/deployments/{}", d.id))
        .await;
    assert_html(&page, StatusCode::OK);
    assert!(
        page.text
            .contains("<dt>Pre-deployment step</dt><dd>completed</dd>"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("set to completed by Root, "),
        "the override says what it set, in words: {}",
        page.text
    );
    assert!(!page.text.contains("20 completed"), "{}", page.text);
    for at in [
        "2026-11-26 10:00:07 UTC",
        "2026-11-26 10:00:09 UTC",
        "2026-11-26 10:00:48 UTC",
    ] {
        assert!(
            page.text.contains(&format!(">{at}</time> <strong>")),
            "a timeline step at {at}: {}",
            page.text
        );
    }
}

#[tokio::test]
async fn a_waiting_deployment_says_pending_approval_in_words() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    waiting_for(&mut d, "bob");
    store_deployment(&app, &d).await;
    let browser = sign_in(&app, &ana).await;
    let page = browser
        .get(&app, &format!("/ui/deployments/{}", d.id))
        .await;
    assert!(
        page.text
            .contains(r#"data-status="pending_approval">pending approval</span>"#),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains("<dt>Pre-deployment step</dt><dd>pending</dd>"),
        "{}",
        page.text
    );
}
