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

/// The last instant RFC 3339 can write, 9999-12-31T23:59:59.999Z, in milliseconds.
const LAST_RFC3339_MS: Timestamp = 253_402_300_799_999;

/// A time as JSON answers write it in RFC 3339: UTC, to the millisecond
/// (`2026-11-26T10:00:00.000Z`), as the Environment API does. A time past the year 9999,
/// which RFC 3339 cannot write, reads as its last instant.
pub fn rfc3339(ms: Timestamp) -> String {
    let ms = ms.min(LAST_RFC3339_MS) as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_rfc3339_in_utc_to_the_millisecond() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_795_687_200_123),
            "2026-11-26T10:00:00.123Z"
        );
        assert_eq!(super::rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
