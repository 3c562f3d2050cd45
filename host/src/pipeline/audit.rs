//! The audit line every change leaves, stamped with the wall clock, so that the API, the
//! console and the services word and time them alike.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::pipeline::Timestamp;
use crate::pipeline::model::User;
use crate::pipeline::store::Audit;

/// Milliseconds since the Unix epoch, for `created_at` fields and audit lines.
pub fn now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Timestamp)
}

/// The audit line for a change `actor` makes to `target`.
pub fn audit(actor: &User, action: &str, target: &str, detail: serde_json::Value) -> Audit {
    Audit {
        actor: actor.id.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        at: now(),
    }
}
