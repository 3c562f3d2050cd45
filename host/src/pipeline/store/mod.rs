//! What the domain needs from persistence: one trait per area, each in the file of that
//! area's name. `crate::store` implements every one for SQLite and PostgreSQL.
//!
//! Every mutation takes the [`Audit`] line that describes it, and writes both in one
//! transaction, so the audit log never misses a change.

mod accounts;
mod artifacts;
mod audit;
mod catalog;
mod deployments;
mod events;
mod reports;
mod retention;
mod sessions;
mod webhooks;

use std::future::Future;

pub use accounts::AccountStore;
pub use artifacts::ArtifactStore;
pub use audit::AuditStore;
pub use catalog::CatalogStore;
pub use deployments::DeploymentStore;
pub use events::EventStore;
pub use reports::ReportStore;
pub use retention::RetentionStore;
pub use sessions::SessionStore;
pub use webhooks::WebhookStore;

use super::gate::Timestamp;
use super::model::{DeploymentRecord, DeploymentStatus, Id, TimelineEvent};

/// All of persistence, for the callers that hold one `Arc<dyn Store>`; call a method with
/// its area's trait in scope.
pub trait Store:
    AccountStore
    + ArtifactStore
    + AuditStore
    + CatalogStore
    + DeploymentStore
    + EventStore
    + ReportStore
    + RetentionStore
    + SessionStore
    + WebhookStore
    + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + ArtifactStore
        + AuditStore
        + CatalogStore
        + DeploymentStore
        + EventStore
        + ReportStore
        + RetentionStore
        + SessionStore
        + WebhookStore
        + 'static
{
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name taken, or a write that lost a race with another writer.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What `save_deployment_if_target_free` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetClaim {
    /// The deployment holds the target now, at this revision.
    Taken(u64),
    /// Another deployment holds the target; what was saved instead, at this revision.
    Busy(Option<u64>),
}

/// What a deployment handed its target becomes, and the events that says so; `None`
/// leaves it as it is.
pub type HandOver<'a> =
    &'a (dyn Fn(&DeploymentRecord) -> Option<(DeploymentRecord, Vec<TimelineEvent>)> + Send + Sync);

/// The audit line a mutation writes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The user id, or `system`.
    pub actor: String,
    /// Such as `pipeline.create`.
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

/// A page of a list, newest first. `after` is the id of the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<Id>,
    pub limit: u32,
}

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 50;

/// Most items one page may hold.
pub const MAX_LIMIT: u32 = 200;

impl Page {
    /// The page a caller asked for; an empty `after` means the first page.
    pub fn asked(after: Option<String>, limit: Option<u32>) -> Result<Page, String> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(format!(
                "limit is {limit}, but must be 1 to {MAX_LIMIT}; follow `next` for more items"
            ));
        }
        Ok(Page {
            after: after.filter(|a| !a.is_empty()),
            limit,
        })
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            after: None,
            limit: 50,
        }
    }
}

/// Filters of `GET /deployments`; every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub pipeline_id: Option<Id>,
    pub stage_id: Option<Id>,
    pub statuses: Vec<DeploymentStatus>,
    pub solution_name: Option<String>,
    pub version: Option<String>,
    pub requested_by: Option<Id>,
    pub target_environment_id: Option<Id>,
    pub requested_after: Option<Timestamp>,
    pub requested_before: Option<Timestamp>,
}

/// How an environment update treats the stored credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChange {
    Keep,
    Set(String),
    Clear,
}

/// Items read per store call when a caller reads a whole collection.
pub const SCAN_BATCH: u32 = 500;

/// Reads a collection page by page through `fetch`, handing each page to `each` until it
/// breaks or the collection ends; `id` names the item a page's cursor follows.
pub async fn scan_pages<T, Fut>(
    fetch: impl Fn(Page) -> Fut,
    id: impl Fn(&T) -> Id,
    mut each: impl FnMut(Vec<T>) -> std::ops::ControlFlow<()>,
) -> StoreResult<()>
where
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut after = None;
    loop {
        let batch = fetch(Page {
            after: after.clone(),
            limit: SCAN_BATCH,
        })
        .await?;
        let exhausted = batch.len() < SCAN_BATCH as usize;
        after = batch.last().map(&id);
        if each(batch).is_break() || exhausted || after.is_none() {
            return Ok(());
        }
    }
}

/// Every item of a collection, for checks such as "is this plugin bound anywhere".
pub async fn scan_all<T, Fut>(
    fetch: impl Fn(Page) -> Fut,
    id: impl Fn(&T) -> Id,
) -> StoreResult<Vec<T>>
where
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut all = Vec::new();
    scan_pages(fetch, id, |batch| {
        all.extend(batch);
        std::ops::ControlFlow::Continue(())
    })
    .await?;
    Ok(all)
}
