//! Which deployments a list shows: the filters `GET /deployments` and the console's
//! history take, read into the store's [`DeploymentFilter`].

use serde::Deserialize;

use crate::pipeline::Timestamp;
use crate::pipeline::model::{DeploymentStatus, Id};
use crate::pipeline::service_error::{ServiceError, ServiceResult};
use crate::pipeline::store::DeploymentFilter;

/// Filters of `GET /deployments`; each narrows the list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeploymentQuery {
    /// The `next` value of the previous page.
    pub after: Option<String>,
    /// Items per page, 1 to 200; 50 when omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A pipeline id.
    pub pipeline: Option<Id>,
    /// A stage id.
    pub stage: Option<Id>,
    /// Statuses, comma-separated: `queued,pending_approval`.
    #[param(value_type = Option<Vec<DeploymentStatus>>, style = Form, explode = false)]
    pub status: Option<String>,
    /// A solution's unique name.
    pub solution: Option<String>,
    pub version: Option<String>,
    /// A user id.
    pub requested_by: Option<Id>,
    /// An environment id.
    pub target_environment: Option<Id>,
    /// RFC 3339 (`2025-01-31T09:00:00Z`) or milliseconds since the epoch.
    #[param(schema_with = time_schema)]
    pub requested_after: Option<String>,
    /// RFC 3339 or milliseconds since the epoch.
    #[param(schema_with = time_schema)]
    pub requested_before: Option<String>,
}

/// The schema of a time filter: an RFC 3339 date-time, or milliseconds since the epoch.
fn time_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    let either = utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^([0-9]{1,18})?$")),
        )
        .build();
    Schema::OneOf(either)
}

/// The store's filter for a query; `GET /deployments` and the console's history read
/// the same one.
pub fn filter(query: &DeploymentQuery) -> ServiceResult<DeploymentFilter> {
    let statuses = match &query.status {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<DeploymentStatus>().map_err(|e| {
                    let known: Vec<&str> =
                        DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ServiceError::malformed(format!("{e}; use one of {}", known.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    Ok(DeploymentFilter {
        pipeline_id: nonempty(&query.pipeline),
        stage_id: nonempty(&query.stage),
        statuses,
        solution_name: nonempty(&query.solution),
        version: nonempty(&query.version),
        requested_by: nonempty(&query.requested_by),
        target_environment_id: nonempty(&query.target_environment),
        requested_after: time("requested_after", &query.requested_after)?,
        requested_before: time("requested_before", &query.requested_before)?,
    })
}

/// Reads RFC 3339 or milliseconds since the epoch.
fn time(name: &str, value: &Option<String>) -> ServiceResult<Option<Timestamp>> {
    let Some(text) = value.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = text.parse::<Timestamp>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        // A time before the epoch bounds nothing more than the epoch does.
        .map(|t| Timestamp::try_from(t.timestamp_millis().max(0)).unwrap_or_default())
        .map(Some)
        .ok_or_else(|| {
            ServiceError::malformed(format!(
                "{name}={text:?} is neither RFC 3339 (2025-01-31T09:00:00Z) nor milliseconds \
                 since the epoch"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_from_a_comma_separated_list() {
        let query = DeploymentQuery {
            status: Some("queued, pending_approval,".into()),
            pipeline: Some(String::new()),
            ..DeploymentQuery::default()
        };
        let filter = filter(&query).expect("a filter");
        assert_eq!(
            filter.statuses,
            vec![DeploymentStatus::Queued, DeploymentStatus::PendingApproval]
        );
        assert_eq!(filter.pipeline_id, None, "an empty filter filters nothing");
    }

    #[test]
    fn an_unknown_status_is_malformed_and_lists_the_known_ones() {
        let query = DeploymentQuery {
            status: Some("stuck".into()),
            ..DeploymentQuery::default()
        };
        let error = filter(&query).expect_err("refused");
        let refusal = error.refusal().expect("a refusal");
        assert_eq!(
            refusal.reason,
            crate::pipeline::service_error::Refused::Malformed
        );
        assert!(refusal.detail.contains("queued"), "{}", refusal.detail);
    }

    #[test]
    fn times_are_rfc_3339_or_milliseconds() {
        let query = DeploymentQuery {
            requested_after: Some("2025-01-31T09:00:00Z".into()),
            requested_before: Some("1738314000001".into()),
            ..DeploymentQuery::default()
        };
        let filter = filter(&query).expect("a filter");
        assert_eq!(filter.requested_after, Some(1_738_314_000_000));
        assert_eq!(filter.requested_before, Some(1_738_314_000_001));
        let bad = DeploymentQuery {
            requested_after: Some("yesterday".into()),
            ..DeploymentQuery::default()
        };
        assert!(filter_fails(&bad));
    }

    fn filter_fails(query: &DeploymentQuery) -> bool {
        filter(query).is_err()
    }
}
