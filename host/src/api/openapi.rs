//! The OpenAPI document's frame. The paths and schemas come from the handlers' own
//! `#[utoipa::path]` attributes, collected by `utoipa_axum` as the routes are registered,
//! so the document cannot drift from the router.

use serde_json::{Map, Value, json};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The name of the bearer-token scheme every authenticated path refers to.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "Deployment pipelines whose approval gates and validators are \
            WebAssembly plugins. Every call except the health, readiness, metrics and this \
            document needs `Authorization: Bearer <token>`. Errors are \
            `application/problem+json` (RFC 9457). Lists take `?after=<id>&limit=` and \
            answer `{ \"items\": [...], \"next\": <id or null> }`. Times in JSON \
            bodies are milliseconds since the Unix epoch, UTC; a `*_rfc3339` field gives \
            the same time in RFC 3339 (`2026-11-26T10:00:00.000Z`), as the Environment API \
            writes its times."
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    components(schemas(super::errors::Problem)),
    tags(
        (name = "users", description = "Users, groups and bearer tokens"),
        (name = "environments", description = "Development and target environments"),
        (name = "pipelines", description = "Pipelines, their stages, gates, validators and shares"),
        (name = "plugins", description = "WebAssembly approval gates and validators"),
        (name = "deployments", description = "Stage runs and their approvals"),
        (name = "audit", description = "The append-only audit log"),
        (name = "metrics", description = "The dashboard's summary of deployments and plugins"),
        (name = "events", description = "The lifecycle event feed, for systems that poll"),
        (name = "webhooks", description = "Signed deliveries of lifecycle events to external systems"),
        (name = "retention", description = "Scheduled deletion of old deployments and artifacts"),
        (name = "solutions", description = "Where each version of each solution is installed"),
        (name = "artifacts", description = "The stored backups of exported solution versions"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A 256-bit token issued by POST /api/v1/users/{id}/tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// What the document needs that utoipa cannot say, applied to its JSON once the routes
/// are known:
/// - **Links** from every call that creates something (a `201` whose body has an `id`)
///   to the calls on the path beneath it, so that a client, or schemathesis's stateful
///   phase, can follow "create, then read, change and delete it". The path parameters of
///   the creating call carry over (`$request.path.<name>`); the next one is the new id
///   (`$response.body#/id`). (utoipa 5.5 writes a link's `operationId` as `operation_id`,
///   so they are written here.)
/// - **Headers are never null**: an optional header is left out, not sent as `null`, so
///   their schemas are plain strings.
pub fn finish(document: &mut Value) {
    add_creation_links(document);
    headers_are_strings(document);
}

fn add_creation_links(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    // (path, operation id) of every operation, to link to.
    let targets: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|operations| operations.values())
                .filter_map(|operation| operation["operationId"].as_str())
                .map(move |id| (path.clone(), id.to_owned()))
        })
        .collect();
    for (path, item) in paths.iter_mut() {
        let Some(created) = item.pointer_mut("/post/responses/201") else {
            continue;
        };
        let prefix = format!("{path}/{{");
        let mut links = Map::new();
        for (target_path, operation_id) in &targets {
            let Some((new_id, _)) = target_path
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('}'))
            else {
                continue;
            };
            let mut parameters = Map::new();
            for carried in path_parameters(path) {
                parameters.insert(carried.into(), format!("$request.path.{carried}").into());
            }
            parameters.insert(new_id.into(), "$response.body#/id".into());
            links.insert(
                operation_id.clone(),
                json!({ "operationId": operation_id, "parameters": parameters }),
            );
        }
        if !links.is_empty() {
            created["links"] = Value::Object(links);
        }
    }
}

fn headers_are_strings(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters.iter_mut().filter(|p| p["in"] == "header") {
            if parameter["schema"]["type"].is_array() {
                parameter["schema"]["type"] = json!("string");
            }
        }
    }
}

/// The names of a path's parameters: `id` and `sid` in `/pipelines/{id}/stages/{sid}`.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}
