//! The reference environment server: `gatehouse environment serve`, serving `/env/v1`
//! as `docs/environment-api.md` describes.
//!
//! One [`EnvServer`] is one environment: its own SQLite database (`environment.db`) and
//! package blobs (`packages/<sha256>`) in its data dir, and an import worker. Its
//! [`router`](EnvServer::router) serves `/env/v1/...` and may be nested under a prefix
//! (`Router::new().nest("/envs/qa", server.router())`); links it returns are built from the
//! path the request arrived on, so they carry that prefix.
//!
//! It shares only the `/env/v1` messages ([`crate::environment::wire`]) and the import
//! rules ([`crate::environment::import_rules`]) with the host's client, and answers with its
//! own [`EnvServerError`].
//!
//! - [`store`]: the database and its migrations;
//! - [`blobs`]: packages on disk, streamed in and out;
//! - [`errors`]: problem documents;
//! - [`imports`]: the worker that performs imports, resumed at open;
//! - [`handlers`]: the router, authentication and the smaller handlers;
//! - [`solutions`]: pushing, listing and exporting solutions.

mod blobs;
mod errors;
mod handlers;
mod imports;
mod solutions;
mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::solution::PackageLimits;

pub use crate::environment::wire::{API_VERSION, EnvInfo, Kind};
pub use errors::EnvServerError;

/// How to open an environment.
#[derive(Debug, Clone)]
pub struct EnvServerConfig {
    /// Holds `environment.db` and `packages/`; created when missing.
    pub data_dir: PathBuf,
    pub name: String,
    /// Fixed at first start: reopening a data dir with another kind is refused.
    pub kind: Kind,
    /// Whether `info` reports the environment managed (targets must be, for the host).
    pub managed: bool,
    /// The id at first start (a new UUID when `None`); later, when set, it must match.
    pub environment_id: Option<String>,
    /// The bearer token (`GATEHOUSE_ENV_TOKEN`); it replaces any earlier one. When `None`,
    /// a token is generated at first start and [`EnvServer::token`] returns it once.
    pub token: Option<String>,
    /// A testing aid: how long each import waits before it installs, so that tests can
    /// stop the environment in the middle of one.
    pub import_delay: Duration,
}

impl EnvServerConfig {
    /// A config with the defaults: managed when a target, a generated id and token, no
    /// import delay.
    pub fn new(data_dir: impl Into<PathBuf>, name: impl Into<String>, kind: Kind) -> Self {
        EnvServerConfig {
            data_dir: data_dir.into(),
            name: name.into(),
            kind,
            managed: kind == Kind::Target,
            environment_id: None,
            token: None,
            import_delay: Duration::ZERO,
        }
    }
}

/// What every handler and the worker share.
struct State {
    store: store::Store,
    blobs: blobs::Blobs,
    /// The settings row, kept in step with the database (only `link` changes it).
    settings: RwLock<store::Settings>,
    kind: Kind,
    token_hashes: Vec<String>,
    limits: PackageLimits,
    import_delay: Duration,
    queue: mpsc::UnboundedSender<String>,
    stopping: watch::Receiver<bool>,
}

impl State {
    fn info(&self) -> EnvInfo {
        let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
        EnvInfo {
            environment_id: s.environment_id.clone(),
            name: s.name.clone(),
            kind: self.kind,
            managed: s.managed,
            linked_host: s.linked_host.clone(),
            api_version: API_VERSION.to_owned(),
        }
    }

    fn link_secret_sha256(&self) -> Option<String> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .link_secret_sha256
            .clone()
    }

    fn managed(&self) -> bool {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .managed
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// One running environment. Keep it alive while its router serves: dropping it, like
/// [`EnvServer::shutdown`], stops the import worker (imports still running are resumed at
/// the next open) and makes new imports answer 503.
pub struct EnvServer {
    state: Arc<State>,
    stop: watch::Sender<bool>,
    worker: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    generated_token: Option<String>,
}

impl EnvServer {
    /// Opens the environment in `config.data_dir`, creating it at first start, and starts
    /// the import worker, which first resumes the imports a stop interrupted.
    pub async fn open(config: EnvServerConfig) -> anyhow::Result<EnvServer> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create the data dir {}", dir.display()))?;
        let blobs = blobs::Blobs::open(dir)
            .with_context(|| format!("could not open the package folder in {}", dir.display()))?;
        let store = store::Store::open(&dir.join("environment.db")).await?;
        let settings = reconcile_settings(&store, &config).await?;

        let generated_token = match &config.token {
            Some(token) if token.trim().len() < 32 => bail!(
                "the environment token must be at least 32 characters; generate one with \
                 `openssl rand -hex 32`"
            ),
            Some(token) => {
                store.replace_tokens(&token_sha256(token.trim())).await?;
                None
            }
            None if store.token_hashes().await?.is_empty() => {
                let token = generate_token().map_err(|e| {
                    anyhow::anyhow!("could not generate a token: the OS random source failed ({e})")
                })?;
                store.replace_tokens(&token_sha256(&token)).await?;
                Some(token)
            }
            None => None,
        };
        let token_hashes = store.token_hashes().await?;

        let (queue, queued) = mpsc::unbounded_channel();
        let (stop, stopping) = watch::channel(false);
        let state = Arc::new(State {
            store,
            blobs,
            settings: RwLock::new(settings),
            kind: config.kind,
            token_hashes,
            limits: PackageLimits::default(),
            import_delay: config.import_delay,
            queue,
            stopping: stopping.clone(),
        });
        let worker = tokio::spawn(imports::run(state.clone(), queued, stopping));
        Ok(EnvServer {
            state,
            stop,
            worker: tokio::sync::Mutex::new(Some(worker)),
            generated_token,
        })
    }

    /// The routes, at `/env/v1/...`, behind the bearer token.
    pub fn router(&self) -> axum::Router {
        handlers::router(self.state.clone())
    }

    pub fn info(&self) -> EnvInfo {
        self.state.info()
    }

    /// The token generated at first start, to print once; `None` when it came from the
    /// config or was generated by an earlier start.
    pub fn token(&self) -> Option<&str> {
        self.generated_token.as_deref()
    }

    /// Stops the import worker and waits for it: an import in the middle of its delay
    /// stays `running` and is resumed at the next open; one installing finishes first.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(worker) = self.worker.lock().await.take() {
            let _ = worker.await;
        }
    }
}

impl Drop for EnvServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The settings row: written at first start, checked against the config later.
async fn reconcile_settings(
    store: &store::Store,
    config: &EnvServerConfig,
) -> anyhow::Result<store::Settings> {
    let name = config.name.trim();
    if name.is_empty() {
        bail!("the environment needs a name (--name)");
    }
    let Some(mut settings) = store.settings().await? else {
        let environment_id = match &config.environment_id {
            Some(id) if id.trim().is_empty() => bail!("the environment id may not be empty"),
            Some(id) => id.trim().to_owned(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let settings = store::Settings {
            environment_id,
            name: name.to_owned(),
            kind: config.kind.as_str().to_owned(),
            managed: config.managed,
            linked_host: None,
            link_secret_sha256: None,
        };
        store.save_settings(&settings).await?;
        return Ok(settings);
    };
    if let Some(id) = &config.environment_id
        && id.trim() != settings.environment_id
    {
        bail!(
            "the data dir {} holds environment {}, not {}; use another data dir, or drop \
             --environment-id",
            config.data_dir.display(),
            settings.environment_id,
            id.trim()
        );
    }
    let stored_kind = Kind::parse(&settings.kind);
    if stored_kind != Some(config.kind) {
        bail!(
            "the data dir {} holds a {} environment; start it with --kind {}, or use another \
             data dir for a {} environment",
            config.data_dir.display(),
            settings.kind,
            settings.kind,
            config.kind.as_str()
        );
    }
    if settings.name != name || settings.managed != config.managed {
        settings.name = name.to_owned();
        settings.managed = config.managed;
        store.save_settings(&settings).await?;
    }
    Ok(settings)
}

/// A new bearer token: 32 random bytes, hex.
fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What the environment keeps of a token: its SHA-256, lower-case hex.
fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
