//! Web console sessions: kept by the SHA-256 of their id, tied to the token they were
//! signed in with, and dropped when they expire.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use super::db::{SqlxResult, int, uint};
use crate::pipeline::Timestamp;
use crate::pipeline::console::WebSession;
use crate::pipeline::store::{AccountStore, Audit, SessionStore, StoreError, StoreResult};

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_web_session(&self, session: &WebSession, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(int(session.created_at, "session time")?)
            .execute(&mut *tx)
            .await
            .store()?;
        sqlx::query(
            "INSERT INTO web_sessions (sha256, token_sha256, user_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.sha256.as_str())
        .bind(session.token_sha256.as_str())
        .bind(session.user.id.as_str())
        .bind(session.csrf.as_str())
        .bind(int(session.created_at, "session time")?)
        .bind(int(session.expires_at, "session expiry")?)
        .execute(&mut *tx)
        .await
        .unique(|_| "a session with this id exists".to_owned())?;
        tx.commit().await
    }

    async fn web_session(&self, sha256: &str, now: Timestamp) -> StoreResult<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT token_sha256, csrf, created_at, expires_at FROM web_sessions \
             WHERE sha256 = $1 AND expires_at > $2",
        )
        .bind(sha256)
        .bind(int(now, "time")?)
        .fetch_optional(&self.db.reader)
        .await
        .store()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let token_sha256: String = row.try_get("token_sha256").store()?;
        // The token decides who the session is, so a token moved or deleted ends it.
        let Some(user) = self.user_by_token(&token_sha256).await? else {
            return Ok(None);
        };
        Ok(Some(WebSession {
            sha256: sha256.to_owned(),
            token_sha256,
            user,
            csrf: row.try_get("csrf").store()?,
            created_at: uint(row.try_get("created_at").store()?, "session time")?,
            expires_at: uint(row.try_get("expires_at").store()?, "session expiry")?,
        }))
    }

    async fn delete_web_session(&self, sha256: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let deleted = sqlx::query("DELETE FROM web_sessions WHERE sha256 = $1")
            .bind(sha256)
            .execute(&mut *tx)
            .await
            .store()?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("session".into()));
        }
        tx.commit().await
    }
}
