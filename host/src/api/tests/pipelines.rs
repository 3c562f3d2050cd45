//! Pipelines: visibility by share, rules, stages, gates and validators.

use axum::http::StatusCode;
use serde_json::json;

use super::{TestApp, assert_problem};
use crate::pipeline::{EnvironmentKind, PluginWorld};

#[tokio::test]
async fn a_user_sees_only_the_pipelines_shared_with_them_and_404_for_others() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (shared, _) = app.pipeline("shared").await;
    let (hidden, _) = app.pipeline("hidden").await;
    let (via_group, _) = app.pipeline("via-group").await;
    app.post(
        "/api/v1/groups",
        &app.admin,
        json!({ "name": "sales", "members": [ana.id] }),
    )
    .await
    .expect(StatusCode::CREATED);
    app.post(
        &format!("/api/v1/pipelines/{shared}/shares"),
        &app.admin,
        json!({ "grantee": format!("user:{}", ana.id) }),
    )
    .await
    .expect(StatusCode::OK);
    app.post(
        &format!("/api/v1/pipelines/{via_group}/shares"),
        &app.admin,
        json!({ "grantee": "group:sales" }),
    )
    .await
    .expect(StatusCode::OK);

    let list = app
        .get("/api/v1/pipelines", &ana)
        .await
        .expect(StatusCode::OK);
    let mut names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["shared", "via-group"]);
    let all = app.get("/api/v1/pipelines", &app.admin).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);

    app.get(&format!("/api/v1/pipelines/{shared}"), &ana)
        .await
        .expect(StatusCode::OK);
    // Unshared and nonexistent answer alike, so existence does not leak.
    let unshared = app.get(&format!("/api/v1/pipelines/{hidden}"), &ana).await;
    assert_problem(&unshared, StatusCode::NOT_FOUND);
    let missing = app.get("/api/v1/pipelines/no-such-pipeline", &ana).await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
    assert_eq!(
        unshared.detail().replace(&hidden, "ID"),
        missing.detail().replace("no-such-pipeline", "ID")
    );

    app.call(
        "DELETE",
        &format!("/api/v1/pipelines/{shared}/shares?grantee=user:{}", ana.id),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let after = app.get(&format!("/api/v1/pipelines/{shared}"), &ana).await;
    assert_problem(&after, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app.audit_actions().await.into_iter().map(|a| a.1).collect();
    assert!(actions.contains(&"pipeline.share".to_owned()));
    assert!(actions.contains(&"pipeline.unshare".to_owned()));
}

#[tokio::test]
async fn filtered_pages_stay_full_and_cursors_skip_hidden_pipelines() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let dev = app.environment("dev", EnvironmentKind::Development).await;
    for i in 0..6 {
        let shares = if i % 2 == 0 {
            json!([format!("user:{}", ana.id)])
        } else {
            json!([])
        };
        app.post(
            "/api/v1/pipelines",
            &app.admin,
            json!({ "name": format!("p{i}"), "development_environment_ids": [dev], "shares": shares }),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let first = app
        .get("/api/v1/pipelines?limit=2", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let next = first.body["next"]
        .as_str()
        .expect("a third shared pipeline exists");
    let second = app
        .get(&format!("/api/v1/pipelines?limit=2&after={next}"), &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["next"], json!(null));
}

#[tokio::test]
async fn pipeline_rules_are_checked_before_anything_is_stored() {
    let app = TestApp::new().await;
    let (pipeline, first) = app.pipeline("sales").await;
    let qa2 = app.environment("qa2", EnvironmentKind::Target).await;
    let dev = app.environment("dev2", EnvironmentKind::Development).await;

    let target_as_dev = app
        .post(
            "/api/v1/pipelines",
            &app.admin,
            json!({ "name": "bad", "development_environment_ids": [qa2] }),
        )
        .await;
    assert_problem(&target_as_dev, StatusCode::CONFLICT);
    assert_eq!(
        target_as_dev.body["type"],
        "urn:gatehouse:problem:pipeline-rule"
    );

    let two_first = app
        .post(
            &format!("/api/v1/pipelines/{pipeline}/stages"),
            &app.admin,
            json!({ "name": "uat", "target_environment_id": qa2 }),
        )
        .await;
    assert_problem(&two_first, StatusCode::CONFLICT);
    assert!(
        two_first.detail().contains("no previous stage"),
        "{}",
        two_first.detail()
    );

    let dev_as_target = app
        .post(
            &format!("/api/v1/pipelines/{pipeline}/stages"),
            &app.admin,
            json!({ "name": "uat", "previous_stage_id": first, "target_environment_id": dev }),
        )
        .await;
    assert_problem(&dev_as_target, StatusCode::CONFLICT);

    let mut previous = first;
    for i in 0..6 {
        previous = app
            .post(
                &format!("/api/v1/pipelines/{pipeline}/stages"),
                &app.admin,
                json!({ "name": format!("s{i}"), "previous_stage_id": previous, "target_environment_id": qa2 }),
            )
            .await
            .expect(StatusCode::CREATED)
            .id();
    }
    let eighth = app
        .post(
            &format!("/api/v1/pipelines/{pipeline}/stages"),
            &app.admin,
            json!({ "name": "s7", "previous_stage_id": previous, "target_environment_id": qa2 }),
        )
        .await;
    assert_problem(&eighth, StatusCode::CONFLICT);
    assert!(eighth.detail().contains("at most 7"));
    let stored = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await;
    assert_eq!(stored.body["stages"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn a_stage_another_follows_cannot_be_deleted() {
    let app = TestApp::new().await;
    let (pipeline, qa) = app.pipeline("sales").await;
    let prod = app.environment("prod", EnvironmentKind::Target).await;
    let stages = format!("/api/v1/pipelines/{pipeline}/stages");
    let prod_stage = app
        .post(
            &stages,
            &app.admin,
            json!({ "name": "prod", "previous_stage_id": qa, "target_environment_id": prod }),
        )
        .await
        .expect(StatusCode::CREATED)
        .id();
    let reply = app
        .call("DELETE", &format!("{stages}/{qa}"), Some(&app.admin), None)
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(reply.detail().contains("prod"), "{}", reply.detail());
    assert_eq!(reply.body["next_stage_id"], prod_stage.as_str());

    let renamed = app
        .call(
            "PATCH",
            &format!("{stages}/{prod_stage}"),
            Some(&app.admin),
            Some(json!({ "name": "production", "pre_deployment_step_required": true })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(renamed.body["name"], "production");
    assert_eq!(renamed.body["previous_stage_id"], qa.as_str());

    app.call(
        "DELETE",
        &format!("{stages}/{prod_stage}"),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.call("DELETE", &format!("{stages}/{qa}"), Some(&app.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let missing = app
        .call("DELETE", &format!("{stages}/{qa}"), Some(&app.admin), None)
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
    let deletions = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a.1 == "pipeline.stage.delete" && a.2 == pipeline)
        .count();
    assert_eq!(deletions, 2);
}

#[tokio::test]
async fn gates_bind_enabled_approvers_whose_check_config_accepts() {
    let app = TestApp::new().await;
    let (pipeline, qa) = app.pipeline("sales").await;
    let approver = app
        .plugin("two-person-rule", PluginWorld::Approver, &["group"])
        .await;
    let validator = app
        .plugin("solution-policy", PluginWorld::Validator, &["prefix"])
        .await;
    let stage = format!("/api/v1/pipelines/{pipeline}/stages/{qa}");
    let patch = |gates: serde_json::Value| {
        let app = &app;
        let stage = stage.clone();
        async move {
            app.call(
                "PATCH",
                &stage,
                Some(&app.admin),
                Some(json!({ "gates": gates })),
            )
            .await
        }
    };

    let reply = patch(json!([{ "plugin_id": validator }])).await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert_eq!(
        reply.body["type"],
        "urn:gatehouse:problem:wrong-plugin-world"
    );
    assert!(
        reply.detail().contains("is a validator"),
        "{}",
        reply.detail()
    );

    let reply = patch(json!([{ "plugin_id": approver, "config": { "grup": "ops" } }])).await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body["type"],
        "urn:gatehouse:problem:plugin-config-refused"
    );
    assert!(
        reply.body["plugin_message"]
            .as_str()
            .unwrap()
            .contains("\"grup\"")
    );
    assert!(reply.detail().contains("refused its configuration"));

    let reply = patch(json!([{ "plugin_id": "no-such-plugin" }])).await;
    assert_problem(&reply, StatusCode::NOT_FOUND);
    assert!(reply.detail().contains("does not exist"));

    let gate = json!([{ "plugin_id": approver, "config": { "group": "ops" }, "approval_timeout_seconds": 3600 }]);
    let bound = patch(gate.clone()).await.expect(StatusCode::OK);
    assert_eq!(bound.body["gates"][0]["config"]["group"], "ops");

    app.call(
        "PATCH",
        &format!("/api/v1/plugins/{approver}"),
        Some(&app.admin),
        Some(json!({ "enabled": false })),
    )
    .await
    .expect(StatusCode::OK);
    let reply = patch(gate).await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(reply.detail().contains("disabled"));
}

/// A gate gets an id and the `live` mode when added, keeps its id when an edit sends it
/// back (even moved), and a gate sent without one, or with an id it does not have, gets a
/// new one.
#[tokio::test]
async fn gates_get_stable_ids_that_edits_keep() {
    let app = TestApp::new().await;
    let (pipeline, qa) = app.pipeline("sales").await;
    let approver = app
        .plugin("two-person-rule", PluginWorld::Approver, &["group"])
        .await;
    let stage = format!("/api/v1/pipelines/{pipeline}/stages/{qa}");
    let gate = |group: &str| json!({ "plugin_id": approver, "config": { "group": group } });
    let first = app
        .call(
            "PATCH",
            &stage,
            Some(&app.admin),
            Some(json!({ "gates": [gate("ops"), gate("leads")] })),
        )
        .await
        .expect(StatusCode::OK);
    let ids: Vec<String> = (0..2)
        .map(|i| first.body["gates"][i]["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| !id.is_empty()) && ids[0] != ids[1],
        "{ids:?}"
    );
    assert_eq!(first.body["gates"][0]["mode"], "live");

    let mut moved = first.body["gates"][1].clone();
    moved["config"]["group"] = json!("release");
    let mut copied = gate("ops");
    copied["id"] = json!("made-up");
    let second = app
        .call(
            "PATCH",
            &stage,
            Some(&app.admin),
            Some(json!({ "gates": [moved, copied, gate("qa")] })),
        )
        .await
        .expect(StatusCode::OK);
    let gates = &second.body["gates"];
    assert_eq!(
        gates[0]["id"],
        ids[1].as_str(),
        "the moved gate keeps its id"
    );
    assert_eq!(gates[0]["config"]["group"], "release");
    assert_ne!(gates[1]["id"], "made-up");
    assert!(
        gates[2]["id"]
            .as_str()
            .is_some_and(|id| !ids.contains(&id.to_owned())),
        "{gates:#}"
    );
    let stored = app
        .get(&format!("/api/v1/pipelines/{pipeline}"), &app.admin)
        .await
        .body;
    assert_eq!(&stored["stages"][0]["gates"], gates);

    let doc = app
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .body;
    let schemas = &doc["components"]["schemas"];
    let binding = &schemas["GateBinding"]["properties"];
    assert!(
        binding["id"].is_object() && binding["mode"].is_object(),
        "{binding:#}"
    );
    assert_eq!(
        schemas["BindingMode"]["enum"],
        json!(["live"]),
        "{schemas:#}"
    );
}

#[tokio::test]
async fn validators_bind_validator_plugins_only() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    let approver = app
        .plugin("business-hours", PluginWorld::Approver, &[])
        .await;
    let validator = app
        .plugin("solution-policy", PluginWorld::Validator, &["prefix"])
        .await;
    let path = format!("/api/v1/pipelines/{pipeline}/validators");

    let reply = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({ "validators": [{ "plugin_id": approver }] })),
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(
        reply.detail().contains("is an approver"),
        "{}",
        reply.detail()
    );

    let set = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({ "validators": [{ "plugin_id": validator, "config": { "prefix": "con" } }] })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(set.body["validators"][0]["plugin_id"], validator.as_str());
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a.1 == "pipeline.set_validators")
    );
}

#[tokio::test]
async fn an_admin_renames_changes_settings_and_deletes_a_pipeline() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("sales").await;
    let path = format!("/api/v1/pipelines/{pipeline}");
    let patched = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "name": "sales-crm", "settings": { "allow_redeploy_older_versions": true } })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched.body["name"], "sales-crm");
    assert_eq!(
        patched.body["settings"]["allow_redeploy_older_versions"],
        true
    );
    assert_eq!(patched.body["stages"].as_array().unwrap().len(), 1);
    let cleared = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "development_environment_ids": ["nowhere"] })),
        )
        .await;
    assert_problem(&cleared, StatusCode::NOT_FOUND);
    assert!(cleared.detail().contains("nowhere"));

    app.call("DELETE", &path, Some(&app.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_problem(&app.get(&path, &app.admin).await, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app.audit_actions().await.into_iter().map(|a| a.1).collect();
    assert!(actions.contains(&"pipeline.update".to_owned()));
    assert!(actions.contains(&"pipeline.delete".to_owned()));
}

#[tokio::test]
async fn a_change_made_to_an_old_revision_is_refused_and_changes_nothing() {
    let app = TestApp::new().await;
    let (pipeline, _) = app.pipeline("payroll").await;
    let path = format!("/api/v1/pipelines/{pipeline}");
    let read = app.get(&path, &app.admin).await.expect(StatusCode::OK);
    let etag = read.headers[axum::http::header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, format!("\"{}\"", read.body["revision"]));

    // Someone else changes it first.
    let other = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "description": "theirs" })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        other.body["revision"].as_u64(),
        read.body["revision"].as_u64().map(|r| r + 1)
    );

    // A change made to what was read before is refused with 412…
    let request = axum::http::Request::builder()
        .method("PATCH")
        .uri(&path)
        .header("authorization", format!("Bearer {}", app.admin.token))
        .header("content-type", "application/json")
        .header("if-match", &etag)
        .body(axum::body::Body::from(
            json!({ "description": "mine" }).to_string(),
        ))
        .unwrap();
    let stale = app.send(request).await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED);
    assert!(stale.detail().contains("read it again"), "{}", stale.text);
    // …and so is a stage added with it.
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("{path}/validators"))
        .header("authorization", format!("Bearer {}", app.admin.token))
        .header("content-type", "application/json")
        .header("if-match", &etag)
        .body(axum::body::Body::from(
            json!({ "validators": [] }).to_string(),
        ))
        .unwrap();
    assert_problem(&app.send(request).await, StatusCode::PRECONDITION_FAILED);
    let garbage = axum::http::Request::builder()
        .method("PATCH")
        .uri(&path)
        .header("authorization", format!("Bearer {}", app.admin.token))
        .header("content-type", "application/json")
        .header("if-match", "yesterday")
        .body(axum::body::Body::from(json!({}).to_string()))
        .unwrap();
    assert_problem(&app.send(garbage).await, StatusCode::BAD_REQUEST);

    let now = app.get(&path, &app.admin).await.expect(StatusCode::OK);
    assert_eq!(now.body["description"], "theirs");
    assert_eq!(now.body["revision"], other.body["revision"]);
}
