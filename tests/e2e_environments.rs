//! End to end over real environments: the `gatehouse serve` binary, and three
//! `gatehouse environment serve` processes on loopback ports (Dev, a development
//! environment; QA and Prod, managed targets), each with its own data dir and token.
//!
//! A maker's solution directory is pushed to Dev with `gatehouse solution push`; the host
//! exports it once, keeps both packages as the artifact, and imports the managed one into
//! QA and then Prod. The targets' own checks (variables, connections, dependencies,
//! version order) refuse what cannot be installed; an unreachable target fails the
//! deployment after its retries, and a retry succeeds once it is back; a host killed with
//! SIGKILL in the middle of an import resumes it, and the target installs it once.
//!
//! Every scenario runs on SQLite, and again on a fresh PostgreSQL database when
//! `GATEHOUSE_TEST_DATABASE_URL` names a server. Each scenario starts its own four
//! processes; the scenarios of one test use separate pipelines and solutions on them.

mod support;

#[macro_use]
#[path = "support/server.rs"]
mod server;
#[path = "support/views.rs"]
mod views;

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use views::{count, kinds, reason, status};

use server::{Api, Backend, Reply, Server, random_hex, reply};

/// How long a deployment may take to reach the state a test waits for. Generous: the
/// machine may be busy compiling, or running the other scenarios.
const PATIENCE: Duration = Duration::from_secs(45);
/// After a kill: on PostgreSQL the dead host's lease on the deploying deployment (30 s)
/// must lapse before the new process takes it over.
const RESUME_PATIENCE: Duration = Duration::from_secs(90);
/// How long an environment may take to answer after it starts.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// The engine's pauses between calls to an unreachable environment: 1 + 2 + 4 + 8 s.
const RETRY_PAUSES: Duration = Duration::from_secs(15);

/// The group whose members approve Prod deployments.
const GROUP: &str = "release-managers";
/// The connection registered in QA and Prod, and the reference that binds to it.
const CONNECTION: &str = "shared-sql";
const REFERENCE: &str = "contoso_sql";
/// The solutions' environment variable without a default.
const VARIABLE: &str = "contoso_ApiUrl";

// ---------------------------------------------------------------------------------------
// An environment process.

/// A `gatehouse environment serve` process. Killed (SIGKILL) when dropped.
struct Environment {
    child: Option<Child>,
    name: &'static str,
    kind: &'static str,
    environment_id: String,
    token: String,
    port: u16,
    import_delay_ms: u64,
    data_dir: TempDir,
    log: PathBuf,
    /// Where the current process's output starts in the log.
    log_offset: u64,
    /// Whether it was ready once: then it keeps its port.
    started_once: bool,
    agent: ureq::Agent,
}

impl Environment {
    /// Starts the process; [`Environment::wait_until_ready`] waits for it.
    fn spawn(name: &'static str, kind: &'static str, import_delay_ms: u64) -> Environment {
        let data_dir = tempfile::tempdir().expect("a temporary data dir");
        let log = data_dir.path().join("environment.log");
        let mut env = Environment {
            child: None,
            name,
            kind,
            environment_id: format!("{}-{}", name.to_lowercase(), random_hex(4)),
            token: random_hex(24),
            port: server::free_port(),
            import_delay_ms,
            data_dir,
            log,
            log_offset: 0,
            started_once: false,
            agent: agent(),
        };
        env.start_process();
        env
    }

    fn start_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the environment log opens");
        self.log_offset = log.metadata().map_or(0, |m| m.len());
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(["environment", "serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .args(["--name", self.name, "--kind", self.kind])
            .args(["--environment-id", &self.environment_id])
            .arg("--import-delay-ms")
            .arg(self.import_delay_ms.to_string());
        if self.kind == "target" {
            command.arg("--managed");
        }
        command
            .env("GATEHOUSE_ENV_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .env_remove("GATEHOUSE_ENV_LISTEN")
            .env_remove("GATEHOUSE_ENV_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log handle clones"))
            .stderr(log);
        self.child = Some(command.spawn().expect("gatehouse environment serve starts"));
    }

    /// Waits until the process answers. When its port was taken in the meantime, it
    /// starts again: on another port the first time, else on the same one, once freed.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                if self.port_was_taken() && Instant::now() < deadline {
                    if self.started_once {
                        std::thread::sleep(Duration::from_millis(200));
                    } else {
                        self.port = server::free_port();
                    }
                    self.start_process();
                    continue;
                }
                panic!(
                    "environment {} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let answer = self
                .agent
                .get(format!("{}/env/v1/info", self.url()))
                .header("Authorization", format!("Bearer {}", self.token))
                .call();
            if answer.is_ok_and(|r| r.status() == 200) {
                self.started_once = true;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "environment {} was not ready within {READY_WITHIN:?}:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the last process stopped because another socket had its port.
    fn port_was_taken(&self) -> bool {
        let Ok(mut file) = std::fs::File::open(&self.log) else {
            return false;
        };
        let _ = file.seek(SeekFrom::Start(self.log_offset));
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        text.contains("Address already in use")
    }

    /// Where the host reaches it.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process with SIGKILL: to the host, the environment is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed environment again on the same port and data dir.
    fn start_again(&mut self) {
        assert!(self.child.is_none(), "kill the environment first");
        self.start_process();
        self.wait_until_ready();
    }

    fn get(&self, path: &str) -> Reply {
        let response = self
            .agent
            .get(format!("{}{path}", self.url()))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        reply(format!("GET {} {path}", self.name), response)
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        let response = self
            .agent
            .post(format!("{}{path}", self.url()))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(&body);
        reply(format!("POST {} {path}", self.name), response)
    }

    /// What the environment holds of one solution, or `None`.
    fn solution(&self, name: &str) -> Option<Value> {
        let list = self.get("/env/v1/solutions").expect(200);
        let found: Vec<Value> = items(&list)
            .into_iter()
            .filter(|s| s["unique_name"] == name)
            .collect();
        assert!(found.len() <= 1, "one entry per solution: {list:#}");
        found.into_iter().next()
    }

    fn log_tail(&self) -> String {
        tail(&self.log, &format!("environment {}", self.name))
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn tail(path: &Path, what: &str) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return format!("(no log of {what})");
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(4000)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    format!("--- log of {what} ({}) ---\n{text}", path.display())
}

// ---------------------------------------------------------------------------------------
// The command line.

/// What a `gatehouse` command did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    /// Stdout as JSON, after checking that the command succeeded.
    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed:\n{}\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON ({e}):\n{}\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// Runs the `gatehouse` binary with `envs`, killing it if it runs past `within`.
fn gatehouse(args: &[&str], envs: &[(&str, &str)], within: Duration) -> Run {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(args)
        .env_remove("GATEHOUSE_ENV_TOKEN")
        .env_remove("GATEHOUSE_SERVER")
        .env_remove("GATEHOUSE_TOKEN")
        .env("GATEHOUSE_CONFIG", dir.path().join("cli.json"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("a stdout file"))
        .stderr(std::fs::File::create(&err).expect("a stderr file"));
    for (key, value) in envs {
        command.env(key, value);
    }
    let what = format!("gatehouse {}", args.join(" "));
    let mut child = command.spawn().expect("gatehouse starts");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {within:?}:\n{}\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        what,
    }
}

// ---------------------------------------------------------------------------------------
// The world: the host, three environments, the plugins, an approver.

struct Person {
    id: String,
    token: String,
}

/// A pipeline Dev → QA (no step), optionally → Prod (two-person rule, one approval).
struct Pipeline {
    id: String,
    name: String,
    qa: String,
    prod: Option<String>,
}

struct World {
    server: Server,
    dev: Environment,
    qa: Environment,
    prod: Environment,
    /// The host's records of the three environments.
    dev_id: String,
    qa_id: String,
    prod_id: String,
    ravi: Person,
    two_person_rule: String,
    solution_policy: String,
    /// Solution directories and CLI scratch space.
    work: TempDir,
}

impl World {
    /// Starts the host and the environments (QA's imports wait `qa_import_delay_ms`),
    /// registers and validates the environments, registers the connections, uploads the
    /// plugins and makes an approver, all through the API.
    fn new(backend: &Backend, qa_import_delay_ms: u64) -> World {
        let mut dev = Environment::spawn("Dev", "development", 0);
        let mut qa = Environment::spawn("QA", "target", qa_import_delay_ms);
        let mut prod = Environment::spawn("Prod", "target", 0);
        let server = Server::start(backend, &[]);
        for env in [&mut dev, &mut qa, &mut prod] {
            env.wait_until_ready();
        }
        let admin = server.admin();
        let admin_id = id(&admin.get("/me").expect(200));
        let ravi = create_user(&admin, "ravi");
        admin
            .post("/groups", json!({ "name": GROUP, "members": [ravi.id] }))
            .expect(201);
        let access = [format!("user:{admin_id}"), format!("user:{}", ravi.id)];
        let dev_id = register(&admin, &dev, &access);
        let qa_id = register(&admin, &qa, &access);
        let prod_id = register(&admin, &prod, &access);
        for target in [&qa, &prod] {
            let connection = target
                .post(
                    "/env/v1/connections",
                    json!({ "name": CONNECTION, "connector": "sql" }),
                )
                .expect(201);
            assert_eq!(connection["name"], CONNECTION, "{connection:#}");
        }
        let two_person_rule = upload_plugin(&admin, "two-person-rule", "approver");
        let solution_policy = upload_plugin(&admin, "solution-policy", "validator");
        World {
            server,
            dev,
            qa,
            prod,
            dev_id,
            qa_id,
            prod_id,
            ravi,
            two_person_rule,
            solution_policy,
            work: tempfile::tempdir().expect("a work dir"),
        }
    }

    fn admin(&self) -> Api<'_> {
        self.server.admin()
    }

    /// A pipeline from Dev to QA and, with `with_prod`, on to Prod; shared with the
    /// approvers' group; solution-policy validates every deployment.
    fn pipeline(&self, name: &str, with_prod: bool) -> Pipeline {
        let admin = self.admin();
        let id = id(&admin
            .post(
                "/pipelines",
                json!({
                    "name": name,
                    "development_environment_ids": [self.dev_id],
                    "shares": [format!("group:{GROUP}")],
                }),
            )
            .expect(201));
        let stages = format!("/pipelines/{id}/stages");
        let qa = self::id(
            &admin
                .post(
                    &stages,
                    json!({ "name": "QA", "target_environment_id": self.qa_id }),
                )
                .expect(201),
        );
        let prod = with_prod.then(|| {
            self::id(
                &admin
                    .post(
                        &stages,
                        json!({
                            "name": "Prod",
                            "previous_stage_id": qa,
                            "target_environment_id": self.prod_id,
                            "pre_deployment_step_required": true,
                            "gates": [{
                                "plugin_id": self.two_person_rule,
                                "config": { "group": GROUP, "required": "1" },
                            }],
                        }),
                    )
                    .expect(201),
            )
        });
        admin
            .put(
                &format!("/pipelines/{id}/validators"),
                json!({ "validators": [{
                    "plugin_id": self.solution_policy,
                    "config": { "publisher-prefix": "contoso", "production-stages": "Prod" },
                }] }),
            )
            .expect(200);
        Pipeline {
            id,
            name: name.to_owned(),
            qa,
            prod,
        }
    }

    /// Writes a solution directory: two components, the variable [`VARIABLE`] without a
    /// default (and one with), the connection reference [`REFERENCE`], and `dependencies`
    /// as (name, min_version).
    fn solution_dir(&self, name: &str, version: &str, dependencies: &[(&str, &str)]) -> PathBuf {
        let dir = self.work.path().join(format!("{name}-{version}"));
        std::fs::create_dir_all(dir.join("components/flows")).expect("the dir is created");
        let manifest = json!({
            "unique_name": name,
            "display_name": format!("Contoso {name}"),
            "version": version,
            "publisher": { "unique_name": "contoso", "prefix": "contoso" },
            "dependencies": dependencies
                .iter()
                .map(|(n, v)| json!({ "unique_name": n, "min_version": v }))
                .collect::<Vec<_>>(),
            "environment_variables": [
                { "schema_name": VARIABLE, "type": "string" },
                { "schema_name": "contoso_Retries", "type": "number", "default_value": "3" },
            ],
            "connection_references": [{ "logical_name": REFERENCE, "connector": "sql" }],
            "components": [
                { "kind": "table", "name": "contoso_order", "path": "components/order.json" },
                { "kind": "flow", "name": "Order approval", "path": "components/flows/approval.json" },
            ],
        });
        let write = |path: &str, text: String| {
            std::fs::write(dir.join(path), text).expect("a solution file is written");
        };
        write("solution.json", format!("{manifest:#}"));
        write(
            "components/order.json",
            format!(
                "{{\"table\": \"contoso_order\", \"solution\": \"{name}\", \"version\": \"{version}\"}}"
            ),
        );
        write(
            "components/flows/approval.json",
            "{\"trigger\": \"order created\", \"steps\": [\"approve\"]}".into(),
        );
        dir
    }

    /// Writes a solution directory and pushes it to Dev with `gatehouse solution push`.
    fn push(&self, name: &str, version: &str, dependencies: &[(&str, &str)]) -> Value {
        let dir = self.solution_dir(name, version, dependencies);
        let dir = dir.to_str().expect("a UTF-8 path");
        let url = self.dev.url();
        let run = gatehouse(
            &["solution", "push", dir, "--env", &url, "--output", "json"],
            &[("GATEHOUSE_ENV_TOKEN", &self.dev.token)],
            PATIENCE,
        );
        let pushed = run.json();
        assert_eq!(pushed["unique_name"], name, "{pushed:#}");
        assert_eq!(pushed["version"], version, "{pushed:#}");
        assert_eq!(pushed["managed"], false, "{pushed:#}");
        pushed
    }

    /// `POST /deployments` as the admin.
    fn request(&self, pipeline: &Pipeline, stage: &str, solution: &str, extra: Value) -> Reply {
        let mut body = json!({
            "pipeline_id": pipeline.id,
            "stage_id": stage,
            "solution_name": solution,
            "notes": "end-to-end test over real environments",
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.admin().post("/deployments", body)
    }

    /// Requests a deployment with [`good_settings`] and returns its id.
    fn deploy(&self, pipeline: &Pipeline, stage: &str, solution: &str, extra: Value) -> String {
        let mut body = json!({ "settings": good_settings() });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        id(&self.request(pipeline, stage, solution, body).expect(201))
    }

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
        self.wait_until(deployment, wanted, PATIENCE, |v| status(v) == wanted)
    }

    /// Waits until the deployment is in ravi's `GET /approvals`; returns its view as it
    /// is from then on.
    fn wait_until_approvable(&self, deployment: &str) -> Value {
        self.wait_until(deployment, "ravi's approvals", PATIENCE, |_| {
            let approvals = self.server.client(&self.ravi.token).get("/approvals");
            ids(&approvals.expect(200)).contains(&deployment.to_owned())
        });
        // The view `wait_until` read came before the approvals: read it again.
        self.view(deployment)
    }

    /// Downloads one package of an artifact, as the admin.
    fn download(&self, solution: &str, version: &str, kind: &str) -> Vec<u8> {
        let url = format!(
            "{}/api/v1/artifacts/{solution}/{version}/{kind}",
            self.server.base
        );
        let mut response = agent()
            .get(&url)
            .header(
                "Authorization",
                format!("Bearer {}", self.server.admin_token),
            )
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: no answer: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(content_type, "application/zip", "GET {url}");
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("the package downloads")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.server.log_tail());
        }
    }
}

/// The settings every deployment of the sample solutions needs.
fn good_settings() -> Value {
    json!({
        "environment_variables": [
            { "name": VARIABLE, "value": "https://api.contoso.test", "secret": false },
        ],
        "connection_references": { REFERENCE: CONNECTION },
    })
}

fn create_user(admin: &Api, name: &str) -> Person {
    let user = admin.post("/users", json!({ "name": name })).expect(201);
    let id = id(&user);
    let issued = admin
        .post(&format!("/users/{id}/tokens"), json!({ "label": "e2e" }))
        .expect(201);
    let token = issued["token"].as_str().expect("a token").to_owned();
    Person { id, token }
}

/// Registers an environment with its URL and token, validates it, and checks that the
/// environment now names a host as its own.
fn register(admin: &Api, env: &Environment, access: &[String]) -> String {
    let record = admin
        .post(
            "/environments",
            json!({
                "name": env.name,
                "kind": env.kind,
                "environment_id": env.environment_id,
                "url": env.url(),
                "credential": env.token,
                "access": access,
            }),
        )
        .expect(201);
    assert_eq!(record["has_credential"], true, "{record:#}");
    assert_eq!(record["validation_status"], "pending", "{record:#}");
    assert!(
        !record.to_string().contains(&env.token),
        "the credential is never shown: {record:#}"
    );
    let id = id(&record);
    assert_eq!(
        env.get("/env/v1/info").expect(200)["linked_host"],
        Value::Null,
        "{} is not linked before it is validated",
        env.name
    );
    let validated = admin
        .post(&format!("/environments/{id}/validate"), json!({}))
        .expect(200);
    assert_eq!(validated["validation_status"], "success", "{validated:#}");
    let message = validated["validation_message"].as_str().unwrap_or_default();
    assert!(message.contains("linked"), "{validated:#}");
    assert!(
        message.contains("with a link secret"),
        "the reference server issues a link secret: {validated:#}"
    );
    let info = env.get("/env/v1/info").expect(200);
    assert!(
        info["linked_host"].as_str().is_some_and(|h| !h.is_empty()),
        "validating links {} to the host: {info:#}",
        env.name
    );
    assert_eq!(info["environment_id"], env.environment_id.as_str());
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

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().cloned().unwrap_or_default()
}

fn ids(page: &Value) -> Vec<String> {
    items(page).iter().map(id).collect()
}

/// The timeline events of one kind.
fn events<'a>(view: &'a Value, kind: &str) -> Vec<&'a Value> {
    view["timeline"]
        .as_array()
        .map(|events| events.iter().filter(|e| e["kind"] == kind).collect())
        .unwrap_or_default()
}

/// The codes of the findings the target reported while validating.
fn finding_codes(view: &Value) -> Vec<String> {
    view["deployment"]["validation"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|report| report["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The manifest inside a package, read with the host's own package reader.
fn package_manifest(bytes: &[u8]) -> gatehouse::solution::Manifest {
    gatehouse::solution::read_package(Cursor::new(bytes), &Default::default())
        .expect("a valid solution package")
        .manifest
}

// ---------------------------------------------------------------------------------------
// The scenarios.

/// A version pushed to Dev goes to QA (with `gatehouse deploy --wait`) and then to Prod
/// (after ravi's approval). It is exported once: the artifact holds both packages, and
/// Prod installs the same managed package QA did.
fn promotes_one_export_through_qa_and_prod(backend: &Backend) {
    let w = World::new(backend, 0);
    let p = w.pipeline("Contoso App", true);
    let prod_stage = p.prod.clone().expect("a Prod stage");
    let pushed = w.push("contoso_app", "1.0.0.3", &[]);
    let pushed_sha = pushed["package_sha256"].as_str().unwrap_or_default();

    // QA, through the command line, with the settings as flags.
    let set = format!("{VARIABLE}=https://qa.contoso.test");
    let connection = format!("{REFERENCE}={CONNECTION}");
    let args = [
        "deploy",
        "--pipeline",
        p.name.as_str(),
        "--stage",
        "QA",
        "--solution",
        "contoso_app",
        "--set",
        set.as_str(),
        "--connection",
        connection.as_str(),
        "--notes",
        "first release",
        "--wait",
        "--output",
        "json",
    ];
    let run = gatehouse(
        &args,
        &[
            ("GATEHOUSE_SERVER", &w.server.base),
            ("GATEHOUSE_TOKEN", &w.server.admin_token),
        ],
        PATIENCE,
    );
    let answer = run.json();
    let qa_deployment = answer["deployment"]["id"]
        .as_str()
        .or(answer["id"].as_str())
        .unwrap_or_else(|| panic!("the final document names the deployment: {answer:#}"))
        .to_owned();
    let qa_view = w.view(&qa_deployment);
    assert_eq!(status(&qa_view), "succeeded", "{qa_view:#}");
    assert_eq!(qa_view["deployment"]["version"], "1.0.0.3");
    let steps = [
        "requested",
        "validation_started",
        "artifact_retrieved",
        "validation_completed",
        "deployment_started",
        "import_started",
        "deployment_completed",
    ];
    let timeline = kinds(&qa_view);
    let positions: Vec<Option<usize>> = steps
        .iter()
        .map(|s| timeline.iter().position(|k| k == s))
        .collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "the timeline has {steps:?} in order: {timeline:?}"
    );
    let installed = w.qa.solution("contoso_app").expect("QA holds contoso_app");
    assert_eq!(installed["version"], "1.0.0.3", "{installed:#}");
    assert_eq!(installed["managed"], true, "{installed:#}");
    assert_eq!(
        installed["operation_id"],
        format!("{qa_deployment}-1"),
        "{installed:#}"
    );

    // The artifact: one export, both packages, downloadable, byte for byte.
    let artifacts = w.admin().get("/artifacts?solution=contoso_app").expect(200);
    let list = items(&artifacts);
    assert_eq!(list.len(), 1, "one export: {artifacts:#}");
    let artifact = &list[0];
    assert_eq!(artifact["version"], "1.0.0.3", "{artifact:#}");
    assert_eq!(artifact["deployment_id"], qa_deployment.as_str());
    assert_eq!(artifact["source_environment_id"], w.dev_id.as_str());
    let mut manifests = Vec::new();
    for kind in ["managed", "unmanaged"] {
        let bytes = w.download("contoso_app", "1.0.0.3", kind);
        assert_eq!(
            artifact[kind]["sha256"],
            sha256_hex(&bytes),
            "the {kind} package is the one recorded: {artifact:#}"
        );
        assert_eq!(artifact[kind]["size"], bytes.len(), "{artifact:#}");
        assert_ne!(
            sha256_hex(&bytes),
            pushed_sha,
            "the export restamps the pushed package"
        );
        manifests.push(package_manifest(&bytes));
    }
    assert!(manifests[0].managed, "the managed package says managed");
    assert!(!manifests[1].managed, "the unmanaged package does not");
    for manifest in &manifests {
        assert_eq!(manifest.version.to_string(), "1.0.0.3");
        assert_eq!(manifest.components.len(), 2);
    }
    assert_eq!(
        installed["package_sha256"], artifact["managed"]["sha256"],
        "QA installed the managed package"
    );

    // Prod: the same artifact, after ravi's approval.
    let prod = w.deploy(&p, &prod_stage, "contoso_app", json!({}));
    let waiting = w.wait_until_approvable(&prod);
    assert_eq!(status(&waiting), "pending_approval", "{waiting:#}");
    w.server
        .client(&w.ravi.token)
        .post(
            &format!("/deployments/{prod}/votes"),
            json!({ "approve": true, "comment": "ship it" }),
        )
        .expect(200);
    let prod_view = w.wait_for_status(&prod, "succeeded");
    let installed_prod = w.prod.solution("contoso_app").expect("Prod holds it");
    assert_eq!(installed_prod["version"], "1.0.0.3", "{installed_prod:#}");
    assert_eq!(
        installed_prod["package_sha256"], artifact["managed"]["sha256"],
        "Prod installed the same managed package"
    );
    assert_eq!(installed_prod["operation_id"], format!("{prod}-1"));

    let exported: usize = [&qa_view, &prod_view]
        .iter()
        .map(|v| {
            events(v, "artifact_retrieved")
                .iter()
                .filter(|e| e["detail"]["exported"] == true)
                .count()
        })
        .sum();
    assert_eq!(
        exported,
        1,
        "exported once, for QA; Prod reused the artifact: QA {:?}, Prod {:?}",
        events(&qa_view, "artifact_retrieved"),
        events(&prod_view, "artifact_retrieved")
    );
    let after = w.admin().get("/artifacts?solution=contoso_app").expect(200);
    assert_eq!(items(&after).len(), 1, "still one artifact: {after:#}");
    assert!(
        w.dev.solution("contoso_app").is_some(),
        "Dev still holds the pushed solution"
    );
}

/// What the targets refuse: a preflight says what is missing; a deployment without a
/// variable, or with a dependency the target lacks, fails in validating; a lower version
/// is refused unless the pipeline allows it.
fn the_targets_refuse_what_they_cannot_install(backend: &Backend) {
    let w = World::new(backend, 0);
    let p = w.pipeline("Checks", false);

    // `gatehouse solution push` says why it could not push.
    let dir = w.solution_dir("contoso_checks", "1.0.0.0", &[]);
    let dir = dir.to_str().expect("a UTF-8 path");
    let push = |url: &str, token: &str| {
        gatehouse(
            &["solution", "push", dir, "--env", url],
            &[("GATEHOUSE_ENV_TOKEN", token)],
            PATIENCE,
        )
    };
    let to_target = push(&w.qa.url(), &w.qa.token);
    assert_eq!(to_target.code, Some(1), "{}", to_target.stderr);
    assert!(
        to_target.stderr.contains("wrong_kind"),
        "{}",
        to_target.stderr
    );
    let wrong_token = push(&w.dev.url(), &w.qa.token);
    assert_eq!(wrong_token.code, Some(1), "{}", wrong_token.stderr);
    assert!(wrong_token.stderr.contains("401"), "{}", wrong_token.stderr);
    let nobody = format!("http://127.0.0.1:{}", server::free_port());
    let unreachable = push(&nobody, &w.dev.token);
    assert_eq!(unreachable.code, Some(2), "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains("could not reach"),
        "{}",
        unreachable.stderr
    );
    let bad = w.work.path().join("bad");
    std::fs::create_dir_all(&bad).expect("a dir");
    std::fs::write(
        bad.join("solution.json"),
        r#"{"unique_name": "contoso_bad", "display_name": "Bad", "version": "1.0",
            "publisher": {"unique_name": "contoso", "prefix": "contoso"}}"#,
    )
    .expect("a manifest");
    let bad_dir = bad.to_str().expect("a UTF-8 path");
    let refused = gatehouse(
        &["solution", "push", bad_dir, "--env", &w.dev.url()],
        &[("GATEHOUSE_ENV_TOKEN", &w.dev.token)],
        PATIENCE,
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("version"),
        "the error names the field: {}",
        refused.stderr
    );
    assert!(
        w.dev.solution("contoso_bad").is_none() && w.dev.solution("contoso_checks").is_none(),
        "nothing was pushed"
    );

    // Preflight: the variable and the connection, found missing or unknown.
    w.push("contoso_checks", "1.0.0.0", &[]);
    let preflight = |settings: Value| {
        w.admin()
            .post(
                "/deployments/validate",
                json!({
                    "pipeline_id": p.id, "stage_id": p.qa, "solution_name": "contoso_checks",
                    "notes": "preflight", "settings": settings,
                }),
            )
            .expect(200)
    };
    let no_variable = preflight(json!({ "connection_references": { REFERENCE: CONNECTION } }));
    assert_eq!(no_variable["ok"], false, "{no_variable:#}");
    assert_eq!(no_variable["version"], "1.0.0.0", "{no_variable:#}");
    let missing: Vec<&Value> = no_variable["missing_environment_variables"]
        .as_array()
        .map(|a| a.iter().map(|v| &v["schema_name"]).collect())
        .unwrap_or_default();
    assert_eq!(missing, [VARIABLE], "{no_variable:#}");
    assert_eq!(
        no_variable["missing_connection_references"],
        json!([]),
        "{no_variable:#}"
    );
    let unknown = preflight(json!({
        "environment_variables": [{ "name": VARIABLE, "value": "https://x.test", "secret": false }],
        "connection_references": { REFERENCE: "no-such-connection" },
    }));
    assert_eq!(unknown["ok"], false, "{unknown:#}");
    let finding = unknown["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["code"] == "unknown_connection")
        .unwrap_or_else(|| panic!("an unknown_connection finding: {unknown:#}"));
    assert_eq!(finding["severity"], "error", "{finding:#}");
    assert!(
        finding["source"]
            .as_str()
            .unwrap_or_default()
            .contains("QA"),
        "the target found it: {finding:#}"
    );
    let fine = preflight(good_settings());
    assert_eq!(fine["ok"], true, "{fine:#}");
    assert_eq!(fine["missing_environment_variables"], json!([]), "{fine:#}");
    assert_eq!(fine["installed_version"], Value::Null, "{fine:#}");
    let artifacts = w
        .admin()
        .get("/artifacts?solution=contoso_checks")
        .expect(200);
    assert_eq!(items(&artifacts).len(), 0, "a preflight exports nothing");

    // A deployment without the variable fails while validating, naming it.
    let no_value = id(&w
        .request(
            &p,
            &p.qa,
            "contoso_checks",
            json!({ "settings": { "connection_references": { REFERENCE: CONNECTION } } }),
        )
        .expect(201));
    let view = w.wait_for_status(&no_value, "failed");
    assert!(
        reason(&view).contains(VARIABLE),
        "the reason names the variable: {}",
        reason(&view)
    );
    assert!(
        finding_codes(&view).contains(&"missing_environment_variable".to_owned()),
        "{:?}",
        finding_codes(&view)
    );
    assert_eq!(
        count(&view, "validation_completed"),
        1,
        "{:?}",
        kinds(&view)
    );
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));
    assert!(
        w.qa.solution("contoso_checks").is_none(),
        "nothing installed"
    );

    // A dependency QA does not have.
    w.push("contoso_addon", "1.0.0.0", &[("contoso_base", "2.0.0.0")]);
    let addon = w.deploy(&p, &p.qa, "contoso_addon", json!({}));
    let view = w.wait_for_status(&addon, "failed");
    assert!(
        reason(&view).contains("missing_dependency") && reason(&view).contains("contoso_base"),
        "the reason names the dependency: {}",
        reason(&view)
    );
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));
    assert!(
        w.qa.solution("contoso_addon").is_none(),
        "nothing installed"
    );

    // Versions only move up: 1.0.0.0 through pipeline `Rollback A`, 2.0.0.0 through
    // `Rollback B`; then 1.0.0.0 again.
    let a = w.pipeline("Rollback A", false);
    let b = w.pipeline("Rollback B", false);
    w.push("contoso_rollback", "1.0.0.0", &[]);
    let first = w.deploy(&a, &a.qa, "contoso_rollback", json!({}));
    w.wait_for_status(&first, "succeeded");
    w.push("contoso_rollback", "2.0.0.0", &[]);
    let second = w.deploy(&b, &b.qa, "contoso_rollback", json!({}));
    w.wait_for_status(&second, "succeeded");
    assert_eq!(
        w.qa.solution("contoso_rollback").expect("installed")["version"],
        "2.0.0.0"
    );
    // Pipeline B's QA stage has 2.0.0.0: refused at the request.
    let older = json!({ "version": "1.0.0.0", "settings": good_settings() });
    let detail = w
        .request(&b, &b.qa, "contoso_rollback", older.clone())
        .problem(409);
    assert!(detail.contains("only move up"), "{detail}");
    // Pipeline A's stage never had more than 1.0.0.0; QA itself refuses the downgrade.
    let refused = id(&w
        .request(&a, &a.qa, "contoso_rollback", older.clone())
        .expect(201));
    let view = w.wait_for_status(&refused, "failed");
    assert!(
        reason(&view).contains("version_downgrade"),
        "the target refused the downgrade: {}",
        reason(&view)
    );
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));
    // Allowed once the pipeline says so.
    let patched = w
        .admin()
        .patch(
            &format!("/pipelines/{}", b.id),
            json!({ "settings": { "allow_redeploy_older_versions": true } }),
        )
        .expect(200);
    assert_eq!(
        patched["settings"]["allow_redeploy_older_versions"], true,
        "{patched:#}"
    );
    let rollback = id(&w.request(&b, &b.qa, "contoso_rollback", older).expect(201));
    let view = w.wait_for_status(&rollback, "succeeded");
    assert!(
        finding_codes(&view).contains(&"version_downgrade".to_owned()),
        "the downgrade is still reported, as a warning: {:#}",
        view["deployment"]["validation"]
    );
    let installed = w.qa.solution("contoso_rollback").expect("installed");
    assert_eq!(installed["version"], "1.0.0.0", "{installed:#}");
    assert_eq!(installed["operation_id"], format!("{rollback}-1"));
    let artifacts = w
        .admin()
        .get("/artifacts?solution=contoso_rollback")
        .expect(200);
    assert_eq!(
        items(&artifacts).len(),
        2,
        "each version exported once: {artifacts:#}"
    );
}

/// With QA down, a deployment fails after the engine's five attempts, and says which
/// environment it could not reach; once QA is back, a retry succeeds.
fn an_unreachable_target_fails_then_a_retry_succeeds(backend: &Backend) {
    let mut w = World::new(backend, 0);
    let p = w.pipeline("Outage", false);
    w.push("contoso_outage", "1.0.0.0", &[]);
    w.qa.kill();

    let started = Instant::now();
    let deployment = w.deploy(&p, &p.qa, "contoso_outage", json!({}));
    let view = w.wait_until(&deployment, "failed", PATIENCE + RETRY_PAUSES, |v| {
        status(v) == "failed"
    });
    let elapsed = started.elapsed();
    let why = reason(&view);
    assert!(
        why.contains("QA") && why.contains("failed after 5 attempts"),
        "the reason names the environment and the attempts: {why}"
    );
    assert!(
        why.contains(&w.qa.url()),
        "the reason says where it looked: {why}"
    );
    assert_eq!(
        count(&view, "environment_retry"),
        4,
        "four retries after the first attempt: {:?}",
        kinds(&view)
    );
    assert!(
        elapsed >= RETRY_PAUSES - Duration::from_secs(1),
        "the retries wait 1, 2, 4 and 8 s: failed after {elapsed:?}"
    );
    assert_eq!(count(&view, "deployment_started"), 0, "{:?}", kinds(&view));

    w.qa.start_again();
    let retried = w
        .admin()
        .post(&format!("/deployments/{deployment}/retry"), json!({}))
        .expect(200);
    assert_eq!(retried["attempt"], 2, "{retried:#}");
    let view = w.wait_for_status(&deployment, "succeeded");
    assert_eq!(view["deployment"]["attempt"], 2);
    let installed = w.qa.solution("contoso_outage").expect("installed");
    assert_eq!(installed["version"], "1.0.0.0", "{installed:#}");
    assert_eq!(installed["operation_id"], format!("{deployment}-2"));
}

/// The host is killed with SIGKILL while QA imports (each import there takes 3 s); it
/// starts again on the same data, and the deployment ends succeeded with the import done
/// once, under the first attempt's operation id.
fn a_host_killed_mid_import_installs_once(backend: &Backend) {
    let mut w = World::new(backend, 3000);
    let p = w.pipeline("Crash", false);
    w.push("contoso_crash", "1.0.0.0", &[]);
    let deployment = w.deploy(&p, &p.qa, "contoso_crash", json!({}));
    w.wait_for_status(&deployment, "deploying");
    let operation = format!("{deployment}-1");
    let op_path = format!("/env/v1/imports/{operation}");
    let deadline = Instant::now() + PATIENCE;
    let running = loop {
        let answer = w.qa.get(&op_path);
        if answer.status == 200 {
            break answer.body;
        }
        assert_eq!(answer.status, 404, "{answer:?}");
        assert!(
            Instant::now() < deadline,
            "QA never started the import {operation}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        running["status"], "running",
        "killed mid-import: {running:#}"
    );
    w.server.kill();
    assert_eq!(
        w.qa.get(&op_path).expect(200)["status"],
        "running",
        "still importing when the host died"
    );

    w.server.start_again();
    let view = w.wait_until(&deployment, "succeeded", RESUME_PATIENCE, |v| {
        status(v) == "succeeded"
    });
    assert_eq!(view["deployment"]["attempt"], 1, "resumed, not retried");
    assert_eq!(count(&view, "import_started"), 1, "{:?}", kinds(&view));
    assert_eq!(
        count(&view, "deployment_completed"),
        1,
        "{:?}",
        kinds(&view)
    );
    let op = w.qa.get(&op_path).expect(200);
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["version"], "1.0.0.0", "{op:#}");
    w.qa.get(&format!("/env/v1/imports/{deployment}-2"))
        .problem(404);
    let installed = w.qa.solution("contoso_crash").expect("installed");
    assert_eq!(installed["version"], "1.0.0.0", "{installed:#}");
    assert_eq!(installed["operation_id"], operation, "{installed:#}");
    let at = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let installed_at = at(&installed, "installed_at");
    assert!(
        at(&op, "started_at") <= installed_at && installed_at <= at(&op, "finished_at"),
        "installed by that operation: {installed:#} {op:#}"
    );
}

/// While QA imports (each import there takes 3 s), the deployment's timeline already
/// shows `import_started`, with the operation id.
fn the_timeline_shows_the_import_while_it_runs(backend: &Backend) {
    let w = World::new(backend, 3000);
    let p = w.pipeline("Slow import", false);
    w.push("contoso_slow", "1.0.0.0", &[]);
    let deployment = w.deploy(&p, &p.qa, "contoso_slow", json!({}));
    let view = w.wait_until(&deployment, "import_started", PATIENCE, |v| {
        count(v, "import_started") == 1
    });
    assert_eq!(
        status(&view),
        "deploying",
        "import_started is in the timeline while the import runs, not only after: {:?}",
        kinds(&view)
    );
    let operation = format!("{deployment}-1");
    assert_eq!(
        events(&view, "import_started")[0]["detail"]["operation"],
        operation.as_str()
    );
    let op =
        w.qa.get(&format!("/env/v1/imports/{operation}"))
            .expect(200);
    assert_eq!(op["status"], "running", "seen while it runs: {op:#}");
    w.wait_for_status(&deployment, "succeeded");
}

/// A target killed in the middle of an import: the import is in its hands, so the host
/// keeps asking about that operation instead of failing, and when the target is back and
/// finishes it, the deployment succeeds with the first attempt's operation.
fn a_target_killed_mid_import_finishes_it_and_the_deployment_succeeds(backend: &Backend) {
    let mut w = World::new(backend, 3000);
    let p = w.pipeline("Target crash", false);
    w.push("contoso_target_crash", "1.0.0.0", &[]);
    let deployment = w.deploy(&p, &p.qa, "contoso_target_crash", json!({}));
    let operation = format!("{deployment}-1");
    let op_path = format!("/env/v1/imports/{operation}");
    w.wait_until(&deployment, "QA importing", PATIENCE, |_| {
        w.qa.get(&op_path).status == 200
    });
    w.qa.kill();
    let view = w.wait_until(
        &deployment,
        "the host asking again",
        PATIENCE + RETRY_PAUSES,
        |v| reason(v).contains("does not answer about import"),
    );
    assert_eq!(
        status(&view),
        "deploying",
        "an import in flight does not fail: {view:#}"
    );

    w.qa.start_again();
    let view = w.wait_until(&deployment, "an end", PATIENCE + RETRY_PAUSES, |v| {
        ["succeeded", "failed"].contains(&status(v))
    });
    assert_eq!(status(&view), "succeeded", "{}", reason(&view));
    assert_eq!(view["deployment"]["attempt"], 1, "no retry was needed");
    let installed = w.qa.solution("contoso_target_crash").expect("installed");
    assert_eq!(
        installed["operation_id"],
        operation.as_str(),
        "{installed:#}"
    );
    assert_eq!(installed["version"], "1.0.0.0", "{installed:#}");
}

on_each_backend!(
    promotes_one_export_through_qa_and_prod,
    the_targets_refuse_what_they_cannot_install,
    an_unreachable_target_fails_then_a_retry_succeeds,
    a_host_killed_mid_import_installs_once,
    the_timeline_shows_the_import_while_it_runs,
    a_target_killed_mid_import_finishes_it_and_the_deployment_succeeds,
);
