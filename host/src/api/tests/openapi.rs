//! The OpenAPI document states what the server does: the problems every operation can
//! answer, the constraints the server checks, and the links between calls.

use serde_json::{Value, json};

use super::*;

async fn document() -> Value {
    let app = TestApp::new().await;
    app.call("GET", "/api/v1/openapi.json", None, None)
        .await
        .body
}

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

#[tokio::test]
async fn every_operation_documents_the_problems_its_shape_allows() {
    let doc = document().await;
    let all = operations(&doc);
    assert!(all.len() > 40, "{} operations", all.len());
    for (method, path, operation) in all {
        let responses = &operation["responses"];
        let has = |status: &str| responses.get(status).is_some();
        assert!(has("401"), "{method} {path} does not document 401");
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(has(status), "{method} {path} does not document {status}");
            }
            let json_body = operation["requestBody"]["content"]
                .get("application/json")
                .is_some();
            assert!(
                !json_body || has("422"),
                "{method} {path} takes JSON but does not document 422"
            );
        }
        for (status, response) in responses.as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]
                        .get("application/problem+json")
                        .is_some(),
                    "{method} {path} {status} is not a problem document: {response:#}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_schemas_state_the_constraints_the_server_checks() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let audit = &schemas["AuditRetention"]["properties"]["older_than_days"];
    assert_eq!(
        (&audit["minimum"], &audit["maximum"]),
        (&json!(30), &json!(36500)),
        "{audit:#}"
    );
    let webhook = &schemas["NewWebhook"]["properties"];
    assert_eq!(webhook["give_up_after_seconds"]["minimum"], json!(60));
    assert_eq!(webhook["events"]["minItems"], json!(1));
    assert!(
        webhook["events"]["items"]["enum"]
            .as_array()
            .is_some_and(|names| names.contains(&json!("deployment_completed"))),
        "{webhook:#}"
    );
    assert!(webhook["url"]["pattern"].is_string(), "{webhook:#}");
    assert_eq!(
        schemas["NewUser"]["properties"]["name"]["maxLength"],
        json!(64)
    );
    assert_eq!(
        schemas["EnvironmentKind"]["enum"],
        json!(["development", "target"])
    );
    assert_eq!(
        schemas["PreDeploymentStatusChange"]["properties"]["status"]["enum"],
        json!([20, 30])
    );
    let job = &schemas["NewRetentionJob"];
    assert!(
        job["allOf"][1]["anyOf"]
            .as_array()
            .is_some_and(|a| a.len() == 2),
        "a job names deployments, artifacts or both: {job:#}"
    );
    let limits = &schemas["LimitsPatch"];
    assert_eq!(limits["additionalProperties"], json!(false), "{limits:#}");
    assert_eq!(limits["properties"]["wall_time"]["maximum"], json!(60000));
}

#[tokio::test]
async fn list_limits_and_cursors_are_bounded_in_the_document() {
    let doc = document().await;
    let parameters = doc["paths"]["/api/v1/audit"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .clone();
    let named = |name: &str| {
        parameters
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .clone()
    };
    assert_eq!(named("limit")["schema"]["maximum"], json!(200));
    assert_eq!(
        named("after")["schema"]["pattern"],
        json!("^([0-9]{1,18})?$")
    );
}

#[tokio::test]
async fn creating_calls_link_to_the_calls_on_what_they_made() {
    let doc = document().await;
    let links = &doc["paths"]["/api/v1/pipelines"]["post"]["responses"]["201"]["links"];
    let get = &links["get_pipeline"];
    assert_eq!(get["operationId"], json!("get_pipeline"), "{links:#}");
    assert_eq!(get["parameters"]["id"], json!("$response.body#/id"));
    let stage_links =
        &doc["paths"]["/api/v1/pipelines/{id}/stages"]["post"]["responses"]["201"]["links"];
    let update = &stage_links["update_stage"];
    assert_eq!(update["parameters"]["id"], json!("$request.path.id"));
    assert_eq!(update["parameters"]["sid"], json!("$response.body#/id"));
}

#[tokio::test]
async fn a_token_request_may_leave_its_body_out() {
    let doc = document().await;
    let body = &doc["paths"]["/api/v1/users/{id}/tokens"]["post"]["requestBody"];
    assert_ne!(body["required"], json!(true), "{body:#}");
}

#[tokio::test]
async fn name_patterns_are_the_domain_rule() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("NewPipeline", "name"),
        ("NewStage", "name"),
        ("NewEnvironment", "name"),
        ("NewEnvironment", "environment_id"),
        ("DeploymentRequest", "solution_name"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"],
            json!(crate::pipeline::rules::HAS_TEXT),
            "{schema}.{field}"
        );
    }
    assert!(crate::pipeline::rules::is_blank(" \t\u{85}\u{3000}\u{1}"));
    assert!(!crate::pipeline::rules::is_blank(" x "));
}
