//! Backups on the Solutions page: a download link for each package, to those who may see
//! the artifact, and the download itself refused to anyone else as the API refuses it.

use axum::http::StatusCode;

use super::*;

#[tokio::test]
async fn the_solutions_page_links_each_backup_to_those_who_may_download_it() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let mut d = deployment(&app, &pipeline, &ana.id).await;
    d.status = DeploymentStatus::Succeeded;
    d.finished_at = Some(d.requested_at + 1000);
    store_deployment(&app, &d).await;
    stored_artifact(&app, &d).await;

    let browser = sign_in(&app, &ana).await;
    let page = browser.get(&app, "/ui/solutions").await;
    assert_html(&page, StatusCode::OK);
    for (kind, size) in [("managed", "2.0 KiB"), ("unmanaged", "4.0 KiB")] {
        let link = format!(
            r#"<a class="download" href="/ui/artifacts/crm/1.0.0.0/{kind}" download data-kind="{kind}">"#
        );
        assert!(page.text.contains(&link), "{link} in {}", page.text);
        assert!(page.text.contains(size), "{size} in {}", page.text);
    }
    assert!(!page.text.contains(">stored<"), "{}", page.text);

    // Bob sees the pipeline's deployments but may not use its development environment:
    // no link, and the download is not found, as the API answers him.
    let bob = app.user("bob").await;
    app.post(
        &format!("/api/v1/pipelines/{pipeline}/shares"),
        &app.admin,
        json!({ "grantee": format!("user:{}", bob.id) }),
    )
    .await
    .expect(StatusCode::OK);
    let bobs = sign_in(&app, &bob).await;
    let page = bobs.get(&app, "/ui/solutions").await;
    assert_html(&page, StatusCode::OK);
    assert!(
        page.text.contains(r#"data-solution="crm""#),
        "{}",
        page.text
    );
    assert!(!page.text.contains("/ui/artifacts/"), "{}", page.text);
    let refused = bobs.get(&app, "/ui/artifacts/crm/1.0.0.0/managed").await;
    assert_html(&refused, StatusCode::NOT_FOUND);
    assert!(
        refused.text.contains("that you can see"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn a_backup_download_needs_a_session_a_known_kind_and_a_kept_file() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let d = deployment(&app, &pipeline, &ana.id).await;
    store_deployment(&app, &d).await;
    stored_artifact(&app, &d).await;
    let path = "/ui/artifacts/crm/1.0.0.0/managed";

    let anonymous = get_page(&app, path, None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(location(&anonymous).starts_with("/ui/signin?next="));

    let browser = sign_in(&app, &ana).await;
    let bad_kind = browser.get(&app, "/ui/artifacts/crm/1.0.0.0/sources").await;
    assert_html(&bad_kind, StatusCode::BAD_REQUEST);
    assert!(
        bad_kind.text.contains("use managed or unmanaged"),
        "{}",
        bad_kind.text
    );
    // These tests keep no package files: the record is there, the file is not.
    let gone = browser.get(&app, path).await;
    assert_html(&gone, StatusCode::NOT_FOUND);
    assert!(gone.text.contains("no longer stored"), "{}", gone.text);
    let unknown = browser.get(&app, "/ui/artifacts/crm/9.9.9.9/managed").await;
    assert_html(&unknown, StatusCode::NOT_FOUND);
}
