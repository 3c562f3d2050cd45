//! What the dashboard shows, for the pipelines the caller can see. Deployment counts and
//! lead times are grouped by the database; plugin figures come from the plugin registry's
//! in-process statistics.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::pipeline::Timestamp;
use crate::pipeline::audit::now;
use crate::pipeline::console::DeploymentScope;
use crate::pipeline::engine::Engine;
use crate::pipeline::model::{DeploymentStatus, Id, PipelineRecord, User};
use crate::pipeline::plugin_admin::PluginAdmin;
use crate::pipeline::service_error::ServiceResult;
use crate::pipeline::store::{Store, StoreResult, scan_all};

/// Days the per-day counts, the success rate and the lead times cover, today included.
pub const SUMMARY_DAYS: u32 = 14;

/// Plugins listed as slowest and as most failing.
const TOP_PLUGINS: usize = 5;

const DAY_MS: Timestamp = 86_400_000;

/// The deployments requested on one UTC day, by status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayStatusCounts {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Midnight UTC that starts the day, in milliseconds since the epoch.
    pub start: Timestamp,
    /// Every status, with 0 for none.
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
}

/// The median time from request to success of one stage's deployments.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageLeadTimeSummary {
    pub pipeline_id: Option<Id>,
    pub pipeline_name: Option<String>,
    pub stage_id: Id,
    /// None for a stage that no longer exists.
    pub stage_name: Option<String>,
    pub median_ms: u64,
    /// Succeeded deployments the median is taken over.
    pub samples: u64,
}

/// How one plugin's calls have gone since the process started.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginSummary {
    pub id: Id,
    pub name: String,
    pub version: String,
    pub calls: u64,
    /// Failed calls, every cause together.
    pub errors: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MetricsSummary {
    /// Days covered, today included.
    pub days: u32,
    /// The start of the first day covered (midnight UTC), in ms since the epoch.
    pub since: Timestamp,
    /// Oldest day first, one entry per day.
    pub per_day: Vec<DayStatusCounts>,
    /// Deployments requested in the period, by status.
    pub totals: BTreeMap<String, u64>,
    /// Succeeded over succeeded, failed and rejected, for deployments requested in the
    /// period; null when none of them has finished that way.
    pub success_rate: Option<f64>,
    /// Median time from request to success, per stage, over the period.
    pub lead_times: Vec<StageLeadTimeSummary>,
    /// Deployments waiting for approval now, in the pipelines the caller can see.
    pub pending_approvals: u64,
    /// Of those, the ones the caller may vote on now (as `GET /approvals` lists them).
    pub awaiting_your_vote: u64,
    /// Highest p99 latency first.
    pub slowest_plugins: Vec<PluginSummary>,
    /// Most failed calls first; only plugins with at least one.
    pub failing_plugins: Vec<PluginSummary>,
}

/// The deployments a user's reports count: every one for an admin, as `GET /deployments`
/// lists them, and those of the visible pipelines for anyone else.
pub fn scope_of(user: &User, visible: &[PipelineRecord]) -> DeploymentScope {
    if user.is_admin() {
        DeploymentScope::All
    } else {
        DeploymentScope::Pipelines(visible.iter().map(|p| p.id.clone()).collect())
    }
}

/// Builds the summary; `visible` is what [`visible_pipelines`] answered for `actor`.
///
/// [`visible_pipelines`]: crate::pipeline::access::visible_pipelines
pub async fn summary(
    store: &dyn Store,
    engine: &Engine,
    plugins: &dyn PluginAdmin,
    actor: &User,
    visible: &[PipelineRecord],
) -> ServiceResult<MetricsSummary> {
    let today = now() / DAY_MS;
    let first_day = today + 1 - Timestamp::from(SUMMARY_DAYS);
    let since = first_day * DAY_MS;
    let scope = scope_of(actor, visible);
    let stats = store.deployment_stats(&scope, since).await?;

    let mut per_day: Vec<DayStatusCounts> = (first_day..=today)
        .map(|day| DayStatusCounts {
            date: date(day * DAY_MS),
            start: day * DAY_MS,
            counts: DeploymentStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), 0))
                .collect(),
            total: 0,
        })
        .collect();
    let mut totals: BTreeMap<String, u64> = DeploymentStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    for count in &stats.per_day {
        let Some(slot) = u64::try_from(count.day)
            .ok()
            .and_then(|d| d.checked_sub(first_day))
            .and_then(|i| per_day.get_mut(i as usize))
        else {
            continue;
        };
        *slot
            .counts
            .entry(count.status.as_str().to_owned())
            .or_default() += count.count;
        slot.total += count.count;
        *totals.entry(count.status.as_str().to_owned()).or_default() += count.count;
    }
    let outcome = |s: DeploymentStatus| totals.get(s.as_str()).copied().unwrap_or(0);
    let succeeded = outcome(DeploymentStatus::Succeeded);
    let ended = succeeded + outcome(DeploymentStatus::Failed) + outcome(DeploymentStatus::Rejected);
    let success_rate = (ended > 0).then(|| succeeded as f64 / ended as f64);

    let stages: HashMap<&str, (&PipelineRecord, &str)> = visible
        .iter()
        .flat_map(|p| {
            p.stages
                .iter()
                .map(move |s| (s.id.as_str(), (p, s.name.as_str())))
        })
        .collect();
    let lead_times = stats
        .lead_times
        .iter()
        .map(|lead| {
            let known = stages.get(lead.stage_id.as_str());
            StageLeadTimeSummary {
                pipeline_id: known.map(|(p, _)| p.id.clone()),
                pipeline_name: known.map(|(p, _)| p.name.clone()),
                stage_id: lead.stage_id.clone(),
                stage_name: known.map(|(_, s)| (*s).to_owned()),
                median_ms: lead.median_ms,
                samples: lead.samples,
            }
        })
        .collect();

    let awaiting_your_vote = engine.approvals(actor).await?.len() as u64;
    let (slowest_plugins, failing_plugins) = plugin_rankings(store, plugins).await?;
    Ok(MetricsSummary {
        days: SUMMARY_DAYS,
        since,
        per_day,
        totals,
        success_rate,
        lead_times,
        pending_approvals: stats.pending_approval,
        awaiting_your_vote,
        slowest_plugins,
        failing_plugins,
    })
}

/// The slowest plugins by p99 latency, and the ones with the most failed calls.
async fn plugin_rankings(
    store: &dyn Store,
    plugins: &dyn PluginAdmin,
) -> StoreResult<(Vec<PluginSummary>, Vec<PluginSummary>)> {
    let loaded = scan_all(
        move |p| async move { store.list_plugins(&p).await },
        |p| p.id.clone(),
    )
    .await?;
    let all: Vec<PluginSummary> = loaded
        .into_iter()
        .map(|p| {
            let stats = plugins.stats(&p.id);
            PluginSummary {
                errors: stats.errors.values().sum(),
                calls: stats.calls,
                p50_us: stats.p50_us,
                p99_us: stats.p99_us,
                id: p.id,
                name: p.name,
                version: p.version,
            }
        })
        .collect();
    let mut slowest: Vec<PluginSummary> =
        all.iter().filter(|p| p.p99_us.is_some()).cloned().collect();
    slowest.sort_by(|a, b| b.p99_us.cmp(&a.p99_us).then(b.p50_us.cmp(&a.p50_us)));
    slowest.truncate(TOP_PLUGINS);
    let mut failing: Vec<PluginSummary> = all.into_iter().filter(|p| p.errors > 0).collect();
    failing.sort_by(|a, b| b.errors.cmp(&a.errors).then(a.name.cmp(&b.name)));
    failing.truncate(TOP_PLUGINS);
    Ok((slowest, failing))
}

/// `YYYY-MM-DD` of a time, UTC.
pub fn date(ms: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}
