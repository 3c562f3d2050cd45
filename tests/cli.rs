//! End to end: the `gatehouse` command line against the real `gatehouse serve`.
//!
//! An admin sets the server up through the REST API (users, a group, `memory://`
//! environments) and the CLI (login, plugin upload). A maker then deploys with the CLI:
//! through a stage without gates with `deploy --wait`, and to a Prod stage guarded by the
//! two-person rule, which two approvers approve with `gatehouse approve`. A veto makes a
//! waiting `deploy --wait` exit 1, Ctrl-C stops a wait without stopping the deployment, and
//! an unreachable server is a clear exit 2. Each person's login lives in their own file,
//! named by `GATEHOUSE_CONFIG`. On `gatehouse demo`, the README's walk-through checks that
//! the CLI says what a deployment lacks in its own flags and names people by name.

mod support;

#[path = "support/server.rs"]
mod server;

#[path = "support/demo.rs"]
mod demo;

#[path = "cli/backups.rs"]
mod backups;
#[path = "cli/demo_walk_through.rs"]
mod demo_walk_through;
#[path = "cli/people.rs"]
mod people;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use backups::solutions_and_backups;
use people::Person;
use server::{Api, Backend, Server};

const GROUP: &str = "release-managers";
/// The solutions in the development environment. Only `contoso_` passes the policy.
const SEEDS: &[&str] = &[
    "dev:contoso_expenses@1.0.0.0",
    "dev:contoso_travel@2.1.0.0",
    "dev:fabrikam_tools@1.0.0.0",
];
/// How long one CLI run, or a deployment, may take on a busy machine.
const PATIENCE: Duration = Duration::from_secs(90);

/// A server set up for the scenario, and the people who use it.
struct World {
    server: Server,
    _home: TempDir,
    admin: Person,
    maker: Person,
    alice: Person,
    bob: Person,
}

impl World {
    fn new() -> World {
        let server = Server::start(&Backend::Sqlite, SEEDS);
        let home = tempfile::tempdir().expect("a temp dir for the logins");
        let api = server.admin();
        let admin = Person {
            id: id(&api.get("/me").expect(200)),
            token: server.admin_token.clone(),
            config: home.path().join("admin").join("cli.json"),
        };
        let maker = person(&api, home.path(), "maker");
        let alice = person(&api, home.path(), "alice");
        let bob = person(&api, home.path(), "bob");
        api.post(
            "/groups",
            json!({ "name": GROUP, "members": [alice.id, bob.id] }),
        )
        .expect(201);
        let access = json!([format!("user:{}", maker.id), format!("group:{GROUP}")]);
        for (name, kind) in [("dev", "development"), ("qa", "target"), ("prod", "target")] {
            let env = id(&api
                .post(
                    "/environments",
                    json!({
                        "name": name, "kind": kind, "environment_id": name,
                        "url": format!("memory://{name}"), "access": access,
                    }),
                )
                .expect(201));
            let validated = api
                .post(&format!("/environments/{env}/validate"), json!({}))
                .expect(200);
            assert_eq!(validated["validation_status"], "success", "{validated:#}");
        }
        World {
            server,
            _home: home,
            admin,
            maker,
            alice,
            bob,
        }
    }

    fn api(&self) -> Api<'_> {
        self.server.admin()
    }

    /// The pipeline Expenses: QA (no pre-deployment step), then Prod behind the two-person
    /// rule, shared with the maker and the approvers; the solution policy validates.
    fn pipeline(&self, two_person_rule: &str, solution_policy: &str) {
        let api = self.api();
        let envs = api.get("/environments").expect(200);
        let env = |name: &str| {
            envs["items"]
                .as_array()
                .and_then(|items| items.iter().find(|e| e["name"] == name))
                .map(id)
                .unwrap_or_else(|| panic!("no environment {name}: {envs:#}"))
        };
        let pipeline = id(&api
            .post(
                "/pipelines",
                json!({
                    "name": "Expenses",
                    "development_environment_ids": [env("dev")],
                    "shares": [format!("user:{}", self.maker.id), format!("group:{GROUP}")],
                }),
            )
            .expect(201));
        let stages = format!("/pipelines/{pipeline}/stages");
        let qa = id(&api
            .post(
                &stages,
                json!({ "name": "QA", "target_environment_id": env("qa") }),
            )
            .expect(201));
        api.post(
            &stages,
            json!({
                "name": "Prod",
                "previous_stage_id": qa,
                "target_environment_id": env("prod"),
                "pre_deployment_step_required": true,
                "gates": [{ "plugin_id": two_person_rule, "config": { "group": GROUP, "required": "2" } }],
            }),
        )
        .expect(201);
        api.put(
            &format!("/pipelines/{pipeline}/validators"),
            json!({ "validators": [{
                "plugin_id": solution_policy,
                "config": { "publisher-prefix": "contoso" },
            }] }),
        )
        .expect(200);
    }

    /// Waits until `approver` may vote on a deployment of `solution`, and returns its id.
    fn approvable(&self, approver: &Person, solution: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let approvals = approver.json("approvals");
            let found = approvals["items"]
                .as_array()
                .and_then(|items| items.iter().find(|d| d["solution_name"] == solution))
                .map(id);
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no deployment of {solution} became approvable: {approvals:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn person(api: &Api, home: &Path, name: &str) -> Person {
    let id = id(&api.post("/users", json!({ "name": name })).expect(201));
    let issued = api
        .post(&format!("/users/{id}/tokens"), json!({ "label": "cli" }))
        .expect(201);
    Person {
        id,
        token: issued["token"].as_str().expect("a token").to_owned(),
        config: home.join(name).join("cli.json"),
    }
}

fn id(record: &Value) -> String {
    record["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {record:#}"))
        .to_owned()
}

fn plugin_path(name: &str) -> PathBuf {
    // Fails with a clear message when the plugins were not built.
    support::plugin_bytes(name);
    std::env::var_os("GATEHOUSE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
        .join(format!("{name}.wasm"))
}

/// The position of the first line that shows `kind` as its event, for order checks.
#[track_caller]
fn position(text: &str, kind: &str) -> usize {
    text.lines()
        .position(|l| l.split_whitespace().nth(1) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} line in:\n{text}"))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("the login file")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn makers_deploy_and_approvers_vote_from_the_command_line() {
    let w = World::new();
    let base = w.server.base.clone();

    // A wrong token is refused, and nothing is saved.
    let refused = w
        .maker
        .run(&format!("login --server {base} --token {}", "0".repeat(64)));
    assert!(refused.expect(1).stderr.contains("401"));
    assert!(!w.maker.config.exists(), "a refused login is not saved");

    // The admin logs in with the token on stdin, and uploads the plugins.
    let args = ["login", "--server", &base, "--token", "-"];
    let stdin = format!("{}\n", w.admin.token);
    let login = w
        .admin
        .start_with(w.admin.command(&args), &args, Some(&stdin));
    let login = login.finish().expect(0);
    assert!(
        login.stdout.contains(&format!("Logged in to {base}")),
        "{}",
        login.stdout
    );
    #[cfg(unix)]
    assert_eq!(mode(&w.admin.config), 0o600, "the login file is private");
    let saved = std::fs::read_to_string(&w.admin.config).expect("saved");
    let saved: Value = serde_json::from_str(&saved).expect("JSON");
    assert_eq!(saved, json!({ "server": base, "token": w.admin.token }));

    let gate = plugin_path("two-person-rule");
    let gate = gate.to_str().expect("a UTF-8 path");
    let uploaded = w
        .admin
        .json(&format!("plugins upload {gate} --name two-person-rule"));
    assert_eq!(uploaded["world"], "approver", "{uploaded:#}");
    let policy = plugin_path("solution-policy");
    let policy = policy.to_str().expect("a UTF-8 path");
    let policy = w
        .admin
        .json(&format!("plugins upload {policy} --name solution-policy"));
    let again = w.admin.run(&format!("plugins upload {gate}")).expect(1);
    assert!(again.stderr.contains("already loaded"), "{}", again.stderr);
    let listed = w.admin.run("plugins list").expect(0).stdout;
    assert!(
        listed.contains("two-person-rule") && listed.contains("approver"),
        "{listed}"
    );
    w.pipeline(&id(&uploaded), &id(&policy));

    // The others log in with GATEHOUSE_TOKEN.
    for who in [&w.maker, &w.alice, &w.bob] {
        let mut command = who.command(&["login", "--server", &base]);
        command.env("GATEHOUSE_TOKEN", &who.token);
        who.start_with(command, &["login"], None).finish().expect(0);
    }
    assert_eq!(w.maker.json("me")["name"], "maker");
    let pipelines = w.maker.run("pipelines list").expect(0).stdout;
    assert!(
        pipelines.contains("Expenses") && pipelines.contains("QA → Prod"),
        "{pipelines}"
    );
    // Alone, as the README lists them, the record commands list.
    assert_eq!(w.maker.run("pipelines").expect(0).stdout, pipelines);
    let environments = w.maker.run("environments").expect(0).stdout;
    assert_eq!(
        w.maker.run("environments list").expect(0).stdout,
        environments
    );
    assert!(
        environments.contains("prod") && environments.contains("memory://qa"),
        "{environments}"
    );
    let envs = w.maker.json("environments list");
    assert_eq!(envs["items"].as_array().map(Vec::len), Some(3), "{envs:#}");
    assert_eq!(
        w.maker.json("environments get prod")["environment_id"],
        "prod"
    );

    // A stage without gates: deploy --wait prints the steps as they happen, and exits 0.
    let mut args: Vec<&str> = "deploy --pipeline Expenses --stage QA --solution contoso_expenses \
                               --source dev --connection sql=conn-1 --wait"
        .split_whitespace()
        .collect();
    args.extend(["--set", "Greeting=hello world", "--notes", "from the cli"]);
    let qa = w.maker.run_args(&args);
    let out = qa.expect(0).stdout;
    assert!(
        position(&out, "requested") < position(&out, "deployment_started")
            && position(&out, "deployment_started") < position(&out, "deployment_completed"),
        "the steps, in order:\n{out}"
    );
    let qa_id = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Deployment ")?
                .strip_suffix(" is in the target.")
        })
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no success line in:\n{out}"))
        .to_owned();
    let d = &w.maker.json(&format!("deployments get {qa_id}"))["deployment"];
    assert_eq!(
        (&d["status"], &d["notes"]),
        (&json!("succeeded"), &json!("from the cli"))
    );
    assert_eq!(
        d["settings"],
        json!({
            "environment_variables": [{ "name": "Greeting", "value": "hello world", "secret": false }],
            "connection_references": { "sql": "conn-1" },
        })
    );

    // Prod waits for two approvers: deploy, approvals, two votes, then wait exits 0.
    let prod = id(&w
        .maker
        .json("deploy --pipeline Expenses --stage Prod --solution contoso_expenses"));
    assert_eq!(w.approvable(&w.alice, "contoso_expenses"), prod);
    let shown = w.alice.run("approvals").expect(0).stdout;
    assert!(
        shown.contains(&prod) && shown.contains("Expenses/Prod"),
        "{shown}"
    );
    let own = w.maker.run(&format!("approve {prod}")).expect(1);
    assert!(
        own.stderr.contains("403"),
        "the requester may not vote: {}",
        own.stderr
    );
    // Each vote prints the state after the gate weighed it: one approval of two, then
    // approved, on its way or already installed.
    let voted = w
        .alice
        .run_args(&["approve", &prod, "--comment", "ship it"])
        .expect(0)
        .stdout;
    assert!(
        voted.starts_with(&format!(
            "Approved deployment {prod}; it is pending_approval"
        )) && voted.contains("1 of 2 approvals"),
        "{voted}"
    );
    let last = w
        .bob
        .run(&format!("approve {prod} -m agreed"))
        .expect(0)
        .stdout;
    assert!(
        last.starts_with(&format!(
            "Approved deployment {prod}; every gate approved, and it "
        )) && (last.contains("it is deploying contoso_expenses 1.0.0.0 to prod")
            || last.contains("it succeeded: contoso_expenses 1.0.0.0 is installed in prod")),
        "{last}"
    );
    assert!(!last.contains("of 2 approvals"), "{last}");
    let waited = w
        .maker
        .run(&format!("deployments wait {prod}"))
        .expect(0)
        .stdout;
    for kind in [
        "pre_deployment_started",
        "gate_decision",
        "pre_deployment_completed",
    ] {
        position(&waited, kind);
    }
    assert!(
        position(&waited, "vote") < position(&waited, "deployment_completed"),
        "{waited}"
    );
    assert!(
        waited.contains("approve by") && waited.contains("ship it"),
        "{waited}"
    );
    let text = w
        .maker
        .run(&format!("deployments get {prod}"))
        .expect(0)
        .stdout;
    assert!(
        text.contains("votes") && text.contains("timeline"),
        "{text}"
    );
    // People by name, never by id: the requester, the voters, the timeline's actors.
    for wanted in [
        "by maker",
        "approve by alice: ship it",
        "approve by bob: agreed",
    ] {
        assert!(text.contains(wanted), "{wanted:?} in:\n{text}");
    }
    for person in [&w.maker, &w.alice, &w.bob] {
        assert!(!text.contains(&person.id), "{} in:\n{text}", person.id);
    }
    assert!(!text.contains('{'), "sentences, not JSON:\n{text}");

    // A reader that stops after the first line is no error, however the race goes.
    for _ in 0..12 {
        let first = w.maker.through_head(&["deployments", "get", &prod]);
        assert_eq!(first.code, Some(0), "{first:?}");
        let line = first.stdout.trim();
        assert!(
            line.starts_with("deployment ") && line.ends_with(prod.as_str()),
            "{line}"
        );
        assert_eq!(first.stderr, "", "nothing on stderr");
    }

    // Where it is installed, by whom and when; and its backup, downloaded.
    solutions_and_backups(&w, &prod);

    // A veto while deploy --wait follows: it shows what it waits for, then exits 1.
    let travel = "deploy --pipeline Expenses --solution contoso_travel";
    w.maker
        .run(&format!("{travel} --stage QA --wait"))
        .expect(0);
    let mut following = w.maker.start(&format!("{travel} --stage Prod --wait"));
    following.wait_for_stdout("waiting");
    let vetoed = w.approvable(&w.bob, "contoso_travel");
    w.bob
        .run_args(&["reject", &vetoed, "--comment", "not this week"])
        .expect(0);
    let rejected = following.finish().expect(1);
    let out = &rejected.stdout;
    assert!(position(out, "waiting") < position(out, "vote"), "{out}");
    assert!(out.contains("not this week"), "{out}");
    let said = format!("deployment {vetoed} rejected");
    assert!(rejected.stderr.contains(&said), "{}", rejected.stderr);

    // Ctrl-C stops the waiting, not the deployment.
    let pending = id(&w.maker.json(&format!("{travel} --stage Prod")));
    let mut waiting = w.maker.start(&format!("deployments wait {pending}"));
    waiting.wait_for_stdout("waiting");
    let pid = waiting.child.id().to_string();
    let signal = Command::new("kill").args(["-INT", &pid]).status();
    assert!(signal.expect("kill runs").success());
    let stopped = waiting.finish().expect(130);
    let hint = format!("gatehouse deployments get {pending}");
    assert!(stopped.stderr.contains(&hint), "{}", stopped.stderr);
    let still = w.maker.json(&format!("deployments get {pending}"));
    assert_eq!(still["deployment"]["status"], "pending_approval");
    let canceled = w
        .maker
        .run(&format!("deployments cancel {pending}"))
        .expect(0);
    assert!(canceled.stdout.contains("canceled"), "{}", canceled.stdout);

    // A validator's error finding fails the deployment: --wait exits 1 with the finding.
    // A stage whose previous stage never succeeded with it refuses it: exit 1 with the
    // problem's detail. A name that matches nothing is a usage error: exit 2.
    let fabrikam = "deploy --pipeline Expenses --solution fabrikam_tools";
    let failed = w
        .maker
        .run(&format!("{fabrikam} --stage QA --wait"))
        .expect(1);
    assert!(
        failed.stdout.contains("failed") && failed.stdout.contains("publisher-prefix"),
        "the reason and the findings:\n{}\n{}",
        failed.stdout,
        failed.stderr
    );
    assert!(failed.stderr.contains("failed"), "{}", failed.stderr);
    let refused = w.maker.run(&format!("{fabrikam} --stage Prod")).expect(1);
    let problem = &refused.stderr;
    assert!(
        problem.starts_with("error: ") && problem.contains("409"),
        "{problem}"
    );
    let unknown = w
        .maker
        .run("deploy --pipeline Payroll --stage QA --solution x")
        .expect(2);
    let problem = &unknown.stderr;
    assert!(
        problem.contains("\"Payroll\"") && problem.contains("Expenses"),
        "{problem}"
    );

    // The same idempotency key makes one deployment.
    let keyed = "deploy --pipeline Expenses --stage QA --solution contoso_expenses \
                 --idempotency-key cli-test-1";
    let first = id(&w.maker.json(keyed));
    let again = w.maker.run(keyed).expect(0).stdout;
    assert!(
        again.contains(&first) && again.contains("already requested"),
        "{again}"
    );

    // Lists: filtered, limited, by name, in JSON and text.
    let succeeded = w
        .maker
        .json("deployments list --status succeeded --requester me");
    let items = succeeded["items"].as_array().expect("items");
    assert!(items.len() >= 3, "{succeeded:#}");
    assert!(
        items.iter().all(|d| d["status"] == "succeeded"),
        "{succeeded:#}"
    );
    let one = w.maker.json("deployments list --limit 1");
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
    assert!(one["next"].is_string(), "more exist: {one:#}");
    let in_prod = w
        .maker
        .run("deployments list --pipeline Expenses --stage Prod");
    let in_prod = in_prod.expect(0).stdout;
    assert!(
        in_prod.contains(&prod) && !in_prod.contains(&qa_id),
        "{in_prod}"
    );

    // Logging out forgets the token.
    w.maker.run("logout").expect(0);
    assert!(!w.maker.config.exists());
    let out = w.maker.run("me").expect(2);
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);
}

#[test]
fn an_unreachable_server_exits_2_and_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let home = tempfile::tempdir().expect("a temp dir");
    let nobody = Person {
        id: String::new(),
        token: String::new(),
        config: home.path().join("cli.json"),
    };
    for command in ["me", "login", "deployments list --output json"] {
        let run = nobody.run(&format!("{command} --server {server} --token abc"));
        let run = run.expect(2);
        assert!(
            run.stderr.contains(&format!(
                "cannot reach {server}: connection refused; is `gatehouse serve` running?"
            )),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "nothing on stdout");
    }
    assert!(!nobody.config.exists(), "nothing was saved");
}
