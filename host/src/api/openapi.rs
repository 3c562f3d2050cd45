//! The OpenAPI document's frame. The paths and schemas come from the handlers' own
//! `#[utoipa::path]` attributes, collected by `utoipa_axum` as the routes are registered,
//! so the document cannot drift from the router.

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
            answer `{ \"items\": [...], \"next\": <id or null> }`."
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
