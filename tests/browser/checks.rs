//! What the browser test checks on a page beyond its flow: times to the second, facts in
//! words, badges and buttons on one line, and backup links that download.

use serde_json::json;

use crate::browser::{Browser, fetch};
use crate::{PAGE, SESSION_COOKIE, SOLUTION, api};

/// Whether a time reads to the second: `2026-03-01 22:00:13 UTC`.
pub fn to_the_second(text: &str) -> bool {
    let Some(clock) = text.strip_suffix(" UTC").and_then(|t| t.split(' ').nth(1)) else {
        return false;
    };
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What the deployment page's facts say for `term`.
pub async fn fact(b: &Browser, term: &str) -> String {
    let said = b
        .js(
            "const dt = [...document.querySelectorAll('dl.facts dt')]\
             .find(d => d.textContent.trim() === arguments[0]);\
         return dt ? dt.nextElementSibling.textContent.trim() : null;",
            vec![json!(term)],
        )
        .await;
    match said.as_str() {
        Some(text) => text.to_owned(),
        None => panic!("no {term} on the page\n{}", b.text(2000).await),
    }
}

/// In a window 640 pixels wide, every element `css` selects on the page lays its text out
/// on one line: badges and buttons do not wrap.
pub async fn assert_on_one_line(b: &Browser, css: &str) {
    let wrapped = b.wrapped(640, css).await;
    assert!(
        wrapped.is_empty(),
        "{wrapped:?} wrap onto more lines on {}\n{}",
        b.path().await,
        b.text(2000).await
    );
}

/// Follows each backup link of the sample solution on the Solutions page with the
/// browser's session, and checks the bytes against the API's download.
pub async fn download_backups(b: &Browser, base: &str, token: &str) {
    let artifacts = api(
        base,
        token,
        &format!("/api/v1/artifacts?solution={SOLUTION}"),
    );
    let artifact = &artifacts["items"][0];
    let version = artifact["version"].as_str().expect("a version").to_owned();
    assert!(
        artifact["created_at_rfc3339"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "the artifact's time in RFC 3339: {artifact:#}"
    );
    b.goto(&format!("/ui/solutions?solution={SOLUTION}")).await;
    let session = b
        .client
        .get_named_cookie(SESSION_COOKIE)
        .await
        .expect("the session cookie");
    for kind in ["managed", "unmanaged"] {
        let href = b
            .find(
                &format!(r#"tr[data-version="{version}"] a.download[data-kind="{kind}"]"#),
                PAGE,
            )
            .await
            .attr("href")
            .await
            .ok()
            .flatten();
        let Some(link) = href else {
            panic!("no {kind} backup link\n{}", b.text(3000).await);
        };
        let cookie = format!("{SESSION_COOKIE}={}", session.value());
        let got = fetch(&format!("{base}{link}"), &[("cookie", cookie.as_str())]);
        assert_eq!(got.status, 200, "{link} with the session");
        assert_eq!(got.media_type, "application/zip", "{link}");
        assert!(got.bytes.starts_with(b"PK\x03\x04"), "{link} is a zip");
        assert_eq!(
            Some(got.bytes.len() as u64),
            artifact[kind]["size"].as_u64(),
            "{link} is as long as the API says"
        );
        let from_api = format!("/api/v1/artifacts/{SOLUTION}/{version}/{kind}");
        let bearer = format!("Bearer {token}");
        let api_got = fetch(
            &format!("{base}{from_api}"),
            &[("authorization", bearer.as_str())],
        );
        assert_eq!(api_got.status, 200, "{from_api}");
        assert!(
            got.bytes == api_got.bytes,
            "{link} sends what {from_api} sends"
        );
        let status = fetch(&format!("{base}{link}"), &[]).status;
        assert_eq!(status, 303, "{link} without a session leads to signing in");
    }
}
