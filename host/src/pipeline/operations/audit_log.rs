//! The audit log and the lifecycle event feed: both span every pipeline, so only admins
//! read them, and only an admin may shorten the audit log, never below a month.

use serde_json::json;

use super::{Listing, Operations};
use crate::pipeline::Timestamp;
use crate::pipeline::access::require_admin;
use crate::pipeline::audit::{audit, now};
use crate::pipeline::events::LifecycleEvent;
use crate::pipeline::model::{AuditEntry, User};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::{DEFAULT_LIMIT, MAX_LIMIT, Page};

/// The fewest and most days of audit lines a purge keeps.
pub const AUDIT_KEEP_DAYS: (u32, u32) = (30, 36_500);

/// What an audit purge deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPurge {
    pub deleted: u64,
    /// Lines written before this time were deleted.
    pub before: Timestamp,
}

/// A page of the event feed and the cursor to ask from next.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsPage {
    pub items: Vec<LifecycleEvent>,
    /// The last event's position, or the cursor asked from when there was none.
    pub next: i64,
}

impl Operations<'_> {
    /// Audit entries after the entry `after` (the `next` of the previous page), newest
    /// first; the role is checked before the cursor is read.
    pub async fn audit_log(
        &self,
        actor: &User,
        after: Option<String>,
        limit: Option<u32>,
    ) -> ServiceResult<Listing<AuditEntry>> {
        require_admin(actor, "reading the audit log")?;
        let page = Page::asked(after, limit).map_err(ServiceError::malformed)?;
        let after = page
            .after
            .as_deref()
            .map(|a| {
                a.parse::<i64>().map_err(|_| {
                    ServiceError::malformed(format!(
                        "after={a:?} is not an audit entry id; pass the `next` value of the \
                         previous page"
                    ))
                })
            })
            .transpose()?;
        let items = self.store.list_audit(after, page.limit + 1).await?;
        Ok(Listing::of(items, page.limit as usize, |e| {
            e.id.to_string()
        }))
    }

    /// Deletes audit lines older than `older_than_days`, and records that it did, as the
    /// newest line. Retention jobs never touch the audit log; only this does.
    pub async fn purge_audit(
        &self,
        actor: &User,
        older_than_days: u32,
    ) -> ServiceResult<AuditPurge> {
        let actor = require_admin(actor, "purging the audit log")?;
        let (fewest, most) = AUDIT_KEEP_DAYS;
        if !(fewest..=most).contains(&older_than_days) {
            return Err(ServiceError::invalid(format!(
                "older_than_days is {older_than_days}, but must be {fewest} to {most}: the \
                 audit log keeps at least a month"
            )));
        }
        let before = now().saturating_sub(u64::from(older_than_days) * 24 * 3600 * 1000);
        let line = audit(
            actor,
            "audit.retention",
            "audit_log",
            json!({ "older_than_days": older_than_days, "before": before }),
        );
        let deleted = self.store.purge_audit(before, &line).await?;
        Ok(AuditPurge { deleted, before })
    }

    /// Lifecycle events after the cursor `after` (0 or none: from the oldest kept), oldest
    /// first; the role is checked before the cursor is read.
    pub async fn events_after(
        &self,
        actor: &User,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<EventsPage> {
        require_admin(actor, "reading the event feed")?;
        let after = match after.map(str::trim) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|a| *a >= 0)
                .ok_or_else(|| {
                    ServiceError::malformed(format!(
                        "after={text:?} is not an event cursor; pass the `next` of the previous \
                         page, or 0 to start from the oldest event"
                    ))
                })?,
        };
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ServiceError::malformed(format!(
                "limit is {limit}, but must be 1 to {MAX_LIMIT}"
            )));
        }
        let items = self.store.events_after(after, limit).await?;
        let next = items.last().map_or(after, |e| e.position);
        Ok(EventsPage { items, next })
    }
}
