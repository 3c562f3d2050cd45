//! The data step of migration 6: ids for the gate bindings of stored pipelines, and a
//! snapshot of its stage's gates, with progress keyed by binding id, for each deployment
//! waiting in its pre-deployment step.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::db::{SqlxResult, from_json, to_json};
use crate::pipeline::bindings::{give_missing_ids, snapshot_in_flight};
use crate::pipeline::model::{DeploymentRecord, PipelineRecord};
use crate::pipeline::store::StoreResult;

/// The migration whose data step this is.
pub(super) const VERSION: i64 = 6;

/// Rewrites the documents that predate binding ids, inside the migration's transaction.
pub(super) async fn migrate(tx: &mut AnyConnection) -> StoreResult<()> {
    let rows = sqlx::query("SELECT id, document FROM pipelines")
        .fetch_all(&mut *tx)
        .await
        .store()?;
    let mut pipelines: HashMap<String, PipelineRecord> = HashMap::new();
    for row in rows {
        let id: String = row.try_get("id").store()?;
        let document: String = row.try_get("document").store()?;
        let mut pipeline: PipelineRecord = from_json(&document, "pipeline")?;
        if give_missing_ids(&mut pipeline) {
            sqlx::query("UPDATE pipelines SET document = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(to_json(&pipeline)?)
                .execute(&mut *tx)
                .await
                .store()?;
        }
        pipelines.insert(id, pipeline);
    }
    let rows =
        sqlx::query("SELECT id, document FROM deployments WHERE status = 'pending_approval'")
            .fetch_all(&mut *tx)
            .await
            .store()?;
    for row in rows {
        let id: String = row.try_get("id").store()?;
        let document: String = row.try_get("document").store()?;
        let mut d: DeploymentRecord = from_json(&document, "deployment")?;
        let stage = pipelines
            .get(&d.pipeline_id)
            .and_then(|p| p.stage(&d.stage_id));
        // A deployment whose stage is gone has no gates to answer to; its step waits
        // for an admin, as it would have.
        if let Some(stage) = stage
            && snapshot_in_flight(&mut d, stage)
        {
            sqlx::query("UPDATE deployments SET document = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(to_json(&d)?)
                .execute(&mut *tx)
                .await
                .store()?;
        }
    }
    Ok(())
}
