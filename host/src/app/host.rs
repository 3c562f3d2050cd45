//! Host start-up, shared by `serve` and `demo`: the data dir and its lock, the store, the
//! first admin, the environments, the plugin registry, the engine and its background tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use metrics_exporter_prometheus::PrometheusHandle;

use super::Services;
use super::metrics;
use super::tasks::Tasks;
use crate::environment::{Environments, http::HttpEnvironments, memory::MemoryEnvironments};
use crate::outbound::AllowList;
use crate::pipeline::accounts::{generate_token, token_sha256};
use crate::pipeline::engine::{Engine, now_ms};
use crate::pipeline::model::{Role, User, new_id};
use crate::pipeline::store::{Audit, DeploymentStore, Store};
use crate::plugins::registry::Registry;
use crate::plugins::{Runtime, RuntimeOptions};
use crate::store::{Backend, SqlStore};

/// What a host needs to start.
pub struct HostOptions {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub memory_solutions: Vec<String>,
    /// The first admin's token; generated and printed once when absent.
    pub admin_token: Option<GivenToken>,
    /// Where environment and webhook calls may connect (`GATEHOUSE_OUTBOUND_ALLOW`).
    pub outbound: AllowList,
}

/// A token for the first admin, and where it came from ("from GATEHOUSE_ADMIN_TOKEN"),
/// which the first-start message names.
pub struct GivenToken {
    pub token: String,
    pub from: String,
}

/// A started host: its store, plugins and engine, with the engine's worker running.
pub struct Host {
    pub services: Services,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Whether this start created the first admin, and with which token.
    pub first_admin_token: Option<String>,
    tasks: Tasks,
    _lock: Option<DataDirLock>,
}

impl Host {
    pub async fn start(options: HostOptions) -> anyhow::Result<Host> {
        let data_dir = &options.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("could not create the data dir {}", data_dir.display()))?;
        let url = match &options.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("gatehouse.db").display()),
        };
        let store = SqlStore::connect(&url)
            .await
            .with_context(|| format!("could not open the database at {}", redact(&url)))?;
        let lock = if store.backend() == Backend::Sqlite {
            // Only one process may serve a SQLite file, so this one owns every lease.
            let lock = DataDirLock::take(data_dir)?;
            store.release_all_leases().await?;
            Some(lock)
        } else {
            None
        };
        let store: Arc<dyn Store> = Arc::new(store);
        let first_admin_token = bootstrap_admin(store.as_ref(), options.admin_token).await?;

        let memory = Arc::new(MemoryEnvironments::default());
        for spec in &options.memory_solutions {
            memory.seed(spec)?;
        }
        let http = HttpEnvironments::new(&options.outbound)
            .context("could not build the HTTP client for environments")?;
        let environments = Arc::new(Environments::new(memory, http));
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(data_dir.join("plugin-cache")),
            ..RuntimeOptions::default()
        })?;
        let registry = Arc::new(Registry::new(runtime));
        let loaded = registry.load_all(store.as_ref()).await?;
        if loaded > 0 {
            tracing::info!(plugins = loaded, "stored plugins loaded");
        } else {
            tracing::info!(
                "no plugins stored yet; an admin uploads them with POST /api/v1/plugins"
            );
        }

        let owner = format!("{}-{}", std::process::id(), &new_id()[24..]);
        let artifacts_dir = data_dir.join("artifacts");
        std::fs::create_dir_all(&artifacts_dir).with_context(|| {
            format!(
                "could not create the artifact store {}",
                artifacts_dir.display()
            )
        })?;
        let engine = Arc::new(Engine::new(
            store.clone(),
            registry.clone(),
            environments.clone(),
            owner,
            artifacts_dir,
        ));
        let tasks = Tasks::spawn(
            store.clone(),
            engine.clone(),
            data_dir.join("artifacts"),
            options.outbound,
        );
        Ok(Host {
            services: Services {
                store,
                engine,
                plugins: registry,
                environments,
            },
            metrics: metrics::install(),
            first_admin_token,
            tasks,
            _lock: lock,
        })
    }

    /// Serves `router` until `shutdown` resolves, then lets the background tasks' steps
    /// in flight commit.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = self.tasks.stop_switch();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await?;
        self.tasks.stop().await;
        Ok(())
    }
}

/// At first start, creates the first admin with `token`, or with a new token printed
/// once. Returns the token when it made one.
async fn bootstrap_admin(
    store: &dyn Store,
    given: Option<GivenToken>,
) -> anyhow::Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (token, from) = match given {
        Some(GivenToken { token, from }) => (token, Some(from)),
        None => (
            generate_token().map_err(|_| {
                anyhow::anyhow!("could not generate a token: the OS random source failed")
            })?,
            None,
        ),
    };
    let now = now_ms();
    let admin = User {
        id: new_id(),
        name: "admin".into(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        groups: Vec::new(),
        created_at: now,
    };
    let audit = |action: &str| Audit {
        actor: "system".into(),
        action: action.into(),
        target: admin.id.clone(),
        detail: serde_json::json!({ "name": "admin" }),
        at: now,
    };
    store.insert_user(&admin, &audit("user.create")).await?;
    store
        .insert_token(
            &admin.id,
            &token_sha256(&token),
            "first admin",
            &audit("token.create"),
        )
        .await?;
    match from {
        None => eprintln!(
            "first start: created user `admin`; its token, shown only this once:\n\n    {token}\n"
        ),
        Some(from) => eprintln!("first start: created user `admin` with the token {from}"),
    }
    Ok(Some(token))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// An exclusive lock on the data dir, held while serving a SQLite database.
struct DataDirLock(#[allow(dead_code)] std::fs::File);

impl DataDirLock {
    fn take(dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = dir.join("gatehouse.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("could not open {}", path.display()))?;
        if file.try_lock().is_err() {
            bail!(
                "another gatehouse is serving {}; one process serves a SQLite database (use PostgreSQL for several replicas)",
                dir.display()
            );
        }
        Ok(DataDirLock(file))
    }
}
