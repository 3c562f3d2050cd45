//! `gatehouse demo` as a new user meets it: it starts, the maker deploys the sample
//! solution to QA, two approvers let it into Production, it is installed there, and a
//! second start reuses everything.

#[path = "support/server.rs"]
mod server;

#[path = "support/demo.rs"]
mod demo;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use demo::{Demo, require_plugins, tokens};

impl Demo {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
            ("POST", Some(b)) => agent.post(&url).header("authorization", &auth).send_json(b),
            (m, _) => panic!("the test does not send {m}"),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_json::<Value>()
            .unwrap_or(Value::Null);
        (status, body)
    }

    #[track_caller]
    fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value:#}"
        );
        value
    }

    /// Polls the deployment until `done` holds.
    fn wait(&self, id: &str, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = self.ok("GET", &format!("/api/v1/deployments/{id}"), token, None);
            if done(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "waited for {what}: {view:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn status(view: &Value) -> &str {
    view["deployment"]["status"].as_str().unwrap_or_default()
}

#[test]
fn a_new_user_deploys_the_sample_to_qa_and_approves_it_into_production() {
    require_plugins();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("gatehouse-data");
    let demo = Demo::start(&data);
    let tokens = tokens(&data);
    let token = |user: &str| tokens["users"][user].as_str().expect("a token").to_owned();
    let (maker, alice, bob) = (token("maker"), token("alice"), token("bob"));
    assert!(
        demo.printed().contains(&maker),
        "the maker's token is printed"
    );

    let pipelines = demo.ok("GET", "/api/v1/pipelines", &maker, None);
    let pipeline = &pipelines["items"][0];
    assert_eq!(pipeline["name"], "Contoso Expenses", "{pipelines:#}");
    let stage = |name: &str| {
        pipeline["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("no stage {name}: {pipeline:#}"))
            .to_owned()
    };
    let request = |stage: &str, settings: Value| {
        json!({
            "pipeline_id": pipeline["id"], "stage_id": stage, "solution_name": "contoso_expenses",
            "version": "1.0.0.1", "settings": settings,
            "notes": "expense limits raised to 5,000",
        })
    };

    // Preflight names what the sample solution still needs.
    let preflight = demo.ok(
        "POST",
        "/api/v1/deployments/validate",
        &maker,
        Some(request(&stage("QA"), json!({}))),
    );
    assert_eq!(preflight["ok"], false, "{preflight:#}");
    assert_eq!(
        preflight["missing_environment_variables"][0]["schema_name"], "contoso_ApiUrl",
        "{preflight:#}"
    );
    assert_eq!(
        preflight["missing_connection_references"][0]["logical_name"], "contoso_sql",
        "{preflight:#}"
    );

    let settings = json!({
        "environment_variables": [{ "name": "contoso_ApiUrl", "value": "https://api.contoso.test" }],
        "connection_references": { "contoso_sql": "shared-sql" },
    });
    let qa = demo.ok(
        "POST",
        "/api/v1/deployments",
        &maker,
        Some(request(&stage("QA"), settings.clone())),
    );
    let qa = qa["id"].as_str().expect("id").to_owned();
    let view = demo.wait(&qa, &maker, "QA to succeed", |v| status(v) == "succeeded");
    assert!(
        view["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["kind"] == "gate_decision"),
        "business hours decided: {view:#}"
    );

    let prod = demo.ok(
        "POST",
        "/api/v1/deployments",
        &maker,
        Some(request(&stage("Production"), settings)),
    );
    let prod = prod["id"].as_str().expect("id").to_owned();
    demo.wait(&prod, &maker, "the approvers to be asked", |v| {
        v["deployment"]["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("0 of 2")
    });
    for (approver, name) in [(&alice, "alice"), (&bob, "bob")] {
        let inbox = demo.ok("GET", "/api/v1/approvals", approver, None);
        assert!(
            inbox["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["id"] == prod.as_str()),
            "{name}'s inbox holds it: {inbox:#}"
        );
        demo.ok(
            "POST",
            &format!("/api/v1/deployments/{prod}/votes"),
            approver,
            Some(json!({ "approve": true, "comment": "looks good" })),
        );
    }
    demo.wait(&prod, &maker, "Production to succeed", |v| {
        status(v) == "succeeded"
    });

    let env_token = tokens["environments"]["prod"].as_str().expect("a token");
    let installed = demo.ok(
        "GET",
        "/envs/prod/env/v1/solutions/contoso_expenses",
        env_token,
        None,
    );
    assert_eq!(installed["version"], "1.0.0.1", "{installed:#}");
    assert_eq!(installed["managed"], true, "{installed:#}");

    // A second start reuses the data and the tokens.
    drop(demo);
    let again = Demo::start(&data);
    assert!(
        again.printed().contains(&maker),
        "the same tokens are printed again"
    );
    let pipelines = again.ok("GET", "/api/v1/pipelines", &maker, None);
    assert_eq!(
        pipelines["items"].as_array().map(Vec::len),
        Some(1),
        "{pipelines:#}"
    );
    let view = again.ok("GET", &format!("/api/v1/deployments/{prod}"), &maker, None);
    assert_eq!(status(&view), "succeeded");
}

/// The lines of the banner's walkthrough: from `export PATH=…` to `gatehouse deployments
/// wait …`, exactly as printed.
fn walkthrough(printed: &str) -> String {
    let start = printed
        .find("export PATH=")
        .unwrap_or_else(|| panic!("no walkthrough in the banner:\n{printed}"));
    let rest = &printed[start..];
    let end = rest
        .find("gatehouse deployments wait \"$id\"")
        .unwrap_or_else(|| panic!("the walkthrough does not end with the wait:\n{rest}"));
    let end = end + rest[end..].find('\n').unwrap_or(rest.len() - end);
    rest[..end].to_owned()
}

/// Runs the walkthrough as a user who pastes it into bash would, with a home of its own
/// for `gatehouse login`; gives what it printed, after checking that it succeeded.
fn paste(script: &str, home: &std::path::Path) -> String {
    let output = std::process::Command::new("bash")
        .args(["-e", "-c", script])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("GATEHOUSE_SERVER")
        .env_remove("GATEHOUSE_TOKEN")
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the walkthrough failed ({}):\n{script}\n---\n{text}",
        output.status
    );
    text
}

#[test]
fn the_printed_walkthrough_runs_to_succeeded_and_again_after_a_restart() {
    require_plugins();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("gatehouse-data");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("a home");

    let demo = Demo::start(&data);
    let first = walkthrough(&demo.printed());
    assert!(first.contains("--version 1.0.0.1"), "{first}");
    let said = paste(&first, &home);
    assert!(said.contains("succeeded"), "{said}");
    let tokens = tokens(&data);
    let prod_token = tokens["environments"]["prod"].as_str().expect("a token");
    let installed = demo.ok(
        "GET",
        "/envs/prod/env/v1/solutions/contoso_expenses",
        prod_token,
        None,
    );
    assert_eq!(installed["version"], "1.0.0.1", "{installed:#}");

    // The second start proposes the next version, and its walkthrough works too.
    drop(demo);
    let again = Demo::start(&data);
    let second = walkthrough(&again.printed());
    assert!(second.contains("--version 1.0.0.2"), "{second}");
    let said = paste(&second, &home);
    assert!(said.contains("succeeded"), "{said}");
    let installed = again.ok(
        "GET",
        "/envs/prod/env/v1/solutions/contoso_expenses",
        prod_token,
        None,
    );
    assert_eq!(installed["version"], "1.0.0.2", "{installed:#}");
}
