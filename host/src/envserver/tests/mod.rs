//! The environment server over real HTTP: each test serves it on 127.0.0.1:0.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::{EnvServer, EnvServerConfig, Kind};
use crate::solution::{Manifest, build_package};

mod link;
mod listing;

const TOKEN: &str = "test-token-0123456789abcdef0123456789abcdef";

/// One environment served over TCP, optionally under a path prefix.
struct Served {
    server: EnvServer,
    base: String,
    http: JoinHandle<()>,
    client: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.http.abort();
    }
}

fn config(dir: &Path, kind: Kind) -> EnvServerConfig {
    let mut config = EnvServerConfig::new(dir, format!("{kind:?} env"), kind);
    config.token = Some(TOKEN.to_owned());
    config
}

async fn serve(config: EnvServerConfig, prefix: &str) -> Served {
    let server = EnvServer::open(config)
        .await
        .expect("the environment opens");
    let router = if prefix.is_empty() {
        server.router()
    } else {
        axum::Router::new().nest(prefix, server.router())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served {
        server,
        base: format!("http://{address}{prefix}"),
        http,
        client: reqwest::Client::new(),
    }
}

async fn open(dir: &Path, kind: Kind) -> Served {
    serve(config(dir, kind), "").await
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.bearer_auth(TOKEN).send().await.expect("an answer");
        let status = response.status();
        let body = response.bytes().await.expect("a body");
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    async fn put(&self, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let request = self
            .client
            .put(self.url(path))
            .header("content-type", "application/zip")
            .body(bytes);
        self.send(request).await
    }

    async fn upload(&self, package: &[u8]) -> String {
        let sha = sha256(package);
        let (status, body) = self
            .put(&format!("/env/v1/packages/{sha}"), package.to_vec())
            .await;
        assert!(status.is_success(), "{status} {body}");
        sha
    }

    async fn connection(&self, name: &str, connector: &str) {
        let (status, body) = self
            .post(
                "/env/v1/connections",
                json!({ "name": name, "connector": connector }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn import(&self, operation_id: &str, sha: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({ "operation_id": operation_id, "package_sha256": sha });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.post("/env/v1/imports", body).await
    }

    /// Polls an operation until it is no longer running.
    async fn finished(&self, operation_id: &str) -> Value {
        for _ in 0..200 {
            let (status, op) = self.get(&format!("/env/v1/imports/{operation_id}")).await;
            assert_eq!(status, StatusCode::OK, "{op}");
            if op["status"] != "running" {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {operation_id} is still running");
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A manifest with one component; `extra` adds or replaces top-level fields.
fn manifest(name: &str, version: &str, managed: bool, extra: Value) -> Manifest {
    let mut doc = json!({
        "unique_name": name,
        "display_name": format!("{name} display"),
        "version": version,
        "publisher": { "unique_name": "contoso", "prefix": "contoso" },
        "managed": managed,
        "components": [ { "kind": "table", "name": "contoso_order",
                          "path": "components/order.json" } ]
    });
    if let (Some(doc), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        doc.extend(extra);
    }
    serde_json::from_value(doc).expect("a valid manifest")
}

fn package(name: &str, version: &str, managed: bool, extra: Value) -> Vec<u8> {
    let manifest = manifest(name, version, managed, extra);
    build_package(
        &manifest,
        &[("components/order.json", b"{\"columns\": []}")],
    )
    .expect("a package")
}

fn code(problem: &Value) -> &str {
    problem["code"].as_str().unwrap_or_default()
}

fn finding_codes(report: &Value) -> Vec<&str> {
    report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn refuses_calls_without_the_token() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = open(dir.path(), Kind::Target).await;
    let response = env
        .client
        .get(env.url("/env/v1/info"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("www-authenticate"));
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["status"], 401);

    let response = env
        .client
        .get(env.url("/env/v1/solutions"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn info_describes_the_environment_and_the_token_is_generated_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = EnvServerConfig::new(dir.path(), "QA", Kind::Target);
    config.environment_id = Some("qa-1".into());
    let server = EnvServer::open(config.clone()).await.expect("opens");
    let token = server.token().expect("a generated token").to_owned();
    assert_eq!(token.len(), 64);
    let info = server.info();
    assert_eq!(
        serde_json::to_value(&info).expect("json"),
        json!({ "environment_id": "qa-1", "name": "QA", "kind": "target", "managed": true,
                "linked_host": null, "api_version": "1.1" })
    );
    server.shutdown().await;
    drop(server);

    // Reopened: the same token still opens it, and none is printed again.
    let server = EnvServer::open(config.clone()).await.expect("reopens");
    assert_eq!(server.token(), None);
    let response = tower::ServiceExt::oneshot(
        server.router(),
        axum::http::Request::get("/env/v1/info")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("a request"),
    )
    .await
    .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    drop(server);

    // The data dir belongs to one environment, of one kind.
    let mut other = config.clone();
    other.kind = Kind::Development;
    let error = EnvServer::open(other).await.err().expect("refused");
    assert!(format!("{error:#}").contains("--kind target"), "{error:#}");
    let mut other = config;
    other.environment_id = Some("qa-2".into());
    let error = EnvServer::open(other).await.err().expect("refused");
    assert!(format!("{error:#}").contains("qa-1"), "{error:#}");
}

#[tokio::test]
async fn makers_push_solutions_to_development_only() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = open(dir.path(), Kind::Development).await;
    let bytes = package("contoso_app", "1.0.0.0", false, json!({}));
    let (status, body) = env
        .put("/env/v1/solutions/contoso_app", bytes.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], "1.0.0.0");
    assert_eq!(body["package_sha256"], sha256(&bytes));
    let (status, _) = env
        .put(
            "/env/v1/solutions/contoso_app",
            package("contoso_app", "1.0.0.1", false, json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, list) = env.get("/env/v1/solutions").await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["unique_name"], "contoso_app");
    assert_eq!(items[0]["version"], "1.0.0.1");
    assert_eq!(items[0]["managed"], false);
    assert_eq!(items[0]["publisher_prefix"], "contoso");
    assert_eq!(items[0]["operation_id"], Value::Null);
    assert_eq!(
        items[0]["components"],
        json!([{ "kind": "table", "name": "contoso_order", "path": "components/order.json" }])
    );
    let (status, one) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(
        (status, &one["version"]),
        (StatusCode::OK, &json!("1.0.0.1"))
    );
    let (status, problem) = env.get("/env/v1/solutions/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // The name in the path must be the package's; the package must be one.
    let (status, problem) = env.put("/env/v1/solutions/other_app", bytes).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&problem), "name_mismatch");
    let (status, problem) = env
        .put("/env/v1/solutions/contoso_app", b"not a zip".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&problem), "bad_package");
    let (status, problem) = env
        .put(
            "/env/v1/solutions/contoso_app",
            package("contoso_app", "1.0.0.2", true, json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&problem), "managed_package");
    // Refused packages leave no blob behind, not even a temporary one.
    let blobs = std::fs::read_dir(dir.path().join("packages"))
        .expect("the package folder")
        .count();
    assert_eq!(blobs, 2);

    let target_dir = tempfile::tempdir().expect("a temp dir");
    let target = open(target_dir.path(), Kind::Target).await;
    let (status, problem) = target
        .put(
            "/env/v1/solutions/contoso_app",
            package("contoso_app", "1.0.0.0", false, json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = target
        .post("/env/v1/solutions/contoso_app/export", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn exports_are_stamped_stored_and_idempotent() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = open(dir.path(), Kind::Development).await;
    env.put(
        "/env/v1/solutions/contoso_app",
        package("contoso_app", "1.0.0.0", false, json!({})),
    )
    .await;
    let (status, first) = env
        .post(
            "/env/v1/solutions/contoso_app/export",
            json!({ "version": "1.0.0.4" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["version"], "1.0.0.4");
    assert_eq!(first["manifest"]["version"], "1.0.0.4");
    assert_eq!(first["manifest"]["managed"], true);
    assert_ne!(first["managed"]["sha256"], first["unmanaged"]["sha256"]);
    let (status, again) = env
        .post(
            "/env/v1/solutions/contoso_app/export",
            json!({ "version": "1.0.0.4" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);

    // The managed package downloads, and is what it says.
    let href = first["managed"]["href"].as_str().expect("an href");
    let sha = first["managed"]["sha256"].as_str().expect("a sha");
    assert_eq!(href, format!("/env/v1/packages/{sha}"));
    let bytes = env
        .client
        .get(env.url(href))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer")
        .bytes()
        .await
        .expect("the package");
    assert_eq!(sha256(&bytes), sha);
    assert_eq!(first["managed"]["size"], bytes.len());
    let info = crate::solution::read_package(std::io::Cursor::new(bytes), &Default::default())
        .expect("a valid package");
    assert!(info.manifest.managed);
    assert_eq!(info.manifest.version.to_string(), "1.0.0.4");

    // Versions only move up; without a body the pushed version (1.0.0.0) is used.
    let (status, problem) = env
        .post(
            "/env/v1/solutions/contoso_app/export",
            json!({ "version": "1.0.0.3" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code(&problem), "version_downgrade");
    let response = env
        .client
        .post(env.url("/env/v1/solutions/contoso_app/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = env
        .post(
            "/env/v1/solutions/contoso_app/export",
            json!({ "version": "1.0" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = env
        .post("/env/v1/solutions/missing/export", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn packages_upload_by_hash_and_stream_both_ways() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = open(dir.path(), Kind::Target).await;
    // Incompressible, and larger than any default body limit.
    let mut noise = vec![0u8; 6 << 20];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in &mut noise {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let manifest = manifest("contoso_big", "1.0.0.0", true, json!({}));
    let bytes = build_package(&manifest, &[("components/order.json", &noise)]).expect("a package");
    let sha = sha256(&bytes);

    let wrong = "0".repeat(64);
    let (status, problem) = env
        .put(&format!("/env/v1/packages/{wrong}"), bytes.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code(&problem), "sha256_mismatch");
    let (status, _) = env.get(&format!("/env/v1/packages/{wrong}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.put("/env/v1/packages/XYZ", bytes.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = env
        .put(&format!("/env/v1/packages/{sha}"), bytes.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], bytes.len());
    let (status, _) = env
        .put(&format!("/env/v1/packages/{sha}"), bytes.clone())
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = env
        .client
        .get(env.url(&format!("/env/v1/packages/{sha}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let downloaded = response.bytes().await.expect("the package");
    assert_eq!(sha256(&downloaded), sha);

    let response = env
        .client
        .head(env.url(&format!("/env/v1/packages/{sha}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        bytes.len().to_string().as_str()
    );

    // With `Expect: 100-continue`, a package already there is never sent at all.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = env.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("a connection");
    let head = format!(
        "PUT /env/v1/packages/{sha} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer \
         {TOKEN}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    socket
        .write_all(head.as_bytes())
        .await
        .expect("the request head");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("an answer without the body")
        .expect("a readable answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A target with a SQL connection and the dependency installed, ready for contoso_app.
async fn ready_target(dir: &Path) -> Served {
    let env = open(dir, Kind::Target).await;
    env.connection("shared-sql", "sql").await;
    env.connection("shared-http", "http").await;
    let core = env
        .upload(&package("contoso_core", "2.0.0.0", true, json!({})))
        .await;
    let (status, _) = env.import("core-1", &core, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(env.finished("core-1").await["status"], "succeeded");
    env
}

fn app(version: &str, managed: bool) -> Vec<u8> {
    package(
        "contoso_app",
        version,
        managed,
        json!({
            "dependencies": [ { "unique_name": "contoso_core", "min_version": "2.0.0.0" } ],
            "environment_variables": [
                { "schema_name": "contoso_ApiUrl", "type": "string" },
                { "schema_name": "contoso_ApiKey", "type": "secret" }
            ],
            "connection_references": [ { "logical_name": "contoso_sql", "connector": "sql" } ]
        }),
    )
}

fn settings() -> Value {
    json!({ "settings": {
        "environment_variables": { "contoso_ApiUrl": "https://api", "contoso_ApiKey": "s3cret" },
        "connection_references": { "contoso_sql": "shared-sql" } } })
}

#[tokio::test]
async fn imports_install_once_per_operation() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = ready_target(dir.path()).await;
    let sha = env.upload(&app("1.0.0.3", true)).await;

    let (status, op) = env.import("deploy-1/1", &sha, settings()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    assert_eq!(op["status"], "running");
    assert_eq!(op["unique_name"], "contoso_app");
    assert_eq!(op["version"], "1.0.0.3");
    let op = env.finished("deploy-1/1").await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert!(op["finished_at"].is_string());
    assert!(!op.to_string().contains("s3cret"));
    // The stored settings keep no secret either.
    let row = env
        .server
        .state
        .store
        .import("deploy-1/1")
        .await
        .expect("the store")
        .expect("the operation");
    assert!(!row.settings.contains("s3cret"), "{}", row.settings);
    assert!(row.settings.contains("https://api"));

    let (_, installed) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(installed["version"], "1.0.0.3");
    assert_eq!(installed["managed"], true);
    assert_eq!(installed["operation_id"], "deploy-1/1");

    // The same operation again imports nothing; with another package it is refused.
    let (status, again) = env.import("deploy-1/1", &sha, settings()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, op);
    let (_, still) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(still["installed_at"], installed["installed_at"]);
    let other = env.upload(&app("1.0.0.4", true)).await;
    let (status, problem) = env.import("deploy-1/1", &other, settings()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    let (status, _) = env.get("/env/v1/imports/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.import("x", &"a".repeat(64), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validate_and_import_name_what_is_missing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = ready_target(dir.path()).await;
    let sha = env.upload(&app("1.0.0.3", true)).await;

    let (status, report) = env
        .post("/env/v1/validate", json!({ "package_sha256": sha }))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["missing_environment_variables"],
        json!([ { "schema_name": "contoso_ApiUrl", "type": "string" },
                { "schema_name": "contoso_ApiKey", "type": "secret" } ])
    );
    assert_eq!(
        report["missing_connection_references"],
        json!([ { "logical_name": "contoso_sql", "connector": "sql" } ])
    );
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("contoso_ApiUrl"))
    );

    let bind = |connection: &str| {
        json!({ "package_sha256": sha, "settings": {
            "environment_variables": { "contoso_ApiUrl": "u", "contoso_ApiKey": "k" },
            "connection_references": { "contoso_sql": connection } } })
    };
    let (_, report) = env.post("/env/v1/validate", bind("nope")).await;
    assert_eq!(finding_codes(&report), ["unknown_connection"]);
    let (_, report) = env.post("/env/v1/validate", bind("shared-http")).await;
    assert_eq!(finding_codes(&report), ["connector_mismatch"]);
    let (_, report) = env.post("/env/v1/validate", bind("shared-sql")).await;
    assert_eq!(report["ok"], true, "{report}");

    // A manifest can be checked without its package.
    let needs_more = manifest(
        "contoso_app",
        "1.0.0.0",
        true,
        json!({ "dependencies": [ { "unique_name": "contoso_core", "min_version": "3.0.0.0" },
                                  { "unique_name": "fabrikam_lib", "min_version": "1.0.0.0" } ] }),
    );
    let (_, report) = env
        .post("/env/v1/validate", json!({ "manifest": needs_more }))
        .await;
    assert_eq!(
        finding_codes(&report),
        ["missing_dependency", "missing_dependency"]
    );
    let (status, _) = env.post("/env/v1/validate", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An import runs the same checks, and fails naming them.
    let (status, _) = env.import("op-missing", &sha, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let op = env.finished("op-missing").await;
    assert_eq!(op["status"], "failed");
    assert!(
        op["error"]
            .as_str()
            .is_some_and(|e| e.contains("contoso_ApiUrl")),
        "{op}"
    );
    let (status, _) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unmanaged packages do not go into a managed target.
    let unmanaged = env.upload(&app("1.0.0.3", false)).await;
    env.import("op-unmanaged", &unmanaged, settings()).await;
    let op = env.finished("op-unmanaged").await;
    assert_eq!(op["status"], "failed");
    assert_eq!(finding_codes(&op), ["not_managed"]);
}

#[tokio::test]
async fn versions_move_up_unless_downgrades_are_allowed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = ready_target(dir.path()).await;
    let v3 = env.upload(&app("1.0.0.3", true)).await;
    let v2 = env.upload(&app("1.0.0.2", true)).await;
    env.import("up", &v3, settings()).await;
    assert_eq!(env.finished("up").await["status"], "succeeded");

    env.import("down", &v2, settings()).await;
    let op = env.finished("down").await;
    assert_eq!(op["status"], "failed");
    assert_eq!(finding_codes(&op), ["version_downgrade"]);
    env.import("same", &v3, settings()).await;
    assert_eq!(finding_codes(&env.finished("same").await), ["same_version"]);

    let mut allowed = settings();
    allowed["allow_downgrade"] = json!(true);
    env.import("down-allowed", &v2, allowed).await;
    let op = env.finished("down-allowed").await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["findings"][0]["severity"], "warning");
    let (_, installed) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(installed["version"], "1.0.0.2");
}

#[tokio::test]
async fn linking_belongs_to_one_host_unless_forced() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = open(dir.path(), Kind::Target).await;
    let (status, info) = env.post("/env/v1/link", json!({ "host_id": "h1" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["linked_host"], "h1");
    let (status, _) = env.post("/env/v1/link", json!({ "host_id": "h1" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = env.post("/env/v1/link", json!({ "host_id": "h2" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["linked_host"], "h1");
    let (status, info) = env
        .post("/env/v1/link", json!({ "host_id": "h2", "force": true }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["linked_host"], "h2");
    let (status, _) = env.post("/env/v1/link", json!({ "host_id": " " })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, info) = env.get("/env/v1/info").await;
    assert_eq!(info["linked_host"], "h2");

    // Connections: registered once by name.
    env.connection("shared-sql", "sql").await;
    let (status, _) = env
        .post(
            "/env/v1/connections",
            json!({ "name": "shared-sql", "connector": "http" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, list) = env.get("/env/v1/connections").await;
    assert_eq!(list["items"][0]["name"], "shared-sql");
    assert_eq!(list["items"][0]["connector"], "sql");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    // The link survives a restart.
    drop(env);
    let env = open(dir.path(), Kind::Target).await;
    assert_eq!(env.server.info().linked_host.as_deref(), Some("h2"));
}

#[tokio::test]
async fn an_import_interrupted_by_a_stop_finishes_after_reopening() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = ready_target(dir.path()).await;
    let sha = env.upload(&app("1.0.0.3", true)).await;
    drop(env);

    let mut slow = config(dir.path(), Kind::Target);
    slow.import_delay = Duration::from_secs(30);
    let env = serve(slow, "").await;
    let (status, _) = env.import("deploy-9/1", &sha, settings()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, op) = env.get("/env/v1/imports/deploy-9/1").await;
    assert_eq!(op["status"], "running");
    // Stopped in the middle of the import: nothing installed, the operation still running.
    drop(env);

    let env = open(dir.path(), Kind::Target).await;
    let op = env.finished("deploy-9/1").await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let (_, installed) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(installed["operation_id"], "deploy-9/1");
    assert_eq!(installed["version"], "1.0.0.3");

    // Reopening again, or posting the operation again, installs nothing more.
    drop(env);
    let env = open(dir.path(), Kind::Target).await;
    let (status, again) = env.import("deploy-9/1", &sha, settings()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, op);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, still) = env.get("/env/v1/solutions/contoso_app").await;
    assert_eq!(still["installed_at"], installed["installed_at"]);
}

#[tokio::test]
async fn serves_under_a_prefix() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = serve(config(dir.path(), Kind::Development), "/envs/dev").await;
    let (status, info) = env.get("/env/v1/info").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["kind"], "development");
    env.put(
        "/env/v1/solutions/contoso_app",
        package("contoso_app", "1.0.0.0", false, json!({})),
    )
    .await;
    let (status, export) = env
        .post("/env/v1/solutions/contoso_app/export", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{export}");
    let href = export["unmanaged"]["href"].as_str().expect("an href");
    assert!(href.starts_with("/envs/dev/env/v1/packages/"), "{href}");
    let origin = env.base.trim_end_matches("/envs/dev");
    let response = env
        .client
        .get(format!("{origin}{href}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
}
