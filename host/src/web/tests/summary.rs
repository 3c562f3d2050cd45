//! `GET /api/v1/metrics/summary` on known data, and the dashboard drawn from it.

use axum::http::StatusCode;

use super::*;
use crate::pipeline::model::DeploymentStatus;

/// Stores a deployment of `pipeline` that ended (or stands) as `status`, requested
/// `ago_ms` before now and taking `lead_ms` when it finished.
async fn outcome(
    app: &TestApp,
    pipeline: &str,
    by: &str,
    status: DeploymentStatus,
    ago_ms: u64,
    lead_ms: u64,
) -> DeploymentRecord {
    let mut d = deployment(app, pipeline, by).await;
    d.status = status;
    d.requested_at -= ago_ms;
    if status.is_final() {
        d.finished_at = Some(d.requested_at + lead_ms);
    }
    store_deployment(app, &d).await;
    d
}

#[tokio::test]
async fn the_summary_counts_the_callers_pipelines_over_fourteen_days() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (sales, sales_stage) = shared_pipeline(&app, "sales", &ana).await;
    let (finance, _) = app.pipeline("finance").await;
    let day = 86_400_000;
    use DeploymentStatus::*;
    for lead in [1_000, 2_000, 6_000] {
        outcome(&app, &sales, &ana.id, Succeeded, 0, lead).await;
    }
    outcome(&app, &sales, &ana.id, Failed, day, 500).await;
    outcome(&app, &sales, &ana.id, Rejected, day, 500).await;
    outcome(&app, &sales, &ana.id, Canceled, day, 500).await;
    outcome(&app, &sales, &ana.id, PendingApproval, 0, 0).await;
    // Older than the period: not counted.
    outcome(&app, &sales, &ana.id, Succeeded, 20 * day, 99_000).await;
    // Another pipeline, not shared with ana.
    outcome(&app, &finance, &app.admin.id, Succeeded, 0, 10_000).await;
    outcome(&app, &finance, &app.admin.id, PendingApproval, 0, 0).await;

    let mine = app
        .get("/api/v1/metrics/summary", &ana)
        .await
        .expect(StatusCode::OK)
        .body;
    assert_eq!(mine["days"], 14);
    let per_day = mine["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 14);
    assert_eq!(per_day[13]["total"], 4, "{mine}");
    assert_eq!(per_day[13]["counts"]["succeeded"], 3);
    assert_eq!(per_day[12]["total"], 3);
    assert_eq!(per_day[12]["counts"]["failed"], 1);
    assert_eq!(mine["totals"]["succeeded"], 3);
    assert_eq!(mine["totals"]["canceled"], 1);
    // 3 succeeded of 3 + 1 failed + 1 rejected; canceled ones are not outcomes.
    assert_eq!(mine["success_rate"].as_f64().unwrap(), 0.6);
    let leads = mine["lead_times"].as_array().unwrap();
    assert_eq!(leads.len(), 1, "{mine}");
    assert_eq!(leads[0]["stage_id"], sales_stage.as_str());
    assert_eq!(leads[0]["stage_name"], "qa");
    assert_eq!(leads[0]["pipeline_name"], "sales");
    assert_eq!(leads[0]["median_ms"], 2_000);
    assert_eq!(leads[0]["samples"], 3);
    assert_eq!(mine["pending_approvals"], 1);
    assert_eq!(mine["awaiting_your_vote"], 0);

    let all = app
        .get("/api/v1/metrics/summary", &app.admin)
        .await
        .expect(StatusCode::OK)
        .body;
    assert_eq!(all["totals"]["succeeded"], 4);
    assert_eq!(all["pending_approvals"], 2);
    assert_eq!(all["lead_times"].as_array().unwrap().len(), 2);

    // An even number of samples: the mean of the two middle ones.
    outcome(&app, &sales, &ana.id, Succeeded, 0, 4_000).await;
    let mine = app.get("/api/v1/metrics/summary", &ana).await.body;
    assert_eq!(mine["lead_times"][0]["median_ms"], 3_000, "{mine}");

    let openapi = app.get("/api/v1/openapi.json", &ana).await.body;
    assert!(openapi["paths"]["/api/v1/metrics/summary"]["get"].is_object());

    // The dashboard shows the same figures.
    let browser = sign_in(&app, &ana).await;
    let page = browser.get(&app, "/ui/").await;
    assert_html(&page, StatusCode::OK);
    assert!(page.text.contains("67 %"), "4 of 6: {}", page.text);
    assert!(page.text.contains("<svg"), "the chart is inline SVG");
    assert!(page.text.contains(r#"data-refresh="5""#));
}

#[tokio::test]
async fn the_summary_needs_a_token() {
    let app = TestApp::new().await;
    let reply = app.call("GET", "/api/v1/metrics/summary", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
