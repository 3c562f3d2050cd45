//! Signing in and out, CSRF, admin-only pages, voting, deploying, and escaping.

use axum::http::{StatusCode, header};

use super::*;
use crate::pipeline::model::DeploymentStatus;

#[tokio::test]
async fn a_known_token_signs_in_and_an_unknown_one_is_refused_with_the_form() {
    let app = TestApp::new().await;
    let form = get_page(&app, "/ui/signin?next=/ui/approvals", None).await;
    assert_html(&form, StatusCode::OK);
    assert!(
        form.text
            .contains(r#"<form id="signin" method="post" action="/ui/signin">"#)
    );
    assert!(
        form.text.contains(r#"value="/ui/approvals""#),
        "{}",
        form.text
    );

    let bad = post_form(&app, "/ui/signin", None, &[("token", &"b".repeat(64))]).await;
    assert_html(&bad, StatusCode::UNAUTHORIZED);
    assert!(bad.text.contains(r#"id="error""#), "{}", bad.text);
    assert!(bad.headers.get(header::SET_COOKIE).is_none());

    let good = post_form(
        &app,
        "/ui/signin",
        None,
        &[
            ("token", &app.admin.token),
            ("next", "/ui/deployments?status=failed"),
        ],
    )
    .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.text);
    assert_eq!(location(&good), "/ui/deployments?status=failed");
    let cookie = good.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("gatehouse_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http gets no Secure cookie: {cookie}"
    );
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|(_, action, _)| action == "session.sign_in")
    );

    // Only console paths are followed after signing in.
    let elsewhere = post_form(
        &app,
        "/ui/signin",
        None,
        &[
            ("token", &app.admin.token),
            ("next", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(location(&elsewhere), "/ui/");
    let protocol_relative = post_form(
        &app,
        "/ui/signin",
        None,
        &[("token", &app.admin.token), ("next", "//evil")],
    )
    .await;
    assert_eq!(location(&protocol_relative), "/ui/");
}

#[tokio::test]
async fn signed_out_pages_redirect_to_sign_in_and_sign_out_ends_the_session() {
    let app = TestApp::new().await;
    let reply = get_page(&app, "/ui/deployments?status=failed", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&reply),
        "/ui/signin?next=/ui/deployments%3Fstatus%3Dfailed"
    );
    let forged = get_page(&app, "/ui/", Some("gatehouse_session=00ff")).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);

    let browser = sign_in(&app, &app.admin).await;
    assert_html(&browser.get(&app, "/ui/pipelines").await, StatusCode::OK);
    let out = browser.post(&app, "/ui/signout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = browser.get(&app, "/ui/pipelines").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let d = deployment(&app, &pipeline, &ana.id).await;
    store_deployment(&app, &d).await;
    let browser = sign_in(&app, &ana).await;
    let path = format!("/ui/deployments/{}/cancel", d.id);

    let missing = post_form(&app, &path, Some(&browser.cookie), &[]).await;
    assert_html(&missing, StatusCode::FORBIDDEN);
    let wrong = post_form(
        &app,
        &path,
        Some(&browser.cookie),
        &[("csrf", &"0".repeat(64))],
    )
    .await;
    assert_html(&wrong, StatusCode::FORBIDDEN);
    // Another session's token is no better.
    let other = sign_in(&app, &ana).await;
    let crossed = post_form(&app, &path, Some(&browser.cookie), &[("csrf", &other.csrf)]).await;
    assert_html(&crossed, StatusCode::FORBIDDEN);
    let stored = app.store.get_deployment(&d.id).await.unwrap();
    assert_eq!(stored.status, DeploymentStatus::Queued);

    let page = browser
        .get(&app, &format!("/ui/deployments/{}", d.id))
        .await;
    assert!(page.text.contains(r#"<form id="cancel""#), "{}", page.text);
    let canceled = browser.post(&app, &path, &[]).await;
    assert_eq!(canceled.status, StatusCode::SEE_OTHER, "{}", canceled.text);
    let stored = app.store.get_deployment(&d.id).await.unwrap();
    assert_eq!(stored.status, DeploymentStatus::Canceled);
    let page = browser
        .get(&app, &format!("/ui/deployments/{}", d.id))
        .await;
    assert!(
        page.text.contains(r#"data-status="canceled""#),
        "{}",
        page.text
    );
    assert!(!page.text.contains(r#"<form id="cancel""#));
}

#[tokio::test]
async fn a_maker_gets_an_html_403_on_admin_pages_and_an_admin_gets_them() {
    let app = TestApp::new().await;
    let maker = app.user("maker").await;
    let env = app
        .environment("qa", crate::pipeline::EnvironmentKind::Target)
        .await;
    let browser = sign_in(&app, &maker).await;
    for path in ["/ui/admin/plugins", "/ui/admin/environments"] {
        let reply = browser.get(&app, path).await;
        assert_html(&reply, StatusCode::FORBIDDEN);
        assert!(reply.text.contains("<h1>Forbidden</h1>"), "{}", reply.text);
    }
    let page = browser.get(&app, "/ui/").await;
    assert!(
        !page.text.contains("/ui/admin/plugins"),
        "no admin links for a maker"
    );
    let before = app.audit_actions().await.len();
    let reply = browser
        .post(&app, &format!("/ui/admin/environments/{env}/validate"), &[])
        .await;
    assert_html(&reply, StatusCode::FORBIDDEN);
    assert_eq!(
        app.audit_actions().await.len(),
        before,
        "nothing was changed"
    );

    let admin = sign_in(&app, &app.admin).await;
    let plugins = admin.get(&app, "/ui/admin/plugins").await;
    assert_html(&plugins, StatusCode::OK);
    assert!(plugins.text.contains(r#"id="plugin-upload""#));
    let envs = admin.get(&app, "/ui/admin/environments").await;
    assert_html(&envs, StatusCode::OK);
    assert!(envs.text.contains("revalidate"));
    let revalidated = admin
        .post(&app, &format!("/ui/admin/environments/{env}/validate"), &[])
        .await;
    assert_eq!(
        revalidated.status,
        StatusCode::SEE_OTHER,
        "{}",
        revalidated.text
    );
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|(_, action, target)| action == "environment.validate" && *target == env)
    );
}

#[tokio::test]
async fn an_approver_votes_from_the_inbox_and_the_vote_is_recorded() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let bob = app.user("bob").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    app.post(
        &format!("/api/v1/pipelines/{pipeline}/shares"),
        &app.admin,
        serde_json::json!({ "grantee": format!("user:{}", bob.id) }),
    )
    .await
    .expect(StatusCode::OK);
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    d.notes = "CHG-1 quarterly release".into();
    waiting_for(&mut d, &bob.id);
    store_deployment(&app, &d).await;

    // The requester's own inbox is empty: their vote never counts.
    let ana_browser = sign_in(&app, &ana).await;
    let inbox = ana_browser.get(&app, "/ui/approvals").await;
    assert!(inbox.text.contains(r#"id="inbox-empty""#), "{}", inbox.text);

    let browser = sign_in(&app, &bob).await;
    let inbox = browser.get(&app, "/ui/approvals").await;
    assert_html(&inbox, StatusCode::OK);
    let article = format!(r#"<article class="approval" data-deployment="{}""#, d.id);
    assert!(inbox.text.contains(&article), "{}", inbox.text);
    assert!(inbox.text.contains("CHG-1 quarterly release"));
    assert!(
        inbox
            .text
            .contains(&format!(r#"<label for="comment-{}">"#, d.id))
    );
    assert!(
        inbox
            .text
            .contains(r#"id="approvals-count" title="Waiting for your vote">1<"#)
    );

    let vote = browser
        .post(
            &app,
            &format!("/ui/deployments/{}/vote", d.id),
            &[("comment", "looks good"), ("decision", "approve")],
        )
        .await;
    assert_eq!(vote.status, StatusCode::SEE_OTHER, "{}", vote.text);
    let next = location(&vote);
    assert!(next.starts_with("/ui/approvals?voted="), "{next}");
    let votes = app.store.votes(&d.id).await.unwrap();
    assert_eq!(votes.len(), 1);
    assert!(votes[0].approve);
    assert_eq!(votes[0].voter_id, bob.id);
    assert_eq!(votes[0].comment, "looks good");
    let flash = browser.get(&app, &next).await;
    assert!(flash.text.contains(r#"id="flash""#), "{}", flash.text);
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|(actor, action, _)| action == "deployment.vote" && *actor == bob.id)
    );
}

#[tokio::test]
async fn hostile_names_and_notes_are_escaped_on_every_page_that_shows_them() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    d.solution_name = "<script>alert('name')</script>".into();
    d.notes = "<script>alert('notes')</script><img src=x onerror=alert(1)>".into();
    store_deployment(&app, &d).await;
    let browser = sign_in(&app, &ana).await;
    for path in [
        format!("/ui/deployments/{}", d.id),
        "/ui/deployments".to_owned(),
        "/ui/solutions".to_owned(),
    ] {
        let page = browser.get(&app, &path).await;
        assert_html(&page, StatusCode::OK);
        assert!(
            !page.text.contains("<script>alert"),
            "{path}: {}",
            page.text
        );
        assert!(!page.text.contains("<img src=x"), "{path}");
        assert!(
            page.text.contains("&lt;script&gt;alert("),
            "{path}: {}",
            page.text
        );
    }
}

#[tokio::test]
async fn the_deploy_form_requests_one_deployment_per_form_and_keeps_values_on_refusal() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, stage) = shared_pipeline(&app, "sales", &ana).await;
    let (hidden, _) = app.pipeline("hidden").await;
    let browser = sign_in(&app, &ana).await;

    let step1 = browser.get(&app, "/ui/deploy").await;
    assert!(
        step1
            .text
            .contains(r#"<select id="pipeline" name="pipeline""#),
        "{}",
        step1.text
    );
    assert!(step1.text.contains(&format!(
        r#"<option value="{pipeline}">sales (sales-dev → qa)"#
    )));
    assert!(
        !step1.text.contains(&hidden),
        "a pipeline not shared with ana is not offered"
    );
    let not_mine = browser
        .get(&app, &format!("/ui/deploy?pipeline={hidden}"))
        .await;
    assert_html(&not_mine, StatusCode::NOT_FOUND);

    let step2 = browser
        .get(&app, &format!("/ui/deploy?pipeline={pipeline}"))
        .await;
    assert_html(&step2, StatusCode::OK);
    assert!(
        step2
            .text
            .contains(r#"<form id="deploy" method="post" action="/ui/deploy">"#)
    );
    let key = attribute_after(&step2.text, r#"name="idempotency_key" value=""#).unwrap();
    let form = [
        ("pipeline", pipeline.as_str()),
        ("stage", stage.as_str()),
        ("solution", "crm"),
        ("version", ""),
        ("notes", "first"),
        ("when", "now"),
        ("idempotency_key", key.as_str()),
        ("action", "deploy"),
    ];
    let first = browser.post(&app, "/ui/deploy", &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text);
    let again = browser.post(&app, "/ui/deploy", &form).await;
    assert_eq!(
        location(&again),
        location(&first),
        "a double submit makes one deployment"
    );
    let id = location(&first)
        .trim_start_matches("/ui/deployments/")
        .to_owned();
    let stored = app.store.get_deployment(&id).await.unwrap();
    assert_eq!(stored.requested_by, ana.id);
    assert_eq!(stored.notes, "first");

    // A refusal re-renders the form with the message and what was typed.
    let mut later = form;
    later[5] = ("when", "later");
    later[4] = ("notes", "kept notes");
    let refused = browser.post(&app, "/ui/deploy", &later).await;
    assert_html(&refused, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains(r#"id="error""#), "{}", refused.text);
    assert!(refused.text.contains("kept notes"));
    assert!(
        refused
            .text
            .contains(r#"id="when-later" type="radio" name="when" value="later" checked"#)
    );

    // A target back to pending refuses new deployments, and the form says what to run.
    use crate::pipeline::store::CatalogStore;
    let qa = app.store.get_pipeline(&pipeline).await.unwrap().stages[0]
        .target_environment_id
        .clone();
    app.call(
        "PATCH",
        &format!("/api/v1/environments/{qa}"),
        Some(&app.admin),
        Some(serde_json::json!({ "credential": "rotated" })),
    )
    .await
    .expect(StatusCode::OK);
    let fresh_key = crate::pipeline::model::new_id();
    let mut unvalidated = form;
    unvalidated[6] = ("idempotency_key", fresh_key.as_str());
    let refused = browser.post(&app, "/ui/deploy", &unvalidated).await;
    assert_html(&refused, StatusCode::CONFLICT);
    assert!(refused.text.contains(r#"id="error""#), "{}", refused.text);
    assert!(
        refused.text.contains("is not validated")
            && refused
                .text
                .contains(&format!("POST /api/v1/environments/{qa}/validate")),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn a_maker_sees_only_deployments_of_pipelines_shared_with_them() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (mine, _) = shared_pipeline(&app, "sales", &ana).await;
    let (theirs, _) = app.pipeline("finance").await;
    let visible = deployment(&app, &mine, &ana.id).await;
    store_deployment(&app, &visible).await;
    let hidden = deployment(&app, &theirs, &app.admin.id).await;
    store_deployment(&app, &hidden).await;
    let browser = sign_in(&app, &ana).await;

    let history = browser.get(&app, "/ui/deployments").await;
    assert!(
        history
            .text
            .contains(&format!(r#"data-deployment="{}""#, visible.id))
    );
    assert!(!history.text.contains(&hidden.id), "{}", history.text);
    let page = browser
        .get(&app, &format!("/ui/deployments/{}", hidden.id))
        .await;
    assert_html(&page, StatusCode::NOT_FOUND);
    let filtered = browser.get(&app, "/ui/deployments?status=succeeded").await;
    assert!(
        filtered.text.contains(r#"id="history-empty""#),
        "{}",
        filtered.text
    );
}

#[tokio::test]
async fn history_pages_by_cursor_and_keeps_the_filters_in_the_next_link() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    for _ in 0..52 {
        let mut d = deployment(&app, &pipeline, &app.admin.id).await;
        d.status = DeploymentStatus::Failed;
        store_deployment(&app, &d).await;
    }
    let browser = sign_in(&app, &app.admin).await;
    let first = browser.get(&app, "/ui/deployments?status=failed").await;
    assert_eq!(first.text.matches("<tr data-deployment=").count(), 50);
    let next = attribute_after(&first.text, r#"<a id="next-page" href=""#).expect("a next link");
    assert!(next.contains("status=failed"), "{next}");
    let next = next.replace("&amp;", "&");
    let second = browser.get(&app, &next).await;
    assert_eq!(second.text.matches("<tr data-deployment=").count(), 2);
    assert!(!second.text.contains(r#"id="next-page""#));
}

#[tokio::test]
async fn every_page_renders_and_unknown_ones_answer_an_html_404() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    let mut d = deployment(&app, &pipeline, &app.admin.id).await;
    d.status = DeploymentStatus::Succeeded;
    d.finished_at = Some(d.requested_at + 1000);
    store_deployment(&app, &d).await;
    let browser = sign_in(&app, &app.admin).await;
    for (path, marker) in [
        ("/ui/", r#"<main id="dashboard">"#),
        ("/ui/pipelines", r#"class="chain""#),
        ("/ui/deployments", r#"<table id="history">"#),
        ("/ui/solutions", r#"data-solution="crm""#),
        ("/ui/approvals", r#"id="inbox-empty""#),
        ("/ui/deploy", r#"id="choose-pipeline""#),
    ] {
        let page = browser.get(&app, path).await;
        assert_html(&page, StatusCode::OK);
        assert!(
            page.text.contains(marker),
            "{path} lacks {marker}: {}",
            page.text
        );
        assert!(page.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
    let pipelines = browser.get(&app, "/ui/pipelines").await;
    assert!(
        pipelines
            .text
            .contains(r#"<strong class="version">1.0.0.0</strong>"#)
    );
    let missing = browser.get(&app, "/ui/no-such-page").await;
    assert_html(&missing, StatusCode::NOT_FOUND);
    let root = get_page(&app, "/", None).await;
    assert_eq!(location(&root), "/ui/");
    let css = get_page(&app, "/ui/static/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type().starts_with("text/css"));
}

/// The timeline says what happened in words, never as raw JSON.
#[tokio::test]
async fn the_deployment_page_tells_its_timeline_in_sentences() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    waiting_for(&mut d, "bob");
    let row = |kind: &str, detail: serde_json::Value| TimelineEvent {
        deployment_id: d.id.clone(),
        seq: 0,
        at: d.requested_at,
        kind: kind.into(),
        actor: None,
        detail,
    };
    let events = [
        row("pre_deployment_started", json!({ "gates": 1 })),
        row(
            "gate_decision",
            json!({ "gate": 0, "plugin": "two-person-rule", "decision": {
                "decision": "pending", "message": "1 of 2 approvals",
                "approvers": ["group:prod-approvers"], "recheck_after_seconds": null } }),
        ),
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
    for said in [
        "1 gate(s)",
        "two-person-rule: pending: 1 of 2 approvals (approvers: group:prod-approvers)",
    ] {
        assert!(page.text.contains(said), "{said:?} in {}", page.text);
    }
    assert!(
        !page.text.contains("&quot;decision&quot;"),
        "no raw JSON: {}",
        page.text
    );
}
