//! `gatehouse environment serve`: a standalone environment serving the Environment API
//! (`/env/v1`, docs/environment-api.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::envserver::{EnvServer, EnvServerConfig, Kind};

#[derive(Debug, Args)]
pub struct EnvironmentServeArgs {
    /// Address to serve on.
    #[arg(long, env = "GATEHOUSE_ENV_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Where the environment's database and packages live.
    #[arg(
        long,
        env = "GATEHOUSE_ENV_DATA_DIR",
        default_value = "./gatehouse-env-data"
    )]
    pub data_dir: PathBuf,
    /// The environment's display name.
    #[arg(long, default_value = "Environment")]
    pub name: String,
    /// development (makers push and export) or target (pipelines import); fixed at
    /// first start.
    #[arg(long, value_enum, default_value = "development")]
    pub kind: Kind,
    /// Report the environment managed (the host requires it of targets).
    #[arg(long)]
    pub managed: bool,
    /// The environment id at first start (a new UUID by default); later it must match.
    #[arg(long)]
    pub environment_id: Option<String>,
    /// A testing aid: wait this long in every import before installing, so that a test
    /// can stop the environment in the middle of one.
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub import_delay_ms: u64,
}

pub async fn run(args: EnvironmentServeArgs) -> anyhow::Result<()> {
    let token = match std::env::var("GATEHOUSE_ENV_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Some(token),
        _ => None,
    };
    let config = EnvServerConfig {
        data_dir: args.data_dir.clone(),
        name: args.name,
        kind: args.kind,
        managed: args.managed,
        environment_id: args.environment_id,
        token,
        import_delay: Duration::from_millis(args.import_delay_ms),
    };
    let server = EnvServer::open(config).await.with_context(|| {
        format!(
            "could not open the environment in {}",
            args.data_dir.display()
        )
    })?;
    let info = server.info();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    eprintln!(
        "gatehouse environment {} ({}, {}{}) serving on http://{address}/env/v1",
        info.name,
        info.kind.as_str(),
        if info.managed { "managed" } else { "unmanaged" },
        info.linked_host
            .as_deref()
            .map(|h| format!(", linked to host {h}"))
            .unwrap_or_default(),
    );
    eprintln!("environment_id: {}", info.environment_id);
    if info.kind == Kind::Target && !info.managed {
        eprintln!(
            "note: the host validates only managed target environments; restart with --managed"
        );
    }
    if let Some(token) = server.token() {
        eprintln!(
            "API token (shown once; the environment keeps only its hash): {token}\n\
             give it to the host as this environment's credential, with url http://{address}"
        );
    }
    axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    super::stop_requested().await;
    eprintln!("gatehouse environment shutting down; imports in flight resume at the next start");
}
