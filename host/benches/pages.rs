//! Page latency of the web console with 10,000 deployments stored: the real server on
//! SQLite, filled through the HTTP API with a mix of succeeded, failed, waiting and
//! canceled deployments across two stages, four solutions and three requesters; then
//! every page, fetched with a session cookie from `/ui/signin`, timed one request at a
//! time. Prints a table and exits 1 when a page's median is over the budget or a page
//! does not answer 200.
//!
//! Run with `scripts/build-plugins && cargo bench -p gatehouse --bench pages`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use common::{Client, start};

const STORED: usize = 10_000;
const CLIENTS: usize = 8;
const WARM_UPS: usize = 5;
const SAMPLES: usize = 50;
const BUDGET_MS: f64 = 50.0;

const MAKERS: [&str; 3] = ["mia", "max", "mel"];
const APPROVERS: [&str; 2] = ["ann", "abe"];
const SOLUTIONS: [&str; 3] = ["contoso_expenses", "contoso_crm", "contoso_hr"];
/// Refused by the pipeline's validator (publisher prefix `contoso`): these fail.
const FOREIGN: &str = "fabrikam_tools";

/// What the set-up made: ids and the people's tokens.
struct Setup {
    pipeline: String,
    qa: String,
    prod: String,
    makers: Vec<(String, Client)>,
    approver_token: String,
    maker_token: String,
}

fn main() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut seeds = Vec::new();
    for solution in SOLUTIONS.iter().chain([&FOREIGN]) {
        seeds.push("--memory-solution".to_owned());
        seeds.push(format!("dev:{solution}@1.0.0.0"));
    }
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let server = start(data.path(), &seeds);
    let admin = Client::new(&server.base);
    let setup = set_up(&admin, &server.base);

    let seeding = Instant::now();
    let counts = seed(&setup);
    let seeded = seeding.elapsed();
    wait_until_settled(&admin, &setup.pipeline);
    let settled = seeding.elapsed();
    let stored = count_by_status(&admin, &setup.pipeline);
    println!(
        "seeded {STORED} deployments through the HTTP API with {CLIENTS} clients in {:.1} s \
         (requested {} succeeded-to-be, {} failing, {} waiting, {} canceled); all settled after {:.1} s",
        seeded.as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        settled.as_secs_f64()
    );
    println!(
        "stored: {}",
        stored
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let total: usize = stored.iter().map(|(_, n)| n).sum();
    assert!(
        total >= STORED,
        "only {total} deployments are stored, not {STORED}"
    );

    let admin_session = sign_in(&server.base, common::ADMIN_TOKEN);
    let maker_session = sign_in(&server.base, &setup.maker_token);
    let approver_session = sign_in(&server.base, &setup.approver_token);
    let web = Web::new(&server.base);

    // The pages' arguments: a deployment with a full timeline, and the history's page 2.
    let one = admin.ok(
        "GET",
        &format!(
            "/deployments?pipeline={}&stage={}&status=succeeded&limit=1",
            setup.pipeline, setup.qa
        ),
        None,
    )["items"][0]["id"]
        .as_str()
        .expect("a succeeded deployment")
        .to_owned();
    let (status, history, _) = web.get("/ui/deployments", Auth::Cookie(&admin_session));
    assert_eq!(status, 200, "/ui/deployments: {history}");
    let page_two = next_page(&history).expect("the history links its next page (a#next-page)");

    let pages: Vec<(String, &str, Auth)> = vec![
        ("/ui/".into(), "admin", Auth::Cookie(&admin_session)),
        ("/ui/".into(), "maker", Auth::Cookie(&maker_session)),
        (
            "/ui/pipelines".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/ui/deployments".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/ui/deployments".into(),
            "maker",
            Auth::Cookie(&maker_session),
        ),
        (
            "/ui/deployments?status=failed".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (page_two, "admin", Auth::Cookie(&admin_session)),
        (
            format!("/ui/deployments/{one}"),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            format!("/ui/deploy?pipeline={}", setup.pipeline),
            "maker",
            Auth::Cookie(&maker_session),
        ),
        (
            "/ui/solutions".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/ui/approvals".into(),
            "approver",
            Auth::Cookie(&approver_session),
        ),
        (
            "/ui/approvals".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/ui/admin/plugins".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/ui/admin/environments".into(),
            "admin",
            Auth::Cookie(&admin_session),
        ),
        (
            "/api/v1/metrics/summary".into(),
            "admin",
            Auth::Bearer(common::ADMIN_TOKEN),
        ),
    ];

    println!();
    println!(
        "page latency over {total} stored deployments: {SAMPLES} sequential requests each after \
         {WARM_UPS} warm-ups, budget {BUDGET_MS} ms (median)"
    );
    println!(
        "{:<58} {:>8} {:>9} {:>8} {:>8} {:>9}  result",
        "page", "as", "median ms", "p99 ms", "max ms", "bytes"
    );
    let mut failed = Vec::new();
    for (path, who, auth) in &pages {
        for _ in 0..WARM_UPS {
            let (status, body, _) = web.get(path, *auth);
            if status != 200 {
                eprintln!("{path} as {who} answered {status}:\n{body}");
                std::process::exit(1);
            }
        }
        let mut times = Vec::with_capacity(SAMPLES);
        let mut bytes = 0;
        for _ in 0..SAMPLES {
            let (status, body, took) = web.get(path, *auth);
            assert_eq!(status, 200, "{path} as {who}: {body}");
            bytes = body.len();
            times.push(took);
        }
        times.sort();
        let median = ms(percentile(&times, 50));
        let pass = median <= BUDGET_MS;
        if !pass {
            failed.push(format!("{path} as {who}"));
        }
        println!(
            "{:<58} {:>8} {:>9.2} {:>8.2} {:>8.2} {:>9}  {}",
            shorten(path),
            who,
            median,
            ms(percentile(&times, 99)),
            ms(*times.last().expect("samples")),
            bytes,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    drop(server);
    if !failed.is_empty() {
        eprintln!("over {BUDGET_MS} ms: {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Users, groups, three `memory://` environments, the plugins, and the pipeline
/// Development → QA (business hours, always open) → Production (two of `approvers`).
fn set_up(admin: &Client, base: &str) -> Setup {
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for name in MAKERS.iter().chain(&APPROVERS) {
        let user = admin.ok(
            "POST",
            "/users",
            Some(json!({ "name": name, "display_name": name.to_uppercase(), "role": "user" })),
        );
        let id = user["id"].as_str().expect("a user id").to_owned();
        let token = admin.ok(
            "POST",
            &format!("/users/{id}/tokens"),
            Some(json!({ "label": "bench" })),
        )["token"]
            .as_str()
            .expect("a token")
            .to_owned();
        ids.push(id);
        tokens.push(token);
    }
    admin.ok(
        "POST",
        "/groups",
        Some(json!({ "name": "makers", "members": ids[..MAKERS.len()] })),
    );
    admin.ok(
        "POST",
        "/groups",
        Some(json!({ "name": "approvers", "members": ids[MAKERS.len()..] })),
    );
    let access = json!(["group:makers", "group:approvers"]);
    let mut envs = Vec::new();
    for (name, kind, id) in [
        ("Development", "development", "dev"),
        ("QA", "target", "qa"),
        ("Production", "target", "prod"),
    ] {
        let env = admin.ok(
            "POST",
            "/environments",
            Some(json!({
                "name": name, "kind": kind, "environment_id": id,
                "url": format!("memory://{id}"), "access": access,
            })),
        );
        let env = env["id"].as_str().expect("an environment id").to_owned();
        admin.ok(
            "POST",
            &format!("/environments/{env}/validate"),
            Some(json!({})),
        );
        envs.push(env);
    }
    let gate = admin.upload("business-hours");
    let two_person = admin.upload("two-person-rule");
    let policy = admin.upload("solution-policy");
    let pipeline = admin.ok(
        "POST",
        "/pipelines",
        Some(json!({
            "name": "Bench", "development_environment_ids": [envs[0]],
            "settings": { "allow_redeploy_older_versions": true },
        })),
    );
    let pipeline = pipeline["id"].as_str().expect("a pipeline id").to_owned();
    let qa = admin.ok(
        "POST",
        &format!("/pipelines/{pipeline}/stages"),
        Some(json!({
            "name": "QA", "target_environment_id": envs[1], "pre_deployment_step_required": true,
            "gates": [{ "plugin_id": gate, "config": {
                "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00" } }],
        })),
    );
    let qa = qa["id"].as_str().expect("a stage id").to_owned();
    let prod = admin.ok(
        "POST",
        &format!("/pipelines/{pipeline}/stages"),
        Some(json!({
            "name": "Production", "previous_stage_id": qa, "target_environment_id": envs[2],
            "pre_deployment_step_required": true,
            "gates": [{ "plugin_id": two_person, "config": { "group": "approvers", "required": "2" } }],
        })),
    );
    let prod = prod["id"].as_str().expect("a stage id").to_owned();
    admin.ok(
        "PUT",
        &format!("/pipelines/{pipeline}/validators"),
        Some(json!({
            "validators": [{ "plugin_id": policy, "config": { "publisher-prefix": "contoso" } }],
        })),
    );
    for group in ["makers", "approvers"] {
        admin.ok(
            "POST",
            &format!("/pipelines/{pipeline}/shares"),
            Some(json!({ "grantee": format!("group:{group}") })),
        );
    }
    let makers = MAKERS
        .iter()
        .zip(&tokens)
        .map(|(name, token)| ((*name).to_owned(), Client::with_token(base, token)))
        .collect();
    Setup {
        pipeline,
        qa,
        prod,
        makers,
        maker_token: tokens[0].clone(),
        approver_token: tokens[MAKERS.len()].clone(),
    }
}

/// What the `i`th deployment is: 60 % QA deployments that succeed, 25 % that fail
/// validation, 5 % Production deployments left waiting for approvers, 10 % scheduled for
/// next week and then canceled.
#[derive(Clone, Copy)]
enum Kind {
    Succeeds,
    Fails,
    Waits,
    Canceled,
}

fn kind(i: usize) -> Kind {
    match i % 20 {
        0..12 => Kind::Succeeds,
        12..17 => Kind::Fails,
        17 => Kind::Waits,
        _ => Kind::Canceled,
    }
}

/// Requests the `STORED` deployments from `CLIENTS` threads; returns how many of each
/// kind were requested.
fn seed(setup: &Setup) -> [usize; 4] {
    // Production takes only versions QA has: one of each solution first.
    for (i, solution) in SOLUTIONS.iter().enumerate() {
        let (_, client) = &setup.makers[i % MAKERS.len()];
        let first = request(client, setup, solution, &setup.qa, "", None);
        wait_for(client, &first, "succeeded");
    }
    let next = Arc::new(AtomicUsize::new(SOLUTIONS.len()));
    let counts: Vec<[usize; 4]> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let next = next.clone();
                scope.spawn(move || {
                    let mut counts = [0; 4];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= STORED {
                            return counts;
                        }
                        let (_, client) = &setup.makers[i % MAKERS.len()];
                        let solution = SOLUTIONS[(i / 20) % SOLUTIONS.len()];
                        match kind(i) {
                            Kind::Succeeds => {
                                request(client, setup, solution, &setup.qa, "", None);
                                counts[0] += 1;
                            }
                            Kind::Fails => {
                                request(client, setup, FOREIGN, &setup.qa, "", None);
                                counts[1] += 1;
                            }
                            Kind::Waits => {
                                request(client, setup, solution, &setup.prod, "CHG-1", None);
                                counts[2] += 1;
                            }
                            Kind::Canceled => {
                                let week = now_ms() + 7 * 24 * 3600 * 1000;
                                let id =
                                    request(client, setup, solution, &setup.qa, "", Some(week));
                                client.ok(
                                    "POST",
                                    &format!("/deployments/{id}/cancel"),
                                    Some(json!({})),
                                );
                                counts[3] += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a seeding client"))
            .collect()
    });
    let mut total = [SOLUTIONS.len(), 0, 0, 0];
    for c in counts {
        for (t, n) in total.iter_mut().zip(c) {
            *t += n;
        }
    }
    total
}

fn request(
    client: &Client,
    setup: &Setup,
    solution: &str,
    stage: &str,
    notes: &str,
    scheduled_for: Option<u64>,
) -> String {
    let created = client.ok(
        "POST",
        "/deployments",
        Some(json!({
            "pipeline_id": setup.pipeline, "stage_id": stage, "solution_name": solution,
            "version": "1.0.0.0", "notes": notes, "scheduled_for": scheduled_for,
        })),
    );
    created["id"].as_str().expect("a deployment id").to_owned()
}

fn wait_for(client: &Client, id: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = client.ok("GET", &format!("/deployments/{id}"), None);
        if view["deployment"]["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "deployment {id} did not become {status}: {view:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until nothing of the pipeline is queued, validating or deploying.
fn wait_until_settled(admin: &Client, pipeline: &str) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let page = admin.ok(
            "GET",
            &format!("/deployments?pipeline={pipeline}&status=queued,validating,deploying&limit=1"),
            None,
        );
        if page["items"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(Instant::now() < deadline, "the deployments did not settle");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count_by_status(admin: &Client, pipeline: &str) -> Vec<(&'static str, usize)> {
    let mut counts = Vec::new();
    for status in [
        "succeeded",
        "failed",
        "pending_approval",
        "canceled",
        "rejected",
        "scheduled",
    ] {
        let mut n = 0;
        let mut after = String::new();
        loop {
            let page = admin.ok(
                "GET",
                &format!("/deployments?pipeline={pipeline}&status={status}&limit=200{after}"),
                None,
            );
            n += page["items"].as_array().map_or(0, Vec::len);
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
        if n > 0 {
            counts.push((status, n));
        }
    }
    counts
}

/// How a page request proves who it is.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// The `gatehouse_session` cookie's value.
    Cookie(&'a str),
    Bearer(&'a str),
}

/// A plain HTTP client of the pages: no redirects followed, so a page that sends the
/// caller to the sign-in form is not mistaken for an answer.
struct Web {
    agent: ureq::Agent,
    base: String,
}

impl Web {
    fn new(base: &str) -> Web {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Web {
            agent,
            base: base.to_owned(),
        }
    }

    /// Status, body and the time to the last byte.
    fn get(&self, path: &str, auth: Auth) -> (u16, String, Duration) {
        let request = self.agent.get(format!("{}{path}", self.base));
        let request = match auth {
            Auth::Cookie(session) => {
                request.header("cookie", format!("gatehouse_session={session}"))
            }
            Auth::Bearer(token) => request.header("authorization", format!("Bearer {token}")),
        };
        let started = Instant::now();
        let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let took = started.elapsed();
        (response.status().as_u16(), body, took)
    }
}

/// Signs in through the form, as a browser would: reads the form (and its CSRF token and
/// any cookie it sets), posts the token, and returns the session cookie's value.
fn sign_in(base: &str, token: &str) -> String {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let mut form = agent
        .get(format!("{base}/ui/signin"))
        .call()
        .expect("GET /ui/signin");
    assert_eq!(form.status().as_u16(), 200, "GET /ui/signin");
    let cookies = set_cookies(&form);
    let html = form.body_mut().read_to_string().expect("the sign-in page");
    let mut fields = vec![("token".to_owned(), token.to_owned())];
    if let Some(csrf) = input_value(&html, "csrf") {
        fields.push(("csrf".to_owned(), csrf));
    }
    let mut post = agent.post(format!("{base}/ui/signin"));
    if !cookies.is_empty() {
        post = post.header("cookie", cookies.join("; "));
    }
    let mut answer = post
        .send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .expect("POST /ui/signin");
    let status = answer.status().as_u16();
    let session = set_cookies(&answer)
        .into_iter()
        .find_map(|c| c.strip_prefix("gatehouse_session=").map(str::to_owned));
    match session {
        Some(session) if status == 303 => session,
        _ => panic!(
            "signing in answered {status} without a session: {}",
            answer.body_mut().read_to_string().unwrap_or_default()
        ),
    }
}

/// `name=value` of each `Set-Cookie` of an answer.
fn set_cookies(response: &ureq::http::Response<ureq::Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|v| v.trim().to_owned())
        .collect()
}

/// The value of the first `<input name="{name}" value="…">` of a page.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    attribute(&html[start..end], "value")
}

/// The `href` of `a#next-page`.
fn next_page(html: &str) -> Option<String> {
    let at = html.find("id=\"next-page\"")?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let href = attribute(&html[start..end], "href")?;
    Some(if href.starts_with('/') {
        href
    } else {
        format!("/ui/deployments{href}")
    })
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#x2F;", "/")
            .replace("&#47;", "/"),
    )
}

fn shorten(path: &str) -> String {
    if path.len() <= 58 {
        path.to_owned()
    } else {
        format!("{}…", &path[..57])
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}
