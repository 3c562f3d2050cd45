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

mod setup;
mod welcome;

use setup::Setup;

use super::serve::shutdown_signal;
use crate::app::{self, GivenToken, Host, HostOptions};
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
        admin_token: Some(GivenToken {
            token: tokens.admin.clone(),
            from: format!("saved in {}", tokens_path.display()),
        }),
        // The demo's environments run in this process, on loopback.
        outbound: Default::default(),
    })
    .await?;
    let mut router = app::router(host.services.clone(), host.metrics.clone());
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
    let version = welcome::next_version(&setup)
        .await
        .context("could not read the QA stage's history")?;
    welcome::print(&base, &tokens_path, &tokens, &version);

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
