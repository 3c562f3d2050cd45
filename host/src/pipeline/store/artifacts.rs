//! Exported solution versions, and the facts this host keeps about itself.

use async_trait::async_trait;

use crate::pipeline::model::ArtifactRecord;

use super::{Page, StoreResult};

#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores an artifact, or answers the one already stored for that solution version.
    async fn insert_artifact(&self, artifact: &ArtifactRecord) -> StoreResult<ArtifactRecord>;
    async fn get_artifact(
        &self,
        solution: &str,
        version: &str,
    ) -> StoreResult<Option<ArtifactRecord>>;
    /// Newest first, optionally of one solution.
    async fn list_artifacts(
        &self,
        solution: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<ArtifactRecord>>;
    /// This host's id, made at its first start.
    async fn host_id(&self) -> StoreResult<String>;
}
