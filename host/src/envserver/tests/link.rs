//! The link secret: issued by `POST /env/v1/link`, presented by every import once issued.

use super::*;
use crate::environment::link::LINK_SECRET_HEADER;

#[tokio::test]
async fn once_linked_an_import_must_present_the_link_secret_and_force_rotates_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = ready_target(dir.path()).await;
    let sha = env.upload(&app("1.0.0.3", true)).await;
    let import_with = |op: &'static str, secret: Option<String>| {
        let body = json!({ "operation_id": op, "package_sha256": sha, "settings": settings()["settings"] });
        let mut request = env.client.post(env.url("/env/v1/imports")).json(&body);
        if let Some(secret) = secret {
            request = request.header(LINK_SECRET_HEADER, secret);
        }
        env.send(request)
    };
    let (status, linked) = env.post("/env/v1/link", json!({ "host_id": "h1" })).await;
    assert_eq!(status, StatusCode::OK);
    let first = linked["link_secret"]
        .as_str()
        .expect("a link secret")
        .to_owned();
    assert_eq!(first.len(), 64, "256 bits in hex: {linked}");
    let (_, info) = env.get("/env/v1/info").await;
    assert!(
        info.get("link_secret").is_none(),
        "info never shows it: {info}"
    );

    let (status, problem) = import_with("deploy-1/1", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "link_secret_refused");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(LINK_SECRET_HEADER),
        "{problem}"
    );
    let (status, problem) = import_with("deploy-1/1", Some("00".repeat(32))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, op) = import_with("deploy-1/1", Some(first.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    assert_eq!(env.finished("deploy-1/1").await["status"], "succeeded");

    // Another host takes it with force: the first secret stops working.
    let (status, linked) = env
        .post("/env/v1/link", json!({ "host_id": "h2", "force": true }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = linked["link_secret"]
        .as_str()
        .expect("a link secret")
        .to_owned();
    assert_ne!(second, first);
    let (status, problem) = import_with("deploy-2/1", Some(first)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("linked again"),
        "{problem}"
    );

    // Only the secret's digest is kept, and it survives a restart.
    drop(env);
    let env = open(dir.path(), Kind::Target).await;
    let body = json!({ "operation_id": "deploy-2/1", "package_sha256": sha, "settings": settings()["settings"] });
    let request = env
        .client
        .post(env.url("/env/v1/imports"))
        .header(LINK_SECRET_HEADER, second)
        .json(&body);
    let (status, op) = env.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    let (status, _) = env.import("deploy-3/1", &sha, settings()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
