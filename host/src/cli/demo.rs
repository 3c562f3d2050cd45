//! `gatehouse demo`: the host and three embedded environments (Development, QA,
//! Production) in one process, on one port, set up with a sample solution, a pipeline,
//! the example plugins and demo users. Running it again reuses everything.
//!
//! The environments are the reference environment server, each with its own store under
//! the data dir, mounted under `/envs/<name>`. The setup goes through the host's own API,
//! exactly as an admin would do it, so the demo shows the real thing.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::serve::shutdown_signal;
use crate::app::{self, Host, HostOptions};
use crate::envserver::{EnvServer, EnvServerConfig, Kind};
use crate::pipeline::accounts::generate_token;
use crate::solution::{self, Component, ConnectionReferenceDef, EnvironmentVariableDef, Manifest};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the host's and the environments' data live.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./gatehouse-data")]
    pub data_dir: PathBuf,
    /// Where the example plugins' components are (`scripts/build-plugins` puts them there).
    #[arg(long, env = "GATEHOUSE_PLUGINS_DIR", default_value = "target/plugins")]
    pub plugins_dir: PathBuf,
}

/// The demo's pipeline, solution and people.
pub const PIPELINE: &str = "Contoso Expenses";
pub const SOLUTION: &str = "contoso_expenses";
const APPROVERS: &str = "prod-approvers";
const MAKERS: &str = "makers";
/// The connection both targets offer to the sample solution's connection reference.
pub const CONNECTION: &str = "shared-sql";

/// The tokens of the demo's users and environments, kept in the data dir, readable only
/// by its owner.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DemoTokens {
    admin: String,
    #[serde(default)]
    users: std::collections::BTreeMap<String, String>,
    environments: std::collections::BTreeMap<String, String>,
}

/// The three environments: path name, display name, kind.
const ENVIRONMENTS: [(&str, &str, Kind); 3] = [
    ("dev", "Development", Kind::Development),
    ("qa", "QA", Kind::Target),
    ("prod", "Production", Kind::Target),
];

/// The demo users: login, display name, group.
const USERS: [(&str, &str, &str); 3] = [
    ("maker", "Mona Maker", MAKERS),
    ("alice", "Alice Approver", APPROVERS),
    ("bob", "Bob Approver", APPROVERS),
];

const PLUGINS: [&str; 3] = ["business-hours", "two-person-rule", "solution-policy"];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("could not create the data dir {}", args.data_dir.display()))?;
    for plugin in PLUGINS {
        let path = args.plugins_dir.join(format!("{plugin}.wasm"));
        if !path.is_file() {
            bail!(
                "{} is missing: build the example plugins first with scripts/build-plugins \
                 (scripts/demo does both), or point --plugins-dir at them",
                path.display()
            );
        }
    }
    let tokens_path = args.data_dir.join("demo-tokens.json");
    let mut tokens = load_tokens(&tokens_path)?;

    let host = Host::start(HostOptions {
        data_dir: args.data_dir.join("host"),
        database_url: None,
        memory_solutions: Vec::new(),
        admin_token: Some(tokens.admin.clone()),
        // The demo's environments run in this process, on loopback.
        outbound: Default::default(),
    })
    .await?;
    let mut router = app::router(host.state.clone());
    let mut servers = Vec::new();
    for (path, name, kind) in ENVIRONMENTS {
        let mut config = EnvServerConfig::new(args.data_dir.join("envs").join(path), name, kind);
        config.environment_id = Some(format!("demo-{path}"));
        config.token = tokens.environments.get(path).cloned();
        let server = EnvServer::open(config)
            .await
            .with_context(|| format!("could not open the {name} environment"))?;
        router = router.nest(&format!("/envs/{path}"), server.router());
        servers.push(server);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let serving = tokio::spawn(host.serve(listener, router, shutdown_signal()));

    let setup = Setup::new(&base, &tokens.admin);
    setup
        .run(&args.plugins_dir, &mut tokens)
        .await
        .context("could not set the demo up")?;
    save_tokens(&tokens_path, &tokens)?;
    print_welcome(&base, &tokens_path, &tokens);

    let served = serving.await.context("the server stopped unexpectedly")?;
    for server in &servers {
        server.shutdown().await;
    }
    served
}

/// The saved tokens, or new ones for a first start.
fn load_tokens(path: &Path) -> anyhow::Result<DemoTokens> {
    let new_token = || generate_token().map_err(|_| anyhow::anyhow!("the OS random source failed"));
    let mut tokens = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<DemoTokens>(&bytes).with_context(|| {
            format!(
                "{} is damaged; delete it and the data dir to start over",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DemoTokens {
            admin: new_token()?,
            ..DemoTokens::default()
        },
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    for (env, _, _) in ENVIRONMENTS {
        if !tokens.environments.contains_key(env) {
            tokens.environments.insert(env.to_owned(), new_token()?);
        }
    }
    save_tokens(path, &tokens)?;
    Ok(tokens)
}

/// Writes the tokens to a file only its owner can read, whole or not at all.
fn save_tokens(path: &Path, tokens: &DemoTokens) -> anyhow::Result<()> {
    let temp = path.with_extension("json.part");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temp)
        .with_context(|| format!("could not write {}", temp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(tokens)?)?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("could not write {}", path.display()))
}

fn print_welcome(base: &str, tokens_path: &Path, tokens: &DemoTokens) {
    let token = |user: &str| tokens.users.get(user).cloned().unwrap_or_default();
    println!();
    println!(
        "Gatehouse demo: {base}  (host API under {base}/api/v1, environments under {base}/envs/dev|qa|prod)"
    );
    println!();
    println!(
        "Tokens (also in {}, readable only by you):",
        tokens_path.display()
    );
    println!("  admin  {}", tokens.admin);
    println!("  maker  {}", token("maker"));
    println!("  alice  {}   (approver)", token("alice"));
    println!("  bob    {}   (approver)", token("bob"));
    println!();
    println!("Next, in another terminal:");
    println!(
        "  1. gatehouse login --server {base} --token {}",
        token("maker")
    );
    println!(
        "  2. gatehouse deploy --pipeline \"{PIPELINE}\" --stage QA --solution {SOLUTION} --version 1.0.0.1 \\\n       --set contoso_ApiUrl=https://api.contoso.test --connection contoso_sql={CONNECTION} --wait"
    );
    println!(
        "  3. gatehouse deploy --pipeline \"{PIPELINE}\" --stage Production --solution {SOLUTION} --version 1.0.0.1 \\\n       --set contoso_ApiUrl=https://api.contoso.test --connection contoso_sql={CONNECTION} \\\n       --notes \"expense limits raised\"   (the validator wants notes for Production)\n     then approve it as alice and as bob:\n       gatehouse approvals --token {}\n       gatehouse approve <deployment id> --comment \"looks good\" --token {}",
        token("alice"),
        token("alice")
    );
    println!();
    println!("Stop with Ctrl-C; run `gatehouse demo` again to carry on where you left off.");
}

/// The demo's sample solution, as a maker would push it to Development.
pub fn sample_package() -> anyhow::Result<Vec<u8>> {
    let manifest = Manifest {
        unique_name: SOLUTION.into(),
        display_name: "Contoso Expenses".into(),
        version: "1.0.0.0".parse()?,
        publisher: solution::Publisher {
            unique_name: "contoso".into(),
            prefix: "contoso".into(),
        },
        managed: false,
        dependencies: Vec::new(),
        environment_variables: vec![EnvironmentVariableDef {
            schema_name: "contoso_ApiUrl".into(),
            kind: solution::VariableType::String,
            default_value: None,
        }],
        connection_references: vec![ConnectionReferenceDef {
            logical_name: "contoso_sql".into(),
            connector: "sql".into(),
        }],
        components: vec![
            Component {
                kind: "table".into(),
                name: "contoso_expense".into(),
                path: "components/tables/expense.json".into(),
            },
            Component {
                kind: "flow".into(),
                name: "contoso_approve_expense".into(),
                path: "components/flows/approve_expense.json".into(),
            },
        ],
    };
    let table = br#"{"columns": ["amount", "currency", "submitted_by", "status"]}"#;
    let flow =
        br#"{"trigger": "expense submitted", "steps": ["notify manager", "wait for approval"]}"#;
    Ok(solution::build_package(
        &manifest,
        &[
            ("components/tables/expense.json", table.as_slice()),
            ("components/flows/approve_expense.json", flow.as_slice()),
        ],
    )?)
}

/// The demo's setup, through the host's and the environments' HTTP APIs.
struct Setup {
    base: String,
    admin: String,
    client: reqwest::Client,
}

impl Setup {
    fn new(base: &str, admin: &str) -> Setup {
        Setup {
            base: base.to_owned(),
            admin: admin.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.client.request(method.clone(), url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// An API call as the admin that must answer one of `ok`.
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let (status, value) = self.call(method.clone(), &url, &self.admin, body).await?;
        if !ok.contains(&status) {
            bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// The item of a list whose `name` is `name`.
    async fn find(&self, path: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let list = self
            .api(
                reqwest::Method::GET,
                &format!("{path}?limit=200"),
                None,
                &[200],
            )
            .await?;
        Ok(list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["name"] == name).cloned()))
    }

    async fn run(&self, plugins_dir: &Path, tokens: &mut DemoTokens) -> anyhow::Result<()> {
        use reqwest::Method;
        let mut ids = std::collections::BTreeMap::new();
        for (login, display, _) in USERS {
            let user = match self.find("/users", login).await? {
                Some(user) => user,
                None => {
                    self.api(
                        Method::POST,
                        "/users",
                        Some(json!({ "name": login, "display_name": display, "role": "user" })),
                        &[201],
                    )
                    .await?
                }
            };
            let id = text(&user["id"])?;
            if !tokens.users.contains_key(login) {
                let issued = self
                    .api(
                        Method::POST,
                        &format!("/users/{id}/tokens"),
                        Some(json!({ "label": "demo" })),
                        &[201],
                    )
                    .await?;
                tokens
                    .users
                    .insert(login.to_owned(), text(&issued["token"])?);
            }
            ids.insert(login, id);
        }
        for group in [MAKERS, APPROVERS] {
            let members: Vec<&String> = USERS
                .iter()
                .filter(|(_, _, g)| *g == group)
                .filter_map(|(login, _, _)| ids.get(login))
                .collect();
            if self.find("/groups", group).await?.is_none() {
                self.api(
                    Method::POST,
                    "/groups",
                    Some(json!({ "name": group, "members": members })),
                    &[201],
                )
                .await?;
            }
        }

        let mut envs = std::collections::BTreeMap::new();
        for (path, name, kind) in ENVIRONMENTS {
            let env = match self.find("/environments", name).await? {
                Some(env) => env,
                None => {
                    self.api(
                        Method::POST,
                        "/environments",
                        Some(json!({
                            "name": name,
                            "kind": kind.as_str(),
                            "environment_id": format!("demo-{path}"),
                            "url": format!("{}/envs/{path}", self.base),
                            "credential": tokens.environments.get(path),
                            "access": [format!("group:{MAKERS}"), format!("group:{APPROVERS}")],
                        })),
                        &[201],
                    )
                    .await?
                }
            };
            let id = text(&env["id"])?;
            // Served somewhere else this time (another --listen): point the record there.
            let url = format!("{}/envs/{path}", self.base);
            if env["url"] != url.as_str() {
                self.api(
                    Method::PATCH,
                    &format!("/environments/{id}"),
                    Some(json!({ "url": url })),
                    &[200],
                )
                .await?;
            }
            let validated = self
                .api(
                    Method::POST,
                    &format!("/environments/{id}/validate?force=true"),
                    None,
                    &[200],
                )
                .await?;
            if validated["validation_status"] != "success" {
                bail!(
                    "the {name} environment did not validate: {}",
                    validated["validation_message"]
                );
            }
            if kind == Kind::Target {
                let url = format!("{}/envs/{path}/env/v1/connections", self.base);
                let token = tokens.environments.get(path).cloned().unwrap_or_default();
                let (status, answer) = self
                    .call(
                        Method::POST,
                        &url,
                        &token,
                        Some(json!({ "name": CONNECTION, "connector": "sql" })),
                    )
                    .await?;
                if status != 201 && status != 409 {
                    bail!(
                        "registering the {CONNECTION} connection in {name} answered {status}: {answer}"
                    );
                }
            }
            envs.insert(path, id);
        }
        self.push_sample(tokens).await?;

        let mut plugins = std::collections::BTreeMap::new();
        for plugin in PLUGINS {
            let record = match self.find("/plugins", plugin).await? {
                Some(record) => record,
                None => {
                    let path = plugins_dir.join(format!("{plugin}.wasm"));
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("could not read {}", path.display()))?;
                    let response = self
                        .client
                        .post(format!("{}/api/v1/plugins", self.base))
                        .bearer_auth(&self.admin)
                        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                        .body(bytes)
                        .send()
                        .await?;
                    let status = response.status().as_u16();
                    let value: Value = response.json().await.unwrap_or(Value::Null);
                    if status != 201 {
                        bail!("uploading {plugin} answered {status}: {value}");
                    }
                    value
                }
            };
            plugins.insert(plugin, text(&record["id"])?);
        }

        if self.find("/pipelines", PIPELINE).await?.is_some() {
            return Ok(());
        }
        let pipeline = self
            .api(
                Method::POST,
                "/pipelines",
                Some(json!({
                    "name": PIPELINE,
                    "description": "The demo: Development to QA to Production",
                    "development_environment_ids": [envs["dev"]],
                })),
                &[201],
            )
            .await?;
        let pipeline = text(&pipeline["id"])?;
        let stages = format!("/pipelines/{pipeline}/stages");
        // Every day, all day, so the demo works at any hour; the README shows how to
        // narrow the window.
        let always_open =
            json!({ "timezone": "UTC", "days": "mon-sun", "start": "00:00", "end": "24:00" });
        let qa = self
            .api(
                Method::POST,
                &stages,
                Some(json!({
                    "name": "QA",
                    "description": "Testing, inside business hours",
                    "target_environment_id": envs["qa"],
                    "pre_deployment_step_required": true,
                    "gates": [{ "plugin_id": plugins["business-hours"], "config": always_open }],
                })),
                &[201],
            )
            .await?;
        self.api(
            Method::POST,
            &stages,
            Some(json!({
                "name": "Production",
                "description": "Two approvers must agree",
                "previous_stage_id": qa["id"],
                "target_environment_id": envs["prod"],
                "pre_deployment_step_required": true,
                "gates": [{
                    "plugin_id": plugins["two-person-rule"],
                    "config": { "group": APPROVERS, "required": "2" },
                    "approval_timeout_seconds": 86400,
                }],
            })),
            &[201],
        )
        .await?;
        self.api(
            Method::PUT,
            &format!("/pipelines/{pipeline}/validators"),
            Some(json!({ "validators": [{
                "plugin_id": plugins["solution-policy"],
                "config": { "publisher-prefix": "contoso" },
            }] })),
            &[200],
        )
        .await?;
        for group in [MAKERS, APPROVERS] {
            self.api(
                Method::POST,
                &format!("/pipelines/{pipeline}/shares"),
                Some(json!({ "grantee": format!("group:{group}") })),
                &[200, 201],
            )
            .await?;
        }
        Ok(())
    }

    /// Pushes the sample solution to Development, unless a maker already pushed it.
    async fn push_sample(&self, tokens: &DemoTokens) -> anyhow::Result<()> {
        let url = format!("{}/envs/dev/env/v1/solutions/{SOLUTION}", self.base);
        let token = tokens.environments.get("dev").cloned().unwrap_or_default();
        let (status, _) = self.call(reqwest::Method::GET, &url, &token, None).await?;
        if status == 200 {
            return Ok(());
        }
        let response = self
            .client
            .put(&url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/zip")
            .body(sample_package()?)
            .send()
            .await?;
        let status = response.status().as_u16();
        if status != 201 && status != 200 {
            let answer = response.text().await.unwrap_or_default();
            bail!("pushing the sample solution answered {status}: {answer}");
        }
        Ok(())
    }
}

fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a string, found {value}"))
}
