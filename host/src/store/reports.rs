//! Aggregate reads for the web console and `GET /api/v1/metrics/summary`: each is one
//! statement that groups in the database, so a page costs the same with ten deployments
//! or ten thousand. They read the copied columns only, never the `document`.

use async_trait::async_trait;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Backend;
use super::SqlStore;
use super::db::{Db, SqlxResult, document, int, uint};
use crate::pipeline::Timestamp;
use crate::pipeline::console::*;
use crate::pipeline::model::{ArtifactRecord, DeploymentStatus};
use crate::pipeline::store::{ReportStore, StoreError, StoreResult};

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

/// A statement's text and the values for its `$n` placeholders, in order.
#[derive(Default)]
struct Statement {
    binds: Vec<Value>,
}

enum Value {
    Text(String),
    Int(i64),
}

impl Statement {
    /// The placeholder for a new value.
    fn bind(&mut self, value: Value) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn text(&mut self, value: &str) -> String {
        self.bind(Value::Text(value.to_owned()))
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(Value::Int(value))
    }

    /// `column IN ($a, $b, …)`; `values` must not be empty.
    fn within(&mut self, column: &str, values: &[String]) -> String {
        let list: Vec<String> = values.iter().map(|v| self.text(v)).collect();
        format!("{column} IN ({})", list.join(", "))
    }

    /// The condition that keeps the scope's deployments, or `None` for all of them.
    fn scope(&mut self, scope: &DeploymentScope) -> Option<String> {
        match scope {
            DeploymentScope::All => None,
            DeploymentScope::Pipelines(ids) => Some(self.within("pipeline_id", ids)),
        }
    }

    async fn fetch(self, db: &Db, sql: String) -> StoreResult<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in self.binds {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Int(number) => query.bind(number),
            };
        }
        query.fetch_all(&db.reader).await.store()
    }
}

/// Names the covering index a read is written for. SQLite plans without statistics here
/// and would otherwise pick the status index and read every matching row's document;
/// PostgreSQL plans well by itself.
fn index(db: &Db, name: &str) -> String {
    match db.backend {
        Backend::Sqlite => format!("INDEXED BY {name}"),
        Backend::Postgres => String::new(),
    }
}

/// `WHERE a AND b …`, or nothing.
fn where_all(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

fn status(text: &str) -> StoreResult<DeploymentStatus> {
    DeploymentStatus::from_str(text).map_err(StoreError::Backend)
}

#[async_trait]
impl ReportStore for SqlStore {
    async fn deployment_stats(
        &self,
        scope: &DeploymentScope,
        since: Timestamp,
    ) -> StoreResult<DeploymentStats> {
        if scope.is_empty() {
            return Ok(DeploymentStats::default());
        }
        let since = int(since, "time")?;

        let mut per_day = Statement::default();
        let mut conditions = vec![format!("requested_at >= {}", per_day.int(since))];
        conditions.extend(per_day.scope(scope));
        let sql = format!(
            "SELECT requested_at / {DAY_MS} AS day, status, COUNT(*) AS n FROM deployments {} {} \
             GROUP BY requested_at / {DAY_MS}, status",
            index(&self.db, "deployments_console_days"),
            where_all(&conditions)
        );
        let per_day = per_day
            .fetch(&self.db, sql)
            .await?
            .iter()
            .map(|row| {
                Ok(DayCount {
                    day: row.try_get("day").store()?,
                    status: status(&row.try_get::<String, _>("status").store()?)?,
                    count: uint(row.try_get("n").store()?, "count")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;

        let lead_times = lead_times(&self.db, scope, since).await?;

        let mut pending = Statement::default();
        let mut conditions = vec!["status = 'pending_approval'".to_owned()];
        conditions.extend(pending.scope(scope));
        let sql = format!(
            "SELECT COUNT(*) AS n FROM deployments {}",
            where_all(&conditions)
        );
        let pending_approval = match pending.fetch(&self.db, sql).await?.first() {
            Some(row) => uint(row.try_get("n").store()?, "count")?,
            None => 0,
        };
        Ok(DeploymentStats {
            per_day,
            lead_times,
            pending_approval,
        })
    }

    async fn installations(&self, query: &InstallationQuery) -> StoreResult<Vec<Installation>> {
        if query.scope.is_empty() {
            return Ok(Vec::new());
        }
        let (group, hint) = match query.per {
            InstallationGroup::StageSolution => (
                &["stage_id", "solution_name"][..],
                index(&self.db, "deployments_console_stage_succeeded"),
            ),
            InstallationGroup::SolutionVersionTarget => (
                &["solution_name", "version", "target_environment_id"][..],
                index(&self.db, "deployments_console_solution_succeeded"),
            ),
        };
        let mut statement = Statement::default();
        let mut conditions = vec![
            "status = 'succeeded'".to_owned(),
            "finished_at IS NOT NULL".to_owned(),
        ];
        conditions.extend(statement.scope(&query.scope));
        if !query.stage_ids.is_empty() {
            conditions.push(statement.within("stage_id", &query.stage_ids));
        }
        if !query.solutions.is_empty() {
            conditions.push(statement.within("solution_name", &query.solutions));
        }
        if !query.versions.is_empty() {
            conditions.push(statement.within("version", &query.versions));
        }
        // The newest finish of each group, then the deployments that finished then: both
        // read the index in its own order.
        let columns = group.join(", ");
        let joined: Vec<String> = group.iter().map(|c| format!("d.{c} = m.{c}")).collect();
        let sql = format!(
            "SELECT d.id, d.pipeline_id, d.stage_id, d.target_environment_id, d.solution_name, \
               d.version, d.requested_by, d.finished_at \
             FROM (SELECT {columns}, MAX(finished_at) AS newest FROM deployments {hint} {} \
                   GROUP BY {columns}) m \
             JOIN deployments d {hint} ON {} AND d.finished_at = m.newest \
             WHERE d.status = 'succeeded' \
             ORDER BY d.finished_at DESC, d.id DESC",
            where_all(&conditions),
            joined.join(" AND ")
        );
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in statement.fetch(&self.db, sql).await? {
            let installation = Installation {
                deployment_id: row.try_get("id").store()?,
                pipeline_id: row.try_get("pipeline_id").store()?,
                stage_id: row.try_get("stage_id").store()?,
                target_environment_id: row.try_get("target_environment_id").store()?,
                solution_name: row.try_get("solution_name").store()?,
                version: row.try_get("version").store()?,
                requested_by: row.try_get("requested_by").store()?,
                finished_at: uint(row.try_get("finished_at").store()?, "finish time")?,
            };
            // Two that finished in the same millisecond: the newer id, which comes first.
            let key = match query.per {
                InstallationGroup::StageSolution => [
                    installation.stage_id.clone(),
                    installation.solution_name.clone(),
                    String::new(),
                ],
                InstallationGroup::SolutionVersionTarget => [
                    installation.solution_name.clone(),
                    installation.version.clone(),
                    installation.target_environment_id.clone(),
                ],
            };
            if seen.insert(key) {
                out.push(installation);
            }
        }
        Ok(out)
    }

    async fn solutions(
        &self,
        scope: &DeploymentScope,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SolutionSummary>> {
        if scope.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = Statement::default();
        let mut conditions: Vec<String> = statement.scope(scope).into_iter().collect();
        if let Some(after) = after {
            conditions.push(format!("solution_name > {}", statement.text(after)));
        }
        let sql = format!(
            "SELECT solution_name, COUNT(DISTINCT version) AS versions, COUNT(*) AS n, \
               MAX(requested_at) AS last_at \
             FROM deployments {} {} GROUP BY solution_name ORDER BY solution_name LIMIT {}",
            index(&self.db, "deployments_console_versions"),
            where_all(&conditions),
            statement.int(i64::from(limit))
        );
        statement
            .fetch(&self.db, sql)
            .await?
            .iter()
            .map(|row| {
                Ok(SolutionSummary {
                    name: row.try_get("solution_name").store()?,
                    versions: uint(row.try_get("versions").store()?, "count")?,
                    deployments: uint(row.try_get("n").store()?, "count")?,
                    last_requested_at: uint(row.try_get("last_at").store()?, "request time")?,
                })
            })
            .collect()
    }

    async fn solution_versions(
        &self,
        scope: &DeploymentScope,
        solutions: &[String],
        before: Option<&VersionCursor>,
        per_solution: u32,
    ) -> StoreResult<Vec<SolutionVersionSeen>> {
        if scope.is_empty() {
            return Ok(Vec::new());
        }
        // One statement per solution of the page (at most a page of them): each groups only
        // its own solution's rows, in the index's order, and stops at the limit.
        let mut out = Vec::new();
        for solution in solutions {
            let mut statement = Statement::default();
            let mut conditions = vec![format!("solution_name = {}", statement.text(solution))];
            conditions.extend(statement.scope(scope));
            let having = match before {
                Some(cursor) => {
                    let at = statement.int(int(cursor.last_requested_at, "time")?);
                    let version = statement.text(&cursor.version);
                    format!(
                        "HAVING MAX(requested_at) < {at} \
                         OR (MAX(requested_at) = {at} AND version < {version})"
                    )
                }
                None => String::new(),
            };
            let sql = format!(
                "SELECT version, MAX(requested_at) AS last_at FROM deployments {} {} \
                 GROUP BY version {having} ORDER BY last_at DESC, version DESC LIMIT {}",
                index(&self.db, "deployments_console_versions"),
                where_all(&conditions),
                statement.int(i64::from(per_solution))
            );
            for row in statement.fetch(&self.db, sql).await? {
                out.push(SolutionVersionSeen {
                    solution_name: solution.clone(),
                    version: row.try_get("version").store()?,
                    last_requested_at: uint(row.try_get("last_at").store()?, "request time")?,
                });
            }
        }
        Ok(out)
    }

    async fn artifacts_of(
        &self,
        solutions: &[String],
        versions: &[String],
    ) -> StoreResult<Vec<ArtifactRecord>> {
        if solutions.is_empty() || versions.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = Statement::default();
        let conditions = [
            statement.within("solution_name", solutions),
            statement.within("version", versions),
        ];
        let sql = format!(
            "SELECT document FROM artifacts {} ORDER BY id DESC",
            where_all(&conditions)
        );
        statement
            .fetch(&self.db, sql)
            .await?
            .iter()
            .map(|row| document(row, "artifact"))
            .collect()
    }
}

/// The median lead time of each stage: how many succeeded per stage, then the middle
/// one or two of each stage in order. Stages are few; deployments are not read one by one.
async fn lead_times(
    db: &Db,
    scope: &DeploymentScope,
    since: i64,
) -> StoreResult<Vec<StageLeadTime>> {
    let succeeded_since = |statement: &mut Statement| {
        let mut conditions = vec![
            "status = 'succeeded'".to_owned(),
            "finished_at IS NOT NULL".to_owned(),
            format!("requested_at >= {}", statement.int(since)),
        ];
        conditions.extend(statement.scope(scope));
        conditions
    };
    let hint = index(db, "deployments_console_stage_succeeded");
    let mut counts = Statement::default();
    let conditions = succeeded_since(&mut counts);
    let sql = format!(
        "SELECT stage_id, COUNT(*) AS n FROM deployments {hint} {} GROUP BY stage_id \
         ORDER BY stage_id",
        where_all(&conditions)
    );
    let mut stages = Vec::new();
    for row in counts.fetch(db, sql).await? {
        let stage_id: String = row.try_get("stage_id").store()?;
        let n: i64 = row.try_get("n").store()?;
        stages.push((stage_id, n));
    }
    let mut out = Vec::with_capacity(stages.len());
    for (stage_id, n) in stages {
        let mut middle = Statement::default();
        let mut conditions = succeeded_since(&mut middle);
        conditions.push(format!("stage_id = {}", middle.text(&stage_id)));
        let sql = format!(
            "SELECT finished_at - requested_at AS lead FROM deployments {hint} {} \
             ORDER BY lead LIMIT 2 OFFSET {}",
            where_all(&conditions),
            middle.int((n - 1) / 2)
        );
        let leads = middle
            .fetch(db, sql)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("lead").store())
            .collect::<StoreResult<Vec<i64>>>()?;
        let median = match (n % 2, leads.as_slice()) {
            (0, [a, b, ..]) => (a + b) / 2,
            (_, [a, ..]) => *a,
            _ => continue,
        };
        out.push(StageLeadTime {
            stage_id,
            median_ms: uint(median.max(0), "lead time")?,
            samples: uint(n, "count")?,
        });
    }
    Ok(out)
}
