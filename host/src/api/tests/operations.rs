//! The event feed, webhooks and retention jobs through the HTTP surface: admins only, and
//! bad input refused with a problem document and nothing stored.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, assert_problem};
use crate::pipeline::store::{EventStore, Page, RetentionStore, WebhookStore};

/// Requests a deployment as the admin, on a pipeline whose environments the admin may
/// use; returns its id.
async fn deployment(app: &TestApp) -> String {
    let (pipeline, stage) = app.pipeline("sales").await;
    let body = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await
        .body;
    for env in [
        &body["development_environment_ids"][0],
        &body["stages"][0]["target_environment_id"],
    ] {
        app.call(
            "PUT",
            &format!("/api/v1/environments/{}/access", env.as_str().unwrap()),
            Some(&app.admin),
            Some(json!({ "access": [format!("user:{}", app.admin.id)] })),
        )
        .await
        .expect(StatusCode::OK);
    }
    app.post(
        "/api/v1/deployments",
        &app.admin,
        json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" }),
    )
    .await
    .expect(StatusCode::CREATED)
    .id()
}

#[tokio::test]
async fn only_admins_read_events_and_manage_webhooks_and_retention() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let webhook = json!({ "url": "https://example.com/hook", "events": ["deployment_completed"] });
    let job = json!({ "name": "old", "deployments": { "older_than_days": 30 } });
    for (method, path, body) in [
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", Some(webhook.clone())),
        ("GET", "/api/v1/retention/jobs", None),
        ("POST", "/api/v1/retention/jobs", Some(job.clone())),
    ] {
        let reply = app.call(method, path, Some(&ana), body.clone()).await;
        assert_problem(&reply, StatusCode::FORBIDDEN);
        let reply = app.call(method, path, None, body).await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED);
    }
    assert!(
        app.store
            .list_webhooks(&Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .list_retention_jobs(&Page::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_nothing_is_stored() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    let cases = [
        (
            json!({ "url": "not a url", "events": ["deployment_completed"] }),
            "absolute URL",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "url": "ftp://example.com/x", "events": ["deployment_completed"] }),
            "http or https",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "url": "https://example.com", "events": ["deployment_exploded"] }),
            "deployment_requested",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "url": "https://example.com", "events": [] }),
            "at least one",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "url": "https://example.com", "events": ["deployment_started"], "pipeline_id": "nope" }),
            "names no pipeline",
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "url": "https://example.com", "events": ["deployment_started"], "pipeline_id": pipeline, "stage_id": "nope" }),
            "not a stage",
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "url": "https://example.com", "events": ["deployment_started"], "give_up_after_seconds": 5 }),
            "give_up_after_seconds",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "events": ["deployment_started"] }),
            "url",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, says, status) in cases {
        let reply = app.post("/api/v1/webhooks", &app.admin, body.clone()).await;
        assert_problem(&reply, status);
        assert!(reply.detail().contains(says), "{body}: {}", reply.detail());
    }
    assert!(
        app.store
            .list_webhooks(&Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !app.audit_actions()
            .await
            .iter()
            .any(|(_, action, _)| action.starts_with("webhook.")),
        "a refused webhook is not audited as made"
    );
}

#[tokio::test]
async fn a_webhook_shows_its_secret_once_and_every_change_is_audited() {
    let app = TestApp::new().await;
    let (pipeline, stage) = app.pipeline("sales").await;
    let created = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({
                "url": "https://example.com/hook",
                "events": ["deployment_requested", "deployment_completed"],
                "pipeline_id": pipeline, "stage_id": stage,
            }),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = created.id();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created.body["give_up_after_seconds"], 86400);
    let read = app
        .get(&format!("/api/v1/webhooks/{id}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert!(read.body.get("secret").is_none(), "{}", read.text);
    assert!(!read.text.contains(&secret));

    let path = format!("/api/v1/webhooks/{id}");
    let bad = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "events": ["nope"] })),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY);
    let rotated = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "enabled": false, "rotate_secret": true, "stage_id": null })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rotated.body["enabled"], false);
    assert_eq!(rotated.body["stage_id"], Value::Null);
    assert_eq!(
        rotated.body["events"].as_array().unwrap().len(),
        2,
        "unchanged fields stay"
    );
    assert_ne!(rotated.body["secret"].as_str().unwrap(), secret);
    let deliveries = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(deliveries.body["items"], json!([]));
    let missing = app
        .post(
            &format!("/api/v1/webhooks/{id}/deliveries/nope/redeliver"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
    app.call("DELETE", &path, Some(&app.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_problem(&app.get(&path, &app.admin).await, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|(_, action, target)| action.starts_with("webhook.") && *target == id)
        .map(|(_, action, _)| action)
        .collect();
    assert_eq!(
        actions,
        ["webhook.create", "webhook.update", "webhook.delete"]
    );
    let log = app.get("/api/v1/audit?limit=200", &app.admin).await.text;
    assert!(
        !log.contains(&secret),
        "the secret never reaches the audit log"
    );
}

#[tokio::test]
async fn the_feed_follows_a_cursor_and_refuses_a_bad_one() {
    let app = TestApp::new().await;
    let id = deployment(&app).await;
    let empty = app
        .get("/api/v1/events", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        empty.body,
        json!({ "items": [], "next": "0" }),
        "not numbered yet"
    );
    app.store.sequence_events(500).await.unwrap();
    let page = app
        .get("/api/v1/events?after=0&limit=10", &app.admin)
        .await
        .expect(StatusCode::OK);
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", page.text);
    assert_eq!(items[0]["event"], "deployment_requested");
    assert_eq!(items[0]["deployment_id"], id.as_str());
    assert_eq!(items[0]["solution"], "crm");
    let next = page.body["next"].as_str().unwrap().to_owned();
    let after = app
        .get(&format!("/api/v1/events?after={next}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(after.body, json!({ "items": [], "next": next }));
    for bad in ["?after=abc", "?after=-1", "?limit=0", "?limit=201"] {
        let reply = app.get(&format!("/api/v1/events{bad}"), &app.admin).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn bad_retention_jobs_are_refused_and_good_ones_are_scheduled() {
    let app = TestApp::new().await;
    let cases = [
        (json!({ "name": "nothing" }), "deletes nothing"),
        (
            json!({ "name": "x", "deployments": { "older_than_days": 0 } }),
            "older_than_days",
        ),
        (
            json!({ "name": "x", "deployments": { "older_than_days": 9, "statuses": ["queued"] } }),
            "not final",
        ),
        (
            json!({ "name": "x", "artifacts": { "keep_versions": 0 } }),
            "keep_versions",
        ),
        (
            json!({ "name": "x", "artifacts": { "keep_versions": 3 }, "every_hours": 0 }),
            "every_hours",
        ),
        (
            json!({ "name": "", "artifacts": { "keep_versions": 3 } }),
            "name",
        ),
    ];
    for (body, says) in cases {
        let reply = app
            .post("/api/v1/retention/jobs", &app.admin, body.clone())
            .await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.detail().contains(says), "{body}: {}", reply.detail());
    }
    assert!(
        app.store
            .list_retention_jobs(&Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    let job = app
        .post(
            "/api/v1/retention/jobs",
            &app.admin,
            json!({ "name": "old failures", "deployments": { "older_than_days": 30, "statuses": ["failed"] }, "every_hours": 24, "dry_run": true }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert!(job.body["next_run_at"].as_u64().is_some());
    assert_eq!(job.body["deployments"]["statuses"], json!(["failed"]));
    let id = job.id();
    let listed = app
        .get("/api/v1/retention/jobs", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed.body["items"][0]["id"], id.as_str());
    let path = format!("/api/v1/retention/jobs/{id}");
    app.call("DELETE", &path, Some(&app.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_problem(&app.get(&path, &app.admin).await, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    assert!(
        actions.ends_with(&["retention.create".into(), "retention.delete".into()]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_audit_log_has_its_own_explicit_retention() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let body = json!({ "older_than_days": 30 });
    let refused = app
        .post("/api/v1/audit/retention", &ana, body.clone())
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN);
    let too_short = app
        .post(
            "/api/v1/audit/retention",
            &app.admin,
            json!({ "older_than_days": 7 }),
        )
        .await;
    assert_problem(&too_short, StatusCode::UNPROCESSABLE_ENTITY);
    let before = app.audit_actions().await.len();
    let purged = app
        .post("/api/v1/audit/retention", &app.admin, body)
        .await
        .expect(StatusCode::OK);
    assert_eq!(purged.body["deleted"], 0, "every line is recent");
    let actions = app.audit_actions().await;
    assert_eq!(actions.len(), before + 1);
    assert_eq!(actions.last().unwrap().1, "audit.retention");
}
