//! The deploy form's two steps read as steps, and the solution field offers what the
//! source holds, or says why it cannot.

use axum::http::StatusCode;

use super::*;

#[tokio::test]
async fn step_one_names_the_pipeline_and_where_it_goes() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let browser = sign_in(&app, &ana).await;
    let step1 = browser.get(&app, "/ui/deploy").await;
    assert_html(&step1, StatusCode::OK);
    for said in [
        "<legend>Step 1 of 2: the pipeline</legend>",
        r#"<label for="pipeline">Pipeline</label>"#,
        r#"aria-describedby="pipeline-hint""#,
        r#"<p id="pipeline-hint" class="hint">"#,
        &format!(r#"<option value="{pipeline}">sales (sales-dev → qa)</option>"#),
    ] {
        assert!(step1.text.contains(said), "{said} in {}", step1.text);
    }
}

#[tokio::test]
async fn step_two_offers_what_the_source_holds_and_what_was_deployed_before() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let browser = sign_in(&app, &ana).await;
    let step2 = browser
        .get(&app, &format!("/ui/deploy?pipeline={pipeline}"))
        .await;
    assert_html(&step2, StatusCode::OK);
    assert!(step2.text.contains("Step 2 of 2"), "{}", step2.text);
    // The fake development environment holds crm 1.0.0.0, shown by its display name.
    for said in [
        r#"<option value="crm" label="CRM 1.0.0.0">"#,
        "sales-dev holds 1 solution: pick one from the list, or type its unique name.",
        r#"list="solution-names""#,
    ] {
        assert!(step2.text.contains(said), "{said} in {}", step2.text);
    }
}

#[tokio::test]
async fn step_two_says_when_the_source_cannot_list_and_still_takes_a_typed_name() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let (pipeline, _) = shared_pipeline(&app, "sales", &ana).await;
    let d = deployment(&app, &pipeline, &ana.id).await;
    store_deployment(&app, &d).await;
    app.environments.goes_down("memory://sales-dev");
    let browser = sign_in(&app, &ana).await;
    let step2 = browser
        .get(&app, &format!("/ui/deploy?pipeline={pipeline}"))
        .await;
    assert_html(&step2, StatusCode::OK);
    assert!(
        step2
            .text
            .contains(r#"<option value="crm" label="deployed with this pipeline before">"#),
        "a solution deployed before is offered: {}",
        step2.text
    );
    assert!(
        step2
            .text
            .contains(r#"<p class="unlisted">What sales-dev holds could not be listed ("#),
        "{}",
        step2.text
    );
    assert!(
        step2
            .text
            .contains(r#"<input id="solution" name="solution" type="text" value="""#),
        "{}",
        step2.text
    );
}
