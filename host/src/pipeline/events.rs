//! The seven lifecycle events that external systems follow, and the sequencer that puts
//! them in one total order.
//!
//! The events are the deployment's own timeline rows, written in the same transaction as
//! the state change (an outbox): nothing else is written per save. A timeline row becomes
//! visible when its transaction commits, which on PostgreSQL is not the order the rows
//! were inserted in, so a feed that read by insertion id could skip a row that commits
//! late. Instead the sequencer numbers committed rows after the fact, one batch at a time
//! under a lock, and the feed reads `position > cursor`: a position, once visible, is
//! never preceded by one that shows up later.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gate::Timestamp;
use super::model::Id;
use super::store::Store;

/// The lifecycle events, by their public name, and the timeline kind that records each.
pub const LIFECYCLE: [(&str, &str); 7] = [
    ("deployment_requested", "requested"),
    ("approval_started", "approval_started"),
    ("approval_completed", "approval_completed"),
    ("pre_deployment_started", "pre_deployment_started"),
    ("pre_deployment_completed", "pre_deployment_completed"),
    ("deployment_started", "deployment_started"),
    ("deployment_completed", "deployment_completed"),
];

/// Timeline events numbered per sequencer round: large enough to drain a busy host, small
/// enough that the round's transaction stays short.
pub const SEQUENCE_BATCH: u32 = 500;

/// How often the sequencer looks for new events when the last round found none.
const SEQUENCE_POLL: Duration = Duration::from_millis(200);

/// How long the sequencer waits after a store error before it tries again.
const SEQUENCE_BACKOFF: Duration = Duration::from_secs(2);

/// The public name of a timeline kind, when it is a lifecycle event.
pub fn event_name(kind: &str) -> Option<&'static str> {
    LIFECYCLE.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n)
}

/// Whether `name` is a lifecycle event's public name.
pub fn is_event_name(name: &str) -> bool {
    LIFECYCLE.iter().any(|(n, _)| *n == name)
}

/// The public names, for error messages.
pub fn event_names() -> Vec<&'static str> {
    LIFECYCLE.iter().map(|(n, _)| *n).collect()
}

/// A lifecycle event as the feed and webhooks show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LifecycleEvent {
    /// The event's place in the host's total order; pass the last one seen as `after`.
    pub position: i64,
    /// `deployment_requested`, `approval_started`, `approval_completed`,
    /// `pre_deployment_started`, `pre_deployment_completed`, `deployment_started` or
    /// `deployment_completed`.
    pub event: String,
    pub deployment_id: Id,
    /// The event's number in the deployment's timeline.
    pub seq: u32,
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub solution: String,
    pub version: String,
    /// The final status, for `deployment_completed`: succeeded, failed, rejected or
    /// canceled.
    pub status: Option<String>,
    pub at: Timestamp,
    pub actor: Option<Id>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl LifecycleEvent {
    /// The body a webhook receives for this event.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "event": self.event,
            "position": self.position,
            "data": self,
        })
    }
}

/// A committed timeline row that waits for its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsequenced {
    pub deployment_id: Id,
    pub seq: u32,
    pub at: Timestamp,
}

/// Puts a batch of unsequenced rows in the order they get their positions: by time, but
/// each deployment's rows always in timeline order, even if a clock stepped back between
/// them. Each deployment keeps the slots its rows take in time order, filled in `seq`
/// order.
pub fn sequence_order<T>(rows: Vec<T>, key: impl Fn(&T) -> &Unsequenced) -> Vec<T> {
    let mut by_time: Vec<usize> = (0..rows.len()).collect();
    by_time.sort_by(|&a, &b| {
        let (a, b) = (key(&rows[a]), key(&rows[b]));
        (a.at, &a.deployment_id, a.seq).cmp(&(b.at, &b.deployment_id, b.seq))
    });
    let mut by_seq: std::collections::BTreeMap<&Id, Vec<usize>> = Default::default();
    for &i in &by_time {
        by_seq
            .entry(&key(&rows[i]).deployment_id)
            .or_default()
            .push(i);
    }
    for slots in by_seq.values_mut() {
        slots.sort_by_key(|&i| key(&rows[i]).seq);
        slots.reverse();
    }
    let order: Vec<usize> = by_time
        .iter()
        .map(|&slot| {
            let deployment = &key(&rows[slot]).deployment_id;
            by_seq
                .get_mut(deployment)
                .and_then(Vec::pop)
                .expect("every slot belongs to a deployment of the batch")
        })
        .collect();
    let mut rows: Vec<Option<T>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| rows[i].take().expect("each row is placed once"))
        .collect()
}

/// Numbers newly committed lifecycle events (and queues their webhook deliveries) until
/// `shutdown` resolves.
pub async fn run_sequencer(store: Arc<dyn Store>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pause = match store.sequence_events(SEQUENCE_BATCH).await {
            Ok(n) if n >= SEQUENCE_BATCH => Duration::ZERO,
            Ok(_) => SEQUENCE_POLL,
            Err(error) => {
                tracing::warn!(%error, "could not number new lifecycle events; trying again");
                SEQUENCE_BACKOFF
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(deployment: &str, seq: u32, at: Timestamp) -> Unsequenced {
        Unsequenced {
            deployment_id: deployment.into(),
            seq,
            at,
        }
    }

    #[test]
    fn a_batch_is_ordered_by_time_but_each_deployment_by_seq() {
        let rows = vec![
            row("b", 1, 20),
            row("a", 1, 10),
            // The clock stepped back: a's second event carries an earlier time.
            row("a", 2, 5),
            row("b", 2, 30),
        ];
        let ordered = sequence_order(rows, |r| r);
        let got: Vec<(&str, u32)> = ordered
            .iter()
            .map(|r| (r.deployment_id.as_str(), r.seq))
            .collect();
        assert_eq!(got, [("a", 1), ("a", 2), ("b", 1), ("b", 2)]);
    }

    #[test]
    fn every_lifecycle_kind_has_one_name() {
        assert_eq!(event_name("requested"), Some("deployment_requested"));
        assert_eq!(event_name("vote"), None);
        assert!(is_event_name("deployment_completed"));
        assert!(!is_event_name("requested"));
    }
}
