//! The lifecycle event feed: numbering committed timeline rows (and queueing their webhook
//! deliveries in the same transaction), and reading them back in order.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Backend;
use super::SqlStore;
use super::db::{SqlxResult, from_json, int, now_ms, uint};
use crate::pipeline::events::{LifecycleEvent, Unsequenced, event_name, sequence_order};
use crate::pipeline::model::new_id;
use crate::pipeline::store::{EventStore, StoreError, StoreResult};
use crate::pipeline::webhooks::{DeliveryStatus, WebhookRecord};

/// The rows the sequencer numbers. The text matches the partial index
/// `deployment_events_unsequenced`, which SQLite uses only for a WHERE that repeats it.
const UNSEQUENCED: &str = "e.position IS NULL AND e.kind IN ('requested', 'approval_started', \
     'approval_completed', 'pre_deployment_started', 'pre_deployment_completed', \
     'deployment_started', 'deployment_completed')";

/// Any number, as long as every replica takes the same one to sequence.
const POSTGRES_SEQUENCER_LOCK: i64 = 0x6761_7465_6576_6e74; // "gateevnt"

/// The columns an event is read from, joined with its deployment.
const EVENT_COLUMNS: &str = "e.deployment_id, e.seq, e.at, e.kind, e.actor, e.detail, \
     d.pipeline_id, d.stage_id, d.solution_name, d.version";

struct Pending {
    row: Unsequenced,
    event: LifecycleEvent,
}

fn event_from_row(row: &AnyRow, position: i64) -> StoreResult<LifecycleEvent> {
    let kind: String = row.try_get("kind").store()?;
    let name = event_name(&kind).ok_or_else(|| {
        StoreError::Backend(format!("timeline kind {kind:?} is not a lifecycle event"))
    })?;
    let detail: String = row.try_get("detail").store()?;
    let detail: serde_json::Value = from_json(&detail, "event detail")?;
    let status = (name == "deployment_completed")
        .then(|| detail["status"].as_str().map(str::to_owned))
        .flatten();
    let seq: i64 = row.try_get("seq").store()?;
    Ok(LifecycleEvent {
        position,
        event: name.to_owned(),
        deployment_id: row.try_get("deployment_id").store()?,
        seq: u32::try_from(seq).map_err(|_| {
            StoreError::Backend(format!("stored event number {seq} is out of range"))
        })?,
        pipeline_id: row.try_get("pipeline_id").store()?,
        stage_id: row.try_get("stage_id").store()?,
        solution: row.try_get("solution_name").store()?,
        version: row.try_get("version").store()?,
        status,
        at: uint(row.try_get("at").store()?, "event time")?,
        actor: row.try_get("actor").store()?,
        detail,
    })
}

#[async_trait]
impl EventStore for SqlStore {
    async fn sequence_events(&self, limit: u32) -> StoreResult<u32> {
        // Most rounds find nothing: a read says so without taking SQLite's one writer.
        let index = match self.db.backend {
            Backend::Sqlite => "INDEXED BY deployment_events_unsequenced",
            Backend::Postgres => "",
        };
        let probe =
            format!("SELECT 1 FROM deployment_events AS e {index} WHERE {UNSEQUENCED} LIMIT 1");
        let waiting = sqlx::query(AssertSqlSafe(probe))
            .fetch_optional(&self.db.reader)
            .await
            .store()?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        // SQLite has one writer, and the transaction holds its lock; replicas on PostgreSQL
        // take turns, and one that finds the lock taken leaves the round to the holder.
        let index = match self.db.backend {
            Backend::Sqlite => "INDEXED BY deployment_events_unsequenced",
            Backend::Postgres => {
                let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(POSTGRES_SEQUENCER_LOCK)
                    .fetch_one(&mut *tx)
                    .await
                    .store()?;
                if !mine {
                    tx.rollback().await.store()?;
                    return Ok(0);
                }
                ""
            }
        };
        // A deployment's writes are serialised on its row, so what is committed of its
        // timeline is always a prefix: numbering in (deployment, seq) order never skips.
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM deployment_events AS e {index} \
             JOIN deployments d ON d.id = e.deployment_id \
             WHERE {UNSEQUENCED} ORDER BY e.deployment_id, e.seq LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .store()?;
        if rows.is_empty() {
            tx.commit().await.store()?;
            return Ok(0);
        }
        let pending = rows
            .iter()
            .map(|row| {
                let event = event_from_row(row, 0)?;
                Ok(Pending {
                    row: Unsequenced {
                        deployment_id: event.deployment_id.clone(),
                        seq: event.seq,
                        at: event.at,
                    },
                    event,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let pending = sequence_order(pending, |p| &p.row);
        let last: i64 = sqlx::query_scalar("SELECT last_position FROM event_sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .store()?;
        let mut events = Vec::with_capacity(pending.len());
        for (offset, mut p) in pending.into_iter().enumerate() {
            p.event.position = last + 1 + offset as i64;
            sqlx::query(
                "UPDATE deployment_events SET position = $1 WHERE deployment_id = $2 AND seq = $3",
            )
            .bind(p.event.position)
            .bind(p.event.deployment_id.as_str())
            .bind(i64::from(p.event.seq))
            .execute(&mut *tx)
            .await
            .store()?;
            events.push(p.event);
        }
        let count = events.len() as i64;
        sqlx::query("UPDATE event_sequence SET last_position = $1 WHERE id = 1")
            .bind(last + count)
            .execute(&mut *tx)
            .await
            .store()?;
        queue_deliveries(&mut tx, &events).await?;
        tx.commit().await.store()?;
        Ok(events.len() as u32)
    }

    async fn events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<LifecycleEvent>> {
        let sql = format!(
            "SELECT e.position, {EVENT_COLUMNS} FROM deployment_events e \
             JOIN deployments d ON d.id = e.deployment_id \
             WHERE e.position > $1 ORDER BY e.position LIMIT $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.db.reader)
            .await
            .store()?
            .iter()
            .map(|row| {
                let position: i64 = row.try_get("position").store()?;
                event_from_row(row, position)
            })
            .collect()
    }
}

/// Queues a delivery of each event to every webhook it matches.
async fn queue_deliveries(conn: &mut AnyConnection, events: &[LifecycleEvent]) -> StoreResult<()> {
    let webhooks = sqlx::query("SELECT document FROM webhooks")
        .fetch_all(&mut *conn)
        .await
        .store()?
        .iter()
        .map(|row| super::db::document::<WebhookRecord>(row, "webhook"))
        .collect::<StoreResult<Vec<_>>>()?;
    if webhooks.iter().all(|w| !w.enabled) {
        return Ok(());
    }
    let now = now_ms();
    for event in events {
        let payload = event.payload().to_string();
        for webhook in webhooks.iter().filter(|w| w.matches(event)) {
            let window = int(webhook.give_up_after_seconds, "give_up_after_seconds")?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, position, event, deployment_id, \
                 payload, status, attempts, next_attempt_at, give_up_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $8, $8)",
            )
            .bind(new_id())
            .bind(webhook.id.as_str())
            .bind(event.position)
            .bind(event.event.as_str())
            .bind(event.deployment_id.as_str())
            .bind(payload.as_str())
            .bind(DeliveryStatus::Pending.as_str())
            .bind(now)
            .bind(now.saturating_add(window.saturating_mul(1000)))
            .execute(&mut *conn)
            .await
            .store()?;
        }
    }
    Ok(())
}
