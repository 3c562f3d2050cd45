//! `gatehouse serve`: the host alone, on SQLite or PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use crate::app::{self, GivenToken, Host, HostOptions};
use crate::outbound::AllowList;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite file and the plugin cache live.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./gatehouse-data")]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; SQLite in the data dir by default.
    #[arg(long, env = "GATEHOUSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seeds a solution into a memory:// environment, as ENV:NAME@VERSION
    /// (such as dev:contoso_expenses@1.0.0.0). Repeat for more.
    #[arg(long = "memory-solution", value_name = "ENV:NAME@VERSION")]
    pub memory_solutions: Vec<String>,
    /// The only addresses environment and webhook URLs may connect to: CIDRs (10.0.0.0/8,
    /// fd00::/8), IP addresses and exact host names, comma-separated. Checked on the
    /// resolved address at connect time, with no proxy. Unset: any address.
    #[arg(long, env = "GATEHOUSE_OUTBOUND_ALLOW", value_name = "LIST")]
    pub outbound_allow: Option<AllowList>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let admin_token = match std::env::var("GATEHOUSE_ADMIN_TOKEN") {
        Ok(token) if token.len() >= 32 => Some(GivenToken {
            token,
            from: "from GATEHOUSE_ADMIN_TOKEN".into(),
        }),
        Ok(_) => bail!(
            "GATEHOUSE_ADMIN_TOKEN must be at least 32 characters; generate one with `openssl rand -hex 32`"
        ),
        Err(_) => None,
    };
    let host = Host::start(HostOptions {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        memory_solutions: args.memory_solutions.clone(),
        admin_token,
        outbound: args.outbound_allow.clone().unwrap_or_default(),
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    eprintln!("gatehouse serving on http://{}", listener.local_addr()?);
    let router = app::router(host.services.clone(), host.metrics.clone());
    host.serve(listener, router, shutdown_signal()).await
}

/// SIGINT or SIGTERM, said aloud.
pub(super) async fn shutdown_signal() {
    super::stop_requested().await;
    eprintln!("gatehouse shutting down; deployments in flight resume at the next start");
}
