//! Users, groups and tokens.

use axum::http::StatusCode;
use serde_json::json;

use super::{Caller, TestApp, assert_problem};
use crate::pipeline::accounts::token_sha256;
use crate::pipeline::store::AccountStore;

#[tokio::test]
async fn an_admin_creates_a_user_and_issues_a_token_shown_once() {
    let app = TestApp::new().await;
    let created = app
        .post(
            "/api/v1/users",
            &app.admin,
            json!({ "name": "mia", "display_name": "Mia Chen" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["role"], "user");
    let id = created.id();
    let issued = app
        .post(
            &format!("/api/v1/users/{id}/tokens"),
            &app.admin,
            json!({ "label": "laptop" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = issued.body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "256 bits as hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));

    let mia = Caller {
        id: id.clone(),
        token: token.clone(),
    };
    let me = app.get("/api/v1/me", &mia).await.expect(StatusCode::OK);
    assert_eq!(me.body["display_name"], "Mia Chen");
    // Only the hash is stored, and the audit line does not carry the token.
    let by_hash = app
        .store
        .user_by_token(&token_sha256(&token))
        .await
        .unwrap();
    assert_eq!(by_hash.map(|u| u.id), Some(id.clone()));
    let audit = app.get("/api/v1/audit", &app.admin).await.text;
    assert!(!audit.contains(&token));
    let actions = app.audit_actions().await;
    assert!(actions.contains(&(app.admin.id.clone(), "user.create".into(), id.clone())));
    assert!(actions.contains(&(app.admin.id.clone(), "token.create".into(), id)));
}

#[tokio::test]
async fn a_user_issues_tokens_for_themselves_only() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let own = app
        .post(&format!("/api/v1/users/{}/tokens", ana.id), &ana, json!({}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(own.body["user_id"], ana.id.as_str());
    // An empty body is allowed: the label is optional.
    let bare = app
        .call(
            "POST",
            &format!("/api/v1/users/{}/tokens", ana.id),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(bare.status, StatusCode::CREATED, "{}", bare.text);
    let other = app
        .post(&format!("/api/v1/users/{}/tokens", ben.id), &ana, json!({}))
        .await;
    assert_problem(&other, StatusCode::FORBIDDEN);
    let missing = app
        .post("/api/v1/users/no-such-user/tokens", &app.admin, json!({}))
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_taken_user_name_is_a_conflict() {
    let app = TestApp::new().await;
    app.user("dup").await;
    let again = app
        .post("/api/v1/users", &app.admin, json!({ "name": "dup" }))
        .await;
    assert_problem(&again, StatusCode::CONFLICT);
    let spaced = app
        .post("/api/v1/users", &app.admin, json!({ "name": "two words" }))
        .await;
    assert_problem(&spaced, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn users_page_with_cursors_until_next_is_null() {
    let app = TestApp::new().await;
    for i in 0..5 {
        app.post(
            "/api/v1/users",
            &app.admin,
            json!({ "name": format!("u{i}") }),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            Some(after) => format!("/api/v1/users?limit=2&after={after}"),
            None => "/api/v1/users?limit=2".to_owned(),
        };
        let page = app.get(&path, &app.admin).await.expect(StatusCode::OK);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["name"].as_str().unwrap().to_owned()));
        next = page.body["next"].as_str().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3, "six users in pages of two");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "every user once: {seen:?}");
}

#[tokio::test]
async fn groups_are_made_and_their_members_replaced_by_admins() {
    let app = TestApp::new().await;
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let unknown = app
        .post(
            "/api/v1/groups",
            &app.admin,
            json!({ "name": "qa", "members": ["ghost"] }),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND);
    assert!(unknown.detail().contains("ghost"));
    let group = app
        .post(
            "/api/v1/groups",
            &app.admin,
            json!({ "name": "qa", "members": [ana.id] }),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = group.id();
    let replaced = app
        .call(
            "PUT",
            &format!("/api/v1/groups/{id}/members"),
            Some(&app.admin),
            Some(json!({ "members": [ben.id, ben.id] })),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(replaced.body["members"], json!([ben.id]));
    let ben_now = app.get("/api/v1/me", &ben).await;
    assert_eq!(ben_now.body["groups"], json!(["qa"]));
    let ana_now = app.get("/api/v1/me", &ana).await;
    assert_eq!(ana_now.body["groups"], json!([]));
    let list = app
        .get("/api/v1/groups", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.body["items"][0]["name"], "qa");
    assert_eq!(list.body["next"], json!(null));
    let actions: Vec<String> = app.audit_actions().await.into_iter().map(|a| a.1).collect();
    assert!(actions.contains(&"group.create".to_owned()));
    assert!(actions.contains(&"group.set_members".to_owned()));
}
