//! Webhook delivery: the only code that calls receivers. It claims due deliveries from
//! the store, POSTs each signed body, and records what came back; the schedule and the
//! signature format are the domain's ([`crate::pipeline::webhooks`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::engine::now_ms;
use crate::pipeline::store::Store;
use crate::pipeline::webhooks::{
    DELIVERY_HEADER, DeliveryAttempt, DueDelivery, EVENT_HEADER, SIGNATURE_HEADER, after_attempt,
    signature,
};

/// How long a receiver has to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery stays with this sender; past it, a delivery whose sender
/// died is due again. Longer than the request timeout, so a live sender always finishes
/// first.
const LEASE: Duration = Duration::from_secs(30);
/// Deliveries claimed, and sent concurrently, per round.
const CLAIM_BATCH: u32 = 16;
/// How often the sender looks for due deliveries when the last round found none.
const POLL: Duration = Duration::from_millis(250);
/// Longest error text kept per attempt.
const MAX_ERROR_LEN: usize = 500;

/// Sends webhook deliveries until `shutdown` resolves; attempts in flight then finish.
pub async fn run(store: Arc<dyn Store>, shutdown: impl std::future::Future<Output = ()>) {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; no webhook will be sent");
            return;
        }
    };
    tokio::pin!(shutdown);
    loop {
        let now = now_ms();
        let lease_until = now + LEASE.as_millis() as u64;
        let pause = match store.claim_deliveries(now, lease_until, CLAIM_BATCH).await {
            Ok(due) if due.is_empty() => POLL,
            Ok(due) => {
                let full = due.len() as u32 >= CLAIM_BATCH;
                let sends = due.into_iter().map(|d| deliver(&client, store.as_ref(), d));
                futures_util::future::join_all(sends).await;
                if full { Duration::ZERO } else { POLL }
            }
            Err(error) => {
                tracing::warn!(%error, "could not claim webhook deliveries; trying again");
                POLL * 8
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One attempt at one delivery, recorded whatever happens.
async fn deliver(client: &reqwest::Client, store: &dyn Store, delivery: DueDelivery) {
    let started = Instant::now();
    let at = now_ms();
    let signed = signature(&delivery.secret, at / 1000, delivery.payload.as_bytes());
    let response = client
        .post(&delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &delivery.event)
        .header(DELIVERY_HEADER, &delivery.id)
        .header(SIGNATURE_HEADER, signed)
        .body(delivery.payload.clone())
        .send()
        .await;
    let (status_code, error) = match response {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(describe(&error))),
    };
    let attempt = DeliveryAttempt {
        attempt: delivery.attempt,
        at,
        status_code,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let after = after_attempt(&attempt, now_ms(), delivery.give_up_at);
    tracing::info!(
        delivery = %delivery.id,
        webhook = %delivery.webhook_id,
        event = %delivery.event,
        attempt = attempt.attempt,
        status = ?attempt.status_code,
        outcome = after.status.as_str(),
        "webhook attempt"
    );
    if let Err(error) = store.record_attempt(&delivery.id, &attempt, after).await {
        // The delivery is due again when its lease lapses, so it is retried, not lost.
        tracing::warn!(%error, delivery = %delivery.id, "could not record a webhook attempt");
    }
}

/// Why a request got no answer, without the URL (which may carry a token in its query).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_redirect() {
        "answered with a redirect, which is not followed".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    let mut text = if cause.is_empty() {
        kind
    } else {
        format!("{kind}: {cause}")
    };
    if text.len() > MAX_ERROR_LEN {
        let end = (0..=MAX_ERROR_LEN)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
    }
    text
}
