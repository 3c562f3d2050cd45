//! Webhooks: admins subscribe URLs to lifecycle events, and see and repeat deliveries.
//! The signing secret is shown once, when it is made.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Admin;
use crate::api::errors::Problem;
use crate::api::extract::{Json, Path, Query, present};
use crate::api::pagination::{PageQuery, Paged};
use crate::api::{ApiError, AppState, audit, now};
use crate::pipeline::model::{Id, new_id};
use crate::pipeline::store::scan_all;
use crate::pipeline::webhooks::{DEFAULT_GIVE_UP_AFTER, DeliveryRecord, WebhookRecord, new_secret};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST deliveries: `https://…` (or `http://` on a trusted network).
    pub url: String,
    /// Lifecycle event names, such as `deployment_completed`.
    pub events: Vec<String>,
    /// Only this pipeline's events.
    #[serde(default)]
    pub pipeline_id: Option<Id>,
    /// Only this stage's events.
    #[serde(default)]
    pub stage_id: Option<Id>,
    #[serde(default)]
    pub description: String,
    /// True when omitted.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long a delivery is retried; 86400 (24 h) when omitted, 60 to 604800.
    #[serde(default)]
    pub give_up_after_seconds: Option<u64>,
}

/// Fields to change; those left out keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// A pipeline id, or null for every pipeline.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub pipeline_id: Option<Option<Id>>,
    /// A stage id, or null for every stage.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stage_id: Option<Option<Id>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub give_up_after_seconds: Option<u64>,
    /// Makes a new signing secret, shown once in the answer; the old one stops at once.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// A webhook, with its signing secret when it was just made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookRecord,
    /// The key of `Gatehouse-Signature`: shown only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Checks the webhook's rules and that the pipeline and stage it names exist.
async fn check(state: &AppState, webhook: &WebhookRecord) -> Result<(), ApiError> {
    webhook.validate().map_err(ApiError::invalid)?;
    match (&webhook.pipeline_id, &webhook.stage_id) {
        (Some(pipeline_id), stage) => {
            let pipeline = state.store.get_pipeline(pipeline_id).await.map_err(|_| {
                ApiError::invalid(format!("pipeline_id {pipeline_id} names no pipeline"))
            })?;
            if let Some(stage) = stage
                && pipeline.stage(stage).is_none()
            {
                return Err(ApiError::invalid(format!(
                    "stage_id {stage} is not a stage of pipeline {pipeline_id}"
                )));
            }
        }
        (None, Some(stage)) => {
            let store = state.store.as_ref();
            let pipelines = scan_all(
                move |p| async move { store.list_pipelines(&p).await },
                |p| p.id.clone(),
            )
            .await?;
            if !pipelines.iter().any(|p| p.stage(stage).is_some()) {
                return Err(ApiError::invalid(format!(
                    "stage_id {stage} names no stage"
                )));
            }
        }
        (None, None) => {}
    }
    Ok(())
}

fn secret() -> Result<String, ApiError> {
    new_secret().map_err(ApiError::internal)
}

fn summary(webhook: &WebhookRecord) -> serde_json::Value {
    serde_json::json!({
        "url": webhook.url,
        "events": webhook.events,
        "pipeline_id": webhook.pipeline_id,
        "stage_id": webhook.stage_id,
        "enabled": webhook.enabled,
    })
}

/// Subscribes a URL to lifecycle events. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a bad URL, an unknown event name, or an unknown pipeline or stage"),
    ))]
async fn create_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let at = now();
    let webhook = WebhookRecord {
        id: new_id(),
        url: body.url.trim().to_owned(),
        events: body.events,
        pipeline_id: body.pipeline_id.filter(|p| !p.is_empty()),
        stage_id: body.stage_id.filter(|s| !s.is_empty()),
        description: body.description,
        enabled: body.enabled.unwrap_or(true),
        give_up_after_seconds: body
            .give_up_after_seconds
            .unwrap_or(DEFAULT_GIVE_UP_AFTER.as_secs()),
        created_at: at,
        updated_at: at,
    };
    check(&state, &webhook).await?;
    let secret = secret()?;
    let line = audit(&actor, "webhook.create", &webhook.id, summary(&webhook));
    state.store.insert_webhook(&webhook, &secret, &line).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook,
            secret: Some(secret),
        }),
    ))
}

/// Webhooks, newest first.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(PageQuery),
    responses(
        (status = 200, body = Paged<WebhookRecord>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_webhooks(
    State(state): State<AppState>,
    Admin(_): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<WebhookRecord>>, ApiError> {
    let mut page = query.page()?;
    let wanted = page.limit as usize;
    page.limit += 1;
    let mut items = state.store.list_webhooks(&page).await?;
    let next = if items.len() > wanted {
        items.truncate(wanted);
        items.last().map(|w| w.id.clone())
    } else {
        None
    };
    Ok(Json(Paged { items, next }))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses(
        (status = 200, body = WebhookRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_webhook(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
) -> Result<Json<WebhookRecord>, ApiError> {
    Ok(Json(state.store.get_webhook(&id).await?))
}

/// Changes a webhook; `rotate_secret` makes a new secret, shown once in the answer.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = WebhookChange,
    responses(
        (status = 200, body = WebhookWithSecret),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
    Json(change): Json<WebhookChange>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let mut webhook = state.store.get_webhook(&id).await?;
    if let Some(url) = change.url {
        webhook.url = url.trim().to_owned();
    }
    if let Some(events) = change.events {
        webhook.events = events;
    }
    if let Some(pipeline_id) = change.pipeline_id {
        webhook.pipeline_id = pipeline_id.filter(|p| !p.is_empty());
    }
    if let Some(stage_id) = change.stage_id {
        webhook.stage_id = stage_id.filter(|s| !s.is_empty());
    }
    if let Some(description) = change.description {
        webhook.description = description;
    }
    if let Some(enabled) = change.enabled {
        webhook.enabled = enabled;
    }
    if let Some(seconds) = change.give_up_after_seconds {
        webhook.give_up_after_seconds = seconds;
    }
    webhook.updated_at = now();
    check(&state, &webhook).await?;
    let secret = change.rotate_secret.then(secret).transpose()?;
    let mut detail = summary(&webhook);
    detail["rotated_secret"] = change.rotate_secret.into();
    let line = audit(&actor, "webhook.update", &id, detail);
    state
        .store
        .update_webhook(&webhook, secret.as_deref(), &line)
        .await?;
    Ok(Json(WebhookWithSecret { webhook, secret }))
}

/// Deletes a webhook and its deliveries; those not yet sent are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    let webhook = state.store.get_webhook(&id).await?;
    let line = audit(&actor, "webhook.delete", &id, summary(&webhook));
    state.store.delete_webhook(&id, &line).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's deliveries, newest first, each with its attempts and their answers.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), PageQuery),
    responses(
        (status = 200, body = Paged<DeliveryRecord>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_deliveries(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<DeliveryRecord>>, ApiError> {
    state.store.get_webhook(&id).await?;
    let mut page = query.page()?;
    let wanted = page.limit as usize;
    page.limit += 1;
    let mut items = state.store.list_deliveries(&id, &page).await?;
    let next = if items.len() > wanted {
        items.truncate(wanted);
        items.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok(Json(Paged { items, next }))
}

/// Sends a delivery again now, whatever became of it, with a fresh retry window.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{did}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("did" = String, Path)),
    responses(
        (status = 200, body = DeliveryRecord),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn redeliver(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, delivery_id)): Path<(Id, Id)>,
) -> Result<Json<DeliveryRecord>, ApiError> {
    let webhook = state.store.get_webhook(&id).await?;
    let at = now();
    let give_up_at = at.saturating_add(webhook.give_up_after_seconds.saturating_mul(1000));
    let line = audit(
        &actor,
        "webhook.redeliver",
        &delivery_id,
        serde_json::json!({ "webhook_id": id }),
    );
    let delivery = state
        .store
        .redeliver(&id, &delivery_id, at, give_up_at, &line)
        .await?;
    Ok(Json(delivery))
}
