//! Prometheus metrics: the names every part of the host records under, the process-wide
//! recorder, the HTTP latency middleware and the `/metrics` scrape.

use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::Services;
use crate::pipeline::model::DeploymentStatus;
use crate::pipeline::store::{DeploymentFilter, scan_pages};

/// Histogram `{method, route, status}`: seconds to answer an HTTP request; `route` is the
/// route template (`/api/v1/pipelines/{id}`), never the raw path.
pub const HTTP_REQUEST_DURATION: &str = "gatehouse_http_request_duration_seconds";

/// Gauge `{status}`: deployments in each unfinished status, counted at each scrape.
pub const DEPLOYMENTS: &str = "gatehouse_deployments";

/// Counter `{plugin, outcome}`: plugin calls; `plugin` is the plugin's name, `outcome` is
/// `ok` or the failure's `PluginError::code()` (`timeout`, `out_of_fuel`, `trap`, …).
/// Recorded by the plugin registry.
pub const PLUGIN_CALLS: &str = "gatehouse_plugin_calls_total";

/// Histogram `{plugin}`: seconds per plugin call, instantiation included. Recorded by the
/// plugin registry.
pub const PLUGIN_CALL_DURATION: &str = "gatehouse_plugin_call_duration_seconds";

/// HTTP buckets: from a cached read to a plugin upload that compiles for seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Plugin buckets: a warm Rust gate answers in tens of microseconds; the wall-time limit
/// stops every call by 60 s.
const PLUGIN_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 5.0, 60.0,
];

/// Most deployments counted per status at one scrape; past it the gauge shows the cap.
const COUNT_CAP: usize = 10_000;

/// Installs the process-wide recorder on first call and returns its handle ever after, so
/// the server and the tests can each ask for it.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_DURATION.into()), HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(PLUGIN_CALL_DURATION.into()),
                        PLUGIN_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder was installed first; /metrics stays empty"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status."
    );
    metrics::describe_gauge!(
        DEPLOYMENTS,
        "Deployments in each unfinished status, counted when scraped."
    );
    metrics::describe_counter!(
        PLUGIN_CALLS,
        "Plugin calls, by plugin name and outcome (ok or the failure's code)."
    );
    metrics::describe_histogram!(
        PLUGIN_CALL_DURATION,
        metrics::Unit::Seconds,
        "Time per plugin call, instantiation included, by plugin name."
    );
}

/// Records each request's latency under its route template.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn scrape(state: Services, handle: PrometheusHandle) -> Response {
    for status in DeploymentStatus::ALL.into_iter().filter(|s| !s.is_final()) {
        match count_deployments(&state, status).await {
            Ok(count) => {
                metrics::gauge!(DEPLOYMENTS, "status" => status.as_str()).set(count as f64)
            }
            Err(error) => {
                tracing::warn!(%error, %status, "could not count deployments for /metrics")
            }
        }
    }
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn count_deployments(
    state: &Services,
    status: DeploymentStatus,
) -> Result<usize, crate::pipeline::store::StoreError> {
    let filter = DeploymentFilter {
        statuses: vec![status],
        ..DeploymentFilter::default()
    };
    let mut count = 0;
    scan_pages(
        |page| {
            let filter = &filter;
            async move { state.store.list_deployments(filter, &page).await }
        },
        |d| d.id.clone(),
        |batch| {
            count += batch.len();
            if count >= COUNT_CAP {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .await?;
    Ok(count.min(COUNT_CAP))
}
