//! Charts drawn on the server as inline SVG: no script, no image requests, readable by
//! screen readers through their titles and the text legend.

use maud::{Markup, html};

use crate::pipeline::model::DeploymentStatus;
use crate::pipeline::reports::DayStatusCounts;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The order statuses stack in, finished outcomes at the bottom.
pub const STACK_ORDER: [DeploymentStatus; 9] = [
    DeploymentStatus::Succeeded,
    DeploymentStatus::Failed,
    DeploymentStatus::Rejected,
    DeploymentStatus::Canceled,
    DeploymentStatus::Deploying,
    DeploymentStatus::PendingApproval,
    DeploymentStatus::Validating,
    DeploymentStatus::Scheduled,
    DeploymentStatus::Queued,
];

/// The fill of each status; the stylesheet uses the same colours for the badges.
pub fn colour(status: DeploymentStatus) -> &'static str {
    match status {
        DeploymentStatus::Succeeded => "#2e7d32",
        DeploymentStatus::Failed => "#c62828",
        DeploymentStatus::Rejected => "#ad1457",
        DeploymentStatus::Canceled => "#757575",
        DeploymentStatus::Deploying => "#1565c0",
        DeploymentStatus::PendingApproval => "#ef6c00",
        DeploymentStatus::Validating => "#6a1b9a",
        DeploymentStatus::Scheduled => "#00838f",
        DeploymentStatus::Queued => "#9e9d24",
    }
}

/// The smallest "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `max`.
fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if step * factor >= max.max(1) {
                return step * factor;
            }
        }
        step *= 10;
    }
}

/// A gridline step that divides a [`nice_ceiling`] into at most five whole parts.
fn tick_step(top: u64) -> u64 {
    if top <= 5 {
        return 1;
    }
    let mut leading = top;
    while leading >= 10 {
        leading /= 10;
    }
    if leading == 2 { top / 4 } else { top / 5 }
}

/// Deployments per day, stacked by status, with a legend of the period's totals.
pub fn deployments_per_day(days: &[DayStatusCounts]) -> Markup {
    let top = nice_ceiling(days.iter().map(|d| d.total).max().unwrap_or(0));
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / days.len().max(1) as f64;
    let bar = slot * 0.7;
    let y = |value: u64| TOP + plot_height - plot_height * value as f64 / top as f64;
    let step = tick_step(top);
    let ticks: Vec<u64> = (0..=top / step).map(|i| i * step).collect();
    let total: u64 = days.iter().map(|d| d.total).sum();
    let count = |day: &DayStatusCounts, status: DeploymentStatus| {
        day.counts.get(status.as_str()).copied().unwrap_or(0)
    };
    html! {
        figure class="chart" id="deployments-per-day" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                role="img" aria-labelledby="per-day-title" {
                title id="per-day-title" {
                    "Deployments per day by status, last " (days.len()) " days: " (total) " in all"
                }
                @for tick in &ticks {
                    line class="grid" x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(*tick)) y2=(y(*tick))
                        stroke="#ddd" stroke-width="1" {}
                    text class="tick" x=(LEFT - 6.0) y=(y(*tick) + 4.0) text-anchor="end"
                        font-size="11" fill="#555" { (tick) }
                }
                @for (i, day) in days.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
                    g class="day" data-date=(day.date) {
                        @for (status, base, n) in segments(day) {
                            rect class={ "bar s-" (status.as_str()) } x=(fmt(x))
                                y=(fmt(y(base + n))) width=(fmt(bar))
                                height=(fmt(y(base) - y(base + n))) fill=(colour(status)) {
                                title { (day.date) ": " (n) " " (label(status)) }
                            }
                        }
                        @if day.total == 0 {
                            rect class="bar empty" x=(fmt(x)) y=(fmt(y(0) - 1.0)) width=(fmt(bar))
                                height="1" fill="#bbb" {
                                title { (day.date) ": no deployments" }
                            }
                        }
                        @if i % 2 == (days.len() + 1) % 2 || days.len() <= 7 {
                            text class="tick" x=(fmt(x + bar / 2.0)) y=(HEIGHT - 8.0)
                                text-anchor="middle" font-size="11" fill="#555" {
                                (day.date.get(5..).unwrap_or(&day.date))
                            }
                        }
                    }
                }
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(0)) y2=(y(0)) stroke="#888"
                    stroke-width="1" {}
            }
            figcaption {
                ul class="legend" {
                    @for status in STACK_ORDER {
                        @let n: u64 = days.iter().map(|d| count(d, status)).sum();
                        li data-status=(status.as_str()) {
                            svg class="swatch" viewBox="0 0 10 10" width="10" height="10"
                                aria-hidden="true" {
                                rect width="10" height="10" fill=(colour(status)) {}
                            }
                            " " (label(status)) ": " strong { (n) }
                        }
                    }
                }
            }
        }
    }
}

/// Each status of a day with a count, with the count stacked below it.
fn segments(day: &DayStatusCounts) -> Vec<(DeploymentStatus, u64, u64)> {
    let mut base = 0;
    let mut out = Vec::new();
    for status in STACK_ORDER {
        let n = day.counts.get(status.as_str()).copied().unwrap_or(0);
        if n > 0 {
            out.push((status, base, n));
            base += n;
        }
    }
    out
}

fn label(status: DeploymentStatus) -> &'static str {
    super::layout::status_label(status)
}

/// A coordinate with at most two decimals.
fn fmt(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maximum_is_a_round_number_at_or_above_the_highest_bar() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(101), 200);
    }

    #[test]
    fn gridlines_fall_on_whole_numbers() {
        assert_eq!(tick_step(5), 1);
        assert_eq!(tick_step(10), 2);
        assert_eq!(tick_step(20), 5);
        assert_eq!(tick_step(500), 100);
    }
}
