//! Exported solution versions (artifacts), and the facts this host keeps about itself.
//!
//! The packages themselves are files in the data dir, named by their SHA-256; this table
//! says which packages make up which solution version.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use super::db::{SqlxResult, document, int, page_clause, to_json};
use crate::pipeline::model::{ArtifactRecord, new_id};
use crate::pipeline::store::{ArtifactStore, Page, StoreResult};

#[async_trait]
impl ArtifactStore for SqlStore {
    /// Stores the artifact, unless one of that solution version is stored already: then the
    /// stored one is answered, so every stage imports the same packages.
    async fn insert_artifact(&self, artifact: &ArtifactRecord) -> StoreResult<ArtifactRecord> {
        let mut tx = self.db.begin().await?;
        let existing = select_one(&mut tx, &artifact.solution_name, &artifact.version).await?;
        if let Some(existing) = existing {
            tx.commit().await.store()?;
            return Ok(existing);
        }
        sqlx::query(
            "INSERT INTO artifacts (id, solution_name, version, managed_sha256, unmanaged_sha256, \
             created_at, document) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(artifact.id.as_str())
        .bind(artifact.solution_name.as_str())
        .bind(artifact.version.as_str())
        .bind(artifact.managed.sha256.as_str())
        .bind(artifact.unmanaged.sha256.as_str())
        .bind(int(artifact.created_at, "created_at")?)
        .bind(to_json(artifact)?)
        .execute(&mut *tx)
        .await
        .store()?;
        tx.commit().await.store()?;
        Ok(artifact.clone())
    }

    async fn get_artifact(
        &self,
        solution: &str,
        version: &str,
    ) -> StoreResult<Option<ArtifactRecord>> {
        let mut conn = self.db.reader.acquire().await.store()?;
        select_one(&mut conn, solution, version).await
    }

    /// Newest first; `page.after` is an artifact id.
    async fn list_artifacts(
        &self,
        solution: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<ArtifactRecord>> {
        let (filter, first) = match solution {
            Some(_) => ("WHERE solution_name = $1", 2),
            None => ("", 1),
        };
        let paging = page_clause(page.after.as_deref(), first);
        // page_clause starts with WHERE when there is a cursor; join it to the filter.
        let paging = match (solution, page.after.is_some()) {
            (Some(_), true) => paging.replacen("WHERE", "AND", 1),
            _ => paging,
        };
        let sql = format!("SELECT document FROM artifacts {filter} {paging}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(solution) = solution {
            query = query.bind(solution.to_owned());
        }
        if let Some(after) = &page.after {
            query = query.bind(after.clone());
        }
        query
            .bind(i64::from(page.limit))
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| document(row, "artifact"))
            .collect()
    }

    /// This host's id, made at its first start; environments are linked to it.
    async fn host_id(&self) -> StoreResult<String> {
        let mut tx = self.db.begin().await?;
        let existing: Option<String> =
            sqlx::query("SELECT value FROM host_info WHERE key = 'host_id'")
                .fetch_optional(&mut *tx)
                .await
                .store()?
                .map(|row| row.try_get::<String, _>("value"))
                .transpose()
                .store()?;
        let id = match existing {
            Some(id) => id,
            None => {
                let id = new_id();
                sqlx::query("INSERT INTO host_info (key, value) VALUES ('host_id', $1)")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .store()?;
                id
            }
        };
        tx.commit().await.store()?;
        Ok(id)
    }
}

async fn select_one(
    conn: &mut sqlx::AnyConnection,
    solution: &str,
    version: &str,
) -> StoreResult<Option<ArtifactRecord>> {
    sqlx::query("SELECT document FROM artifacts WHERE solution_name = $1 AND version = $2")
        .bind(solution)
        .bind(version)
        .fetch_optional(conn)
        .await
        .store()?
        .map(|row| document(&row, "artifact"))
        .transpose()
}
