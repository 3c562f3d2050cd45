//! The background tasks a host runs beside its HTTP surface: the engine's worker, the
//! event sequencer, the webhook sender and the retention sweeper. They start together and
//! stop together, each finishing the step it is in.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::outbound::AllowList;
use crate::pipeline::engine::Engine;
use crate::pipeline::store::Store;

/// The running tasks, and the switch that stops them.
pub struct Tasks {
    stop: watch::Sender<bool>,
    worker: JoinHandle<()>,
    /// The event sequencer, the webhook sender and retention, stopped with the worker.
    background: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Starts every task; `artifacts_dir` is where retention removes expired packages, and
    /// `outbound` the receivers webhooks may be sent to.
    pub fn spawn(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        artifacts_dir: PathBuf,
        outbound: AllowList,
    ) -> Tasks {
        let (stop, stop_rx) = watch::channel(false);
        let background = vec![
            tokio::spawn(crate::pipeline::events::run_sequencer(
                store.clone(),
                wait_for(stop_rx.clone()),
            )),
            tokio::spawn(crate::webhook_sender::run(
                store.clone(),
                outbound,
                wait_for(stop_rx.clone()),
            )),
            tokio::spawn(crate::pipeline::retention::run_retention(
                store,
                artifacts_dir,
                wait_for(stop_rx.clone()),
            )),
        ];
        let worker = tokio::spawn(engine.run(wait_for(stop_rx)));
        Tasks {
            stop,
            worker,
            background,
        }
    }

    /// A switch that asks every task to stop, for a shutdown signal to flip.
    pub fn stop_switch(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Asks every task to stop and waits until each has committed its step in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
        for task in self.background {
            let _ = task.await;
        }
    }
}

/// Resolves once `stop` turns true, or its sender is gone.
async fn wait_for(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
