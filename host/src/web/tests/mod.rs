//! Console tests: the real router and SQLite store, driven as a browser would, with a
//! session cookie and the forms' fields. The API tests' app and fakes do the setup.

mod backups;
mod deploy_form;
mod deployment_page;
mod error_pages;
mod pages;
mod summary;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::app::tests::{Caller, Reply, TestApp};
use crate::pipeline::Decision;
use crate::pipeline::model::*;
use crate::pipeline::ports::SolutionVersion;
use crate::pipeline::store::{Audit, CatalogStore, DeploymentStore};

/// A signed-in browser: its session cookie and the session's CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// Signs in with the caller's token, as the sign-in form does.
pub async fn sign_in(app: &TestApp, caller: &Caller) -> Browser {
    let reply = post_form(app, "/ui/signin", None, &[("token", &caller.token)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    let set_cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = get_page(app, "/ui/", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csrf = attribute_after(&page.text, "name=\"csrf\" value=\"").expect("a CSRF input");
    Browser { cookie, csrf }
}

/// The text after `marker` up to the next `"`.
pub fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

pub async fn get_page(app: &TestApp, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().method("GET").uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

/// Posts a urlencoded form, with the browser's cookie when given.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Reply {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                super::layout::query_value(k),
                super::layout::query_value(v)
            )
        })
        .collect();
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.send(request.body(Body::from(body.join("&"))).unwrap())
        .await
}

impl Browser {
    pub async fn get(&self, app: &TestApp, path: &str) -> Reply {
        get_page(app, path, Some(&self.cookie)).await
    }

    /// Posts the form with this session's CSRF token added.
    pub async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        post_form(app, path, Some(&self.cookie), &all).await
    }
}

#[track_caller]
pub fn assert_html(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "unexpected reply: {}", reply.text);
    assert!(
        reply.content_type().starts_with("text/html"),
        "not HTML: {} {}",
        reply.content_type(),
        reply.text
    );
}

pub fn location(reply: &Reply) -> String {
    reply.headers[header::LOCATION].to_str().unwrap().to_owned()
}

/// A pipeline `name` with one stage, shared with `caller`, who may use both of its
/// environments: `(pipeline, stage)`.
pub async fn shared_pipeline(app: &TestApp, name: &str, caller: &Caller) -> (String, String) {
    let (pipeline, stage) = app.pipeline(name).await;
    app.post(
        &format!("/api/v1/pipelines/{pipeline}/shares"),
        &app.admin,
        json!({ "grantee": format!("user:{}", caller.id) }),
    )
    .await
    .expect(StatusCode::OK);
    let record = app.store.get_pipeline(&pipeline).await.unwrap();
    let envs = [
        record.development_environment_ids[0].clone(),
        record.stages[0].target_environment_id.clone(),
    ];
    for env in envs {
        app.call(
            "PUT",
            &format!("/api/v1/environments/{env}/access"),
            Some(&app.admin),
            Some(json!({ "access": [format!("user:{}", caller.id)] })),
        )
        .await
        .expect(StatusCode::OK);
    }
    (pipeline, stage)
}

/// A deployment of `pipeline`'s first stage as stored, for tests that need a state the
/// worker would reach: change its fields, then [`store_deployment`].
pub async fn deployment(app: &TestApp, pipeline: &str, requested_by: &str) -> DeploymentRecord {
    let record = app.store.get_pipeline(pipeline).await.unwrap();
    let stage = &record.stages[0];
    let now = crate::pipeline::audit::now();
    DeploymentRecord {
        id: new_id(),
        pipeline_id: record.id.clone(),
        stage_id: stage.id.clone(),
        source_environment_id: record.development_environment_ids[0].clone(),
        target_environment_id: stage.target_environment_id.clone(),
        solution_name: "crm".into(),
        version: "1.0.0.0".into(),
        requested_by: requested_by.into(),
        requested_at: now,
        scheduled_for: None,
        notes: String::new(),
        settings: DeploymentSettings::default(),
        status: DeploymentStatus::Queued,
        status_reason: String::new(),
        pre_deployment_status: None,
        pre_deployment_override: None,
        gate_bindings: Vec::new(),
        gates: Vec::new(),
        validation: Vec::new(),
        attempt: 1,
        attempt_started_at: now,
        next_run_at: None,
        idempotency_key: None,
        installed_version: None,
        artifact: SolutionVersion {
            name: "crm".into(),
            version: "1.0.0.0".into(),
            publisher_prefix: "con".into(),
            components: vec![],
            package_size: 0,
            package_sha256: String::new(),
            unmanaged: None,
            manifest: None,
        },
        environment_attempts: 0,
        import_started: false,
        created_at: now,
        updated_at: now,
        finished_at: None,
        revision: 0,
    }
}

pub async fn store_deployment(app: &TestApp, d: &DeploymentRecord) {
    let audit = Audit {
        actor: d.requested_by.clone(),
        action: "deployment.request".into(),
        target: d.id.clone(),
        detail: json!({}),
        at: d.requested_at,
    };
    app.store.insert_deployment(d, &[], &audit).await.unwrap();
}

/// Makes `d` wait in its pre-deployment step for a vote from `approver`.
pub fn waiting_for(d: &mut DeploymentRecord, approver: &str) {
    d.status = DeploymentStatus::PendingApproval;
    d.pre_deployment_status = Some(PreDeploymentStatus::Pending);
    d.gates = vec![GateProgress {
        binding_id: "binding-1".into(),
        plugin_id: "gate".into(),
        plugin_name: "two-person-rule".into(),
        approved: false,
        decision: Some(Decision::Pending {
            message: "1 more approval needed".into(),
            approvers: vec![format!("user:{approver}")],
            recheck_after_seconds: None,
        }),
        error: None,
        log: vec![],
        started_at: Some(d.requested_at),
        evaluated_at: Some(d.requested_at),
        evaluations: 1,
        duration_us: 10,
        fuel_used: 10,
    }];
}

/// An artifact of `d`'s solution version, exported from its source, as the engine keeps
/// one after an export (the packages' files are not written).
pub async fn stored_artifact(app: &TestApp, d: &DeploymentRecord) -> ArtifactRecord {
    use crate::pipeline::ports::PackageRef;
    use crate::pipeline::store::ArtifactStore;
    let manifest = serde_json::from_value(json!({
        "unique_name": d.solution_name, "display_name": "CRM", "version": d.version,
        "publisher": { "unique_name": "contoso", "prefix": "con" },
    }))
    .expect("a manifest");
    let package = |n: u8| PackageRef {
        sha256: format!("{n:02x}").repeat(32),
        size: 2048 * u64::from(n),
    };
    let record = ArtifactRecord {
        id: new_id(),
        solution_name: d.solution_name.clone(),
        version: d.version.clone(),
        managed: package(1),
        unmanaged: package(2),
        manifest,
        source_environment_id: d.source_environment_id.clone(),
        deployment_id: d.id.clone(),
        created_at: d.requested_at,
    };
    app.store.insert_artifact(&record).await.expect("stored")
}
