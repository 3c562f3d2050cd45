//! What admins configure: environments, pipelines, and plugins with their components.
//!
//! Each record is stored whole as a JSON `document`, beside the columns that are unique or
//! referenced. Pipelines also list the environments and plugins they use in link tables,
//! so that the database refuses to delete anything a pipeline still needs.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::SqlStore;
use super::db::{Db, SqlxResult, changed, document, int, page_clause, require, to_json};
use crate::pipeline::model::{EnvironmentRecord, PipelineRecord, PluginRecord};
use crate::pipeline::store::{
    Audit, CatalogStore, CredentialChange, Page, StoreError, StoreResult,
};

/// A newest-first page of `SELECT {columns} FROM {table}`.
async fn list_page(
    db: &Db,
    columns: &str,
    table: &str,
    page: &Page,
) -> StoreResult<Vec<sqlx::any::AnyRow>> {
    let sql = format!(
        "SELECT {columns} FROM {table} {}",
        page_clause(page.after.as_deref(), 1)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(after) = &page.after {
        query = query.bind(after.as_str());
    }
    query
        .bind(i64::from(page.limit))
        .fetch_all(&db.reader)
        .await
        .store()
}

// Environments.

/// The record without `has_credential`, which the credential column decides on read.
fn environment_document(env: &EnvironmentRecord) -> StoreResult<String> {
    to_json(&EnvironmentRecord {
        has_credential: false,
        ..env.clone()
    })
}

fn environment_name_taken(env: &EnvironmentRecord) -> impl FnOnce(&str) -> String + '_ {
    move |c| {
        if c.contains("name") {
            format!("an environment named {} already exists", env.name)
        } else {
            format!("an environment with id {} already exists", env.id)
        }
    }
}

#[async_trait]
impl CatalogStore for SqlStore {
    async fn insert_environment(
        &self,
        env: &EnvironmentRecord,
        credential: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query(
            "INSERT INTO environments (id, name, credential, document) VALUES ($1, $2, $3, $4)",
        )
        .bind(env.id.as_str())
        .bind(env.name.as_str())
        .bind(credential)
        .bind(environment_document(env)?)
        .execute(&mut *tx)
        .await
        .unique(environment_name_taken(env))?;
        tx.commit().await
    }

    async fn update_environment(
        &self,
        env: &EnvironmentRecord,
        credential: CredentialChange,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        // Placeholders bind in order, so `$4`, the new credential, goes last.
        let mut query = match &credential {
            CredentialChange::Keep => {
                sqlx::query("UPDATE environments SET name = $2, document = $3 WHERE id = $1")
            }
            CredentialChange::Set(_) => sqlx::query(
                "UPDATE environments SET name = $2, document = $3, credential = $4 WHERE id = $1",
            ),
            CredentialChange::Clear => sqlx::query(
                "UPDATE environments SET name = $2, document = $3, credential = NULL WHERE id = $1",
            ),
        }
        .bind(env.id.as_str())
        .bind(env.name.as_str())
        .bind(environment_document(env)?);
        if let CredentialChange::Set(value) = &credential {
            query = query.bind(value.as_str());
        }
        let result = query
            .execute(&mut *tx)
            .await
            .unique(environment_name_taken(env))?;
        changed(result.rows_affected(), "environment", &env.id)?;
        tx.commit().await
    }

    async fn get_environment(&self, id: &str) -> StoreResult<EnvironmentRecord> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.reader)
        .await
        .store()?
        .ok_or_else(|| StoreError::NotFound(format!("environment {id}")))?;
        environment_from_row(&row)
    }

    async fn list_environments(&self, page: &Page) -> StoreResult<Vec<EnvironmentRecord>> {
        list_page(&self.db, ENVIRONMENT_COLUMNS, "environments", page)
            .await?
            .iter()
            .map(environment_from_row)
            .collect()
    }

    async fn delete_environment(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let user: Option<String> = sqlx::query_scalar(
            "SELECT p.name FROM pipeline_environments pe JOIN pipelines p ON p.id = pe.pipeline_id \
             WHERE pe.environment_id = $1 ORDER BY p.name LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .store()?;
        if let Some(pipeline) = user {
            return Err(StoreError::Conflict(format!(
                "environment {id} is used by pipeline {pipeline}: remove it from the pipeline first"
            )));
        }
        let result = sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .store()?;
        changed(result.rows_affected(), "environment", id)?;
        tx.commit().await
    }

    async fn environment_credential(&self, id: &str) -> StoreResult<Option<String>> {
        let credential: Option<Option<String>> =
            sqlx::query_scalar("SELECT credential FROM environments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.reader)
                .await
                .store()?;
        credential.ok_or_else(|| StoreError::NotFound(format!("environment {id}")))
    }

    async fn record_link(
        &self,
        env: &EnvironmentRecord,
        link_secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let result = sqlx::query(
            "UPDATE environments SET name = $2, document = $3, link_secret = $4 WHERE id = $1",
        )
        .bind(env.id.as_str())
        .bind(env.name.as_str())
        .bind(environment_document(env)?)
        .bind(link_secret)
        .execute(&mut *tx)
        .await
        .unique(environment_name_taken(env))?;
        changed(result.rows_affected(), "environment", &env.id)?;
        tx.commit().await
    }

    async fn environment_link_secret(&self, id: &str) -> StoreResult<Option<String>> {
        let secret: Option<Option<String>> =
            sqlx::query_scalar("SELECT link_secret FROM environments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.reader)
                .await
                .store()?;
        secret.ok_or_else(|| StoreError::NotFound(format!("environment {id}")))
    }

    async fn environments_with_credentials(
        &self,
        ids: &[String],
    ) -> StoreResult<Vec<(EnvironmentRecord, Option<String>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {ENVIRONMENT_COLUMNS}, credential FROM environments WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.as_str());
        }
        query
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| {
                Ok((
                    environment_from_row(row)?,
                    row.try_get("credential").store()?,
                ))
            })
            .collect()
    }

    async fn insert_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query("INSERT INTO pipelines (id, name, document) VALUES ($1, $2, $3)")
            .bind(pipeline.id.as_str())
            .bind(pipeline.name.as_str())
            .bind(to_json(pipeline)?)
            .execute(&mut *tx)
            .await
            .unique(pipeline_name_taken(pipeline))?;
        link_pipeline(&mut tx, pipeline).await?;
        tx.commit().await
    }

    async fn update_pipeline(&self, pipeline: &PipelineRecord, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let stored = PipelineRecord {
            revision: pipeline.revision + 1,
            ..pipeline.clone()
        };
        let result = sqlx::query(
            "UPDATE pipelines SET name = $2, document = $3, revision = $4 \
             WHERE id = $1 AND revision = $5",
        )
        .bind(pipeline.id.as_str())
        .bind(pipeline.name.as_str())
        .bind(to_json(&stored)?)
        .bind(int(stored.revision, "revision")?)
        .bind(int(pipeline.revision, "revision")?)
        .execute(&mut *tx)
        .await
        .unique(pipeline_name_taken(pipeline))?;
        if result.rows_affected() == 0 {
            let current: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM pipelines WHERE id = $1")
                    .bind(pipeline.id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .store()?;
            return Err(match current {
                None => StoreError::NotFound(format!("pipeline {}", pipeline.id)),
                Some(current) => StoreError::Conflict(format!(
                    "pipeline {:?} was changed by someone else while this change was made (it is \
                     at revision {current}, the change was made to revision {}); read it again \
                     and repeat the change",
                    pipeline.name, pipeline.revision
                )),
            });
        }
        link_pipeline(&mut tx, pipeline).await?;
        tx.commit().await
    }

    async fn get_pipeline(&self, id: &str) -> StoreResult<PipelineRecord> {
        let row = sqlx::query("SELECT document FROM pipelines WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.reader)
            .await
            .store()?
            .ok_or_else(|| StoreError::NotFound(format!("pipeline {id}")))?;
        document(&row, "pipeline")
    }

    async fn list_pipelines(&self, page: &Page) -> StoreResult<Vec<PipelineRecord>> {
        list_page(&self.db, "document", "pipelines", page)
            .await?
            .iter()
            .map(|row| document(row, "pipeline"))
            .collect()
    }

    async fn delete_pipeline(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let result = sqlx::query("DELETE FROM pipelines WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .store()?;
        changed(result.rows_affected(), "pipeline", id)?;
        tx.commit().await
    }

    async fn insert_plugin(
        &self,
        plugin: &PluginRecord,
        component: &[u8],
        audit: &Audit,
    ) -> StoreResult<()> {
        let sha256 = hex::encode(Sha256::digest(component));
        if sha256 != plugin.sha256 {
            return Err(StoreError::Backend(format!(
                "plugin {} says its component's SHA-256 is {}, but the bytes given hash to {sha256}",
                plugin.id, plugin.sha256
            )));
        }
        let mut tx = self.db.audited(audit).await?;
        sqlx::query(
            "INSERT INTO blobs (sha256, size, content, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.as_str())
        .bind(int(component.len() as u64, "component size")?)
        .bind(component)
        .bind(int(plugin.created_at, "created_at")?)
        .execute(&mut *tx)
        .await
        .store()?;
        sqlx::query(
            "INSERT INTO plugins (id, name, version, sha256, document) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(plugin.id.as_str())
        .bind(plugin.name.as_str())
        .bind(plugin.version.as_str())
        .bind(sha256.as_str())
        .bind(to_json(plugin)?)
        .execute(&mut *tx)
        .await
        .unique(plugin_taken(plugin))?;
        tx.commit().await
    }

    async fn update_plugin(&self, plugin: &PluginRecord, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let stored: Option<String> = sqlx::query_scalar("SELECT sha256 FROM plugins WHERE id = $1")
            .bind(plugin.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .store()?;
        let stored = stored.ok_or_else(|| StoreError::NotFound(format!("plugin {}", plugin.id)))?;
        if stored != plugin.sha256 {
            return Err(StoreError::Conflict(format!(
                "plugin {} runs component {stored}; a new component is a new plugin version: upload it",
                plugin.id
            )));
        }
        sqlx::query("UPDATE plugins SET name = $2, version = $3, document = $4 WHERE id = $1")
            .bind(plugin.id.as_str())
            .bind(plugin.name.as_str())
            .bind(plugin.version.as_str())
            .bind(to_json(plugin)?)
            .execute(&mut *tx)
            .await
            .unique(plugin_taken(plugin))?;
        tx.commit().await
    }

    async fn get_plugin(&self, id: &str) -> StoreResult<PluginRecord> {
        let row = sqlx::query("SELECT document FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.reader)
            .await
            .store()?
            .ok_or_else(|| StoreError::NotFound(format!("plugin {id}")))?;
        document(&row, "plugin")
    }

    async fn list_plugins(&self, page: &Page) -> StoreResult<Vec<PluginRecord>> {
        list_page(&self.db, "document", "plugins", page)
            .await?
            .iter()
            .map(|row| document(row, "plugin"))
            .collect()
    }

    /// Deletes the plugin, and its component unless another plugin runs the same bytes.
    async fn delete_plugin(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let user: Option<String> = sqlx::query_scalar(
            "SELECT p.name FROM pipeline_plugins pp JOIN pipelines p ON p.id = pp.pipeline_id \
             WHERE pp.plugin_id = $1 ORDER BY p.name LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .store()?;
        if let Some(pipeline) = user {
            return Err(StoreError::Conflict(format!(
                "plugin {id} is used by pipeline {pipeline}: remove it from the pipeline first"
            )));
        }
        let sha256: Option<String> =
            sqlx::query_scalar("DELETE FROM plugins WHERE id = $1 RETURNING sha256")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .store()?;
        let sha256 = sha256.ok_or_else(|| StoreError::NotFound(format!("plugin {id}")))?;
        sqlx::query(
            "DELETE FROM blobs WHERE sha256 = $1 \
             AND NOT EXISTS (SELECT 1 FROM plugins WHERE sha256 = $1)",
        )
        .bind(sha256.as_str())
        .execute(&mut *tx)
        .await
        .store()?;
        tx.commit().await
    }

    async fn blob(&self, sha256: &str) -> StoreResult<Vec<u8>> {
        let content: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT content FROM blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.db.reader)
                .await
                .store()?;
        content.ok_or_else(|| StoreError::NotFound(format!("blob {sha256}")))
    }
}

const ENVIRONMENT_COLUMNS: &str =
    "id, document, CASE WHEN credential IS NULL THEN 0 ELSE 1 END AS has_credential";

fn environment_from_row(row: &sqlx::any::AnyRow) -> StoreResult<EnvironmentRecord> {
    let mut env: EnvironmentRecord = document(row, "environment")?;
    env.has_credential = row.try_get::<i64, _>("has_credential").store()? != 0;
    Ok(env)
}

// Pipelines.

fn pipeline_name_taken(pipeline: &PipelineRecord) -> impl FnOnce(&str) -> String + '_ {
    move |c| {
        if c.contains("name") {
            format!("a pipeline named {} already exists", pipeline.name)
        } else {
            format!("a pipeline with id {} already exists", pipeline.id)
        }
    }
}

/// Rewrites the pipeline's links to the environments and plugins it uses, after checking
/// that each exists.
async fn link_pipeline(conn: &mut AnyConnection, pipeline: &PipelineRecord) -> StoreResult<()> {
    for table in ["pipeline_environments", "pipeline_plugins"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE pipeline_id = $1"
        )))
        .bind(pipeline.id.as_str())
        .execute(&mut *conn)
        .await
        .store()?;
    }
    let mut environments: Vec<&str> = pipeline
        .development_environment_ids
        .iter()
        .chain(pipeline.stages.iter().map(|s| &s.target_environment_id))
        .map(String::as_str)
        .collect();
    environments.sort_unstable();
    environments.dedup();
    for environment_id in environments {
        let sql = "SELECT 1 FROM environments WHERE id = $1";
        require(conn, sql, environment_id, "environment").await?;
        sqlx::query(
            "INSERT INTO pipeline_environments (pipeline_id, environment_id) VALUES ($1, $2)",
        )
        .bind(pipeline.id.as_str())
        .bind(environment_id)
        .execute(&mut *conn)
        .await
        .store()?;
    }
    let mut plugins: Vec<&str> = pipeline
        .validators
        .iter()
        .map(|v| v.plugin_id.as_str())
        .chain(
            pipeline
                .stages
                .iter()
                .flat_map(|s| &s.gates)
                .map(|g| g.plugin_id.as_str()),
        )
        .collect();
    plugins.sort_unstable();
    plugins.dedup();
    for plugin_id in plugins {
        require(
            conn,
            "SELECT 1 FROM plugins WHERE id = $1",
            plugin_id,
            "plugin",
        )
        .await?;
        sqlx::query("INSERT INTO pipeline_plugins (pipeline_id, plugin_id) VALUES ($1, $2)")
            .bind(pipeline.id.as_str())
            .bind(plugin_id)
            .execute(&mut *conn)
            .await
            .store()?;
    }
    Ok(())
}

// Plugins and blobs.

fn plugin_taken(plugin: &PluginRecord) -> impl FnOnce(&str) -> String + '_ {
    move |c| {
        if c.contains("name") || c.contains("version") {
            format!(
                "a plugin named {} version {} already exists: give the new one another version",
                plugin.name, plugin.version
            )
        } else {
            format!("a plugin with id {} already exists", plugin.id)
        }
    }
}
