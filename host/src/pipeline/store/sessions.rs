//! Web console sessions.

use async_trait::async_trait;

use crate::pipeline::console::WebSession;
use crate::pipeline::gate::Timestamp;

use super::{Audit, StoreResult};

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session, with its audit line, and drops every expired one.
    async fn insert_web_session(&self, session: &WebSession, audit: &Audit) -> StoreResult<()>;
    /// The session with this id hash, unless it has expired by `now`.
    async fn web_session(&self, sha256: &str, now: Timestamp) -> StoreResult<Option<WebSession>>;
    async fn delete_web_session(&self, sha256: &str, audit: &Audit) -> StoreResult<()>;
}
