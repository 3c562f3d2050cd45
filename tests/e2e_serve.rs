//! End to end: the real `gatehouse serve` binary, driven through its REST API the way a
//! maker, two approvers, an outsider and an admin would.
//!
//! Every scenario runs on SQLite (in a temporary data dir), and again on a fresh
//! PostgreSQL database when `GATEHOUSE_TEST_DATABASE_URL` names a server. The pipeline is
//! QA → UAT → Prod over `memory://` environments: QA has the business-hours gate
//! (configured to be always open), Prod the two-person rule, and solution-policy validates
//! every deployment. The crash scenario kills the server with SIGKILL and starts it again
//! on the same database.

mod support;

#[macro_use]
#[path = "support/server.rs"]
mod server;
/// The step's other paths: failing gates, rechecks, timeouts, overrides, logs, secrets.
#[path = "e2e_serve/engine_paths.rs"]
mod engine_paths;
#[path = "support/views.rs"]
mod views;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use views::{count, kinds, reason, status};

use server::{Api, Backend, Reply, Server};

/// The group whose members approve Prod deployments.
const GROUP: &str = "release-managers";
/// The solutions in the development environment. Only `contoso_` passes the policy.
const SEEDS: &[&str] = &[
    "dev:contoso_expenses@1.0.0.0",
    "dev:contoso_travel@2.1.0.0",
    "dev:fabrikam_tools@1.0.0.0",
];
const EXPENSES: &str = "contoso_expenses";
const TRAVEL: &str = "contoso_travel";

/// How long a deployment may take to reach the state a test waits for. Generous: the
/// machine may be busy with other servers compiling plugins.
const PATIENCE: Duration = Duration::from_secs(45);
/// After a kill: on PostgreSQL the dead server's lease on a deploying deployment (30 s)
/// must lapse before the new server takes it over.
const RESUME_PATIENCE: Duration = Duration::from_secs(90);

struct Person {
    id: String,
    token: String,
}

/// A running server with the users, environments, plugins and pipeline of the scenarios.
struct World {
    server: Server,
    admin_id: String,
    maker: Person,
    alice: Person,
    bob: Person,
    outsider: Person,
    pipeline: String,
    qa: String,
    uat: String,
    prod: String,
}

impl World {
    /// Sets everything up through the API, as an admin would. `prod_url` is the Prod
    /// target's URL, such as `memory://prod?import_delay_ms=3000` for a slow import.
    fn new(backend: &Backend, prod_url: &str) -> World {
        let server = Server::start(backend, SEEDS);
        let admin = server.admin();
        let admin_id = id(&admin.get("/me").expect(200));
        let maker = create_user(&admin, "maker");
        let alice = create_user(&admin, "alice");
        let bob = create_user(&admin, "bob");
        let outsider = create_user(&admin, "outsider");
        admin
            .post(
                "/groups",
                json!({ "name": GROUP, "members": [alice.id, bob.id] }),
            )
            .expect(201);

        let dev = environment(&admin, "dev", "development", "memory://dev");
        let qa_env = environment(&admin, "qa", "target", "memory://qa");
        let uat_env = environment(&admin, "uat", "target", "memory://uat");
        let prod_env = environment(&admin, "prod", "target", prod_url);
        let access = json!({ "access": [format!("user:{}", maker.id), format!("group:{GROUP}")] });
        for env in [&dev, &qa_env, &uat_env, &prod_env] {
            let record = admin
                .put(&format!("/environments/{env}/access"), access.clone())
                .expect(200);
            assert_eq!(
                record["access"].as_array().map(Vec::len),
                Some(2),
                "{record:#}"
            );
        }

        let business_hours = upload_plugin(&admin, "business-hours", "approver");
        let two_person_rule = upload_plugin(&admin, "two-person-rule", "approver");
        let solution_policy = upload_plugin(&admin, "solution-policy", "validator");

        let pipeline = id(&admin
            .post(
                "/pipelines",
                json!({ "name": "Expenses", "development_environment_ids": [dev] }),
            )
            .expect(201));
        let stages = format!("/pipelines/{pipeline}/stages");
        let always_open = json!({
            "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00",
        });
        let qa = id(&admin
            .post(
                &stages,
                json!({
                    "name": "QA",
                    "target_environment_id": qa_env,
                    "pre_deployment_step_required": true,
                    "gates": [{ "plugin_id": business_hours, "config": always_open }],
                }),
            )
            .expect(201));
        let uat = id(&admin
            .post(
                &stages,
                json!({ "name": "UAT", "previous_stage_id": qa, "target_environment_id": uat_env }),
            )
            .expect(201));
        let prod = id(&admin
            .post(
                &stages,
                json!({
                    "name": "Prod",
                    "previous_stage_id": uat,
                    "target_environment_id": prod_env,
                    "pre_deployment_step_required": true,
                    "gates": [{
                        "plugin_id": two_person_rule,
                        "config": { "group": GROUP, "required": "2" },
                    }],
                }),
            )
            .expect(201));
        admin
            .put(
                &format!("/pipelines/{pipeline}/validators"),
                json!({ "validators": [{
                    "plugin_id": solution_policy,
                    "config": { "publisher-prefix": "contoso" },
                }] }),
            )
            .expect(200);
        for grantee in [format!("user:{}", maker.id), format!("group:{GROUP}")] {
            admin
                .post(
                    &format!("/pipelines/{pipeline}/shares"),
                    json!({ "grantee": grantee }),
                )
                .expect(200);
        }
        World {
            server,
            admin_id,
            maker,
            alice,
            bob,
            outsider,
            pipeline,
            qa,
            uat,
            prod,
        }
    }

    fn admin(&self) -> Api<'_> {
        self.server.admin()
    }

    fn api<'a>(&'a self, who: &'a Person) -> Api<'a> {
        self.server.client(&who.token)
    }

    /// `POST /deployments` of the solution's current version to a stage; `extra` adds or
    /// overrides fields of the request.
    fn request(&self, who: &Person, stage: &str, solution: &str, extra: Value) -> Reply {
        let mut body = json!({
            "pipeline_id": self.pipeline,
            "stage_id": stage,
            "solution_name": solution,
            "notes": "end-to-end test",
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.api(who).post("/deployments", body)
    }

    /// Requests a deployment and returns its id.
    fn deploy(&self, who: &Person, stage: &str, solution: &str) -> String {
        id(&self.request(who, stage, solution, json!({})).expect(201))
    }

    /// The deployment with its votes and timeline, as an admin sees it.
    fn view(&self, deployment: &str) -> Value {
        self.admin()
            .get(&format!("/deployments/{deployment}"))
            .expect(200)
    }

    /// Waits until `done` holds for the deployment's view; fails early if the deployment
    /// ends without it.
    fn wait_until(
        &self,
        deployment: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        views::wait_until(deployment, what, within, || self.view(deployment), done)
    }

    fn wait_for_status(&self, deployment: &str, wanted: &str) -> Value {
        self.wait_for_status_within(deployment, wanted, PATIENCE)
    }

    fn wait_for_status_within(&self, deployment: &str, wanted: &str, within: Duration) -> Value {
        self.wait_until(deployment, wanted, within, |v| status(v) == wanted)
    }

    /// Waits until the deployment is in the approver's `GET /approvals`: the gate has
    /// asked for votes.
    fn wait_until_approvable(&self, approver: &Person, deployment: &str) -> Value {
        self.wait_until(
            deployment,
            "the approver's list of approvals",
            PATIENCE,
            |_| {
                let approvals = self.api(approver).get("/approvals").expect(200);
                ids(&approvals).contains(&deployment.to_owned())
            },
        );
        // The view above was read before the list; read it again now that it is listed.
        self.view(deployment)
    }

    /// Deploys the solution through QA and UAT (both pass on their own), then requests
    /// Prod and waits until its two-person rule asks the approvers.
    fn pending_in_prod(&self, who: &Person, solution: &str) -> String {
        self.promote_through_uat(who, solution);
        let prod = self.deploy(who, &self.prod, solution);
        let approver = if who.id == self.alice.id {
            &self.bob
        } else {
            &self.alice
        };
        self.wait_until_approvable(approver, &prod);
        prod
    }

    fn promote_through_uat(&self, who: &Person, solution: &str) {
        for stage in [&self.qa, &self.uat] {
            let deployment = self.deploy(who, stage, solution);
            self.wait_for_status(&deployment, "succeeded");
        }
    }

    fn vote(&self, who: &Person, deployment: &str, approve: bool, comment: &str) -> Reply {
        self.api(who).post(
            &format!("/deployments/{deployment}/votes"),
            json!({ "approve": approve, "comment": comment }),
        )
    }

    /// The ids of every deployment, as an admin lists them page by page, sorted.
    fn all_deployments(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut path = "/deployments?limit=2".to_owned();
        loop {
            let page = self.admin().get(&path).expect(200);
            all.extend(ids(&page));
            match page["next"].as_str() {
                Some(next) => path = format!("/deployments?limit=2&after={next}"),
                None => break,
            }
        }
        let listed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), listed, "the pages repeat no deployment");
        all
    }
}

fn create_user(admin: &Api, name: &str) -> Person {
    let user = admin.post("/users", json!({ "name": name })).expect(201);
    let id = id(&user);
    let issued = admin
        .post(&format!("/users/{id}/tokens"), json!({ "label": "e2e" }))
        .expect(201);
    let token = issued["token"].as_str().expect("a token").to_owned();
    assert_eq!(token.len(), 64, "tokens are 256 bits in hex: {issued:#}");
    Person { id, token }
}

/// Registers a `memory://` environment and validates it.
fn environment(admin: &Api, name: &str, kind: &str, url: &str) -> String {
    let env = admin
        .post(
            "/environments",
            json!({ "name": name, "kind": kind, "environment_id": name, "url": url }),
        )
        .expect(201);
    let id = id(&env);
    let validated = admin
        .post(&format!("/environments/{id}/validate"), json!({}))
        .expect(200);
    assert_eq!(validated["validation_status"], "success", "{validated:#}");
    id
}

fn upload_plugin(admin: &Api, name: &str, world: &str) -> String {
    let plugin = admin
        .upload("/plugins", &support::plugin_bytes(name))
        .expect(201);
    assert_eq!(plugin["name"], name, "{plugin:#}");
    assert_eq!(plugin["world"], world, "{plugin:#}");
    id(&plugin)
}

fn id(record: &Value) -> String {
    record["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {record:#}"))
        .to_owned()
}

/// The ids of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| items.iter().map(id).collect())
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------
// The scenarios. Each takes the backend and starts its own server.

/// QA and UAT deploy on their own; Prod waits for two approvers, then deploys.
fn promotes_to_prod_after_two_approvals(backend: &Backend) {
    let w = World::new(backend, "memory://prod");

    let qa = w.deploy(&w.maker, &w.qa, EXPENSES);
    let view = w.wait_for_status(&qa, "succeeded");
    let d = &view["deployment"];
    assert_eq!(d["version"], "1.0.0.0");
    assert_eq!(
        d["gates"][0]["approved"], true,
        "business hours approve: {d:#}"
    );
    assert_eq!(d["gates"][0]["decision"]["decision"], "approve", "{d:#}");
    assert_eq!(d["pre_deployment_status"], 20, "{d:#}");
    assert_eq!(
        d["validation"][0]["findings"],
        json!([]),
        "the policy passes: {d:#}"
    );
    let steps = [
        "requested",
        "pre_deployment_started",
        "pre_deployment_completed",
        "deployment_started",
        "deployment_completed",
    ];
    let timeline = kinds(&view);
    let positions: Vec<Option<usize>> = steps
        .iter()
        .map(|s| timeline.iter().position(|k| k == s))
        .collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "the timeline has {steps:?} in order: {timeline:?}"
    );

    let uat = w.deploy(&w.maker, &w.uat, EXPENSES);
    let view = w.wait_for_status(&uat, "succeeded");
    assert_eq!(
        view["deployment"]["pre_deployment_status"],
        Value::Null,
        "UAT has no step"
    );

    let prod = w.deploy(&w.maker, &w.prod, EXPENSES);
    let view = w.wait_until_approvable(&w.alice, &prod);
    assert_eq!(status(&view), "pending_approval");
    assert_eq!(view["deployment"]["pre_deployment_status"], 10);
    assert!(reason(&view).contains("0 of 2"), "{}", reason(&view));
    let bobs = w.api(&w.bob).get("/approvals").expect(200);
    assert!(ids(&bobs).contains(&prod), "bob may vote too: {bobs:#}");
    let makers = w.api(&w.maker).get("/approvals").expect(200);
    assert!(
        !ids(&makers).contains(&prod),
        "the requester is not asked: {makers:#}"
    );

    w.vote(&w.alice, &prod, true, "looks good").expect(200);
    let view = w.wait_until(&prod, "1 of 2 approvals", PATIENCE, |v| {
        reason(v).contains("1 of 2")
    });
    assert_eq!(
        status(&view),
        "pending_approval",
        "one approval is not enough"
    );

    w.vote(&w.bob, &prod, true, "").expect(200);
    let view = w.wait_for_status(&prod, "succeeded");
    assert_eq!(view["votes"].as_array().map(Vec::len), Some(2), "{view:#}");
    assert_eq!(count(&view, "vote"), 2, "{:?}", kinds(&view));
    // The approvers were asked once, and answered once, between the step's start and end.
    let timeline = kinds(&view);
    let order = [
        "pre_deployment_started",
        "approval_started",
        "approval_completed",
        "pre_deployment_completed",
    ];
    let positions: Vec<Option<usize>> = order
        .iter()
        .map(|s| timeline.iter().position(|k| k == s))
        .collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "the timeline has {order:?} in order: {timeline:?}"
    );
    assert_eq!(count(&view, "approval_started"), 1, "{timeline:?}");
    assert_eq!(count(&view, "approval_completed"), 1, "{timeline:?}");
    let decision = &view["deployment"]["gates"][0]["decision"];
    assert_eq!(decision["decision"], "approve", "{decision:#}");
    let alice_left = w.api(&w.alice).get("/approvals").expect(200);
    assert!(
        !ids(&alice_left).contains(&prod),
        "nothing left to vote on: {alice_left:#}"
    );

    let succeeded = w
        .admin()
        .get(&format!(
            "/deployments?pipeline={}&status=succeeded",
            w.pipeline
        ))
        .expect(200);
    let mut found = ids(&succeeded);
    found.sort();
    let mut expected = vec![qa, uat, prod];
    expected.sort();
    assert_eq!(found, expected, "the three stage runs succeeded");
}

/// One approver's no rejects the deployment, with their comment as the reason.
fn a_veto_rejects(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let prod = w.pending_in_prod(&w.maker, EXPENSES);

    w.vote(&w.alice, &prod, false, "not during the audit")
        .expect(200);
    let view = w.wait_for_status(&prod, "rejected");
    assert!(
        reason(&view).contains("vetoed") && reason(&view).contains("not during the audit"),
        "the reason names the veto and its comment: {}",
        reason(&view)
    );
    assert_eq!(view["deployment"]["pre_deployment_status"], 30);
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));

    let late = w.vote(&w.bob, &prod, true, "").problem(409);
    assert!(late.contains("not waiting for approval"), "{late}");
}

/// The requester cancels a deployment waiting for approval; no one else but an admin may.
fn the_requester_cancels_a_pending_deployment(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let prod = w.pending_in_prod(&w.maker, EXPENSES);
    let cancel = format!("/deployments/{prod}/cancel");

    w.api(&w.alice).post(&cancel, json!({})).problem(403);
    assert_eq!(
        status(&w.view(&prod)),
        "pending_approval",
        "a refused cancel changes nothing"
    );

    let canceled = w.api(&w.maker).post(&cancel, json!({})).expect(200);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    let view = w.view(&prod);
    assert_eq!(status(&view), "canceled");
    let timeline = kinds(&view);
    let ending = ["approval_completed", "canceled", "deployment_completed"];
    assert!(
        timeline.ends_with(&ending.map(str::to_owned)),
        "{timeline:?}"
    );
    let completed = view["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .expect("a timeline");
    assert_eq!(completed["detail"]["status"], "canceled", "{completed:#}");

    w.vote(&w.alice, &prod, true, "").problem(409);
    w.api(&w.maker).post(&cancel, json!({})).problem(409);
    let approvals = w.api(&w.alice).get("/approvals").expect(200);
    assert!(!ids(&approvals).contains(&prod), "{approvals:#}");
    // The engine leaves it alone: still canceled a moment later.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(status(&w.view(&prod)), "canceled");
}

/// A deployment scheduled for later waits; moved to now, it runs.
fn a_scheduled_deployment_moved_to_now_runs(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let in_an_hour = now_ms() + 3_600_000;
    let scheduled = w
        .request(
            &w.maker,
            &w.qa,
            EXPENSES,
            json!({ "scheduled_for": in_an_hour }),
        )
        .expect(201);
    assert_eq!(scheduled["status"], "scheduled", "{scheduled:#}");
    assert_eq!(scheduled["scheduled_for"], in_an_hour, "{scheduled:#}");
    let qa = id(&scheduled);

    // The worker looks for due work every half second; give it a few chances to go early.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&w.view(&qa)), "scheduled", "it waits for its time");

    let path = format!("/deployments/{qa}");
    w.api(&w.maker)
        .patch(&path, json!({ "scheduled_for": 1_000 }))
        .problem(409);
    w.api(&w.alice)
        .patch(&path, json!({ "scheduled_for": null }))
        .problem(403);

    let moved = w
        .api(&w.maker)
        .patch(&path, json!({ "scheduled_for": null }))
        .expect(200);
    assert_eq!(moved["scheduled_for"], Value::Null, "{moved:#}");
    let view = w.wait_for_status(&qa, "succeeded");
    let timeline = kinds(&view);
    assert!(
        timeline.contains(&"scheduled".to_owned()) && timeline.contains(&"rescheduled".to_owned()),
        "{timeline:?}"
    );
    w.api(&w.maker)
        .patch(&path, json!({ "scheduled_for": null }))
        .problem(409);
}

/// A rejected deployment, retried by its requester, asks the approvers again and can then
/// succeed.
fn a_rejected_deployment_retried_runs_again(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let prod = w.pending_in_prod(&w.maker, EXPENSES);
    w.vote(&w.alice, &prod, false, "fix the typo first")
        .expect(200);
    w.wait_for_status(&prod, "rejected");

    let retry = format!("/deployments/{prod}/retry");
    w.api(&w.alice).post(&retry, json!({})).problem(403);
    let retried = w.api(&w.maker).post(&retry, json!({})).expect(200);
    assert_eq!(retried["attempt"], 2, "{retried:#}");
    assert_eq!(retried["status"], "queued", "{retried:#}");

    // A new attempt: the approvers are asked again, and the old veto does not count.
    w.wait_until_approvable(&w.alice, &prod);
    w.wait_until(&prod, "the gate asking again", PATIENCE, |v| {
        reason(v).contains("0 of 2")
    });
    w.vote(&w.alice, &prod, true, "fixed").expect(200);
    w.vote(&w.bob, &prod, true, "").expect(200);
    let view = w.wait_for_status(&prod, "succeeded");
    assert!(
        kinds(&view).contains(&"retried".to_owned()),
        "{:?}",
        kinds(&view)
    );
    assert_eq!(count(&view, "deployment_started"), 1, "{:?}", kinds(&view));
    w.api(&w.maker).post(&retry, json!({})).problem(409);
}

/// The same Idempotency-Key twice makes one deployment; the repeat answers 200 with it.
fn an_idempotency_key_makes_one_deployment(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let key = [("Idempotency-Key", "e2e-7f3c2a")];
    let body = json!({
        "pipeline_id": w.pipeline, "stage_id": w.qa, "solution_name": EXPENSES, "notes": "once",
    });
    let maker = w.api(&w.maker);
    let first = maker
        .post_with("/deployments", body.clone(), &key)
        .expect(201);
    let again = maker
        .post_with("/deployments", body.clone(), &key)
        .expect(200);
    assert_eq!(
        id(&again),
        id(&first),
        "the repeat returns the first deployment"
    );

    let listed = w
        .admin()
        .get(&format!("/deployments?stage={}", w.qa))
        .expect(200);
    assert_eq!(ids(&listed), vec![id(&first)], "one deployment was made");
    w.wait_for_status(&id(&first), "succeeded");

    let other_key = [("Idempotency-Key", "e2e-another")];
    let second = maker
        .post_with("/deployments", body.clone(), &other_key)
        .expect(201);
    assert_ne!(
        id(&second),
        id(&first),
        "another key makes another deployment"
    );

    // A client that retries before the first answer arrives: the same key, at once.
    let racing = [("Idempotency-Key", "e2e-racing")];
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| maker.post_with("/deployments", body.clone(), &racing)))
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().expect("the request thread"))
            .collect()
    });
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 200, 200, 201],
        "one of the racing requests made it"
    );
    let made: Vec<String> = replies.iter().map(|r| id(&r.body)).collect();
    assert!(
        made.iter().all(|d| *d == made[0]),
        "they all return it: {made:?}"
    );
    let listed = w
        .admin()
        .get(&format!("/deployments?stage={}", w.qa))
        .expect(200);
    assert_eq!(
        ids(&listed).len(),
        3,
        "three keys, three deployments: {listed:#}"
    );
}

/// A stage only receives versions that succeeded in the stage before it.
fn a_stage_takes_only_versions_its_previous_stage_succeeded_with(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let early = w
        .request(&w.maker, &w.uat, EXPENSES, json!({}))
        .problem(409);
    assert!(
        early.contains("QA"),
        "the refusal names the previous stage: {early}"
    );
    let none = w
        .admin()
        .get(&format!("/deployments?stage={}", w.uat))
        .expect(200);
    assert_eq!(ids(&none), Vec::<String>::new(), "nothing was made");

    let qa = w.deploy(&w.maker, &w.qa, EXPENSES);
    w.wait_for_status(&qa, "succeeded");
    let other = w
        .request(&w.maker, &w.uat, EXPENSES, json!({ "version": "1.0.0.1" }))
        .problem(409);
    assert!(other.contains("1.0.0.1"), "{other}");
    w.request(&w.maker, &w.prod, EXPENSES, json!({}))
        .problem(409);

    let uat = id(&w
        .request(&w.maker, &w.uat, EXPENSES, json!({ "version": "1.0.0.0" }))
        .expect(201));
    let view = w.wait_for_status(&uat, "succeeded");
    assert_eq!(view["deployment"]["version"], "1.0.0.0");
}

/// A first stage exports what the development environment holds, stamped with the version
/// asked for; after that, versions only move up in that stage.
fn a_first_stage_stamps_the_requested_version(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let qa = id(&w
        .request(&w.maker, &w.qa, EXPENSES, json!({ "version": "1.0.0.5" }))
        .expect(201));
    let view = w.wait_for_status(&qa, "succeeded");
    assert_eq!(view["deployment"]["artifact"]["version"], "1.0.0.5");
    let exported = view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "artifact_retrieved")
        .unwrap_or_else(|| panic!("no artifact_retrieved event: {view:#}"));
    assert_eq!(exported["detail"]["exported"], true, "{exported:#}");

    // Without a version, the one development holds (1.0.0.0), which is lower.
    let lower = w.request(&w.maker, &w.qa, EXPENSES, json!({})).problem(409);
    assert!(
        lower.contains("1.0.0.5"),
        "the refusal names the version there: {lower}"
    );
    let bad = w
        .request(&w.maker, &w.qa, EXPENSES, json!({ "version": "1.0" }))
        .problem(422);
    assert!(bad.contains("four-part"), "{bad}");
}

/// The requester's own vote is refused even when they are an approver; an admin can still
/// complete the step from outside, and that is recorded.
fn the_requester_cannot_approve_their_own_deployment(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let prod = w.pending_in_prod(&w.alice, EXPENSES);

    let own = w.vote(&w.alice, &prod, true, "mine").problem(403);
    assert!(own.contains("requested"), "{own}");
    w.vote(&w.maker, &prod, true, "").problem(403);
    let view = w.view(&prod);
    assert_eq!(
        view["votes"],
        json!([]),
        "refused votes are not recorded: {view:#}"
    );

    w.vote(&w.bob, &prod, true, "").expect(200);
    let view = w.wait_until(&prod, "1 of 2 approvals", PATIENCE, |v| {
        reason(v).contains("1 of 2")
    });
    assert_eq!(
        status(&view),
        "pending_approval",
        "the requester's vote never counts"
    );

    let step = format!("/deployments/{prod}/pre-deployment-status");
    w.api(&w.bob)
        .put(&step, json!({ "status": 20 }))
        .problem(403);
    w.admin()
        .put(&step, json!({ "status": 20, "comment": "emergency" }))
        .expect(200);
    let view = w.wait_for_status(&prod, "succeeded");
    let by = &view["deployment"]["pre_deployment_override"];
    assert_eq!(by["by"], w.admin_id.as_str(), "{by:#}");
    assert_eq!(by["status"], 20, "{by:#}");
}

/// Someone the pipeline is not shared with cannot tell it exists; sharing it is not enough
/// to run it without access to its environments.
fn an_outsider_cannot_see_or_run_the_pipeline(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let qa = w.deploy(&w.maker, &w.qa, EXPENSES);
    let outsider = w.api(&w.outsider);

    outsider
        .get(&format!("/pipelines/{}", w.pipeline))
        .problem(404);
    let missing = outsider
        .get("/pipelines/01900000-0000-7000-8000-000000000000")
        .expect(404);
    let hidden = outsider
        .get(&format!("/pipelines/{}", w.pipeline))
        .expect(404);
    assert_eq!(hidden["type"], missing["type"], "hidden looks like missing");
    assert_eq!(
        ids(&outsider.get("/pipelines").expect(200)),
        Vec::<String>::new()
    );
    w.request(&w.outsider, &w.qa, EXPENSES, json!({}))
        .problem(404);
    outsider.get(&format!("/deployments/{qa}")).problem(404);
    assert_eq!(
        ids(&outsider.get("/deployments").expect(200)),
        Vec::<String>::new()
    );
    outsider
        .post(&format!("/deployments/{qa}/cancel"), json!({}))
        .problem(404);

    w.admin()
        .post(
            &format!("/pipelines/{}/shares", w.pipeline),
            json!({ "grantee": format!("user:{}", w.outsider.id) }),
        )
        .expect(200);
    outsider
        .get(&format!("/pipelines/{}", w.pipeline))
        .expect(200);
    let no_access = w
        .request(&w.outsider, &w.qa, EXPENSES, json!({}))
        .problem(403);
    assert!(no_access.contains("access"), "{no_access}");
    w.wait_for_status(&qa, "succeeded");
}

/// A validator's error finding fails the deployment, and the finding is shown.
fn a_validator_error_fails_the_deployment(backend: &Backend) {
    let w = World::new(backend, "memory://prod");
    let bad = w.deploy(&w.maker, &w.qa, "fabrikam_tools");
    let view = w.wait_for_status(&bad, "failed");
    let d = &view["deployment"];
    assert!(reason(&view).contains("publisher"), "{}", reason(&view));
    let finding = &d["validation"][0]["findings"][0];
    assert_eq!(finding["code"], "publisher-prefix", "{d:#}");
    assert_eq!(finding["severity"], "error", "{d:#}");
    assert!(
        finding["message"]
            .as_str()
            .unwrap_or_default()
            .contains("fabrikam"),
        "{finding:#}"
    );
    assert_eq!(
        d["validation"][0]["plugin_name"], "solution-policy",
        "{d:#}"
    );
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));
    assert_eq!(
        d["gates"],
        json!([]),
        "no gate is asked after validation fails"
    );

    w.request(&w.maker, &w.uat, "fabrikam_tools", json!({}))
        .problem(409);
}

/// Killed with SIGKILL while one deployment imports and others wait for approval, the
/// server starts again and every deployment ends as it should, once.
fn deployments_survive_kill_9(backend: &Backend) {
    let mut w = World::new(backend, "memory://prod?import_delay_ms=3000");
    let deploying = w.pending_in_prod(&w.maker, EXPENSES);
    let half_approved = w.pending_in_prod(&w.maker, TRAVEL);
    let unvoted = w.deploy(&w.maker, &w.prod, EXPENSES);
    w.wait_until_approvable(&w.alice, &unvoted);

    w.vote(&w.alice, &half_approved, true, "").expect(200);
    w.wait_until(&half_approved, "1 of 2 approvals", PATIENCE, |v| {
        reason(v).contains("1 of 2")
    });
    w.vote(&w.alice, &deploying, true, "").expect(200);
    w.vote(&w.bob, &deploying, true, "").expect(200);
    w.wait_for_status(&deploying, "deploying");
    let cancel = format!("/deployments/{deploying}/cancel");
    w.api(&w.maker).post(&cancel, json!({})).problem(409);
    let before = w.all_deployments();
    assert_eq!(
        before.len(),
        7,
        "two solutions through QA and UAT, three Prod runs"
    );
    assert_eq!(
        status(&w.view(&deploying)),
        "deploying",
        "killed mid-import"
    );
    w.server.kill();

    w.server.start_again();
    assert_eq!(w.all_deployments(), before, "no deployment was lost");
    for pending in [&half_approved, &unvoted] {
        let view = w.view(pending);
        assert_eq!(status(&view), "pending_approval", "{view:#}");
        assert_eq!(view["deployment"]["pre_deployment_status"], 10, "{view:#}");
    }
    assert_eq!(
        w.view(&half_approved)["votes"].as_array().map(Vec::len),
        Some(1)
    );
    let approvals = w.api(&w.bob).get("/approvals").expect(200);
    assert!(
        ids(&approvals).contains(&half_approved) && ids(&approvals).contains(&unvoted),
        "still waiting for bob after the restart: {approvals:#}"
    );

    let view = w.wait_for_status_within(&deploying, "succeeded", RESUME_PATIENCE);
    assert_eq!(
        count(&view, "deployment_completed"),
        1,
        "it completes once: {:?}",
        kinds(&view)
    );
    assert!(
        count(&view, "deployment_started") >= 1,
        "{:?}",
        kinds(&view)
    );
    assert_eq!(view["deployment"]["attempt"], 1, "resumed, not retried");

    w.vote(&w.bob, &half_approved, true, "after the restart")
        .expect(200);
    let view = w.wait_for_status_within(&half_approved, "succeeded", RESUME_PATIENCE);
    assert_eq!(
        count(&view, "deployment_completed"),
        1,
        "{:?}",
        kinds(&view)
    );
    w.vote(&w.bob, &unvoted, false, "one is enough").expect(200);
    w.wait_for_status(&unvoted, "rejected");
    assert_eq!(w.all_deployments(), before, "nothing was added either");
}

on_each_backend!(
    promotes_to_prod_after_two_approvals,
    a_veto_rejects,
    the_requester_cancels_a_pending_deployment,
    a_scheduled_deployment_moved_to_now_runs,
    a_rejected_deployment_retried_runs_again,
    an_idempotency_key_makes_one_deployment,
    a_stage_takes_only_versions_its_previous_stage_succeeded_with,
    a_first_stage_stamps_the_requested_version,
    the_requester_cannot_approve_their_own_deployment,
    an_outsider_cannot_see_or_run_the_pipeline,
    a_validator_error_fails_the_deployment,
    deployments_survive_kill_9,
);
