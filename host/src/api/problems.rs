//! The problem responses the OpenAPI document declares, each written once.
//!
//! Two kinds:
//! - Those that follow from an operation's shape (a bearer token, a body, parameters) are
//!   added to every operation by [`ShapeProblems`], so no route can forget them: 401 for a
//!   call that needs a token; 400 for a parameter or body that cannot be read; 413, 415 and
//!   422 for a body that is too large, of the wrong media type, or breaks the schema.
//! - Those that depend on what a route does are `IntoResponses` sets that the route names
//!   in its `responses(...)`: [`Forbidden`], [`NotFound`], [`Conflict`], [`StaleRevision`],
//!   [`PluginRefused`] and [`EnvironmentDown`]. A route keeps a tuple line only where it says
//!   something more specific than the set's description.
//!
//! The status rule (DESIGN §6): 404 when a path or a referenced id names nothing the caller
//! may see; 409 when the refusal depends on stored state; 412 for a stale `If-Match`; 400
//! and 422 only for what the schema states, plus a plugin's own `check-config` refusal.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

use super::errors::{PROBLEM_JSON, Problem};

/// 403: the caller is known, and may not do this.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 403,
    description = "the caller may not do this (for example, not an admin)",
    content_type = "application/problem+json"
)]
pub struct Forbidden(#[allow(dead_code)] Problem);

/// 404: the path, or an id the request refers to, names nothing the caller may see.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 404,
    description = "the path or a referenced id names nothing the caller may see",
    content_type = "application/problem+json"
)]
pub struct NotFound(#[allow(dead_code)] Problem);

/// 409: refused because of what is stored now (a name taken, something in use, a rule of
/// the pipeline, a state that does not allow it).
#[derive(utoipa::IntoResponses)]
#[response(
    status = 409,
    description = "refused because of the current state: the `detail` says which rule",
    content_type = "application/problem+json"
)]
pub struct Conflict(#[allow(dead_code)] Problem);

/// 412: the `If-Match` revision is not the current one.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 412,
    description = "`If-Match` names an older revision: reload and try again",
    content_type = "application/problem+json"
)]
pub struct StaleRevision(#[allow(dead_code)] Problem);

/// 422: a plugin's own `check-config` refused the binding's configuration.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 422,
    description = "a plugin's `check-config` refused the configuration; its message is in `plugin_message`",
    content_type = "application/problem+json"
)]
pub struct PluginRefused(#[allow(dead_code)] Problem);

/// 502: an environment did not answer.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 502,
    description = "an environment did not answer",
    content_type = "application/problem+json"
)]
pub struct EnvironmentDown(#[allow(dead_code)] Problem);

/// Adds the problems that follow from each operation's shape, unless the route declares
/// that status itself (with a more specific description).
pub struct ShapeProblems;

impl utoipa::Modify for ShapeProblems {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                add_shape_problems(operation);
            }
        }
    }
}

fn add_shape_problems(operation: &mut Operation) {
    // Every API operation needs a token, unless it says otherwise with `security(())`.
    let public = operation
        .security
        .as_ref()
        .is_some_and(|requirements| requirements.is_empty());
    if !public {
        add(
            operation,
            401,
            "no token, or one the host does not know (a `WWW-Authenticate: Bearer` challenge comes with it)",
        );
    }
    let has_parameters = operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_empty());
    if let Some(body) = &operation.request_body {
        let json = body.content.contains_key("application/json");
        add(
            operation,
            400,
            "the body or a parameter cannot be read (for example, malformed JSON)",
        );
        add(operation, 413, "the body is too large");
        add(
            operation,
            415,
            "the body is not sent with the media type this call takes",
        );
        if json {
            add(
                operation,
                422,
                "the body is JSON, but breaks the schema (a missing field, a wrong type, a value out of range)",
            );
        }
    } else if has_parameters {
        add(operation, 400, "a parameter cannot be read");
    }
}

fn add(operation: &mut Operation, status: u16, description: &str) {
    let status = status.to_string();
    if operation.responses.responses.contains_key(&status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(RefOr::<utoipa::openapi::schema::Schema>::Ref(
                Ref::from_schema_name("Problem"),
            ))),
        )
        .build();
    operation
        .responses
        .responses
        .insert(status, RefOr::T(response));
}
