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
use crate::api::problems::{Forbidden, NotFound};
use crate::api::{ApiError, AppState};
use crate::pipeline::model::Id;
use crate::pipeline::operations::{self, WebhookDraft};
use crate::pipeline::webhooks::{DeliveryRecord, WebhookRecord};

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
    /// Where to POST deliveries: `https://…` (or `http://` on a trusted network), with a
    /// host name or an IPv4 address, and no credentials.
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://(([A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*\\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*\\.?|(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?#][^\\s]*)?$"
    )]
    pub url: String,
    /// Lifecycle event names, such as `deployment_completed`.
    #[schema(schema_with = event_names)]
    pub events: Vec<String>,
    /// Only this pipeline's events.
    #[serde(default)]
    pub pipeline_id: Option<Id>,
    /// Only this stage's events.
    #[serde(default)]
    pub stage_id: Option<Id>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// True when omitted.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How long a delivery is retried; 86400 (24 h) when omitted, 60 to 604800.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 604800)]
    pub give_up_after_seconds: Option<u64>,
}

/// Fields to change; those left out keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://(([A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*\\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*\\.?|(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?#][^\\s]*)?$"
    )]
    pub url: Option<String>,
    #[schema(schema_with = event_names_or_null)]
    pub events: Option<Vec<String>>,
    /// A pipeline id, or null for every pipeline.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub pipeline_id: Option<Option<Id>>,
    /// A stage id, or null for every stage.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub stage_id: Option<Option<Id>>,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
    #[schema(minimum = 60, maximum = 604800)]
    pub give_up_after_seconds: Option<u64>,
    /// Makes a new signing secret, shown once in the answer; the old one stops at once.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// The schema of `events`: one or more lifecycle event names.
fn event_names() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(crate::pipeline::events::event_names())),
        )
        .min_items(Some(1))
        .build()
}

/// The same, or null for no change.
fn event_names_or_null() -> utoipa::openapi::schema::Schema {
    let either = utoipa::openapi::schema::OneOfBuilder::new()
        .item(event_names())
        .item(
            utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null),
        )
        .build();
    utoipa::openapi::schema::Schema::OneOf(either)
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

impl From<NewWebhook> for WebhookDraft {
    fn from(body: NewWebhook) -> WebhookDraft {
        WebhookDraft {
            url: body.url,
            events: body.events,
            pipeline_id: body.pipeline_id,
            stage_id: body.stage_id,
            description: body.description,
            enabled: body.enabled,
            give_up_after_seconds: body.give_up_after_seconds,
        }
    }
}

impl From<WebhookChange> for operations::WebhookChange {
    fn from(change: WebhookChange) -> operations::WebhookChange {
        operations::WebhookChange {
            url: change.url,
            events: change.events,
            pipeline_id: change.pipeline_id,
            stage_id: change.stage_id,
            description: change.description,
            enabled: change.enabled,
            give_up_after_seconds: change.give_up_after_seconds,
            rotate_secret: change.rotate_secret,
        }
    }
}

/// Subscribes a URL to lifecycle events. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "the pipeline or stage it names does not exist"),
    ))]
async fn create_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let (webhook, secret) = state
        .operations()
        .create_webhook(&actor, body.into())
        .await?;
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
        Forbidden,
    ))]
async fn list_webhooks(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<WebhookRecord>>, ApiError> {
    let page = query.page()?;
    let listing = state.operations().list_webhooks(&actor, &page).await?;
    Ok(Json(listing.into()))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses(
        (status = 200, body = WebhookRecord),
        Forbidden,
        NotFound,
    ))]
async fn get_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
) -> Result<Json<WebhookRecord>, ApiError> {
    Ok(Json(state.operations().webhook(&actor, &id).await?))
}

/// Changes a webhook; `rotate_secret` makes a new secret, shown once in the answer.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = WebhookChange,
    responses(
        (status = 200, body = WebhookWithSecret),
        Forbidden,
        NotFound,
    ))]
async fn update_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
    Json(change): Json<WebhookChange>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let (webhook, secret) = state
        .operations()
        .update_webhook(&actor, &id, change.into())
        .await?;
    Ok(Json(WebhookWithSecret { webhook, secret }))
}

/// Deletes a webhook and its deliveries; those not yet sent are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        Forbidden,
        NotFound,
    ))]
async fn delete_webhook(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
) -> Result<StatusCode, ApiError> {
    state.operations().delete_webhook(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's deliveries, newest first, each with its attempts and their answers.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), PageQuery),
    responses(
        (status = 200, body = Paged<DeliveryRecord>),
        Forbidden,
        NotFound,
    ))]
async fn list_deliveries(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<Id>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Paged<DeliveryRecord>>, ApiError> {
    let page = query.page()?;
    let listing = state.operations().deliveries(&actor, &id, &page).await?;
    Ok(Json(listing.into()))
}

/// Sends a delivery again now, whatever became of it, with a fresh retry window.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{did}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("did" = String, Path)),
    responses(
        (status = 200, body = DeliveryRecord),
        Forbidden,
        NotFound,
    ))]
async fn redeliver(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, delivery_id)): Path<(Id, Id)>,
) -> Result<Json<DeliveryRecord>, ApiError> {
    let delivery = state
        .operations()
        .redeliver(&actor, &id, &delivery_id)
        .await?;
    Ok(Json(delivery))
}
