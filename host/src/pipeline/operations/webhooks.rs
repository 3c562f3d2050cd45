//! Webhooks: admins subscribe URLs to lifecycle events, change and delete them, and see
//! and repeat deliveries. The signing secret is made here and shown once.

use serde_json::json;

use super::{Listing, Operations};
use crate::pipeline::access::require_admin;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::model::{Id, User, new_id};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{Page, scan_all};
use crate::pipeline::webhooks::{DEFAULT_GIVE_UP_AFTER, DeliveryRecord, WebhookRecord, new_secret};

/// A new webhook, as an admin describes it.
#[derive(Debug, Clone, Default)]
pub struct WebhookDraft {
    pub url: String,
    pub events: Vec<String>,
    pub pipeline_id: Option<Id>,
    pub stage_id: Option<Id>,
    pub description: String,
    /// True when not given.
    pub enabled: Option<bool>,
    /// [`DEFAULT_GIVE_UP_AFTER`] when not given.
    pub give_up_after_seconds: Option<u64>,
}

/// Fields to change; those left `None` keep their value.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `Some(None)` lifts the filter.
    pub pipeline_id: Option<Option<Id>>,
    /// `Some(None)` lifts the filter.
    pub stage_id: Option<Option<Id>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub give_up_after_seconds: Option<u64>,
    /// Makes a new signing secret; the old one stops at once.
    pub rotate_secret: bool,
}

/// An empty filter is no filter.
fn filter(id: Option<Id>) -> Option<Id> {
    id.filter(|i| !i.is_empty())
}

fn secret() -> ServiceResult<String> {
    new_secret().map_err(ServiceError::Internal)
}

fn summary(webhook: &WebhookRecord) -> serde_json::Value {
    json!({
        "url": webhook.url,
        "events": webhook.events,
        "pipeline_id": webhook.pipeline_id,
        "stage_id": webhook.stage_id,
        "enabled": webhook.enabled,
    })
}

impl WebhookChange {
    /// The webhook with this change applied, stamped `at`.
    fn apply(self, mut webhook: WebhookRecord, at: u64) -> WebhookRecord {
        if let Some(url) = self.url {
            webhook.url = url.trim().to_owned();
        }
        if let Some(events) = self.events {
            webhook.events = events;
        }
        if let Some(pipeline_id) = self.pipeline_id {
            webhook.pipeline_id = filter(pipeline_id);
        }
        if let Some(stage_id) = self.stage_id {
            webhook.stage_id = filter(stage_id);
        }
        if let Some(description) = self.description {
            webhook.description = description;
        }
        if let Some(enabled) = self.enabled {
            webhook.enabled = enabled;
        }
        if let Some(seconds) = self.give_up_after_seconds {
            webhook.give_up_after_seconds = seconds;
        }
        webhook.updated_at = at;
        webhook
    }
}

impl Operations<'_> {
    /// Checks the webhook's rules and that the pipeline and stage it names exist.
    async fn check_webhook(&self, webhook: &WebhookRecord) -> ServiceResult<()> {
        webhook.validate().map_err(ServiceError::invalid)?;
        match (&webhook.pipeline_id, &webhook.stage_id) {
            (Some(pipeline_id), stage) => {
                let pipeline = self.store.get_pipeline(pipeline_id).await.map_err(|_| {
                    ServiceError::not_found(format!("pipeline_id {pipeline_id} names no pipeline"))
                })?;
                if let Some(stage) = stage
                    && pipeline.stage(stage).is_none()
                {
                    return Err(ServiceError::not_found(format!(
                        "stage_id {stage} is not a stage of pipeline {pipeline_id}"
                    )));
                }
            }
            (None, Some(stage)) => {
                let store = self.store;
                let pipelines = scan_all(
                    move |p| async move { store.list_pipelines(&p).await },
                    |p| p.id.clone(),
                )
                .await?;
                if !pipelines.iter().any(|p| p.stage(stage).is_some()) {
                    return Err(ServiceError::not_found(format!(
                        "stage_id {stage} names no stage"
                    )));
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Subscribes a URL to lifecycle events; answers the webhook and its signing secret.
    pub async fn create_webhook(
        &self,
        actor: &User,
        draft: WebhookDraft,
    ) -> ServiceResult<(WebhookRecord, String)> {
        let actor = require_admin(actor, "creating a webhook")?;
        let at = now();
        let webhook = WebhookRecord {
            id: new_id(),
            url: draft.url.trim().to_owned(),
            events: draft.events,
            pipeline_id: filter(draft.pipeline_id),
            stage_id: filter(draft.stage_id),
            description: draft.description,
            enabled: draft.enabled.unwrap_or(true),
            give_up_after_seconds: draft
                .give_up_after_seconds
                .unwrap_or(DEFAULT_GIVE_UP_AFTER.as_secs()),
            created_at: at,
            updated_at: at,
        };
        self.check_webhook(&webhook).await?;
        let secret = secret()?;
        let line = audit(actor, "webhook.create", &webhook.id, summary(&webhook));
        self.store.insert_webhook(&webhook, &secret, &line).await?;
        Ok((webhook, secret))
    }

    /// Webhooks, newest first.
    pub async fn list_webhooks(
        &self,
        actor: &User,
        page: &Page,
    ) -> ServiceResult<Listing<WebhookRecord>> {
        require_admin(actor, "listing webhooks")?;
        let mut ask = page.clone();
        ask.limit += 1;
        let items = self.store.list_webhooks(&ask).await?;
        Ok(Listing::of(items, page.limit as usize, |w| w.id.clone()))
    }

    pub async fn webhook(&self, actor: &User, id: &str) -> ServiceResult<WebhookRecord> {
        require_admin(actor, "reading a webhook")?;
        Ok(self.store.get_webhook(id).await?)
    }

    /// Changes a webhook; answers it with the new secret when one was made.
    pub async fn update_webhook(
        &self,
        actor: &User,
        id: &str,
        change: WebhookChange,
    ) -> ServiceResult<(WebhookRecord, Option<String>)> {
        let actor = require_admin(actor, "changing a webhook")?;
        let rotate = change.rotate_secret;
        let webhook = change.apply(self.store.get_webhook(id).await?, now());
        self.check_webhook(&webhook).await?;
        let secret = rotate.then(secret).transpose()?;
        let mut detail = summary(&webhook);
        detail["rotated_secret"] = rotate.into();
        let line = audit(actor, "webhook.update", id, detail);
        self.store
            .update_webhook(&webhook, secret.as_deref(), &line)
            .await?;
        Ok((webhook, secret))
    }

    /// Deletes a webhook and its deliveries; those not yet sent are dropped.
    pub async fn delete_webhook(&self, actor: &User, id: &str) -> ServiceResult<()> {
        let actor = require_admin(actor, "deleting a webhook")?;
        let webhook = self.store.get_webhook(id).await?;
        let line = audit(actor, "webhook.delete", id, summary(&webhook));
        self.store.delete_webhook(id, &line).await?;
        Ok(())
    }

    /// The webhook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        actor: &User,
        id: &str,
        page: &Page,
    ) -> ServiceResult<Listing<DeliveryRecord>> {
        require_admin(actor, "listing a webhook's deliveries")?;
        self.store.get_webhook(id).await?;
        let mut ask = page.clone();
        ask.limit += 1;
        let items = self.store.list_deliveries(id, &ask).await?;
        Ok(Listing::of(items, page.limit as usize, |d| d.id.clone()))
    }

    /// Sends a delivery again now, whatever became of it, with a fresh retry window.
    pub async fn redeliver(
        &self,
        actor: &User,
        id: &str,
        delivery_id: &str,
    ) -> ServiceResult<DeliveryRecord> {
        let actor = require_admin(actor, "redelivering a webhook delivery")?;
        let webhook = self.store.get_webhook(id).await?;
        let at = now();
        let give_up_at = at.saturating_add(webhook.give_up_after_seconds.saturating_mul(1000));
        let line = audit(
            actor,
            "webhook.redeliver",
            delivery_id,
            json!({ "webhook_id": id }),
        );
        Ok(self
            .store
            .redeliver(id, delivery_id, at, give_up_at, &line)
            .await?)
    }
}
