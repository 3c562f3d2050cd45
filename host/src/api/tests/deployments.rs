//! Deployments through the HTTP surface. The engine's worker does not run here, so a
//! requested deployment stays queued; the engine's own tests cover what happens next.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use super::{Caller, TestApp, assert_problem};
use crate::pipeline::store::CatalogStore;

/// A pipeline shared with a new user who has access to both of its environments:
/// `(pipeline, stage, user)`.
async fn runnable(app: &TestApp) -> (String, String, Caller) {
    let ana = app.user("ana").await;
    let (pipeline, stage) = app.pipeline("sales").await;
    app.post(
        &format!("/api/v1/pipelines/{pipeline}/shares"),
        &app.admin,
        json!({ "grantee": format!("user:{}", ana.id) }),
    )
    .await
    .expect(StatusCode::OK);
    let body = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await
        .body;
    let envs = [
        body["development_environment_ids"][0]
            .as_str()
            .unwrap()
            .to_owned(),
        body["stages"][0]["target_environment_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for env in envs {
        app.call(
            "PUT",
            &format!("/api/v1/environments/{env}/access"),
            Some(&app.admin),
            Some(json!({ "access": [format!("user:{}", ana.id)] })),
        )
        .await
        .expect(StatusCode::OK);
    }
    (pipeline, stage, ana)
}

async fn request(app: &TestApp, caller: &Caller, body: &Value, key: Option<&str>) -> super::Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/v1/deployments")
        .header(header::AUTHORIZATION, format!("Bearer {}", caller.token))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    app.send(request.body(Body::from(body.to_string())).unwrap())
        .await
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_deployment() {
    let app = TestApp::new().await;
    let (pipeline, stage, ana) = runnable(&app).await;
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm", "notes": "first" });
    let first = request(&app, &ana, &body, Some("deploy-42"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(first.body["status"], "queued");
    assert_eq!(first.body["version"], "1.0.0.0");
    let again = request(&app, &ana, &body, Some("deploy-42"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(again.id(), first.id());
    let other = request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED);
    assert_ne!(other.id(), first.id());
    let blank = request(&app, &ana, &body, Some(" ")).await;
    assert_problem(&blank, StatusCode::BAD_REQUEST);
    // The same key for another request is refused, not answered with the first one.
    let different = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "erp" });
    let reused = request(&app, &ana, &different, Some("deploy-42")).await;
    assert_problem(&reused, StatusCode::CONFLICT);
    assert!(reused.detail().contains(&first.id()), "{}", reused.text);
}

#[tokio::test]
async fn running_needs_a_share_and_access_to_every_environment_even_for_admins() {
    let app = TestApp::new().await;
    let (pipeline, stage, _) = runnable(&app).await;
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" });
    let outsider = app.user("outsider").await;
    let reply = request(&app, &outsider, &body, None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND);
    let reply = request(&app, &app.admin, &body, None).await;
    assert_problem(&reply, StatusCode::FORBIDDEN);
    assert!(reply.detail().contains("access"), "{}", reply.detail());
}

#[tokio::test]
async fn deployments_are_listed_filtered_and_shown_to_those_who_can_see_them() {
    let app = TestApp::new().await;
    let (pipeline, stage, ana) = runnable(&app).await;
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" });
    let id = request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED)
        .id();
    request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED);

    let shown = app
        .get(&format!("/api/v1/deployments/{id}"), &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(shown.body["deployment"]["id"], id.as_str());
    assert_eq!(shown.body["timeline"][0]["kind"], "requested");
    // Whoever may see the deployment reads who requested it by name.
    assert_eq!(shown.body["people"], json!({ ana.id.as_str(): "ana" }));

    let count = |reply: &super::Reply| reply.body["items"].as_array().unwrap().len();
    let queued = app
        .get("/api/v1/deployments?status=queued,scheduled", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&queued), 2);
    let page = app
        .get("/api/v1/deployments?limit=1", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&page), 1);
    let next = page.body["next"].as_str().expect("a second page");
    let last = app
        .get(&format!("/api/v1/deployments?limit=1&after={next}"), &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&last), 1);
    assert_eq!(last.body["next"], Value::Null);
    let later = app
        .get(
            "/api/v1/deployments?requested_after=2999-01-01T00:00:00Z",
            &ana,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&later), 0);
    let by_ms = app
        .get("/api/v1/deployments?requested_after=0&solution=crm", &ana)
        .await;
    assert_eq!(count(&by_ms), 2);
    let bad = app.get("/api/v1/deployments?status=done", &ana).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST);
    assert!(bad.detail().contains("pending_approval"));
    let bad_time = app
        .get("/api/v1/deployments?requested_before=yesterday", &ana)
        .await;
    assert_problem(&bad_time, StatusCode::BAD_REQUEST);

    // The solutions her pipelines carried, not yet installed anywhere (nothing ran).
    let solutions = app
        .get("/api/v1/solutions", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        solutions.body,
        json!({ "items": [{ "name": "crm", "installations": [] }], "next": null })
    );
    let one = app
        .get("/api/v1/solutions?solution=crm", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&one), 1);
    let other = app
        .get("/api/v1/solutions?solution=erp", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&other), 0);

    let outsider = app.user("outsider").await;
    let none = app
        .get("/api/v1/deployments", &outsider)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&none), 0);
    let unseen = app
        .get("/api/v1/solutions", &outsider)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&unseen), 0);
    let hidden = app
        .get(&format!("/api/v1/deployments/{id}"), &outsider)
        .await;
    assert_problem(&hidden, StatusCode::NOT_FOUND);
    let approvals = app
        .get("/api/v1/approvals", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&approvals), 0);
}

#[tokio::test]
async fn only_the_requester_or_an_admin_cancels_and_only_admins_set_the_step_status() {
    let app = TestApp::new().await;
    let (pipeline, stage, ana) = runnable(&app).await;
    let ben = app.user("ben").await;
    app.post(
        &format!("/api/v1/pipelines/{pipeline}/shares"),
        &app.admin,
        json!({ "grantee": format!("user:{}", ben.id) }),
    )
    .await
    .expect(StatusCode::OK);
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" });
    let id = request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED)
        .id();

    let status = format!("/api/v1/deployments/{id}/pre-deployment-status");
    let reply = app
        .call("PUT", &status, Some(&ana), Some(json!({ "status": 20 })))
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN);
    let reply = app
        .call(
            "PUT",
            &status,
            Some(&app.admin),
            Some(json!({ "status": 15 })),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = app
        .call(
            "PUT",
            &status,
            Some(&app.admin),
            Some(json!({ "status": 20 })),
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);

    let reply = app
        .call(
            "PATCH",
            &format!("/api/v1/deployments/{id}"),
            Some(&ana),
            Some(json!({})),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = app
        .call(
            "PATCH",
            &format!("/api/v1/deployments/{id}"),
            Some(&ben),
            Some(json!({ "scheduled_for": null })),
        )
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN);

    let cancel = format!("/api/v1/deployments/{id}/cancel");
    let reply = app.call("POST", &cancel, Some(&ben), None).await;
    assert_problem(&reply, StatusCode::FORBIDDEN);
    let canceled = app
        .call("POST", &cancel, Some(&ana), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(canceled.body["status"], "canceled");
    let reply = app.call("POST", &cancel, Some(&ana), None).await;
    assert_problem(&reply, StatusCode::CONFLICT);

    let retried = app
        .call(
            "POST",
            &format!("/api/v1/deployments/{id}/retry"),
            Some(&app.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(retried.body["status"], "queued");
    assert_eq!(retried.body["attempt"], 2);
    let actions: Vec<String> = app.audit_actions().await.into_iter().map(|a| a.1).collect();
    assert!(
        actions.iter().any(|a| a.starts_with("deployment.")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_pipeline_or_stage_with_a_deployment_in_flight_cannot_be_deleted() {
    let app = TestApp::new().await;
    let (pipeline, stage, ana) = runnable(&app).await;
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" });
    let id = request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED)
        .id();
    let reply = app
        .call(
            "DELETE",
            &format!("/api/v1/pipelines/{pipeline}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(reply.detail().contains(&id), "{}", reply.detail());
    let reply = app
        .call(
            "DELETE",
            &format!("/api/v1/pipelines/{pipeline}/stages/{stage}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    app.call(
        "POST",
        &format!("/api/v1/deployments/{id}/cancel"),
        Some(&ana),
        None,
    )
    .await
    .expect(StatusCode::OK);
    app.call(
        "DELETE",
        &format!("/api/v1/pipelines/{pipeline}"),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

/// The pipeline's `(development, target)` environment ids.
async fn environments_of(app: &TestApp, pipeline: &str) -> (String, String) {
    let body = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await
        .body;
    let id = |v: &Value| v.as_str().unwrap().to_owned();
    (
        id(&body["development_environment_ids"][0]),
        id(&body["stages"][0]["target_environment_id"]),
    )
}

#[tokio::test]
async fn an_environment_back_to_pending_refuses_new_deployments_but_not_those_in_flight() {
    let app = TestApp::new().await;
    let (pipeline, stage, ana) = runnable(&app).await;
    let (dev, qa) = environments_of(&app, &pipeline).await;
    let body = json!({ "pipeline_id": pipeline, "stage_id": stage, "solution_name": "crm" });
    let in_flight = request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED)
        .id();

    // A new credential sets the target back to pending until it validates again.
    app.call(
        "PATCH",
        &format!("/api/v1/environments/{qa}"),
        Some(&app.admin),
        Some(json!({ "credential": "rotated" })),
    )
    .await
    .expect(StatusCode::OK);
    let stored = app.store.get_environment(&qa).await.unwrap();
    assert_eq!(
        stored.validation_status,
        crate::pipeline::model::ValidationStatus::Pending
    );

    let refused = request(&app, &ana, &body, None).await;
    assert_problem(&refused, StatusCode::CONFLICT);
    assert_eq!(
        refused.body["type"],
        "urn:gatehouse:problem:environment-not-validated"
    );
    assert_eq!(refused.body["environment_id"], qa.as_str());
    let detail = refused.detail();
    assert!(detail.contains("\"sales-qa\""), "{detail}");
    assert!(
        detail.contains(&format!("POST /api/v1/environments/{qa}/validate")),
        "{detail}"
    );

    // A preflight reports the same as an error finding instead of refusing.
    let preflight = app
        .post("/api/v1/deployments/validate", &ana, body.clone())
        .await
        .expect(StatusCode::OK);
    assert_eq!(preflight.body["ok"], false, "{}", preflight.text);
    let findings = preflight.body["findings"].as_array().unwrap();
    let finding = findings
        .iter()
        .find(|f| f["code"] == "environment_not_validated")
        .unwrap_or_else(|| panic!("no finding in {findings:?}"));
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["source"], "environment sales-qa");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("POST /api/v1/environments/{qa}/validate")),
        "{message}"
    );

    // The deployment in flight is untouched: still queued, still the requester's to cancel.
    let shown = app
        .get(&format!("/api/v1/deployments/{in_flight}"), &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(shown.body["deployment"]["status"], "queued");
    assert_eq!(shown.body["deployment"]["status_reason"], "");

    // Once validated again, new requests go through; a pending source is refused too.
    app.post(
        &format!("/api/v1/environments/{qa}/validate"),
        &app.admin,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    request(&app, &ana, &body, None)
        .await
        .expect(StatusCode::CREATED);
    let preflight = app
        .post("/api/v1/deployments/validate", &ana, body.clone())
        .await
        .expect(StatusCode::OK);
    assert_eq!(preflight.body["ok"], true, "{}", preflight.text);
    app.call(
        "PATCH",
        &format!("/api/v1/environments/{dev}"),
        Some(&app.admin),
        Some(json!({ "credential": "rotated" })),
    )
    .await
    .expect(StatusCode::OK);
    let refused = request(&app, &ana, &body, None).await;
    assert_problem(&refused, StatusCode::CONFLICT);
    assert!(
        refused
            .detail()
            .contains("source environment \"sales-dev\""),
        "{}",
        refused.detail()
    );
    app.call(
        "POST",
        &format!("/api/v1/deployments/{in_flight}/cancel"),
        Some(&ana),
        None,
    )
    .await
    .expect(StatusCode::OK);
}
