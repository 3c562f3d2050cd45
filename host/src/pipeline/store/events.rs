//! Lifecycle events (see `crate::pipeline::events`).

use async_trait::async_trait;

use crate::pipeline::events::LifecycleEvent;

use super::StoreResult;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Gives the next positions to up to `limit` committed lifecycle events that have
    /// none, in timeline order per deployment, and queues a delivery of each to every
    /// webhook it matches, in one transaction that only one caller at a time runs.
    /// Returns how many events it numbered.
    async fn sequence_events(&self, limit: u32) -> StoreResult<u32>;
    /// Up to `limit` lifecycle events after position `after`, in order.
    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<LifecycleEvent>>;
}
