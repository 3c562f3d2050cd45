//! Webhooks: which lifecycle events go to which URL, how a delivery is signed, and when a
//! failed delivery is tried again. No I/O here; `crate::webhook_sender` sends, `crate::store`
//! keeps.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use super::events::{LifecycleEvent, event_names, is_event_name};
use super::gate::Timestamp;
use super::model::Id;

/// The header that carries the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Gatehouse-Signature";
/// The header that names the event, such as `deployment_completed`.
pub const EVENT_HEADER: &str = "Gatehouse-Event";
/// The header that carries the delivery id; a receiver de-duplicates on it, since a
/// delivery may arrive more than once.
pub const DELIVERY_HEADER: &str = "Gatehouse-Delivery";

/// How long deliveries are retried when the webhook does not say.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The shortest and longest retry windows a webhook may ask for.
pub const GIVE_UP_AFTER_RANGE: (u64, u64) = (60, 7 * 24 * 3600);
/// The first retry waits this long; each later one twice as long as the one before.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// No retry waits longer than this, so a receiver that comes back is served within it.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// A subscription of a URL to some lifecycle events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookRecord {
    pub id: Id,
    /// Where deliveries are POSTed: `http://` or `https://`.
    pub url: String,
    /// The lifecycle event names it receives.
    pub events: Vec<String>,
    /// Only events of this pipeline, when set.
    pub pipeline_id: Option<Id>,
    /// Only events of this stage, when set.
    pub stage_id: Option<Id>,
    #[serde(default)]
    pub description: String,
    /// A disabled webhook gets no new deliveries; those queued are still tried.
    pub enabled: bool,
    /// How long a delivery is retried before it is marked failed.
    pub give_up_after_seconds: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookRecord {
    /// Whether this webhook receives `event`.
    pub fn matches(&self, event: &LifecycleEvent) -> bool {
        self.enabled
            && self.events.contains(&event.event)
            && self
                .pipeline_id
                .as_ref()
                .is_none_or(|p| *p == event.pipeline_id)
            && self.stage_id.as_ref().is_none_or(|s| *s == event.stage_id)
    }

    /// Checks what an admin may change: the URL, the event names and the retry window.
    pub fn validate(&self) -> Result<(), String> {
        check_url(&self.url)?;
        if self.events.is_empty() {
            return Err(format!(
                "events is empty: name at least one of {}",
                event_names().join(", ")
            ));
        }
        if let Some(unknown) = self.events.iter().find(|e| !is_event_name(e)) {
            return Err(format!(
                "{unknown:?} is not a lifecycle event; use {}",
                event_names().join(", ")
            ));
        }
        let (low, high) = GIVE_UP_AFTER_RANGE;
        if !(low..=high).contains(&self.give_up_after_seconds) {
            return Err(format!(
                "give_up_after_seconds is {}, but must be {low} to {high} (7 days)",
                self.give_up_after_seconds
            ));
        }
        if self.description.chars().count() > 1000 {
            return Err("description is longer than 1000 characters".into());
        }
        Ok(())
    }
}

/// An absolute `http` or `https` URL with a host and no credentials in it.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("url {text:?} is not an absolute URL ({e}); use https://host/path"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url {text:?} has scheme {:?}; webhooks are delivered over http or https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {text:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "url {text:?} carries credentials; verify deliveries with the signature instead"
        ));
    }
    Ok(())
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or being attempted.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Retried until the webhook's window closed; `redeliver` tries again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One try at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    /// From 1.
    pub attempt: u32,
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why no answer came (connection refused, timeout), when none did.
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl DeliveryAttempt {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// One event sent to one webhook, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    pub id: Id,
    pub webhook_id: Id,
    pub event: String,
    /// The event's position in `GET /events`.
    pub position: i64,
    pub deployment_id: Id,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due; none once delivered or failed.
    pub next_attempt_at: Option<Timestamp>,
    /// After this, a failed attempt marks the delivery failed.
    pub give_up_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Oldest first.
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// A delivery claimed for an attempt, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: Id,
    pub webhook_id: Id,
    pub event: String,
    /// The attempt this claim makes, from 1.
    pub attempt: u32,
    pub give_up_at: Timestamp,
    pub url: String,
    pub secret: String,
    pub payload: String,
}

/// What an attempt leaves the delivery as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<Timestamp>,
}

/// The wait before attempt `attempt + 1`, after attempt `attempt` (from 1) failed:
/// 1 s, 2 s, 4 s … up to an hour.
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY)
}

/// Where a delivery goes after an attempt that ended at `now`.
pub fn after_attempt(
    attempt: &DeliveryAttempt,
    now: Timestamp,
    give_up_at: Timestamp,
) -> AfterAttempt {
    if attempt.succeeded() {
        return AfterAttempt {
            status: DeliveryStatus::Delivered,
            next_attempt_at: None,
        };
    }
    let next = now.saturating_add(retry_delay(attempt.attempt).as_millis() as Timestamp);
    if next > give_up_at {
        AfterAttempt {
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
        }
    } else {
        AfterAttempt {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(next),
        }
    }
}

/// The `Gatehouse-Signature` value of `body` sent at `unix_seconds`:
/// `t=<seconds>,v1=<hex HMAC-SHA256(secret, "<seconds>.<body>")>`, as Stripe signs.
pub fn signature(secret: &str, unix_seconds: u64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<signing_sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("t={unix_seconds},v1={}", hex::encode(digest.as_slice()))
}

/// A new signing secret: 32 random bytes, hex, after `whsec_`.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> WebhookRecord {
        WebhookRecord {
            id: "w".into(),
            url: "https://example.com/hook".into(),
            events: vec!["deployment_completed".into()],
            pipeline_id: Some("p".into()),
            stage_id: None,
            description: String::new(),
            enabled: true,
            give_up_after_seconds: 3600,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn event(name: &str, pipeline: &str) -> LifecycleEvent {
        LifecycleEvent {
            position: 1,
            event: name.into(),
            deployment_id: "d".into(),
            seq: 1,
            pipeline_id: pipeline.into(),
            stage_id: "s".into(),
            solution: "x".into(),
            version: "1.0.0.0".into(),
            status: None,
            at: 0,
            actor: None,
            detail: serde_json::json!({}),
        }
    }

    #[test]
    fn a_webhook_receives_only_its_events_of_its_pipeline() {
        let w = webhook();
        assert!(w.matches(&event("deployment_completed", "p")));
        assert!(!w.matches(&event("deployment_started", "p")));
        assert!(!w.matches(&event("deployment_completed", "other")));
        let disabled = WebhookRecord {
            enabled: false,
            ..webhook()
        };
        assert!(!disabled.matches(&event("deployment_completed", "p")));
    }

    #[test]
    fn bad_urls_and_unknown_events_are_refused_with_the_reason() {
        let mut w = webhook();
        w.url = "ftp://example.com".into();
        assert!(w.validate().unwrap_err().contains("http or https"));
        w.url = "not a url".into();
        assert!(w.validate().unwrap_err().contains("absolute URL"));
        w = webhook();
        w.events = vec!["deployment_exploded".into()];
        assert!(w.validate().unwrap_err().contains("deployment_requested"));
        assert!(webhook().validate().is_ok());
    }

    #[test]
    fn retries_double_up_to_an_hour_and_stop_at_the_window() {
        let waits: Vec<u64> = (1..=4).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(retry_delay(40), Duration::from_secs(3600));
        let failed = DeliveryAttempt {
            attempt: 3,
            at: 0,
            status_code: Some(500),
            error: None,
            duration_ms: 1,
        };
        let retry = after_attempt(&failed, 10_000, 20_000);
        assert_eq!(retry.status, DeliveryStatus::Pending);
        assert_eq!(retry.next_attempt_at, Some(14_000));
        assert_eq!(
            after_attempt(&failed, 19_000, 20_000).status,
            DeliveryStatus::Failed
        );
        let ok = DeliveryAttempt {
            status_code: Some(204),
            ..failed
        };
        assert_eq!(after_attempt(&ok, 0, 0).status, DeliveryStatus::Delivered);
    }

    #[test]
    fn the_signature_is_stripe_style_hmac_sha256() {
        // As Python's hmac.new(b"Jefe", b"1.what do ya want for nothing?", sha256) has it.
        let sig = signature("Jefe", 1, b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "t=1,v1=a9049465ce89cfb8e9aac62333abda66f80e3403f51f57f6bae3c3a4485eca38"
        );
        assert_ne!(sig, signature("Jefe", 2, b"what do ya want for nothing?"));
    }
}
