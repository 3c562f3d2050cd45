//! Error pages are pages of the console: a signed-in viewer keeps the navigation on a 403
//! or a 404; anyone else gets the page without it, and no detour through signing in.

use axum::http::StatusCode;

use super::*;

/// The markers of the frame a signed-in page has.
fn has_navigation(html: &str) -> bool {
    html.contains(r#"<nav aria-label="Main">"#)
        && html.contains(r#"id="signed-in-user""#)
        && html.contains(r#"<form id="signout""#)
}

#[tokio::test]
async fn a_403_and_a_404_keep_the_navigation_for_a_signed_in_viewer() {
    let app = TestApp::new().await;
    let maker = app.user("maker").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &maker).await;
    let d = deployment(&app, &pipeline, &maker.id).await;
    store_deployment(&app, &d).await;
    let browser = sign_in(&app, &maker).await;

    let forbidden = browser.get(&app, "/ui/admin/plugins").await;
    assert_html(&forbidden, StatusCode::FORBIDDEN);
    assert!(
        forbidden.text.contains("<h1>Forbidden</h1>"),
        "{}",
        forbidden.text
    );
    assert!(has_navigation(&forbidden.text), "{}", forbidden.text);
    assert!(
        !forbidden.text.contains(r#"aria-current="page""#),
        "no page of the navigation is the current one: {}",
        forbidden.text
    );
    assert!(
        !forbidden.text.contains("/ui/admin/environments"),
        "still no admin links for a maker: {}",
        forbidden.text
    );

    for path in ["/ui/no-such-page", "/ui/deployments/no-such-deployment"] {
        let missing = browser.get(&app, path).await;
        assert_html(&missing, StatusCode::NOT_FOUND);
        assert!(
            missing.text.contains("<h1>Not Found</h1>"),
            "{path}: {}",
            missing.text
        );
        assert!(has_navigation(&missing.text), "{path}: {}", missing.text);
    }

    // A form refused for its CSRF token answers inside the navigation too.
    let path = format!("/ui/deployments/{}/cancel", d.id);
    let refused = post_form(&app, &path, Some(&browser.cookie), &[("csrf", "forged")]).await;
    assert_html(&refused, StatusCode::FORBIDDEN);
    assert!(has_navigation(&refused.text), "{}", refused.text);
    // The navigation's sign-out form carries the session's own token, not the forged one.
    assert!(
        refused
            .text
            .contains(&format!(r#"name="csrf" value="{}""#, browser.csrf)),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn without_a_session_an_unknown_page_is_a_bare_404() {
    let app = TestApp::new().await;
    let missing = get_page(&app, "/ui/no-such-page", None).await;
    assert_html(&missing, StatusCode::NOT_FOUND);
    assert!(
        missing.text.contains("<h1>Not Found</h1>"),
        "{}",
        missing.text
    );
    assert!(!has_navigation(&missing.text), "{}", missing.text);
    let forged = get_page(&app, "/ui/no-such-page", Some("gatehouse_session=00ff")).await;
    assert_html(&forged, StatusCode::NOT_FOUND);
    assert!(!has_navigation(&forged.text), "{}", forged.text);
}
