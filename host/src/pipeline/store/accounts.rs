//! Users, groups and their bearer tokens.

use async_trait::async_trait;

use crate::pipeline::model::{Group, Id, User};

use super::{Audit, Page, StoreResult};

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn insert_user(&self, user: &User, audit: &Audit) -> StoreResult<()>;
    /// The user with the names of their groups.
    async fn get_user(&self, id: &str) -> StoreResult<User>;
    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// `sha256` is the hex SHA-256 of the bearer token; the token itself is never stored.
    async fn insert_token(
        &self,
        user_id: &str,
        sha256: &str,
        label: &str,
        audit: &Audit,
    ) -> StoreResult<()>;
    async fn user_by_token(&self, sha256: &str) -> StoreResult<Option<User>>;
    async fn insert_group(&self, group: &Group, audit: &Audit) -> StoreResult<()>;
    async fn get_group(&self, id: &str) -> StoreResult<Group>;
    async fn list_groups(&self, page: &Page) -> StoreResult<Vec<Group>>;
    /// Replaces the group's members with these user ids.
    async fn set_group_members(
        &self,
        group_id: &str,
        members: &[Id],
        audit: &Audit,
    ) -> StoreResult<()>;
}
