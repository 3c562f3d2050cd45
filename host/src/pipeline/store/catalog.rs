//! Environments; pipelines, stored whole with their stages, validators and shares; and
//! plugins, with their components stored once per SHA-256.

use async_trait::async_trait;

use crate::pipeline::model::{EnvironmentRecord, Id, PipelineRecord, PluginRecord};

use super::{Audit, CredentialChange, Page, StoreResult};

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn insert_environment(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn update_environment(
        &self,
        env: &EnvironmentRecord,
        credential: CredentialChange,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn get_environment(&self, id: &str) -> StoreResult<EnvironmentRecord>;
    async fn list_environments(&self, page: &Page) -> StoreResult<Vec<EnvironmentRecord>>;
    async fn delete_environment(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    async fn environment_credential(&self, id: &str) -> StoreResult<Option<String>>;
    /// Records a validation that linked the environment, with the link secret it issued
    /// (`None` clears a stored one). The secret, like the credential, is never shown.
    async fn record_link(
        &self,
        env: &EnvironmentRecord,
        link_secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn environment_link_secret(&self, id: &str) -> StoreResult<Option<String>>;
    /// The environments with these ids, each with its credential, in one read; ids that
    /// name no environment are left out.
    async fn environments_with_credentials(
        &self,
        ids: &[Id],
    ) -> StoreResult<Vec<(EnvironmentRecord, Option<String>)>>;
    async fn insert_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()>;
    async fn update_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()>;
    async fn get_pipeline(&self, id: &str) -> StoreResult<PipelineRecord>;
    async fn list_pipelines(&self, page: &Page) -> StoreResult<Vec<PipelineRecord>>;
    async fn delete_pipeline(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    async fn insert_plugin(
        &self,
        plugin: &PluginRecord,
        component: &[u8],
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn update_plugin(&self, plugin: &PluginRecord, audit: &Audit) -> StoreResult<()>;
    async fn get_plugin(&self, id: &str) -> StoreResult<PluginRecord>;
    async fn list_plugins(&self, page: &Page) -> StoreResult<Vec<PluginRecord>>;
    async fn delete_plugin(&self, id: &str, audit: &Audit) -> StoreResult<()>;
    async fn blob(&self, sha256: &str) -> StoreResult<Vec<u8>>;
}
