//! End to end: the lifecycle event feed, signed webhooks and retention jobs of the real
//! `gatehouse serve`, on SQLite and (when `GATEHOUSE_TEST_DATABASE_URL` is set) on
//! PostgreSQL.
//!
//! The receiver is a small HTTP server on loopback in this process: it checks every
//! delivery's signature with its own HMAC code, and answers 500 to the first two tries of
//! a `deployment_completed` delivery and 200 to the third.

mod support;

#[macro_use]
#[path = "support/server.rs"]
mod server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use server::{Api, Backend, Server};

const SEEDS: &[&str] = &["dev:contoso_expenses@1.0.0.0", "dev:contoso_travel@2.1.0.0"];
const EXPENSES: &str = "contoso_expenses";
const TRAVEL: &str = "contoso_travel";
/// How long a deployment, a delivery or a retention run may take to show.
const PATIENCE: Duration = Duration::from_secs(60);
/// After a kill on PostgreSQL, the dead server's 30 s lease must lapse first.
const RESUME_PATIENCE: Duration = Duration::from_secs(90);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A server with a pipeline QA → UAT: QA deploys on its own (slowly, when asked), UAT
/// waits for an external system to complete its pre-deployment step.
struct World {
    server: Server,
    pipeline: String,
    qa: String,
    uat: String,
}

impl World {
    fn new(backend: &Backend, qa_url: &str) -> World {
        let server = Server::start(backend, SEEDS);
        let admin = server.admin();
        let me = id(&admin.get("/me").expect(200));
        let dev = environment(&admin, "dev", "development", "memory://dev");
        let qa_env = environment(&admin, "qa", "target", qa_url);
        let uat_env = environment(&admin, "uat", "target", "memory://uat");
        for env in [&dev, &qa_env, &uat_env] {
            admin
                .put(
                    &format!("/environments/{env}/access"),
                    json!({ "access": [format!("user:{me}")] }),
                )
                .expect(200);
        }
        let pipeline = id(&admin
            .post(
                "/pipelines",
                json!({ "name": "Expenses", "development_environment_ids": [dev] }),
            )
            .expect(201));
        let stages = format!("/pipelines/{pipeline}/stages");
        let qa = id(&admin
            .post(
                &stages,
                json!({ "name": "QA", "target_environment_id": qa_env }),
            )
            .expect(201));
        let uat = id(&admin
            .post(
                &stages,
                json!({
                    "name": "UAT", "previous_stage_id": qa, "target_environment_id": uat_env,
                    "pre_deployment_step_required": true,
                }),
            )
            .expect(201));
        World {
            server,
            pipeline,
            qa,
            uat,
        }
    }

    fn admin(&self) -> Api<'_> {
        self.server.admin()
    }

    fn deploy(&self, stage: &str, solution: &str) -> String {
        id(&self
            .admin()
            .post(
                "/deployments",
                json!({ "pipeline_id": self.pipeline, "stage_id": stage, "solution_name": solution }),
            )
            .expect(201))
    }

    fn view(&self, deployment: &str) -> Value {
        self.admin()
            .get(&format!("/deployments/{deployment}"))
            .expect(200)
    }

    fn wait_for(&self, deployment: &str, wanted: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let view = self.view(deployment);
            if wanted.contains(&view["deployment"]["status"].as_str().unwrap_or_default()) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "deployment {deployment} did not reach {wanted:?} within {within:?}: {view:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every event of the feed, followed page by page from the start.
    fn feed(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = "0".to_owned();
        loop {
            let page = self
                .admin()
                .get(&format!("/events?after={after}&limit=200"))
                .expect(200);
            let items = page["items"].as_array().cloned().unwrap_or_default();
            after = page["next"]
                .as_str()
                .expect("next is always set")
                .to_owned();
            if items.is_empty() {
                return all;
            }
            all.extend(items);
        }
    }

    /// Waits until the feed holds `deployment`'s `deployment_completed`.
    fn feed_until_completed(&self, deployments: &[&String]) -> Vec<Value> {
        poll("the feed to show every deployment_completed", || {
            let feed = self.feed();
            let done = deployments.iter().all(|d| {
                feed.iter().any(|e| {
                    e["deployment_id"] == d.as_str() && e["event"] == "deployment_completed"
                })
            });
            done.then_some(feed)
        })
    }
}

fn environment(admin: &Api, name: &str, kind: &str, url: &str) -> String {
    let env = id(&admin
        .post(
            "/environments",
            json!({ "name": name, "kind": kind, "environment_id": name, "url": url }),
        )
        .expect(201));
    let validated = admin
        .post(&format!("/environments/{env}/validate"), json!({}))
        .expect(200);
    assert_eq!(validated["validation_status"], "success", "{validated:#}");
    env
}

fn id(record: &Value) -> String {
    record["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {record:#}"))
        .to_owned()
}

/// Calls `check` until it answers, or fails after [`PATIENCE`].
fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the receiver got: one entry per request.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    event: String,
    body: Value,
    signature_ok: bool,
    answered: u16,
}

/// A webhook receiver on loopback.
struct Receiver {
    url: String,
    secret: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let secret = Arc::new(Mutex::new(String::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (key, log) = (secret.clone(), received.clone());
        std::thread::spawn(move || {
            let mut tries: HashMap<String, u32> = HashMap::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((headers, body)) = read_request(&mut stream) else {
                    continue;
                };
                let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
                let delivery = header("gatehouse-delivery");
                let event = header("gatehouse-event");
                let signature_ok =
                    verify(&key.lock().unwrap(), &header("gatehouse-signature"), &body);
                let n = tries.entry(delivery.clone()).or_default();
                *n += 1;
                let answered = if !signature_ok {
                    400
                } else if event == "deployment_completed" && *n <= 2 {
                    500
                } else {
                    200
                };
                let reply = format!(
                    "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes());
                log.lock().unwrap().push(Received {
                    delivery,
                    event,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    signature_ok,
                    answered,
                });
            }
        });
        Receiver {
            url,
            secret,
            received,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<(HashMap<String, String>, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// The receiver's side of `Gatehouse-Signature: t=<seconds>,v1=<hex>`: HMAC-SHA256 of
/// `<t>.<body>` with the secret, and a timestamp within five minutes.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > 300 {
        return false;
    }
    let mut mac = hmac::Hmac::<signing_sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

fn attempt_codes(delivery: &Value) -> Vec<u64> {
    delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap_or(0))
        .collect()
}

/// The receiver gets signed deliveries; the one it fails twice arrives a third time and
/// is accepted, and the deliveries list shows 500, 500, 200.
fn a_signed_webhook_is_retried_until_accepted(backend: &Backend) {
    let w = World::new(backend, "memory://qa");
    let receiver = Receiver::start();
    let created = w
        .admin()
        .post(
            "/webhooks",
            json!({
                "url": receiver.url,
                "events": ["deployment_requested", "deployment_completed"],
                "pipeline_id": w.pipeline,
            }),
        )
        .expect(201);
    *receiver.secret.lock().unwrap() = created["secret"].as_str().unwrap().to_owned();
    let webhook = id(&created);

    let deployment = w.deploy(&w.qa, EXPENSES);
    w.wait_for(&deployment, &["succeeded"], PATIENCE);
    let accepted = poll("the third try of deployment_completed", || {
        let got = receiver.received();
        got.iter()
            .any(|r| r.event == "deployment_completed" && r.answered == 200)
            .then_some(got)
    });
    assert!(accepted.iter().all(|r| r.signature_ok), "{accepted:#?}");
    let completed: Vec<&Received> = accepted
        .iter()
        .filter(|r| r.event == "deployment_completed")
        .collect();
    let answers: Vec<u16> = completed.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 500, 200]);
    assert!(
        completed
            .iter()
            .all(|r| r.delivery == completed[0].delivery),
        "one delivery id for every try, for de-duplication"
    );
    let data = &completed[0].body["data"];
    assert_eq!(data["deployment_id"], deployment.as_str());
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["solution"], EXPENSES);

    let deliveries = w
        .admin()
        .get(&format!("/webhooks/{webhook}/deliveries"))
        .expect(200);
    let items = deliveries["items"].as_array().unwrap();
    let of = |event: &str| {
        items
            .iter()
            .find(|d| d["event"] == event)
            .unwrap_or_else(|| panic!("no {event} delivery in {deliveries:#}"))
    };
    let done = of("deployment_completed");
    assert_eq!(done["status"], "delivered", "{done:#}");
    assert_eq!(attempt_codes(done), [500, 500, 200], "{done:#}");
    let requested = of("deployment_requested");
    assert_eq!(attempt_codes(requested), [200], "{requested:#}");

    let before = receiver.received().len();
    let again = w
        .admin()
        .post(
            &format!("/webhooks/{webhook}/deliveries/{}/redeliver", id(requested)),
            json!({}),
        )
        .expect(200);
    assert_eq!(again["status"], "pending");
    let repeated = poll("the redelivery", || {
        let got = receiver.received();
        (got.len() > before).then(|| got[before].clone())
    });
    assert_eq!(
        repeated.delivery,
        id(requested),
        "the same delivery id again"
    );
    assert!(repeated.signature_ok);
}

/// A lifecycle event's position per deployment follows its timeline, across a kill -9
/// of the host while deployments are in flight.
fn events_keep_their_order_across_kill_9(backend: &Backend) {
    let mut w = World::new(backend, "memory://qa?import_delay_ms=2000");
    let first = w.deploy(&w.qa, EXPENSES);
    let second = w.deploy(&w.qa, TRAVEL);
    w.wait_for(&first, &["deploying"], PATIENCE);
    w.server.kill();
    w.server.start_again();
    let finals = ["succeeded", "failed", "rejected", "canceled"];
    for d in [&first, &second] {
        w.wait_for(d, &finals, RESUME_PATIENCE);
    }
    let feed = w.feed_until_completed(&[&first, &second]);
    let positions: Vec<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "one total order: {positions:?}"
    );
    let lifecycle = [
        ("requested", "deployment_requested"),
        ("approval_started", "approval_started"),
        ("approval_completed", "approval_completed"),
        ("pre_deployment_started", "pre_deployment_started"),
        ("pre_deployment_completed", "pre_deployment_completed"),
        ("deployment_started", "deployment_started"),
        ("deployment_completed", "deployment_completed"),
    ];
    for d in [&first, &second] {
        let timeline: Vec<(u64, String)> = w.view(d)["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let kind = e["kind"].as_str()?;
                let name = lifecycle.iter().find(|(k, _)| *k == kind)?.1;
                Some((e["seq"].as_u64()?, name.to_owned()))
            })
            .collect();
        let seen: Vec<(u64, String)> = feed
            .iter()
            .filter(|e| e["deployment_id"] == d.as_str())
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["event"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            seen, timeline,
            "the feed holds deployment {d}'s lifecycle events once each, in timeline order"
        );
        assert_eq!(seen[0].1, "deployment_requested");
        assert_eq!(seen.last().unwrap().1, "deployment_completed");
    }
}

/// Makes every finished deployment look 40 days old, in the database itself.
fn age_finished_deployments(server: &Server) {
    use sqlx::Connection;
    let url = server.database_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
        if url.starts_with("sqlite:") {
            sqlx::raw_sql("PRAGMA busy_timeout = 10000")
                .execute(&mut db)
                .await
                .unwrap();
        }
        sqlx::query(
            "UPDATE deployments SET finished_at = finished_at - $1 WHERE finished_at IS NOT NULL",
        )
        .bind(40 * DAY_MS)
        .execute(&mut db)
        .await
        .unwrap();
        let _ = db.close().await;
    });
}

fn run_job(w: &World, body: Value) -> Value {
    let job = id(&w.admin().post("/retention/jobs", body).expect(201));
    poll("the retention run", || {
        let job = w.admin().get(&format!("/retention/jobs/{job}")).expect(200);
        job["last_run"].is_object().then_some(job)
    })["last_run"]
        .clone()
}

/// A dry run reports the old finished deployment and deletes nothing; the real run
/// deletes it, but neither the unfinished one nor the installed ones and their artifacts.
fn retention_deletes_old_finished_deployments_only(backend: &Backend) {
    let w = World::new(backend, "memory://qa");
    let expenses_qa = w.deploy(&w.qa, EXPENSES);
    let travel_qa = w.deploy(&w.qa, TRAVEL);
    for d in [&expenses_qa, &travel_qa] {
        w.wait_for(d, &["succeeded"], PATIENCE);
    }
    let waiting = w.deploy(&w.uat, EXPENSES);
    let canceled = w.deploy(&w.uat, TRAVEL);
    w.wait_for(&canceled, &["pending_approval"], PATIENCE);
    w.admin()
        .post(&format!("/deployments/{canceled}/cancel"), json!({}))
        .expect(200);
    w.feed_until_completed(&[&expenses_qa, &travel_qa, &canceled]);
    age_finished_deployments(&w.server);

    let rules = json!({ "older_than_days": 30 });
    let dry = run_job(
        &w,
        json!({ "name": "dry", "deployments": rules, "artifacts": { "keep_versions": 1 }, "dry_run": true }),
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["deployments"], 1, "{dry:#}");
    assert_eq!(dry["example_deployments"], json!([canceled]), "{dry:#}");
    assert_eq!(dry["artifacts"], 0, "{dry:#}");
    w.view(&canceled);

    let real = run_job(
        &w,
        json!({ "name": "real", "deployments": rules, "artifacts": { "keep_versions": 1 } }),
    );
    assert_eq!(real["deployments"], 1, "{real:#}");
    assert!(real["timeline_events"].as_u64().unwrap() >= 2, "{real:#}");
    w.admin()
        .get(&format!("/deployments/{canceled}"))
        .problem(404);
    for kept in [&expenses_qa, &travel_qa, &waiting] {
        w.view(kept);
    }
    let artifacts = w
        .admin()
        .get(&format!("/artifacts?solution={EXPENSES}"))
        .expect(200);
    assert_eq!(
        artifacts["items"].as_array().map(Vec::len),
        Some(1),
        "{artifacts:#}"
    );
    let audit = w.admin().get("/audit?limit=200").expect(200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"retention.dry_run") && actions.contains(&"retention.run"),
        "{actions:?}"
    );
}

on_each_backend!(
    a_signed_webhook_is_retried_until_accepted,
    events_keep_their_order_across_kill_9,
    retention_deletes_old_finished_deployments_only,
);
