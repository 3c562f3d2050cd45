//! Webhooks, their signing secrets, and their deliveries with each attempt.
//!
//! The secret is kept as given, like an environment's credential: the host needs it to
//! sign, so it cannot keep only a hash. It is never read back through the API.

use async_trait::async_trait;
use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Backend;
use super::SqlStore;
use super::db::{
    SqlxResult, changed, document, get_document, int, list_documents, opt_int, page_clause,
    to_json, uint,
};
use crate::pipeline::gate::Timestamp;
use crate::pipeline::store::{Audit, Page, StoreError, StoreResult, WebhookStore};
use crate::pipeline::webhooks::{
    AfterAttempt, DeliveryAttempt, DeliveryRecord, DeliveryStatus, DueDelivery, WebhookRecord,
};

const DELIVERY_COLUMNS: &str = "id, webhook_id, position, event, deployment_id, status, \
     attempts, next_attempt_at, give_up_at, last_status_code, last_error, created_at, \
     updated_at";

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: &str,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        sqlx::query("INSERT INTO webhooks (id, secret, document) VALUES ($1, $2, $3)")
            .bind(webhook.id.as_str())
            .bind(secret)
            .bind(to_json(webhook)?)
            .execute(&mut *tx)
            .await
            .unique(|_| format!("a webhook with id {} already exists", webhook.id))?;
        tx.commit().await
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRecord,
        secret: Option<&str>,
        audit: &Audit,
    ) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        let result = sqlx::query(
            "UPDATE webhooks SET document = $2, secret = COALESCE($3, secret) WHERE id = $1",
        )
        .bind(webhook.id.as_str())
        .bind(to_json(webhook)?)
        .bind(secret)
        .execute(&mut *tx)
        .await
        .store()?;
        changed(result.rows_affected(), "webhook", &webhook.id)?;
        tx.commit().await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        get_document(&self.db, "webhooks", id, "webhook").await
    }

    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<WebhookRecord>> {
        list_documents(&self.db, "webhooks", page, "webhook").await
    }

    async fn delete_webhook(&self, id: &str, audit: &Audit) -> StoreResult<()> {
        let mut tx = self.db.audited(audit).await?;
        // Explicit rather than by cascade, so that PostgreSQL and SQLite do the same.
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE webhook_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .store()?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .store()?;
        let result = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .store()?;
        changed(result.rows_affected(), "webhook", id)?;
        tx.commit().await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let paging = page_clause(page.after.as_deref(), 2).replacen("WHERE", "AND", 1);
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 {paging}"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(webhook_id.to_owned());
        if let Some(after) = &page.after {
            query = query.bind(after.clone());
        }
        let mut conn = self.db.reader.acquire().await.store()?;
        let deliveries = query
            .bind(i64::from(page.limit))
            .fetch_all(&mut *conn)
            .await
            .store()?
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        with_attempts(&mut conn, deliveries).await
    }

    async fn redeliver(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        now: Timestamp,
        give_up_at: Timestamp,
        audit: &Audit,
    ) -> StoreResult<DeliveryRecord> {
        let mut tx = self.db.audited(audit).await?;
        let sql = format!(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, give_up_at = $5, \
             updated_at = $4 WHERE id = $1 AND webhook_id = $2 RETURNING {DELIVERY_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(delivery_id)
            .bind(webhook_id)
            .bind(DeliveryStatus::Pending.as_str())
            .bind(int(now, "now")?)
            .bind(int(give_up_at, "give_up_at")?)
            .fetch_optional(&mut *tx)
            .await
            .store()?
            .ok_or_else(|| {
                StoreError::NotFound(format!("delivery {delivery_id} of webhook {webhook_id}"))
            })?;
        let delivery = delivery_from_row(&row)?;
        let mut delivery = with_attempts(&mut tx, vec![delivery]).await?;
        tx.commit().await?;
        Ok(delivery.remove(0))
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let lock = match self.db.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $3 {lock}) \
             RETURNING id, webhook_id, event, attempts, give_up_at, payload"
        );
        // Most rounds find nothing due: a read says so without taking SQLite's one writer.
        let due = sqlx::query(
            "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             LIMIT 1",
        )
        .bind(int(now, "now")?)
        .fetch_optional(&self.db.reader)
        .await
        .store()?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin().await?;
        let claimed = sqlx::query(AssertSqlSafe(sql))
            .bind(int(now, "now")?)
            .bind(int(lease_until, "lease_until")?)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .store()?;
        if claimed.is_empty() {
            tx.commit().await.store()?;
            return Ok(Vec::new());
        }
        let mut webhook_ids: Vec<String> = claimed
            .iter()
            .map(|row| row.try_get("webhook_id"))
            .collect::<Result<_, _>>()
            .store()?;
        webhook_ids.sort();
        webhook_ids.dedup();
        let sql = format!(
            "SELECT id, secret, document FROM webhooks WHERE id IN ({})",
            placeholders(1, webhook_ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in &webhook_ids {
            query = query.bind(id.clone());
        }
        let mut webhooks: HashMap<String, (String, WebhookRecord)> = HashMap::new();
        for row in query.fetch_all(&mut *tx).await.store()? {
            let webhook: WebhookRecord = document(&row, "webhook")?;
            webhooks.insert(
                webhook.id.clone(),
                (row.try_get("secret").store()?, webhook),
            );
        }
        tx.commit().await.store()?;
        let mut due = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let webhook_id: String = row.try_get("webhook_id").store()?;
            let Some((secret, webhook)) = webhooks.get(&webhook_id) else {
                continue;
            };
            due.push(DueDelivery {
                id: row.try_get("id").store()?,
                webhook_id,
                event: row.try_get("event").store()?,
                attempt: u32::try_from(row.try_get::<i64, _>("attempts").store()?)
                    .unwrap_or(u32::MAX),
                give_up_at: uint(row.try_get("give_up_at").store()?, "give_up_at")?,
                url: webhook.url.clone(),
                secret: secret.clone(),
                payload: row.try_get("payload").store()?,
            });
        }
        Ok(due)
    }

    async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: &DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM webhook_deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(&mut *tx)
            .await
            .store()?;
        if exists.is_none() {
            // Its webhook was deleted while the attempt was in flight.
            tx.commit().await.store()?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, attempt) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(i64::from(attempt.attempt))
        .bind(int(attempt.at, "attempt time")?)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.as_deref())
        .bind(int(attempt.duration_ms, "duration")?)
        .execute(&mut *tx)
        .await
        .store()?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, \
             last_status_code = $4, last_error = $5, updated_at = $6 \
             WHERE id = $1 AND attempts = $7 AND status = 'pending'",
        )
        .bind(delivery_id)
        .bind(after.status.as_str())
        .bind(opt_int(after.next_attempt_at, "next_attempt_at")?)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.as_deref())
        .bind(int(
            attempt.at.saturating_add(attempt.duration_ms),
            "updated_at",
        )?)
        .bind(i64::from(attempt.attempt))
        .execute(&mut *tx)
        .await
        .store()?;
        tx.commit().await.store()
    }
}

fn status_code(value: Option<i64>) -> Option<u16> {
    value.and_then(|v| u16::try_from(v).ok())
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<DeliveryRecord> {
    let status: String = row.try_get("status").store()?;
    let opt_time = |name: &str| -> StoreResult<Option<Timestamp>> {
        row.try_get::<Option<i64>, _>(name)
            .store()?
            .map(|v| uint(v, name))
            .transpose()
    };
    Ok(DeliveryRecord {
        id: row.try_get("id").store()?,
        webhook_id: row.try_get("webhook_id").store()?,
        event: row.try_get("event").store()?,
        position: row.try_get("position").store()?,
        deployment_id: row.try_get("deployment_id").store()?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| {
            StoreError::Backend(format!("stored delivery status {status:?} is unknown"))
        })?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").store()?).unwrap_or(u32::MAX),
        last_status_code: status_code(row.try_get("last_status_code").store()?),
        last_error: row.try_get("last_error").store()?,
        next_attempt_at: opt_time("next_attempt_at")?,
        give_up_at: uint(row.try_get("give_up_at").store()?, "give_up_at")?,
        created_at: uint(row.try_get("created_at").store()?, "created_at")?,
        updated_at: uint(row.try_get("updated_at").store()?, "updated_at")?,
        attempt_log: Vec::new(),
    })
}

/// Fills in each delivery's attempts, oldest first.
async fn with_attempts(
    conn: &mut AnyConnection,
    mut deliveries: Vec<DeliveryRecord>,
) -> StoreResult<Vec<DeliveryRecord>> {
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let sql = format!(
        "SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts \
         WHERE delivery_id IN ({}) ORDER BY delivery_id, attempt",
        placeholders(1, deliveries.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for d in &deliveries {
        query = query.bind(d.id.clone());
    }
    let mut by_delivery: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
    for row in query.fetch_all(conn).await.store()? {
        let delivery: String = row.try_get("delivery_id").store()?;
        by_delivery
            .entry(delivery)
            .or_default()
            .push(DeliveryAttempt {
                attempt: u32::try_from(row.try_get::<i64, _>("attempt").store()?).unwrap_or(0),
                at: uint(row.try_get("at").store()?, "attempt time")?,
                status_code: status_code(row.try_get("status_code").store()?),
                error: row.try_get("error").store()?,
                duration_ms: uint(row.try_get("duration_ms").store()?, "duration")?,
            });
    }
    for d in &mut deliveries {
        d.attempt_log = by_delivery.remove(&d.id).unwrap_or_default();
    }
    Ok(deliveries)
}
