//! The test app: the real router and the real SQLite store, in process, with fakes for
//! the plugin registry and the environments. The API's and the console's tests both drive
//! it.

pub mod fakes;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::metrics;
use crate::app::{Services, router};
use crate::pipeline::accounts::token_sha256;
use crate::pipeline::audit::audit;
use crate::pipeline::engine::Engine;
use crate::pipeline::model::{Role, User, new_id};
use crate::pipeline::store::{AccountStore, AuditStore};
use crate::pipeline::{EnvironmentKind, PluginWorld};
use crate::store::SqlStore;
use fakes::{FakeEnvironments, FakeGates, FakePlugins};

/// Someone who can call the API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub token: String,
}

/// What the API answered.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The problem's `detail`, for asserting on what the caller is told.
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .expect("the reply has an id")
            .to_owned()
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(self.status, status, "unexpected reply: {}", self.text);
        self
    }
}

pub struct TestApp {
    router: Router,
    pub store: Arc<SqlStore>,
    pub plugins: Arc<FakePlugins>,
    pub environments: Arc<FakeEnvironments>,
    pub admin: Caller,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh database with one admin.
    pub async fn new() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        let store = Arc::new(SqlStore::connect(&url).await.unwrap());
        let plugins = Arc::new(FakePlugins::default());
        let environments = Arc::new(FakeEnvironments::default());
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(FakeGates),
            environments.clone(),
            "api-tests".into(),
            dir.path().join("artifacts"),
        ));
        let services = Services {
            store: store.clone(),
            engine,
            plugins: plugins.clone(),
            environments: environments.clone(),
        };
        let admin_user = User {
            id: new_id(),
            name: "root".into(),
            display_name: "Root".into(),
            role: Role::Admin,
            groups: vec![],
            created_at: 1,
        };
        let token = "a".repeat(64);
        let setup = audit(&admin_user, "user.create", &admin_user.id, json!({}));
        store.insert_user(&admin_user, &setup).await.unwrap();
        store
            .insert_token(&admin_user.id, &token_sha256(&token), "setup", &setup)
            .await
            .unwrap();
        TestApp {
            router: router(services, metrics::install()),
            store,
            plugins,
            environments,
            admin: Caller {
                id: admin_user.id,
                token,
            },
            _dir: dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// A JSON call; no token when `caller` is `None`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        caller: Option<&Caller>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(caller) = caller {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", caller.token));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str, caller: &Caller) -> Reply {
        self.call("GET", path, Some(caller), None).await
    }

    pub async fn post(&self, path: &str, caller: &Caller, body: Value) -> Reply {
        self.call("POST", path, Some(caller), Some(body)).await
    }

    pub async fn upload(
        &self,
        caller: &Caller,
        query: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Reply {
        let request = Request::builder()
            .method("POST")
            .uri(format!("/api/v1/plugins{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", caller.token))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .unwrap();
        self.send(request).await
    }

    /// A user with a token, made through the API.
    pub async fn user(&self, name: &str) -> Caller {
        self.make_user(name, "user").await
    }

    async fn make_user(&self, name: &str, role: &str) -> Caller {
        let id = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({ "name": name, "role": role }),
            )
            .await
            .expect(StatusCode::CREATED)
            .id();
        let token = self
            .post(
                &format!("/api/v1/users/{id}/tokens"),
                &self.admin,
                json!({ "label": "test" }),
            )
            .await
            .expect(StatusCode::CREATED)
            .body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        Caller { id, token }
    }

    /// A validated environment at `memory://<name>`.
    pub async fn environment(&self, name: &str, kind: EnvironmentKind) -> String {
        let kind_name = match kind {
            EnvironmentKind::Development => "development",
            EnvironmentKind::Target => "target",
        };
        let url = format!("memory://{name}");
        self.environments.answer(&url, name, kind, true);
        let id = self
            .post(
                "/api/v1/environments",
                &self.admin,
                json!({ "name": name, "kind": kind_name, "environment_id": name, "url": url }),
            )
            .await
            .expect(StatusCode::CREATED)
            .id();
        self.post(
            &format!("/api/v1/environments/{id}/validate"),
            &self.admin,
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
        id
    }

    /// An uploaded, enabled plugin.
    pub async fn plugin(&self, name: &str, world: PluginWorld, config_keys: &[&str]) -> String {
        let bytes = fakes::component(name, "1.0.0", world, config_keys);
        self.upload(&self.admin, "", "application/wasm", bytes)
            .await
            .expect(StatusCode::CREATED)
            .id()
    }

    /// A pipeline with a development environment `dev` and one stage `qa`, shared with
    /// nobody: `(pipeline id, stage id)`.
    pub async fn pipeline(&self, name: &str) -> (String, String) {
        let dev = self
            .environment(&format!("{name}-dev"), EnvironmentKind::Development)
            .await;
        let qa = self
            .environment(&format!("{name}-qa"), EnvironmentKind::Target)
            .await;
        let pipeline = self
            .post(
                "/api/v1/pipelines",
                &self.admin,
                json!({ "name": name, "development_environment_ids": [dev] }),
            )
            .await
            .expect(StatusCode::CREATED)
            .id();
        let stage = self
            .post(
                &format!("/api/v1/pipelines/{pipeline}/stages"),
                &self.admin,
                json!({ "name": "qa", "target_environment_id": qa }),
            )
            .await
            .expect(StatusCode::CREATED)
            .id();
        (pipeline, stage)
    }

    /// The actions of the audit log, oldest first.
    pub async fn audit_actions(&self) -> Vec<(String, String, String)> {
        let mut entries = self.store.list_audit(None, 1000).await.unwrap();
        entries.reverse();
        entries
            .into_iter()
            .map(|e| (e.actor, e.action, e.target))
            .collect()
    }
}

/// Asserts the RFC 9457 shape: media type, and type, title, status and detail members.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "unexpected reply: {}", reply.text);
    assert_eq!(reply.content_type(), "application/problem+json");
    let body = &reply.body;
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:gatehouse:problem:")),
        "{body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.len() > 10),
        "{body}"
    );
}
