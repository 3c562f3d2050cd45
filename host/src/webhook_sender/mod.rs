//! Webhook delivery: the only code that calls receivers. It claims due deliveries from
//! the store, POSTs each signed body, and records what came back; the schedule and the
//! signature format are the domain's ([`crate::pipeline::webhooks`]). A receiver outside
//! the outbound allow-list ([`crate::outbound`]) is never connected to: the attempt fails
//! with the refusal as its error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::outbound::{AllowList, SendError};
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

/// The client that calls receivers: no redirects, and only where `allow` lets it.
fn client(allow: &AllowList) -> reqwest::Result<reqwest::Client> {
    allow
        .client_builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends webhook deliveries, to receivers `allow` allows, until `shutdown` resolves;
/// attempts in flight then finish.
pub async fn run(
    store: Arc<dyn Store>,
    allow: AllowList,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let client = match client(&allow) {
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
                let sends = due
                    .into_iter()
                    .map(|d| deliver(&client, &allow, store.as_ref(), d));
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
async fn deliver(
    client: &reqwest::Client,
    allow: &AllowList,
    store: &dyn Store,
    delivery: DueDelivery,
) {
    let started = Instant::now();
    let at = now_ms();
    let (status_code, error) = match post(client, allow, &delivery, at).await {
        Ok(status) => (Some(status), None),
        Err(error) => (None, Some(error)),
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

/// POSTs the signed delivery; the receiver's status, or why there is none.
async fn post(
    client: &reqwest::Client,
    allow: &AllowList,
    delivery: &DueDelivery,
    at: u64,
) -> Result<u16, String> {
    let signed = signature(&delivery.secret, at / 1000, delivery.payload.as_bytes());
    let request = client
        .post(&delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &delivery.event)
        .header(DELIVERY_HEADER, &delivery.id)
        .header(SIGNATURE_HEADER, signed)
        .body(delivery.payload.clone());
    match allow.send(request).await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(SendError::Refused(refused)) => Err(refused.to_string()),
        Err(SendError::Failed(error)) => Err(describe(&error)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::tests::Receiver;

    fn delivery(url: String) -> DueDelivery {
        DueDelivery {
            id: "d1".into(),
            webhook_id: "w1".into(),
            event: "deployment.succeeded".into(),
            attempt: 1,
            give_up_at: u64::MAX,
            url,
            secret: "s3cret".into(),
            payload: "{}".into(),
        }
    }

    async fn attempt(allow: &str, url: String) -> Result<u16, String> {
        let allow: AllowList = allow.parse().expect("a valid allow-list");
        let client = client(&allow).expect("a client");
        post(&client, &allow, &delivery(url), now_ms()).await
    }

    #[tokio::test]
    async fn a_receiver_outside_the_allow_list_fails_the_attempt_with_the_refusal() {
        let receiver = Receiver::start("127.0.0.1").await;
        let port = receiver.addr.port();
        let by_address = attempt("10.0.0.0/8", format!("http://127.0.0.1:{port}/hook?t=tok")).await;
        assert_eq!(
            by_address,
            Err("refused by GATEHOUSE_OUTBOUND_ALLOW: 127.0.0.1 is not in the allowed list".into())
        );
        let by_name = attempt("10.0.0.0/8", format!("http://localhost:{port}/hook"))
            .await
            .expect_err("localhost resolves outside the list");
        assert!(by_name.contains("localhost resolves to"), "{by_name}");
        assert!(!by_name.contains("/hook"), "no URL in the error: {by_name}");
        assert_eq!(receiver.connections(), 0);

        let delivered = attempt("127.0.0.0/8", format!("http://127.0.0.1:{port}/hook")).await;
        assert_eq!(delivered, Ok(200));
        assert_eq!(receiver.connections(), 1);
    }
}
