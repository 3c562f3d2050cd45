//! The append-only audit log.

use async_trait::async_trait;

use crate::pipeline::model::AuditEntry;

use super::{Audit, StoreResult};

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn list_audit(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Records an action that changes nothing stored, such as a sign-in or a validation.
    async fn append_audit(&self, audit: &Audit) -> StoreResult<()>;
}
