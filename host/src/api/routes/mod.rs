//! The routes, one file per resource, and the router that joins them.

pub mod artifacts;
pub mod audit;
pub mod deployments;
pub mod environments;
pub mod events;
pub mod metrics_summary;
pub mod pipelines;
pub mod plugins;
pub mod retention;
pub mod solutions;
pub mod stages;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::openapi::ApiDoc;
use super::problems::ShapeProblems;
use super::{ApiError, Services};

/// Where the REST API lives.
pub const API_PREFIX: &str = "/api/v1";

/// The API's routes and its OpenAPI document, to merge into the app's router.
pub(super) fn routes() -> Router<Services> {
    let api = OpenApiRouter::new()
        .merge(users::routes())
        .merge(environments::routes())
        .merge(pipelines::routes())
        .merge(stages::routes())
        .merge(plugins::routes())
        .merge(deployments::routes())
        .merge(artifacts::routes())
        .merge(solutions::routes())
        .merge(audit::routes())
        .merge(metrics_summary::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(retention::routes());
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(API_PREFIX, api)
        .split_for_parts();
    // The paths exist only now, so the problems that follow from their shape are added here.
    utoipa::Modify::modify(&ShapeProblems, &mut openapi);
    utoipa::Modify::modify(&retention::RetentionNeedsARule, &mut openapi);
    let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serializes");
    super::openapi::finish(&mut document);
    // Rendered once: the document is fixed for the life of the process.
    let openapi: Arc<str> = serde_json::to_string_pretty(&document)
        .expect("the OpenAPI document serializes")
        .into();

    Router::new().merge(api).route(
        &format!("{API_PREFIX}/openapi.json"),
        get(move || serve_openapi(openapi.clone())),
    )
}

async fn serve_openapi(document: Arc<str>) -> Response {
    let mut response = document.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Any path no route serves, answered as a problem document.
pub async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "there is no route {}; the routes are listed in {API_PREFIX}/openapi.json",
        uri.path()
    ))
}

/// A route asked with a method it does not take.
pub async fn wrong_method(uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} does not take this method; the methods it takes are listed in \
             {API_PREFIX}/openapi.json",
            uri.path()
        ),
    )
}
