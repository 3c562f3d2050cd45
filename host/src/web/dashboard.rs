//! `GET /ui/`: the dashboard, drawn from the same figures `GET /api/v1/metrics/summary`
//! answers.

use axum::extract::State;
use maud::{Markup, html};

use super::charts;
use super::error::PageError;
use super::layout::{Nav, Shell, duration};
use super::session::Viewer;
use crate::pipeline::access::visible_pipelines;
use crate::pipeline::reports::{MetricsSummary, PluginSummary, summary};
use crate::pipeline::services::Services;

pub async fn page(State(state): State<Services>, viewer: Viewer) -> Result<Markup, PageError> {
    let store = state.store.as_ref();
    let visible = visible_pipelines(store, &viewer.user).await?;
    let summary = summary(
        store,
        &state.engine,
        state.plugins.as_ref(),
        &viewer.user,
        &visible,
    )
    .await?;
    let shell = Shell::with_pending(&viewer, summary.awaiting_your_vote as usize);
    Ok(shell.page("Dashboard", Nav::Dashboard, true, body(&summary)))
}

fn body(s: &MetricsSummary) -> Markup {
    let requested: u64 = s.per_day.iter().map(|d| d.total).sum();
    html! {
        main id="dashboard" {
            h1 { "Dashboard" }
            p class="lede" {
                "The pipelines you can see, over the last " (s.days) " days (UTC). "
                "The same figures are served as JSON at "
                a href="/api/v1/metrics/summary" { code { "/api/v1/metrics/summary" } } "."
            }
            section class="cards" aria-label="Key figures" {
                div class="card" id="success-rate" {
                    h2 { "Success rate" }
                    p class="figure" {
                        @match s.success_rate {
                            Some(rate) => { (format!("{:.0} %", rate * 100.0)) }
                            None => { "—" }
                        }
                    }
                    p class="hint" { "succeeded of succeeded, failed and rejected" }
                }
                div class="card" id="requested" {
                    h2 { "Requested" }
                    p class="figure" { (requested) }
                    p class="hint" { "deployments in " (s.days) " days" }
                }
                div class="card" id="pending-approvals" {
                    h2 { "Pending approvals" }
                    p class="figure" { (s.pending_approvals) }
                    p class="hint" {
                        a href="/ui/approvals" { (s.awaiting_your_vote) " waiting for your vote" }
                    }
                }
            }
            section aria-labelledby="per-day-heading" {
                h2 id="per-day-heading" { "Deployments per day" }
                (charts::deployments_per_day(&s.per_day))
            }
            section aria-labelledby="lead-heading" {
                h2 id="lead-heading" { "Median lead time, request to succeeded" }
                @if s.lead_times.is_empty() {
                    p class="empty" { "No deployment has succeeded in this period." }
                } @else {
                    table id="lead-times" {
                        thead { tr { th { "Pipeline" } th { "Stage" } th class="num" { "Median" } th class="num" { "Deployments" } } }
                        tbody {
                            @for lead in &s.lead_times {
                                tr data-stage=(lead.stage_id) {
                                    td { (lead.pipeline_name.as_deref().unwrap_or("—")) }
                                    td { (lead.stage_name.as_deref().unwrap_or("(a deleted stage)")) }
                                    td class="num" { (duration(lead.median_ms)) }
                                    td class="num" { (lead.samples) }
                                }
                            }
                        }
                    }
                }
            }
            div class="columns" {
                section aria-labelledby="slow-heading" {
                    h2 id="slow-heading" { "Slowest plugins" }
                    (plugin_table("slowest-plugins", &s.slowest_plugins, "No plugin has been called since the server started."))
                }
                section aria-labelledby="failing-heading" {
                    h2 id="failing-heading" { "Most failing plugins" }
                    (plugin_table("failing-plugins", &s.failing_plugins, "No plugin call has failed since the server started."))
                }
            }
        }
    }
}

fn plugin_table(id: &str, plugins: &[PluginSummary], empty: &str) -> Markup {
    let micros = |us: Option<u64>| us.map_or("—".to_owned(), |us| format!("{us} µs"));
    html! {
        @if plugins.is_empty() {
            p class="empty" { (empty) }
        } @else {
            table id=(id) {
                thead { tr { th { "Plugin" } th class="num" { "Calls" } th class="num" { "Errors" } th class="num" { "p50" } th class="num" { "p99" } } }
                tbody {
                    @for p in plugins {
                        tr data-plugin=(p.id) {
                            td { (p.name) " " span class="muted" { (p.version) } }
                            td class="num" { (p.calls) }
                            td class="num" { (p.errors) }
                            td class="num" { (micros(p.p50_us)) }
                            td class="num" { (micros(p.p99_us)) }
                        }
                    }
                }
            }
        }
    }
}
