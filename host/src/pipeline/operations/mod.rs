//! Operations: the admin's webhooks, retention jobs, the audit log and the event feed.
//! The API's handlers call it today and the console's pages will, so the checks, the
//! refusals and the audit lines are the same whichever is used.

mod audit_log;
mod retention;
mod webhooks;

#[cfg(test)]
mod tests;

use crate::pipeline::store::Store;

pub use audit_log::{AUDIT_KEEP_DAYS, AuditPurge, EventsPage};
pub use retention::RetentionJobDraft;
pub use webhooks::{WebhookChange, WebhookDraft};

/// The operations over the store; cheap to make for each request.
#[derive(Clone, Copy)]
pub struct Operations<'a> {
    pub store: &'a dyn Store,
}

/// One page of a list, newest first; `next` is set when more items exist.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// Cuts `items`, read with one more than `wanted`, to a page, so that the extra item
    /// tells whether another page exists.
    fn of(mut items: Vec<T>, wanted: usize, id: impl Fn(&T) -> String) -> Listing<T> {
        let next = if items.len() > wanted {
            items.truncate(wanted);
            items.last().map(id)
        } else {
            None
        };
        Listing { items, next }
    }
}
