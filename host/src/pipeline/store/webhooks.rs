//! Webhooks and their deliveries (see `crate::pipeline::webhooks`).

use async_trait::async_trait;

use crate::pipeline::gate::Timestamp;
use crate::pipeline::webhooks::{
    AfterAttempt, DeliveryAttempt, DeliveryRecord, DueDelivery, WebhookRecord,
};

use super::{Audit, Page, StoreResult};

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a webhook with its signing secret.
    async fn insert_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        audit: &Audit,
    ) -> StoreResult<()>;
    /// Replaces a webhook; a new secret when `secret` is given.
    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord>;
    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<WebhookRecord>>;
    /// Deletes the webhook and its deliveries.
    async fn delete_webhook(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    /// The webhook's deliveries, newest first, each with its attempts.
    async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Makes a delivery due now, with a new retry window that ends at `give_up_at`.
    async fn redeliver(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
        give_up_at: Timestamp,
        audit: &Audit,
    ) -> StoreResult<DeliveryRecord>;
    /// Claims up to `limit` deliveries due at `now` for one attempt each: the attempt is
    /// counted, and the delivery is not due again before `lease_until`, so one whose
    /// sender dies is tried again then.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records an attempt and what it leaves the delivery as, unless the delivery has
    /// been claimed again since (its lease lapsed); then only the attempt is kept.
    async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: &DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()>;
}
