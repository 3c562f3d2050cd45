//! Environments: registration, validation, access and deletion.

use axum::http::StatusCode;
use serde_json::json;

use super::{TestApp, assert_problem};
use crate::pipeline::EnvironmentKind;
use crate::pipeline::store::{AuditStore, CatalogStore};

async fn register(app: &TestApp, name: &str, kind: &str, url: &str) -> String {
    app.post(
        "/api/v1/environments",
        &app.admin,
        json!({ "name": name, "kind": kind, "environment_id": name, "url": url }),
    )
    .await
    .expect(StatusCode::CREATED)
    .id()
}

async fn validate(app: &TestApp, id: &str) -> serde_json::Value {
    app.post(
        &format!("/api/v1/environments/{id}/validate"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(StatusCode::OK)
    .body
}

#[tokio::test]
async fn a_credential_is_stored_but_never_shown() {
    let app = TestApp::new().await;
    let created = app
        .post(
            "/api/v1/environments",
            &app.admin,
            json!({
                "name": "prod", "kind": "target", "environment_id": "prod-1",
                "url": "https://prod.example", "credential": "s3cret-token",
            }),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created.body["has_credential"], true);
    assert_eq!(created.body["validation_status"], "pending");
    assert!(!created.text.contains("s3cret-token"));
    let id = created.id();
    assert_eq!(
        app.store
            .environment_credential(&id)
            .await
            .unwrap()
            .as_deref(),
        Some("s3cret-token")
    );
    // Users may read environments, never the credential.
    let user = app.user("reader").await;
    let read = app
        .get(&format!("/api/v1/environments/{id}"), &user)
        .await
        .expect(StatusCode::OK);
    assert!(!read.text.contains("s3cret-token"));
    let audit = app
        .get("/api/v1/audit", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert!(!audit.text.contains("s3cret-token"));
    let created_entry = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "environment.create")
        .expect("an audit entry for the creation");
    assert_eq!(created_entry["target"], id.as_str());
    assert_eq!(created_entry["detail"]["has_credential"], true);

    let bad_url = app
        .post(
            "/api/v1/environments",
            &app.admin,
            json!({ "name": "x", "kind": "target", "environment_id": "x", "url": "ftp://x" }),
        )
        .await;
    assert_problem(&bad_url, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_url.detail().contains("http://"));
}

#[tokio::test]
async fn validation_succeeds_or_says_why_it_failed() {
    let app = TestApp::new().await;
    let envs = &app.environments;

    let good = register(&app, "qa", "target", "memory://qa").await;
    envs.answer("memory://qa", "qa", EnvironmentKind::Target, true);
    let body = validate(&app, &good).await;
    assert_eq!(body["validation_status"], "success", "{body}");

    let down = register(&app, "down", "target", "http://127.0.0.1:9").await;
    let body = validate(&app, &down).await;
    assert_eq!(body["validation_status"], "failed");
    assert!(
        body["validation_message"]
            .as_str()
            .unwrap()
            .contains("could not be reached")
    );

    let other = register(&app, "uat", "target", "memory://uat").await;
    envs.answer(
        "memory://uat",
        "someone-else",
        EnvironmentKind::Target,
        true,
    );
    let body = validate(&app, &other).await;
    assert_eq!(body["validation_status"], "failed");
    assert!(
        body["validation_message"]
            .as_str()
            .unwrap()
            .contains("someone-else")
    );

    let kind = register(&app, "dev", "target", "memory://dev").await;
    envs.answer("memory://dev", "dev", EnvironmentKind::Development, false);
    let body = validate(&app, &kind).await;
    assert_eq!(body["validation_status"], "failed");
    assert!(
        body["validation_message"]
            .as_str()
            .unwrap()
            .contains("kind")
    );

    let unmanaged = register(&app, "loose", "target", "memory://loose").await;
    envs.answer("memory://loose", "loose", EnvironmentKind::Target, false);
    let body = validate(&app, &unmanaged).await;
    assert_eq!(body["validation_status"], "failed");
    assert!(
        body["validation_message"]
            .as_str()
            .unwrap()
            .contains("managed")
    );

    let validations = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a.1 == "environment.validate")
        .count();
    assert_eq!(validations, 5);
}

#[tokio::test]
async fn changing_where_an_environment_is_sets_it_back_to_pending() {
    let app = TestApp::new().await;
    let id = app.environment("qa", EnvironmentKind::Target).await;
    let patched = app
        .call(
            "PATCH",
            &format!("/api/v1/environments/{id}"),
            Some(&app.admin),
            Some(json!({ "url": "memory://qa2", "credential": "t0ken" })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched.body["validation_status"], "pending");
    assert_eq!(patched.body["has_credential"], true);
    let cleared = app
        .call(
            "PATCH",
            &format!("/api/v1/environments/{id}"),
            Some(&app.admin),
            Some(json!({ "credential": null })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cleared.body["has_credential"], false);
    assert_eq!(app.store.environment_credential(&id).await.unwrap(), None);
}

#[tokio::test]
async fn an_environment_in_use_cannot_be_deleted_or_change_kind() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    let p = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await;
    let qa = p.body["stages"][0]["target_environment_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let reply = app
        .call(
            "DELETE",
            &format!("/api/v1/environments/{qa}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(reply.detail().contains("sales"), "{}", reply.detail());
    let reply = app
        .call(
            "PATCH",
            &format!("/api/v1/environments/{qa}"),
            Some(&app.admin),
            Some(json!({ "kind": "development" })),
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);

    let spare = app.environment("spare", EnvironmentKind::Target).await;
    app.call(
        "DELETE",
        &format!("/api/v1/environments/{spare}"),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let gone = app
        .get(&format!("/api/v1/environments/{spare}"), &app.admin)
        .await;
    assert_problem(&gone, StatusCode::NOT_FOUND);
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a.1 == "environment.delete" && a.2 == spare)
    );
}

#[tokio::test]
async fn access_lists_name_users_and_groups_that_exist() {
    let app = TestApp::new().await;
    let id = app.environment("qa", EnvironmentKind::Target).await;
    let user = app.user("ana").await;
    app.post("/api/v1/groups", &app.admin, json!({ "name": "makers" }))
        .await
        .expect(StatusCode::CREATED);
    let path = format!("/api/v1/environments/{id}/access");
    let reply = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({ "access": ["group:nobody"] })),
        )
        .await;
    assert_problem(&reply, StatusCode::NOT_FOUND);
    let reply = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({ "access": ["everyone"] })),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    let granted = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({ "access": [format!("user:{}", user.id), "group:makers"] })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        granted.body["access"],
        json!([format!("user:{}", user.id), "group:makers"])
    );
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a.1 == "environment.set_access")
    );
}

#[tokio::test]
async fn validation_keeps_the_link_secret_unshown_and_says_when_there_is_none() {
    let app = TestApp::new().await;
    app.environments
        .answer("memory://qa", "qa", EnvironmentKind::Target, true);
    let qa = register(&app, "qa", "target", "memory://qa").await;
    let validated = validate(&app, &qa).await;
    assert_eq!(validated["validation_status"], "success");
    let message = validated["validation_message"].as_str().unwrap();
    assert!(message.contains("with a link secret"), "{message}");
    let secret = app.store.environment_link_secret(&qa).await.unwrap();
    assert_eq!(secret.as_deref(), Some("secret-of-memory://qa"));
    for path in [
        format!("/api/v1/environments/{qa}"),
        "/api/v1/environments".to_owned(),
    ] {
        let shown = app.get(&path, &app.admin).await.expect(StatusCode::OK);
        assert!(!shown.text.contains("secret-of-"), "{}", shown.text);
    }
    let audit = app.store.list_audit(None, 100).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|e| !e.detail.to_string().contains("secret-of-")),
        "{audit:?}"
    );

    // An environment that answers link without a secret stays usable, and says so.
    app.environments
        .answer("memory://old", "old", EnvironmentKind::Target, true);
    app.environments.issue_no_link_secret("memory://old");
    let old = register(&app, "old", "target", "memory://old").await;
    let validated = validate(&app, &old).await;
    assert_eq!(validated["validation_status"], "success");
    let message = validated["validation_message"].as_str().unwrap();
    assert!(
        message.contains("not with a link secret") && message.contains("issued none"),
        "{message}"
    );
    assert_eq!(app.store.environment_link_secret(&old).await.unwrap(), None);
}
