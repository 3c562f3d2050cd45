//! Plugin logs and secret values, through the real engine. A deployment's settings hold a
//! secret variable and a plain one; its `pending-until` gate and `echo` validator log what
//! the deployment's getters show them. Their logs are kept on the deployment, and the
//! secret's value shows nowhere: not in the API (the deployment, the lists, the approvals),
//! the console's pages, the event feed, webhook payloads, the CLI, what the plugins see,
//! or the server's own log. The plain value shows wherever settings are shown, so each
//! check looks at the right place and can fail.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gatehouse::pipeline::events::event_names;
use gatehouse::web::SESSION_COOKIE;

use super::*;
use crate::ids;
use crate::server::random_hex;

const SECRET_NAME: &str = "contoso_ApiKey";
const PLAIN_NAME: &str = "contoso_Region";
const PLAIN_VALUE: &str = "eu-west-7";

/// A deployment with a secret in its settings, waiting for its gate, and the token of
/// an admin who did not request it, and so may vote on it.
struct SecretRun {
    host: Host,
    deployment: String,
    secret: String,
    reviewer: String,
}

impl SecretRun {
    /// Starts a server with the gate and the validator, subscribes `webhook` (if any) to
    /// every lifecycle event, and requests the deployment.
    fn start(backend: &Backend, webhook: Option<&str>) -> SecretRun {
        let host = Host::new(backend, &["qa"]);
        let gate = host.plugin("pending-until", "approver");
        let echo = host.plugin("echo", "validator");
        let admin = host.server.admin();
        if let Some(url) = webhook {
            let subscription = json!({ "url": url, "events": event_names() });
            admin.post("/webhooks", subscription).expect(201);
        }
        let stage = host.stage(&["dev"], "qa", pending_until(&gate, NEVER, 1, None));
        let validators = json!({ "validators": [{ "plugin_id": echo }] });
        admin
            .put(
                &format!("/pipelines/{}/validators", stage.pipeline),
                validators,
            )
            .expect(200);
        let secret = format!("s3cret-{}", random_hex(12));
        let settings = json!({ "settings": { "environment_variables": [
            { "name": SECRET_NAME, "value": secret, "secret": true },
            { "name": PLAIN_NAME, "value": PLAIN_VALUE, "secret": false },
        ] } });
        let requested = host.request(&stage, EXPENSES, settings).expect(201);
        assert_hidden("POST /deployments", &requested.to_string(), &secret);
        let deployment = id(&requested);
        host.wait_for_evaluations(&deployment, 1);
        let (_, reviewer) = host.another_admin("reviewer");
        SecretRun {
            host,
            deployment,
            secret,
            reviewer,
        }
    }

    /// Completes the step (20) and waits for the deployment to succeed.
    fn complete(&self) -> Value {
        let step = format!("/deployments/{}/pre-deployment-status", self.deployment);
        let done = json!({ "status": 20, "comment": "go" });
        let answer = self.host.server.admin().put(&step, done).expect(200);
        assert_hidden(
            "PUT pre-deployment-status",
            &answer.to_string(),
            &self.secret,
        );
        self.host
            .wait_for_status(&self.deployment, "succeeded", PATIENCE)
    }
}

#[track_caller]
fn assert_hidden(place: &str, text: &str, secret: &str) {
    assert!(
        !text.contains(secret),
        "the secret's value shows in {place}:\n{text}"
    );
}

/// Checks that the view shows the plain value and hides the secret's.
#[track_caller]
fn assert_settings_masked(view: &Value) {
    let variables = &view["deployment"]["settings"]["environment_variables"];
    let expected = json!([
        { "name": SECRET_NAME, "value": null, "secret": true },
        { "name": PLAIN_NAME, "value": PLAIN_VALUE, "secret": false },
    ]);
    assert_eq!(variables, &expected, "{view:#}");
}

/// The log's lines as `<stream> <level> <message>`.
fn log_lines(log: &Value) -> Vec<String> {
    log.as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let field = |name: &str| l[name].as_str().unwrap_or_default().to_owned();
            format!(
                "{} {} {}",
                field("stream"),
                field("level"),
                field("message")
            )
        })
        .collect()
}

/// The gate and the validator logged what they saw, and the deployment kept it: the plain
/// value, and no value for the secret, though they asked for it.
fn plugin_logs_are_kept_and_a_secret_shows_nowhere(backend: &Backend) {
    let receiver = Receiver::start();
    let run = SecretRun::start(backend, Some(&receiver.url));
    let (host, deployment, secret) = (&run.host, run.deployment.as_str(), &run.secret);
    let admin = host.server.admin();

    let waiting = host.view(deployment);
    assert_settings_masked(&waiting);
    assert_hidden("a waiting deployment", &waiting.to_string(), secret);
    let reviewer = host.server.client(&run.reviewer);
    let approvals = reviewer.get("/approvals").expect(200);
    assert!(
        ids(&approvals).contains(&deployment.to_owned()),
        "{approvals:#}"
    );
    assert_hidden("GET /approvals", &approvals.to_string(), secret);

    let view = run.complete();
    assert_settings_masked(&view);
    let seen = format!("variables: {SECRET_NAME} (no value), {PLAIN_NAME}={PLAIN_VALUE}");
    let gate_log = log_lines(&gate(&view)["log"]);
    assert!(
        gate_log.contains(&format!("log info {seen}"))
            && gate_log.iter().any(|l| l.ends_with(": pending")),
        "the gate's log is kept: {gate_log:?}"
    );
    let report = &view["deployment"]["validation"][0];
    assert_eq!(report["plugin_name"], "echo", "{report:#}");
    let plain = format!("variable {PLAIN_NAME} = {PLAIN_VALUE}");
    let masked = format!("variable {SECRET_NAME} has no value");
    assert_eq!(
        report["findings"],
        json!([{ "severity": "info", "code": "seen", "message": format!("{masked}; {plain}"),
                 "component": null }]),
        "{report:#}"
    );
    assert_eq!(
        log_lines(&report["log"]),
        [
            format!("log info {masked}"),
            format!("log info {plain}"),
            format!("stdout info echo validated deployment {deployment}"),
        ],
        "the validator's log is kept, its stdout too: {report:#}"
    );

    let delivered = |bodies: &[String]| {
        bodies.iter().any(|b| {
            let body: Value = serde_json::from_str(b).unwrap_or_default();
            body["event"] == "deployment_completed" && body["data"]["deployment_id"] == deployment
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while !delivered(&receiver.bodies()) {
        assert!(
            Instant::now() < deadline,
            "no deployment_completed delivery"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let feed = admin.get("/events?after=0&limit=200").expect(200);
    let completed = feed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["event"] == "deployment_completed" && e["deployment_id"] == deployment);
    assert!(completed, "the feed holds the whole run: {feed:#}");

    let session = console_session(&host.server);
    let page = console_page(
        &host.server,
        &session,
        &format!("/ui/deployments/{deployment}"),
    );
    for shown in [
        "(secret)",
        PLAIN_VALUE,
        "Plugin log",
        seen.as_str(),
        plain.as_str(),
    ] {
        assert_contains(&page, shown);
    }
    let listed = admin.get("/deployments").expect(200);
    assert_contains(&listed.to_string(), PLAIN_VALUE);
    let outputs = [
        ("GET /deployments/{id}", view.to_string()),
        ("GET /deployments", listed.to_string()),
        (
            "GET /deployments?status=succeeded",
            admin
                .get("/deployments?status=succeeded")
                .expect(200)
                .to_string(),
        ),
        ("GET /events", feed.to_string()),
        ("the webhook payloads", receiver.bodies().join("\n")),
        ("the console's deployment page", page),
        (
            "the console's history",
            console_page(&host.server, &session, "/ui/deployments"),
        ),
        (
            "the console's dashboard",
            console_page(&host.server, &session, "/ui/"),
        ),
        ("the server's log", host.server.log_text()),
    ];
    for (place, text) in outputs {
        assert_hidden(place, &text, secret);
    }
}

/// `gatehouse` shows the deployment, follows it, and lists it without the secret's value.
/// The CLI reads what the API answers, so one backend is enough.
#[test]
fn the_cli_never_shows_a_secret() {
    let run = SecretRun::start(&Backend::Sqlite, None);
    let home = tempfile::tempdir().expect("a home for the CLI's login file");
    let server = &run.host.server;
    let cli_as = |token: &str, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(args)
            .args(["--server", &server.base, "--token", token])
            .env("GATEHOUSE_CONFIG", home.path().join("cli.json"))
            .env("GATEHOUSE_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("GATEHOUSE_SERVER")
            .env_remove("GATEHOUSE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let cli = |args: &[&str]| cli_as(&server.admin_token, args);
    let printed = |args: &[&str], output: Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "`gatehouse {args:?}`: {text}");
        assert_hidden(
            &format!("`gatehouse {}`", args.join(" ")),
            &text,
            &run.secret,
        );
        text
    };
    let run_cli = |args: &[&str]| printed(args, cli(args).output().expect("the CLI runs"));

    let d = run.deployment.as_str();
    let approvals = ["approvals", "--output", "json"];
    let listed = printed(
        &approvals,
        cli_as(&run.reviewer, &approvals).output().expect("runs"),
    );
    assert_contains(&listed, d);
    assert_contains(&listed, PLAIN_VALUE);
    let following = ["deployments", "wait", d];
    let wait = cli(&following).spawn().expect("the CLI runs");
    run.complete();
    let followed = printed(&following, wait.wait_with_output().expect("it ends"));
    assert_contains(&followed, "deployment_completed");
    let shown = run_cli(&["deployments", "get", d]);
    assert_contains(&shown, &format!("{SECRET_NAME}=(secret)"));
    assert_contains(&shown, &format!("{PLAIN_NAME}={PLAIN_VALUE}"));
    assert_contains(
        &run_cli(&["deployments", "get", d, "--output", "json"]),
        PLAIN_VALUE,
    );
    assert_contains(&run_cli(&["deployments", "list"]), d);
    let listed = run_cli(&["deployments", "list", "--output", "json"]);
    assert_contains(&listed, PLAIN_VALUE);
}

/// A console session for the admin, as the sign-in form starts one.
fn console_session(server: &Server) -> String {
    let response = console_agent()
        .post(format!("{}/ui/signin", server.base))
        .send_form([("token", server.admin_token.as_str())])
        .expect("the sign-in form answers");
    assert_eq!(response.status(), 303, "signed in and sent on");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie");
    cookie.to_owned()
}

/// A console page's HTML, read with the session; it must answer 200.
fn console_page(server: &Server, session: &str, path: &str) -> String {
    let mut response = console_agent()
        .get(format!("{}{path}", server.base))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let html = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(response.status(), 200, "GET {path}: {html}");
    html
}

fn console_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A webhook receiver on loopback that answers 200 and keeps every body.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the receiver");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let address = listener.local_addr().expect("the receiver's address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        let keep = move |body: String| {
            let sink = sink.clone();
            async move { sink.lock().expect("the bodies").push(body) }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(keep));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{address}/hook"),
            bodies,
            _runtime: runtime,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("the bodies").clone()
    }
}

on_each_backend!(plugin_logs_are_kept_and_a_secret_shows_nowhere);
