//! Artifacts: listed to those who may see them, with their time in RFC 3339 beside the
//! milliseconds, as the OpenAPI document says.

use axum::http::StatusCode;
use serde_json::json;

use super::{TestApp, assert_problem};
use crate::pipeline::EnvironmentKind;
use crate::pipeline::model::{ArtifactRecord, new_id};
use crate::pipeline::ports::PackageRef;
use crate::pipeline::store::ArtifactStore;

/// 2026-11-26T10:00:07.123Z.
const EXPORTED_AT: u64 = 1_795_687_207_123;

async fn artifact(app: &TestApp, source_environment_id: &str) -> ArtifactRecord {
    let manifest = serde_json::from_value(json!({
        "unique_name": "crm", "display_name": "CRM", "version": "1.0.0.4",
        "publisher": { "unique_name": "contoso", "prefix": "con" },
    }))
    .expect("a manifest");
    let package = |n: u8| PackageRef {
        sha256: format!("{n:02x}").repeat(32),
        size: 1000 + u64::from(n),
    };
    let record = ArtifactRecord {
        id: new_id(),
        solution_name: "crm".into(),
        version: "1.0.0.4".into(),
        managed: package(1),
        unmanaged: package(2),
        manifest,
        source_environment_id: source_environment_id.into(),
        deployment_id: new_id(),
        created_at: EXPORTED_AT,
    };
    app.store.insert_artifact(&record).await.expect("stored")
}

#[tokio::test]
async fn artifacts_give_their_time_in_rfc3339_beside_the_milliseconds() {
    let app = TestApp::new().await;
    let dev = app.environment("dev", EnvironmentKind::Development).await;
    artifact(&app, &dev).await;
    let list = app
        .get("/api/v1/artifacts?solution=crm", &app.admin)
        .await
        .expect(StatusCode::OK);
    let item = &list.body["items"][0];
    assert_eq!(
        item["created_at"], EXPORTED_AT,
        "the old field stays: {item:#}"
    );
    assert_eq!(
        item["created_at_rfc3339"], "2026-11-26T10:00:07.123Z",
        "{item:#}"
    );
    assert_eq!(
        item["managed"]["size"], 1001,
        "the record's fields stay: {item:#}"
    );

    let doc = app
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .body;
    let schema = &doc["components"]["schemas"]["Artifact"];
    let field = schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([schema])
        .find_map(|part| part["properties"].get("created_at_rfc3339"))
        .unwrap_or_else(|| panic!("the Artifact schema names created_at_rfc3339: {schema:#}"));
    assert_eq!(field["type"], "string", "{field:#}");
    assert_eq!(field["format"], "date-time", "{field:#}");
}

#[tokio::test]
async fn a_user_without_access_to_the_source_neither_lists_nor_downloads_it() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let dev = app.environment("dev", EnvironmentKind::Development).await;
    artifact(&app, &dev).await;
    let list = app
        .get("/api/v1/artifacts", &ana)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.body["items"], json!([]), "{}", list.text);
    let download = app.get("/api/v1/artifacts/crm/1.0.0.4/managed", &ana).await;
    assert_problem(&download, StatusCode::NOT_FOUND);
    assert!(
        download.detail().contains("that you can see"),
        "{}",
        download.detail()
    );

    // The admin sees it, but its file is not kept in this test's store of packages.
    let gone = app
        .get("/api/v1/artifacts/crm/1.0.0.4/unmanaged", &app.admin)
        .await;
    assert_problem(&gone, StatusCode::NOT_FOUND);
    assert!(
        gone.detail().contains("no longer stored"),
        "{}",
        gone.detail()
    );
    let bad_kind = app
        .get("/api/v1/artifacts/crm/1.0.0.4/source", &app.admin)
        .await;
    assert_problem(&bad_kind, StatusCode::BAD_REQUEST);
}
