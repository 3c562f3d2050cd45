//! Plugin uploads, their refusals, changes and deletion.

use axum::http::StatusCode;
use serde_json::json;

use super::fakes::component;
use super::{TestApp, assert_problem};
use crate::pipeline::PluginWorld;
use crate::pipeline::plugin_admin::MAX_COMPONENT_BYTES;

async fn plugin_count(app: &TestApp) -> usize {
    app.get("/api/v1/plugins", &app.admin)
        .await
        .expect(StatusCode::OK)
        .body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn an_admin_uploads_a_component_that_becomes_callable() {
    let app = TestApp::new().await;
    let bytes = component(
        "change-freeze",
        "0.2.0",
        PluginWorld::Approver,
        &["windows"],
    );
    let reply = app
        .upload(
            &app.admin,
            "?name=change-freeze&version=0.2.0",
            "application/wasm",
            bytes,
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(reply.body["name"], "change-freeze");
    assert_eq!(reply.body["world"], "approver");
    assert_eq!(reply.body["enabled"], true);
    assert_eq!(reply.body["config_keys"], json!(["windows"]));
    assert_eq!(reply.body["sha256"].as_str().unwrap().len(), 64);
    let id = reply.id();
    assert!(app.plugins.is_active(&id));
    let user = app.user("reader").await;
    app.get(&format!("/api/v1/plugins/{id}"), &user)
        .await
        .expect(StatusCode::OK);
    let stats = app
        .get(&format!("/api/v1/plugins/{id}/stats"), &user)
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats.body["calls"], 0);
    assert!(app.audit_actions().await.contains(&(
        app.admin.id.clone(),
        "plugin.upload".into(),
        id
    )));
}

#[tokio::test]
async fn refused_uploads_say_why_and_store_nothing() {
    let app = TestApp::new().await;
    let good = component("gate", "1.0.0", PluginWorld::Approver, &[]);
    let audit_before = app.audit_actions().await.len();

    let not_wasm = app
        .upload(
            &app.admin,
            "",
            "application/wasm",
            b"#!/bin/sh\necho hi\n".to_vec(),
        )
        .await;
    assert_problem(&not_wasm, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        not_wasm.detail().contains("not WebAssembly"),
        "{}",
        not_wasm.detail()
    );
    assert_eq!(
        not_wasm.body["type"],
        "urn:gatehouse:problem:plugin-refused"
    );

    let wrong_type = app
        .upload(&app.admin, "", "application/json", good.clone())
        .await;
    assert_problem(&wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(wrong_type.detail().contains("application/wasm"));

    let wrong_name = app
        .upload(
            &app.admin,
            "?name=other-gate",
            "application/wasm",
            good.clone(),
        )
        .await;
    assert_problem(&wrong_name, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_name.detail().contains("other-gate"));
    let wrong_version = app
        .upload(
            &app.admin,
            "?version=2.0.0",
            "application/wasm",
            good.clone(),
        )
        .await;
    assert_problem(&wrong_version, StatusCode::UNPROCESSABLE_ENTITY);

    let mut huge = good.clone();
    huge.resize(MAX_COMPONENT_BYTES + 1, b' ');
    let too_large = app.upload(&app.admin, "", "application/wasm", huge).await;
    assert_problem(&too_large, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_large.detail().contains("MiB"), "{}", too_large.detail());

    assert_eq!(plugin_count(&app).await, 0);
    assert_eq!(app.audit_actions().await.len(), audit_before);

    app.upload(&app.admin, "", "application/wasm", good.clone())
        .await
        .expect(StatusCode::CREATED);
    let duplicate = app.upload(&app.admin, "", "application/wasm", good).await;
    assert_problem(&duplicate, StatusCode::CONFLICT);
    assert!(
        duplicate.detail().contains("gate 1.0.0"),
        "{}",
        duplicate.detail()
    );
    assert_eq!(plugin_count(&app).await, 1);
}

#[tokio::test]
async fn limits_merge_with_the_current_ones_and_respect_the_ceilings() {
    let app = TestApp::new().await;
    let id = app.plugin("gate", PluginWorld::Approver, &[]).await;
    let path = format!("/api/v1/plugins/{id}");
    let changed = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "limits": { "wall_time": 250 } })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(changed.body["limits"]["wall_time"], 250);
    assert_eq!(changed.body["limits"]["fuel"], 1_000_000_000u64);
    let active = app.plugins.active_limits(&id).unwrap();
    assert_eq!(active.wall_time.as_millis(), 250);

    let reply = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "limits": { "memory_bytes": 1u64 << 40 } })),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.detail().contains("ceiling"), "{}", reply.detail());
    let reply = app
        .call(
            "PATCH",
            &path,
            Some(&app.admin),
            Some(json!({ "limits": { "walltime": 5 } })),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    let stored = app.get(&path, &app.admin).await;
    assert_eq!(stored.body["limits"]["wall_time"], 250);

    app.call(
        "PATCH",
        &path,
        Some(&app.admin),
        Some(json!({ "enabled": false })),
    )
    .await
    .expect(StatusCode::OK);
    assert!(!app.plugins.is_active(&id));
    app.call(
        "PATCH",
        &path,
        Some(&app.admin),
        Some(json!({ "enabled": true })),
    )
    .await
    .expect(StatusCode::OK);
    assert!(app.plugins.is_active(&id));
}

#[tokio::test]
async fn a_bound_plugin_cannot_be_deleted() {
    let app = TestApp::new().await;
    let (pipeline, stage) = app.pipeline("sales").await;
    let id = app.plugin("gate", PluginWorld::Approver, &[]).await;
    app.call(
        "PATCH",
        &format!("/api/v1/pipelines/{pipeline}/stages/{stage}"),
        Some(&app.admin),
        Some(json!({ "gates": [{ "plugin_id": id }] })),
    )
    .await
    .expect(StatusCode::OK);
    let reply = app
        .call(
            "DELETE",
            &format!("/api/v1/plugins/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::CONFLICT);
    assert!(reply.detail().contains("sales"));
    assert!(app.plugins.is_active(&id));

    app.call(
        "PATCH",
        &format!("/api/v1/pipelines/{pipeline}/stages/{stage}"),
        Some(&app.admin),
        Some(json!({ "gates": [] })),
    )
    .await
    .expect(StatusCode::OK);
    app.call(
        "DELETE",
        &format!("/api/v1/plugins/{id}"),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert!(!app.plugins.is_active(&id));
    assert_eq!(plugin_count(&app).await, 0);
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a.1 == "plugin.delete" && a.2 == id)
    );
}
