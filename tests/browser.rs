//! The web console in a real browser: Debian's headless Chromium, driven through
//! chromedriver, against a real `gatehouse demo`.
//!
//! A maker signs in, deploys the sample solution to QA through the deploy page (filling
//! in what preflight asks for), then to Production, where it waits for the two-person
//! rule; its page tells each step to the second, and in a narrow window its badge stays on
//! one line. Admin pages answer the maker 403, inside the navigation, and the backups of
//! the QA deployment's export download from the Solutions page with the browser's session,
//! byte for byte what the API sends. Alice and Bob approve it from their inboxes;
//! a vote whose CSRF token was tampered with is refused and counts for nothing. The
//! history then shows it succeeded. Screenshots of the approvals inbox and the dashboard
//! go to `target/screenshots/` (and to `docs/screenshots/` with
//! `GATEHOUSE_UPDATE_SCREENSHOTS=1`).
//!
//! Needs `apt-get install chromium chromium-driver` and `scripts/build-plugins`.

#[path = "support/server.rs"]
mod server;

#[path = "support/demo.rs"]
mod demo;

#[path = "support/webdriver.rs"]
mod webdriver;

#[path = "support/browser.rs"]
mod browser;

#[path = "browser/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use browser::{Browser, eventually, fetch, require_chromium, screenshots_dir};
use checks::{assert_on_one_line, download_backups, fact, to_the_second};
use demo::{Demo, require_plugins, tokens};
use webdriver::Locator;

/// How long a deployment may take to reach the state a step waits for.
const WAIT: Duration = Duration::from_secs(60);
/// How long a page may take to show what a click led to.
const PAGE: Duration = Duration::from_secs(10);
const PIPELINE: &str = "Contoso Expenses";
const SOLUTION: &str = "contoso_expenses";
const VERSION: &str = "1.0.0.1";
const API_URL: &str = "https://api.contoso.test";
const CONNECTION: &str = "shared-sql";
const SESSION_COOKIE: &str = "gatehouse_session";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maker_deploys_and_two_approvers_approve_it_from_their_inboxes() {
    require_chromium();
    require_plugins();
    let dir = tempfile::tempdir().expect("a temporary dir");
    let data = dir.path().join("gatehouse-data");
    let demo = Demo::start(&data);
    let tokens = tokens(&data);
    let user = |name: &str| {
        tokens["users"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {name}: {tokens:#}"))
            .to_owned()
    };
    let (maker, alice, bob) = (user("maker"), user("alice"), user("bob"));
    let admin = tokens["admin"]
        .as_str()
        .expect("the admin's token")
        .to_owned();
    let b = Browser::start(&demo.base).await;
    let shots = screenshots_dir();

    // Signing in: a page asked for without a session leads to the sign-in form and back;
    // a wrong token is refused.
    b.goto("/ui/deployments").await;
    let path = b.path().await;
    assert!(
        path.starts_with("/ui/signin?") && path.contains("next="),
        "without a session a page leads to the sign-in form, not {path}"
    );
    b.fill("input#token", "not-a-token").await;
    b.click("button#signin-submit").await;
    b.find("#error", PAGE).await;
    assert_eq!(b.status().await, 401, "a wrong token is 401");
    b.goto("/ui/deployments").await;
    sign_in_here(&b, &maker).await;
    assert_eq!(
        b.path().await,
        "/ui/deployments",
        "signing in leads back to the page asked for"
    );
    let cookie = b
        .client
        .get_named_cookie(SESSION_COOKIE)
        .await
        .expect("the session cookie is set");
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict"),
        "{cookie}"
    );
    for page in [
        "/ui/",
        "/ui/pipelines",
        "/ui/deployments",
        "/ui/solutions",
        "/ui/approvals",
    ] {
        b.goto(page).await;
        assert_eq!(b.status().await, 200, "{page}\n{}", b.text(2000).await);
    }

    // QA through the deploy page.
    let qa = deploy(&b, "QA", "").await;
    wait_for_status(&b, &qa, "succeeded").await;

    // Production, with the notes solution-policy wants there; it waits for approvers.
    let prod = deploy(&b, "Production", "expense limits raised to 5,000").await;
    wait_for_status(&b, &prod, "pending_approval").await;
    // Its page tells each step to the second, and the pre-deployment step in words.
    let steps = b
        .js(
            "return [...document.querySelectorAll('ol#timeline li time')].map(t => t.textContent);",
            vec![],
        )
        .await;
    let steps: Vec<&str> = steps
        .as_array()
        .map(|all| all.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        steps.len() >= 2 && steps.iter().all(|t| to_the_second(t)),
        "timeline steps show seconds: {steps:?}"
    );
    assert_eq!(fact(&b, "Pre-deployment step").await, "pending");
    // In a narrow window the history's "pending approval" badge stays on one line.
    b.goto("/ui/deployments").await;
    b.find(r#"tr[data-status="pending_approval"] .status"#, PAGE)
        .await;
    assert_on_one_line(&b, ".status, button").await;
    let view = api(&demo.base, &maker, &format!("/api/v1/deployments/{prod}"));
    assert_eq!(
        view["deployment"]["notes"],
        "expense limits raised to 5,000"
    );
    assert_eq!(view["deployment"]["version"], VERSION, "{view:#}");

    // Admin pages answer a maker 403, in the browser and to a plain client with the
    // browser's session.
    for page in ["/ui/admin/plugins", "/ui/admin/environments"] {
        b.goto(page).await;
        assert_eq!(b.status().await, 403, "{page} as the maker");
        let h1 = b.find("h1", PAGE).await.text().await.expect("the heading");
        assert_eq!(h1, "Forbidden", "{page} as the maker");
        assert!(
            b.has(r#"nav[aria-label="Main"] a[href="/ui/deployments"]"#)
                .await
                && b.has("#signed-in-user").await
                && b.has("form#signout").await,
            "the 403 page keeps the navigation\n{}",
            b.text(2000).await
        );
        let session = b
            .client
            .get_named_cookie(SESSION_COOKIE)
            .await
            .expect("the session cookie");
        let (status, body) = get_with_session(&demo.base, page, session.value());
        assert_eq!(status, 403, "{page} with the maker's session: {body}");
        assert!(body.contains("<h1>Forbidden</h1>"), "{page}: {body}");
        assert!(
            body.contains(r#"<nav aria-label="Main">"#),
            "{page}: {body}"
        );
    }

    // QA's deployment exported the solution: the Solutions page links its backups, and
    // the link downloads the same package the API does, with the browser's session.
    download_backups(&b, &demo.base, &maker).await;
    sign_out(&b).await;

    // Alice: her inbox holds it; a tampered CSRF token is refused; her vote counts,
    // and one of two leaves it pending.
    sign_in(&b, &alice).await;
    let card = format!(r#"article.approval[data-deployment="{prod}"]"#);
    open_inbox_with(&b, &card).await;
    b.screenshot(&shots.join("approvals.png")).await;

    // The page reloads itself every few seconds until a field changes: tamper with the
    // token and mark the form changed in one step.
    let tampered = b
        .js(
            "const i = document.querySelector(arguments[0]);\
             if (!i || !i.value) return null;\
             i.value = 'tampered-' + i.value;\
             i.dispatchEvent(new Event('input', {bubbles: true}));\
             return i.value;",
            vec![json!(format!("{card} input[name=csrf]"))],
        )
        .await;
    assert!(
        tampered
            .as_str()
            .is_some_and(|v| v.starts_with("tampered-")),
        "the vote form has a csrf input: {tampered}\n{}",
        b.text(2000).await
    );
    b.fill(&format!("textarea#comment-{prod}"), "forged").await;
    let sent = b
        .js(
            "return document.querySelector(arguments[0]).value;",
            vec![json!(format!("{card} input[name=csrf]"))],
        )
        .await;
    assert_eq!(sent, tampered, "the tampered token is what the form sends");
    b.click(&format!("{card} button.approve")).await;
    eventually("the forged vote to be answered", PAGE, async || {
        let path = b.path().await;
        if path.ends_with("/vote") && b.status().await != 0 {
            Ok(())
        } else {
            Err(b.text(1000).await)
        }
    })
    .await;
    assert_eq!(
        b.status().await,
        403,
        "a vote with a wrong CSRF token is refused\n{}",
        b.text(1000).await
    );
    let view = api(&demo.base, &maker, &format!("/api/v1/deployments/{prod}"));
    assert_eq!(
        view["votes"].as_array().map(Vec::len),
        Some(0),
        "a refused vote is not recorded: {view:#}"
    );
    assert_eq!(view["deployment"]["status"], "pending_approval");

    open_inbox_with(&b, &card).await;
    vote(&b, &prod, "looks good").await;
    let view = eventually("alice's vote to be counted", WAIT, async || {
        let view = api(&demo.base, &maker, &format!("/api/v1/deployments/{prod}"));
        let reason = view["deployment"]["status_reason"]
            .as_str()
            .unwrap_or_default();
        if reason.contains("1 of 2") {
            Ok(view)
        } else {
            Err(format!("{view:#}"))
        }
    })
    .await;
    assert_eq!(view["votes"].as_array().map(Vec::len), Some(1), "{view:#}");
    assert_eq!(view["votes"][0]["approve"], true, "{view:#}");
    assert_eq!(view["votes"][0]["comment"], "looks good", "{view:#}");
    b.goto(&format!("/ui/deployments/{prod}")).await;
    assert_eq!(
        status_on_page(&b).await,
        "pending_approval",
        "one approval of two leaves it waiting"
    );
    sign_out(&b).await;

    // Bob's vote is the second one.
    sign_in(&b, &bob).await;
    open_inbox_with(&b, &card).await;
    vote(&b, &prod, "ok").await;
    sign_out(&b).await;

    // The maker sees it succeed in the history.
    sign_in(&b, &maker).await;
    let row = format!(r#"table#history tr[data-deployment="{prod}"][data-status="succeeded"]"#);
    eventually("Production to succeed in the history", WAIT, async || {
        b.goto("/ui/deployments").await;
        if b.has(&row).await {
            Ok(())
        } else {
            Err(b.text(3000).await)
        }
    })
    .await;
    assert!(
        b.has(&format!(
            r#"table#history tr[data-deployment="{qa}"][data-status="succeeded"]"#
        ))
        .await,
        "QA's deployment is in the history too\n{}",
        b.text(3000).await
    );
    let view = api(&demo.base, &maker, &format!("/api/v1/deployments/{prod}"));
    assert_eq!(view["deployment"]["status"], "succeeded", "{view:#}");
    sign_out(&b).await;

    // The admin sees the admin pages and the dashboard.
    sign_in(&b, &admin).await;
    for page in ["/ui/admin/plugins", "/ui/admin/environments"] {
        b.goto(page).await;
        assert_eq!(b.status().await, 200, "{page} as the admin");
        assert_on_one_line(&b, ".status, button").await;
    }
    b.goto(&format!("/ui/deployments/{prod}")).await;
    assert_eq!(fact(&b, "Pre-deployment step").await, "completed");
    b.goto("/ui/").await;
    assert_eq!(b.status().await, 200);
    b.find("main#dashboard svg", PAGE).await;
    b.screenshot(&shots.join("dashboard.png")).await;
    publish_screenshots(&shots, &["dashboard.png", "approvals.png"]);

    b.close().await;
}

/// Signs in with `token` from the sign-in page.
async fn sign_in(b: &Browser, token: &str) {
    b.goto("/ui/signin").await;
    sign_in_here(b, token).await;
}

/// Signs in from the sign-in form on the page now.
async fn sign_in_here(b: &Browser, token: &str) {
    b.fill("input#token", token).await;
    b.click("button#signin-submit").await;
    eventually("signing in", PAGE, async || {
        let path = b.path().await;
        if path.starts_with("/ui/signin") {
            Err(b.text(1000).await)
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(
        b.status().await,
        200,
        "after signing in\n{}",
        b.text(1000).await
    );
}

/// Signs out with the nav's button; the dashboard then leads to the sign-in form.
async fn sign_out(b: &Browser) {
    b.goto("/ui/").await;
    b.click("form#signout button, form#signout [type=submit]")
        .await;
    eventually("signing out", PAGE, async || {
        if b.has("form#signout").await {
            Err(b.text(500).await)
        } else {
            Ok(())
        }
    })
    .await;
    b.goto("/ui/").await;
    let path = b.path().await;
    assert!(
        path.starts_with("/ui/signin"),
        "signed out, / leads to the sign-in form, not {path}"
    );
}

/// Deploys the sample solution to `stage` through the deploy page and returns the new
/// deployment's id.
async fn deploy(b: &Browser, stage: &str, notes: &str) -> String {
    b.goto("/ui/deploy").await;
    b.choose("select#pipeline", PIPELINE).await;
    b.click("button#choose-pipeline").await;
    b.find("select#stage", PAGE).await;
    assert!(
        b.path().await.contains("pipeline="),
        "choosing the pipeline opens /ui/deploy?pipeline=…, not {}",
        b.path().await
    );
    // The solution field offers what the source holds, with its version.
    let offered = b
        .find(
            &format!(r#"datalist#solution-names option[value="{SOLUTION}"]"#),
            PAGE,
        )
        .await
        .attr("label")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(
        offered.split(' ').any(|word| word.split('.').count() == 4),
        "{SOLUTION} is offered with its version, not {offered:?}"
    );
    let hint = b.find("#solution-hint p.held", PAGE).await.text().await;
    assert!(
        hint.as_deref().is_ok_and(|h| h.contains("holds")),
        "the hint says what the source holds: {hint:?}"
    );
    fill_request(b, stage, notes).await;
    b.click("button#preflight").await;
    let first = preflight_result(b).await;
    assert_eq!(
        first,
        "false",
        "preflight to {stage} names what is missing\n{}",
        b.text(3000).await
    );

    // What preflight asks for: the environment variable and the connection reference.
    let vars = b
        .client
        .find_all(Locator::Css(r#"input[id^="var-"]"#))
        .await
        .expect("the variables");
    let mut names = Vec::new();
    for var in &vars {
        names.push(var.attr("name").await.ok().flatten().unwrap_or_default());
    }
    assert_eq!(names, ["var:contoso_ApiUrl"], "{}", b.text(3000).await);
    for var in &vars {
        var.clear().await.expect("clear");
        var.send_keys(API_URL).await.expect("type");
    }
    let conns = b
        .client
        .find_all(Locator::Css(r#"[id^="conn-"]"#))
        .await
        .expect("the connection references");
    let mut names = Vec::new();
    for conn in &conns {
        names.push(conn.attr("name").await.ok().flatten().unwrap_or_default());
        if conn
            .tag_name()
            .await
            .expect("a tag")
            .eq_ignore_ascii_case("select")
        {
            let chosen = b
                .js(
                    "const s = arguments[0], want = arguments[1];\
                     const o = [...s.options].find(o => o.value === want || o.text.includes(want));\
                     if (!o) return false;\
                     s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true}));\
                     return true;",
                    vec![
                        serde_json::to_value(conn).expect("an element reference"),
                        json!(CONNECTION),
                    ],
                )
                .await;
            assert_eq!(
                chosen,
                true,
                "{CONNECTION} is offered\n{}",
                b.text(3000).await
            );
        } else {
            conn.clear().await.expect("clear");
            conn.send_keys(CONNECTION).await.expect("type");
        }
    }
    assert_eq!(names, ["conn:contoso_sql"], "{}", b.text(3000).await);

    b.click("button#preflight").await;
    assert_eq!(
        preflight_result(b).await,
        "true",
        "with the variable and the connection, preflight to {stage} passes\n{}",
        b.text(3000).await
    );
    b.click("button#deploy-submit").await;
    eventually(
        &format!("the deployment to {stage} to open"),
        PAGE,
        async || {
            if b.has("#error").await {
                panic!(
                    "the deployment to {stage} was refused\n{}",
                    b.text(3000).await
                );
            }
            let path = b.path().await;
            match path.strip_prefix("/ui/deployments/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Ok(id.to_owned()),
                _ => Err(b.text(1000).await),
            }
        },
    )
    .await
}

/// Fills the request part of the deploy form (what the maker chooses before preflight).
async fn fill_request(b: &Browser, stage: &str, notes: &str) {
    b.choose("select#stage", stage).await;
    b.find("select#source", PAGE).await;
    b.fill("input#solution", SOLUTION).await;
    b.fill("input#version", VERSION).await;
    b.fill("textarea#notes", notes).await;
    b.click("#when-now").await;
}

/// Waits for preflight's answer and returns its `data-ok`.
async fn preflight_result(b: &Browser) -> String {
    eventually("preflight's answer", PAGE, async || {
        if b.has("#error").await && !b.has("section#preflight-result").await {
            panic!("preflight was refused\n{}", b.text(3000).await);
        }
        match b
            .client
            .find(Locator::Css("section#preflight-result[data-ok]"))
            .await
        {
            Ok(section) => section
                .attr("data-ok")
                .await
                .ok()
                .flatten()
                .ok_or_else(|| "no data-ok".to_owned()),
            Err(_) => Err(b.text(1000).await),
        }
    })
    .await
}

/// The deployment page's `#status[data-status]`.
async fn status_on_page(b: &Browser) -> String {
    b.find("#status[data-status]", PAGE)
        .await
        .attr("data-status")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Reloads the deployment's page until its status is `want`; fails at once on another
/// final status.
async fn wait_for_status(b: &Browser, id: &str, want: &str) {
    eventually(&format!("deployment {id} to be {want}"), WAIT, async || {
        b.goto(&format!("/ui/deployments/{id}")).await;
        let status = match b.client.find(Locator::Css("#status[data-status]")).await {
            Ok(element) => element.attr("data-status").await.ok().flatten(),
            Err(_) => None,
        }
        .unwrap_or_default();
        if status == want {
            return Ok(());
        }
        if ["succeeded", "failed", "rejected", "canceled"].contains(&status.as_str()) {
            panic!(
                "deployment {id} ended {status}, not {want}\n{}",
                b.text(4000).await
            );
        }
        Err(format!("status {status:?}\n{}", b.text(2000).await))
    })
    .await;
}

/// Opens the approvals inbox, reloading until `card` is in it.
async fn open_inbox_with(b: &Browser, card: &str) {
    eventually(&format!("{card} in the inbox"), WAIT, async || {
        b.goto("/ui/approvals").await;
        if b.has(card).await {
            Ok(())
        } else {
            Err(b.text(2000).await)
        }
    })
    .await;
    assert_eq!(b.status().await, 200);
}

/// Approves deployment `id` from the inbox on the page, with `comment`.
async fn vote(b: &Browser, id: &str, comment: &str) {
    let card = format!(r#"article.approval[data-deployment="{id}"]"#);
    b.fill(&format!("textarea#comment-{id}"), comment).await;
    b.click(&format!(
        "{card} button.approve[name=decision][value=approve]"
    ))
    .await;
    b.find("#flash", PAGE).await;
    assert_eq!(b.status().await, 200, "{}", b.text(1000).await);
}

/// An API answer as the holder of `token`; panics unless it is 200.
fn api(base: &str, token: &str, path: &str) -> Value {
    let bearer = format!("Bearer {token}");
    let got = fetch(
        &format!("{base}{path}"),
        &[("authorization", bearer.as_str())],
    );
    let text = String::from_utf8_lossy(&got.bytes);
    assert_eq!(got.status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

/// A page fetched by a plain client with the session cookie, not following redirects.
fn get_with_session(base: &str, path: &str, session: &str) -> (u16, String) {
    let cookie = format!("{SESSION_COOKIE}={session}");
    let got = fetch(&format!("{base}{path}"), &[("cookie", cookie.as_str())]);
    (got.status, String::from_utf8_lossy(&got.bytes).into_owned())
}

/// With `GATEHOUSE_UPDATE_SCREENSHOTS=1`, copies the screenshots to `docs/screenshots/`,
/// where the README shows them.
fn publish_screenshots(from: &Path, names: &[&str]) {
    if std::env::var("GATEHOUSE_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&docs).expect("docs/screenshots");
    for name in names {
        std::fs::copy(from.join(name), docs.join(name))
            .unwrap_or_else(|e| panic!("copy {name} to {}: {e}", docs.display()));
    }
    eprintln!("updated the screenshots in {}", docs.display());
}
