//! The pre-deployment step's other paths, through the real engine: a gate that traps, hits
//! a limit or is disabled fails closed; a recheck fires, and fires again after a kill -9;
//! an approval timeout rejects; an admin's 30 rejects; a pipeline takes either of two
//! development environments as the source. `secrets` covers plugin logs and secret values.
//!
//! The gates are the hostile fixture and `pending-until`, which stays pending until the
//! time in its config (read through the host's `now()`) and asks to be rechecked every
//! second: the timers are real, and short. Each scenario runs on SQLite and PostgreSQL.

#[path = "secrets.rs"]
mod secrets;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::server::{Backend, Reply, Server};
use super::views::{self, count, kinds, reason, status};
use super::{PATIENCE, RESUME_PATIENCE, environment, id, now_ms, upload_plugin};

/// The solutions of the two development environments, `dev` and `dev2`.
const SEEDS: &[&str] = &[
    "dev:contoso_expenses@1.0.0.0",
    "dev2:contoso_expenses@1.2.0.0",
    "dev2:contoso_payroll@3.0.0.0",
];
const EXPENSES: &str = "contoso_expenses";
/// A time no test reaches: a `pending-until` gate with it waits for something else.
const NEVER: u64 = 4_102_444_800_000;

/// A server whose admin has access to `dev`, `dev2` and the targets a scenario asked for.
struct Host {
    server: Server,
    environments: HashMap<String, String>,
}

/// A one-stage pipeline.
struct Stage {
    pipeline: String,
    id: String,
}

impl Host {
    fn new(backend: &Backend, targets: &[&str]) -> Host {
        let server = Server::start(backend, SEEDS);
        let admin = server.admin();
        let admin_id = id(&admin.get("/me").expect(200));
        let access = json!({ "access": [format!("user:{admin_id}")] });
        let kinds = [("dev", "development"), ("dev2", "development")];
        let mut environments = HashMap::new();
        for (name, kind) in kinds
            .into_iter()
            .chain(targets.iter().map(|t| (*t, "target")))
        {
            let env = environment(&admin, name, kind, &format!("memory://{name}"));
            admin
                .put(&format!("/environments/{env}/access"), access.clone())
                .expect(200);
            environments.insert(name.to_owned(), env);
        }
        Host {
            server,
            environments,
        }
    }

    /// Another admin, such as an integration's account; answers its id and token.
    fn another_admin(&self, name: &str) -> (String, String) {
        let admin = self.server.admin();
        let user = id(&admin
            .post("/users", json!({ "name": name, "role": "admin" }))
            .expect(201));
        let issued = admin
            .post(&format!("/users/{user}/tokens"), json!({ "label": name }))
            .expect(201);
        let token = issued["token"].as_str().expect("a token").to_owned();
        (user, token)
    }

    fn plugin(&self, name: &str, world: &str) -> String {
        upload_plugin(&self.server.admin(), name, world)
    }

    /// A pipeline from `sources` with one stage to `target`, its step required when it
    /// has `gates`.
    fn stage(&self, sources: &[&str], target: &str, gates: Value) -> Stage {
        let admin = self.server.admin();
        let sources: Vec<&String> = sources.iter().map(|s| &self.environments[*s]).collect();
        let pipeline = id(&admin
            .post(
                "/pipelines",
                json!({ "name": format!("To {target}"), "development_environment_ids": sources }),
            )
            .expect(201));
        let required = gates.as_array().is_some_and(|g| !g.is_empty());
        let stage = id(&admin
            .post(
                &format!("/pipelines/{pipeline}/stages"),
                json!({
                    "name": target.to_uppercase(),
                    "target_environment_id": self.environments[target],
                    "pre_deployment_step_required": required,
                    "gates": gates,
                }),
            )
            .expect(201));
        Stage {
            pipeline,
            id: stage,
        }
    }

    /// A stage after `previous`, without a step, to `target`.
    fn next_stage(&self, previous: &Stage, target: &str) -> Stage {
        let stage = self
            .server
            .admin()
            .post(
                &format!("/pipelines/{}/stages", previous.pipeline),
                json!({
                    "name": target.to_uppercase(),
                    "previous_stage_id": previous.id,
                    "target_environment_id": self.environments[target],
                }),
            )
            .expect(201);
        Stage {
            pipeline: previous.pipeline.clone(),
            id: id(&stage),
        }
    }

    /// Requests a deployment as the admin; `extra` adds fields to the request.
    fn request(&self, stage: &Stage, solution: &str, extra: Value) -> Reply {
        let mut body = json!({
            "pipeline_id": stage.pipeline, "stage_id": stage.id, "solution_name": solution,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.server.admin().post("/deployments", body)
    }

    fn deploy(&self, stage: &Stage, solution: &str) -> String {
        id(&self.request(stage, solution, json!({})).expect(201))
    }

    fn view(&self, deployment: &str) -> Value {
        self.server
            .admin()
            .get(&format!("/deployments/{deployment}"))
            .expect(200)
    }

    fn wait_for_status(&self, deployment: &str, wanted: &str, within: Duration) -> Value {
        let view = || self.view(deployment);
        views::wait_until(deployment, wanted, within, view, |v| status(v) == wanted)
    }

    /// Waits until the first gate has been asked `n` times, the deployment still waiting.
    fn wait_for_evaluations(&self, deployment: &str, n: u64) -> Value {
        let what = format!("{n} evaluations");
        let view = || self.view(deployment);
        let view = views::wait_until(deployment, &what, PATIENCE, view, |v| evaluations(v) >= n);
        assert_eq!(status(&view), "pending_approval", "{view:#}");
        view
    }
}

/// A `pending-until` gate that approves at `until`, asks to be rechecked every
/// `recheck_seconds` meanwhile (never for 0), and times out after `timeout_seconds`.
fn pending_until(
    plugin: &str,
    until: u64,
    recheck_seconds: u32,
    timeout_seconds: Option<u64>,
) -> Value {
    json!([{
        "plugin_id": plugin,
        "config": { "until": until.to_string(), "recheck-seconds": recheck_seconds.to_string() },
        "approval_timeout_seconds": timeout_seconds,
    }])
}

fn gate(view: &Value) -> &Value {
    &view["deployment"]["gates"][0]
}

fn evaluations(view: &Value) -> u64 {
    gate(view)["evaluations"].as_u64().unwrap_or(0)
}

/// The timeline events of `kind`.
fn events<'a>(view: &'a Value, kind: &str) -> Vec<&'a Value> {
    view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in {text:?}");
}

/// Whether `text` holds every part, each one of its `|`-separated alternatives.
fn names_cause(text: &str, parts: &[&str]) -> bool {
    parts.iter().all(|part| {
        part.split('|')
            .any(|alternative| text.contains(alternative))
    })
}

/// A rejected deployment's step ended 30, and nothing was imported.
#[track_caller]
fn assert_rejected_before_deploying(view: &Value) {
    assert_eq!(status(view), "rejected", "{view:#}");
    assert_eq!(view["deployment"]["pre_deployment_status"], 30, "{view:#}");
    assert_eq!(count(view, "deployment_started"), 0, "{:?}", kinds(view));
    let completed = events(view, "deployment_completed");
    assert_eq!(completed.len(), 1, "{:?}", kinds(view));
    assert_eq!(completed[0]["detail"]["status"], "rejected");
}

// ---------------------------------------------------------------------------------------

/// A gate whose plugin panics, spins or grows without end rejects the deployment, naming
/// the plugin and the cause; so does a gate whose plugin an admin disables while it waits.
/// The host keeps serving, and the same plugin still approves where it behaves.
fn a_failing_or_disabled_gate_fails_closed(backend: &Backend) {
    let host = Host::new(backend, &["panic", "loop", "grow", "fine", "disabled"]);
    let hostile = host.plugin("hostile", "approver");
    let waiting = host.plugin("pending-until", "approver");
    // The admin's limits for this plugin, which the engine's calls must honour.
    let limits = json!({ "limits": { "fuel": 200_000_000, "memory_bytes": 32 << 20 } });
    host.server
        .admin()
        .patch(&format!("/plugins/{hostile}"), limits)
        .expect(200);
    let behaving =
        |behaviour: &str| json!([{ "plugin_id": hostile, "config": { "behaviour": behaviour } }]);
    let cases = [
        ("panic", &["the plugin panicked: ", "on purpose"][..]),
        ("loop", &["ran out of fuel|wall-time limit"][..]),
        ("grow", &["memory limit", "33554432"][..]),
    ];
    let started: Vec<(&str, &[&str], String)> = cases
        .iter()
        .map(|(behaviour, causes)| {
            let stage = host.stage(&["dev"], behaviour, behaving(behaviour));
            (*behaviour, *causes, host.deploy(&stage, EXPENSES))
        })
        .collect();
    let fine = host.deploy(&host.stage(&["dev"], "fine", behaving("behave")), EXPENSES);
    for (behaviour, causes, deployment) in started {
        let view = host.wait_for_status(&deployment, "rejected", PATIENCE);
        assert_rejected_before_deploying(&view);
        let why = reason(&view);
        assert_contains(why, "gate hostile failed, so the deployment is rejected");
        assert!(
            names_cause(why, causes),
            "{behaviour}: the reason names the cause, {causes:?}: {why}"
        );
        let error = gate(&view)["error"].as_str().unwrap_or_default();
        assert!(names_cause(error, causes), "{view:#}");
        assert_eq!(gate(&view)["decision"], Value::Null, "{view:#}");
    }
    let view = host.wait_for_status(&fine, "succeeded", PATIENCE);
    assert_eq!(gate(&view)["decision"]["reason"], "well behaved");

    let stage = host.stage(
        &["dev"],
        "disabled",
        pending_until(&waiting, NEVER, 1, None),
    );
    let disabled = host.deploy(&stage, EXPENSES);
    host.wait_for_evaluations(&disabled, 1);
    let plugin = host
        .server
        .admin()
        .patch(&format!("/plugins/{waiting}"), json!({ "enabled": false }))
        .expect(200);
    assert_eq!(plugin["enabled"], false, "{plugin:#}");
    // The next recheck, a second later, finds the plugin gone.
    let view = host.wait_for_status(&disabled, "rejected", PATIENCE);
    assert_rejected_before_deploying(&view);
    let why = reason(&view);
    assert_contains(why, "gate pending-until failed");
    assert_contains(why, "disabled");
    assert_eq!(count(&view, "approval_completed"), 1, "{:?}", kinds(&view));
}

/// A pending gate that asks for a recheck is asked again every second without anyone
/// voting. Killed with SIGKILL while it waits, the server starts again on the same
/// database, the rechecks go on, and the gate approves at its time: the deployment
/// proceeds, once.
fn a_recheck_fires_and_survives_kill_9(backend: &Backend) {
    let mut host = Host::new(backend, &["qa"]);
    let plugin = host.plugin("pending-until", "approver");
    let until = now_ms() + 6_000;
    let stage = host.stage(&["dev"], "qa", pending_until(&plugin, until, 1, None));
    let deployment = host.deploy(&stage, EXPENSES);

    let view = host.wait_for_evaluations(&deployment, 3);
    assert_eq!(view["votes"], json!([]), "nobody voted: {view:#}");
    assert_eq!(view["deployment"]["pre_deployment_status"], 10);
    assert_contains(reason(&view), &format!("waiting until {until}"));
    let pending = events(&view, "gate_decision");
    assert!(
        pending.len() >= 3,
        "one decision per round: {:?}",
        kinds(&view)
    );
    assert!(
        pending
            .iter()
            .all(|e| e["detail"]["decision"]["recheck_after_seconds"] == 1),
        "{pending:#?}"
    );
    let next = view["deployment"]["next_run_at"].as_u64();
    let asked = gate(&view)["evaluated_at"].as_u64().unwrap_or(0);
    assert_eq!(next, Some(asked + 1000), "the recheck is stored: {view:#}");
    let before = evaluations(&view);

    host.server.kill();
    host.server.start_again();
    let view = host.wait_for_status(&deployment, "succeeded", RESUME_PATIENCE);
    let g = gate(&view);
    assert_eq!(g["approved"], true, "{view:#}");
    assert_eq!(g["decision"]["decision"], "approve", "{view:#}");
    assert!(evaluations(&view) > before, "asked again after the restart");
    let approved_at = g["evaluated_at"].as_u64().unwrap_or(0);
    assert!(
        approved_at >= until,
        "not before its time: {approved_at} < {until}"
    );
    assert_eq!(view["votes"], json!([]), "still nobody voted");
    assert_eq!(
        count(&view, "pre_deployment_started"),
        1,
        "{:?}",
        kinds(&view)
    );
    assert_eq!(
        count(&view, "deployment_completed"),
        1,
        "{:?}",
        kinds(&view)
    );
    assert_eq!(view["deployment"]["pre_deployment_status"], 20);
}

/// A gate that stays pending, without asking for a recheck, is rejected when its approval
/// timeout runs out: the timeout alone runs the round.
fn an_approval_timeout_rejects(backend: &Backend) {
    let host = Host::new(backend, &["qa"]);
    let plugin = host.plugin("pending-until", "approver");
    let stage = host.stage(&["dev"], "qa", pending_until(&plugin, NEVER, 0, Some(2)));
    let deployment = host.deploy(&stage, EXPENSES);

    let view = host.wait_for_evaluations(&deployment, 1);
    let started = gate(&view)["started_at"]
        .as_u64()
        .expect("the gate's start");
    assert_eq!(
        view["deployment"]["next_run_at"].as_u64(),
        Some(started + 2000),
        "the round runs again at the timeout, and no sooner: {view:#}"
    );
    let view = host.wait_for_status(&deployment, "rejected", PATIENCE);
    assert_rejected_before_deploying(&view);
    assert_contains(
        reason(&view),
        "gate pending-until did not approve within 2 s",
    );
    assert_eq!(evaluations(&view), 1, "never asked again: {view:#}");
    let finished = view["deployment"]["finished_at"].as_u64().unwrap_or(0);
    assert!(finished >= started + 2000, "{finished} < {started} + 2 s");
    let completed = events(&view, "approval_completed");
    assert_eq!(completed.len(), 1, "{:?}", kinds(&view));
    assert_eq!(completed[0]["detail"]["approved"], false);
}

/// An admin's (or an integration's) 30 rejects a deployment whatever its gate says, and
/// the override is recorded with who made it; the gate's rechecks stop.
fn a_30_rejects_and_records_who(backend: &Backend) {
    let host = Host::new(backend, &["qa"]);
    let plugin = host.plugin("pending-until", "approver");
    let stage = host.stage(&["dev"], "qa", pending_until(&plugin, NEVER, 1, None));
    let deployment = host.deploy(&stage, EXPENSES);
    let admin = host.server.admin();
    let (ops, token) = host.another_admin("release-bot");
    host.wait_for_evaluations(&deployment, 1);

    let step = format!("/deployments/{deployment}/pre-deployment-status");
    let set = json!({ "status": 30, "comment": "change window closed" });
    let answered = host.server.client(&token).put(&step, set).expect(200);
    assert_eq!(answered["status"], "rejected", "{answered:#}");
    let view = host.view(&deployment);
    assert_rejected_before_deploying(&view);
    assert_contains(reason(&view), "rejected by release-bot");
    let recorded = &view["deployment"]["pre_deployment_override"];
    assert_eq!(recorded["by"], ops.as_str(), "{recorded:#}");
    assert_eq!(recorded["status"], 30, "{recorded:#}");
    assert_eq!(recorded["comment"], "change window closed", "{recorded:#}");
    let completed = events(&view, "pre_deployment_completed");
    assert_eq!(completed.len(), 1, "{:?}", kinds(&view));
    assert_eq!(completed[0]["actor"], ops.as_str(), "{:#}", completed[0]);
    assert_eq!(completed[0]["detail"]["status"], 30);
    assert_eq!(completed[0]["detail"]["override"], true);
    let approval = events(&view, "approval_completed");
    assert_eq!(approval.len(), 1, "{:?}", kinds(&view));
    assert_eq!(approval[0]["detail"]["approved"], false);
    assert_eq!(approval[0]["detail"]["override"], true);
    let audit = admin.get("/audit?limit=200").expect(200);
    let by_ops = audit["items"].as_array().into_iter().flatten().any(|e| {
        e["action"] == "deployment.pre_deployment_status"
            && e["actor"] == ops.as_str()
            && e["target"] == deployment.as_str()
    });
    assert!(by_ops, "the audit log names who: {audit:#}");

    // The gate asked to be rechecked every second; a rejected deployment is not asked.
    let asked = evaluations(&view);
    std::thread::sleep(Duration::from_millis(1500));
    let later = host.view(&deployment);
    assert_eq!(evaluations(&later), asked, "{later:#}");
    assert_eq!(status(&later), "rejected");
    admin
        .put(&step, json!({ "status": 20, "comment": "" }))
        .problem(409);
}

/// A pipeline with two development environments takes a deployment from each: the source
/// is named for the first stage, and the version deployed is the one that source holds.
/// A later stage deploys what its previous stage did, so its source is where that came
/// from, named or not; a version is deployed only from the environment it was exported
/// from.
fn either_development_environment_is_a_source(backend: &Backend) {
    let host = Host::new(backend, &["qa", "uat", "hotfix"]);
    let qa = host.stage(&["dev", "dev2"], "qa", json!([]));
    let uat = host.next_stage(&qa, "uat");
    let unnamed = host.request(&qa, EXPENSES, json!({})).problem(409);
    assert_contains(&unnamed, "source_environment_id");

    let request = |stage: &Stage, source: Option<&str>, solution: &str, version: &str| {
        let mut extra = json!({});
        if let Some(source) = source {
            extra["source_environment_id"] = json!(host.environments[source]);
        }
        if !version.is_empty() {
            extra["version"] = json!(version);
        }
        host.request(stage, solution, extra)
    };
    let cases = [
        (&qa, Some("dev"), EXPENSES, "", "dev", "1.0.0.0"),
        (&qa, Some("dev2"), EXPENSES, "", "dev2", "1.2.0.0"),
        (&qa, Some("dev2"), "contoso_payroll", "", "dev2", "3.0.0.0"),
        (&uat, Some("dev"), EXPENSES, "1.0.0.0", "dev", "1.0.0.0"),
        (&uat, None, EXPENSES, "", "dev2", "1.2.0.0"),
        (&uat, None, "contoso_payroll", "", "dev2", "3.0.0.0"),
    ];
    for (stage, named, solution, asked, source, version) in cases {
        let deployment = id(&request(stage, named, solution, asked).expect(201));
        let view = host.wait_for_status(&deployment, "succeeded", PATIENCE);
        let d = &view["deployment"];
        let from = host.environments[source].as_str();
        assert_eq!(
            d["source_environment_id"], from,
            "{solution} {asked}: {d:#}"
        );
        assert_eq!(d["version"], version, "{d:#}");
    }
    let missing = request(&qa, Some("dev"), "contoso_payroll", "").problem(409);
    assert_contains(&missing, "not in development environment dev");
    let elsewhere = request(&uat, Some("dev"), "contoso_payroll", "").problem(409);
    assert_contains(&elsewhere, "exported from development environment dev2");
    let hotfix = host.stage(&["dev2"], "hotfix", json!([]));
    let stamped = request(&hotfix, None, EXPENSES, "1.0.0.0").problem(409);
    assert_contains(&stamped, "exported from development environment dev");
}

on_each_backend!(
    a_failing_or_disabled_gate_fails_closed,
    a_recheck_fires_and_survives_kill_9,
    an_approval_timeout_rejects,
    a_30_rejects_and_records_who,
    either_development_environment_is_a_source,
);
