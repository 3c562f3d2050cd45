//! Authentication, the admin boundary, the public endpoints, problem documents, the audit
//! log and metrics.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use super::{Caller, TestApp, assert_problem};
use crate::pipeline::{EnvironmentKind, PluginWorld};

#[tokio::test]
async fn a_call_without_a_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::new().await;
    let reply = app.call("GET", "/api/v1/me", None, None).await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED);
    let challenge = reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        reply.detail().contains("Authorization: Bearer"),
        "{}",
        reply.detail()
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_token_is_401() {
    let app = TestApp::new().await;
    let stranger = Caller {
        id: "nobody".into(),
        token: "b".repeat(64),
    };
    let reply = app.get("/api/v1/pipelines", &stranger).await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED);
    assert!(
        reply.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The token itself is never echoed back.
    assert!(!reply.text.contains(&stranger.token));

    let basic = Request::builder()
        .uri("/api/v1/me")
        .header(header::AUTHORIZATION, "Basic cm9vdDpyb290")
        .body(Body::empty())
        .unwrap();
    let reply = app.send(basic).await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED);
    assert!(reply.detail().contains("Bearer"), "{}", reply.detail());
}

#[tokio::test]
async fn me_shows_the_caller_with_role_and_groups() {
    let app = TestApp::new().await;
    let ravi = app.user("ravi").await;
    app.post(
        "/api/v1/groups",
        &app.admin,
        json!({ "name": "release", "members": [ravi.id] }),
    )
    .await
    .expect(StatusCode::CREATED);
    let me = app.get("/api/v1/me", &ravi).await.expect(StatusCode::OK);
    assert_eq!(me.body["name"], "ravi");
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["groups"], json!(["release"]));
}

#[tokio::test]
async fn health_readiness_metrics_and_the_openapi_document_need_no_token() {
    let app = TestApp::new().await;
    let health = app.call("GET", "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = app.call("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type().starts_with("text/plain"));

    let doc = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/users/{id}/tokens",
        "/api/v1/environments/{id}/validate",
        "/api/v1/pipelines/{id}/stages/{sid}",
        "/api/v1/plugins",
        "/api/v1/deployments/{id}/pre-deployment-status",
        "/api/v1/approvals",
        "/api/v1/audit",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_problems() {
    let app = TestApp::new().await;
    let reply = app.get("/api/v1/nothing-here", &app.admin).await;
    assert_problem(&reply, StatusCode::NOT_FOUND);
    assert!(reply.detail().contains("openapi.json"));
    let reply = app.call("PUT", "/api/v1/me", Some(&app.admin), None).await;
    assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn malformed_bodies_and_bad_page_sizes_are_problems_that_say_why() {
    let app = TestApp::new().await;
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/users")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.admin.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    assert_problem(&app.send(request).await, StatusCode::BAD_REQUEST);
    let reply = app
        .post("/api/v1/users", &app.admin, json!({ "role": "user" }))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.detail().contains("name"), "{}", reply.detail());
    let reply = app.get("/api/v1/users?limit=0", &app.admin).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST);
    assert!(reply.detail().contains("1 to 200"));
}

/// Every route that changes configuration, and the admin-only reads, refuse a user with
/// 403 and change nothing. Their allowed paths are in the resource tests.
#[tokio::test]
async fn a_user_gets_403_on_every_admin_only_route() {
    let app = TestApp::new().await;
    let user = app.user("maker").await;
    let (pipeline, stage) = app.pipeline("sales").await;
    let env = app.environment("spare", EnvironmentKind::Target).await;
    let gate = app.plugin("gate", PluginWorld::Approver, &[]).await;
    let group = app
        .post("/api/v1/groups", &app.admin, json!({ "name": "ops" }))
        .await
        .id();
    let before = app.audit_actions().await.len();

    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/v1/users".into(), Some(json!({ "name": "x" }))),
        ("GET", "/api/v1/users".into(), None),
        (
            "POST",
            format!("/api/v1/users/{}/tokens", app.admin.id),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/v1/groups".into(),
            Some(json!({ "name": "g" })),
        ),
        ("GET", "/api/v1/groups".into(), None),
        (
            "PUT",
            format!("/api/v1/groups/{group}/members"),
            Some(json!({ "members": [user.id] })),
        ),
        (
            "POST",
            "/api/v1/environments".into(),
            Some(
                json!({ "name": "e", "kind": "target", "environment_id": "e", "url": "memory://e" }),
            ),
        ),
        (
            "PATCH",
            format!("/api/v1/environments/{env}"),
            Some(json!({ "name": "renamed" })),
        ),
        ("DELETE", format!("/api/v1/environments/{env}"), None),
        (
            "POST",
            format!("/api/v1/environments/{env}/validate"),
            Some(json!({})),
        ),
        (
            "PUT",
            format!("/api/v1/environments/{env}/access"),
            Some(json!({ "access": [format!("user:{}", user.id)] })),
        ),
        (
            "POST",
            "/api/v1/pipelines".into(),
            Some(json!({ "name": "p" })),
        ),
        (
            "PATCH",
            format!("/api/v1/pipelines/{pipeline}"),
            Some(json!({ "name": "renamed" })),
        ),
        ("DELETE", format!("/api/v1/pipelines/{pipeline}"), None),
        (
            "POST",
            format!("/api/v1/pipelines/{pipeline}/stages"),
            Some(
                json!({ "name": "uat", "previous_stage_id": stage, "target_environment_id": env }),
            ),
        ),
        (
            "PATCH",
            format!("/api/v1/pipelines/{pipeline}/stages/{stage}"),
            Some(json!({ "name": "renamed" })),
        ),
        (
            "DELETE",
            format!("/api/v1/pipelines/{pipeline}/stages/{stage}"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/pipelines/{pipeline}/validators"),
            Some(json!({ "validators": [] })),
        ),
        (
            "POST",
            format!("/api/v1/pipelines/{pipeline}/shares"),
            Some(json!({ "grantee": format!("user:{}", user.id) })),
        ),
        (
            "DELETE",
            format!(
                "/api/v1/pipelines/{pipeline}/shares?grantee=user:{}",
                user.id
            ),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/plugins/{gate}"),
            Some(json!({ "enabled": false })),
        ),
        ("DELETE", format!("/api/v1/plugins/{gate}"), None),
        ("GET", "/api/v1/audit".into(), None),
    ];
    for (method, path, body) in routes {
        let reply = app.call(method, &path, Some(&user), body).await;
        assert_problem(&reply, StatusCode::FORBIDDEN);
        assert!(
            reply.detail().contains("admin role"),
            "{method} {path}: {}",
            reply.detail()
        );
        assert_eq!(reply.body["required_role"], "admin", "{method} {path}");
    }
    let upload = super::fakes::component("sneaky", "1.0.0", PluginWorld::Approver, &[]);
    let reply = app.upload(&user, "", "application/wasm", upload).await;
    assert_problem(&reply, StatusCode::FORBIDDEN);

    assert_eq!(
        app.audit_actions().await.len(),
        before,
        "a refused call wrote the audit log"
    );
    assert!(app.plugins.is_active(&gate));
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_for_admins() {
    let app = TestApp::new().await;
    for name in ["a1", "a2", "a3"] {
        app.post("/api/v1/users", &app.admin, json!({ "name": name }))
            .await
            .expect(StatusCode::CREATED);
    }
    let first = app
        .get("/api/v1/audit?limit=2", &app.admin)
        .await
        .expect(StatusCode::OK);
    let items = first.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "user.create");
    assert_eq!(items[0]["actor"], app.admin.id.as_str());
    assert_eq!(items[0]["detail"]["name"], "a3");
    let next = first.body["next"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = app
        .get(&format!("/api/v1/audit?limit=2&after={next}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let items = second.body["items"].as_array().unwrap();
    assert_eq!(items[0]["detail"]["name"], "a1");
    let reply = app
        .get("/api/v1/audit?after=not-a-number", &app.admin)
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_show_http_latency_by_route_template_and_deployments_by_status() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("metered").await;
    app.get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let text = app.call("GET", "/metrics", None, None).await.text;
    assert!(
        text.contains("gatehouse_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/pipelines/{id}\",status=\"200\""),
        "{text}"
    );
    assert!(!text.contains(&pipeline), "a raw path leaked into a label");
    assert!(
        text.contains("gatehouse_deployments{status=\"queued\"}"),
        "{text}"
    );
}
