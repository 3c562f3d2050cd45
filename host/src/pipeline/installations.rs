//! Where each solution version is installed: the newest succeeded deployment of each
//! version to each target environment, with the names people read, counted over the
//! deployments of the pipelines the caller can see (all of them for an admin).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::Timestamp;
use super::accounts::display_names;
use super::console::{Installation, InstallationGroup, InstallationQuery};
use super::model::{Id, PipelineRecord, User};
use super::reports::scope_of;
use super::store::{Page, Store, StoreError, StoreResult};

/// One solution, and where its versions went.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SolutionInstallations {
    /// The solution's unique name.
    pub name: String,
    /// Newest first. Empty when no deployment of the solution has succeeded yet.
    pub installations: Vec<InstalledVersion>,
}

/// A version a succeeded deployment installed in a target environment: the newest such
/// deployment of that version to that environment.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InstalledVersion {
    pub version: String,
    pub environment_id: Id,
    /// The environment's name; its id when the environment no longer exists.
    pub environment_name: String,
    /// Whether the environment has this version now: the newest of the solution's
    /// installations there.
    pub current: bool,
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub deployment_id: Id,
    pub requested_by: Id,
    /// The requester's display name; their id when the user no longer exists.
    pub requested_by_name: String,
    /// When the deployment succeeded, in ms since the epoch.
    pub installed_at: Timestamp,
}

/// A page of solutions by name, after `page.after` (a solution name), or only `solution`
/// when it is given; and the name to continue after, when more exist. `visible` is what
/// [`crate::pipeline::access::visible_pipelines`] answered for `actor`.
pub async fn solution_installations(
    store: &dyn Store,
    actor: &User,
    visible: &[PipelineRecord],
    solution: Option<&str>,
    page: &Page,
) -> StoreResult<(Vec<SolutionInstallations>, Option<String>)> {
    let scope = scope_of(actor, visible);
    let (names, next) = match solution {
        Some(name) => {
            let seen = store
                .solution_versions(&scope, &[name.to_owned()], None, 1)
                .await?;
            (
                if seen.is_empty() {
                    Vec::new()
                } else {
                    vec![name.to_owned()]
                },
                None,
            )
        }
        None => {
            let mut found = store
                .solutions(&scope, page.after.as_deref(), page.limit + 1)
                .await?;
            let more = found.len() > page.limit as usize;
            found.truncate(page.limit as usize);
            let names: Vec<String> = found.into_iter().map(|s| s.name).collect();
            let next = if more { names.last().cloned() } else { None };
            (names, next)
        }
    };
    if names.is_empty() {
        return Ok((Vec::new(), next));
    }
    let installations = store
        .installations(&InstallationQuery {
            scope,
            stage_ids: Vec::new(),
            solutions: names.clone(),
            versions: Vec::new(),
            per: InstallationGroup::SolutionVersionTarget,
        })
        .await?;
    let mut requesters = BTreeSet::new();
    for i in &installations {
        requesters.insert(i.requested_by.as_str());
    }
    let people = display_names(store, requesters).await?;
    let mut environments: HashMap<Id, String> = HashMap::new();
    for i in &installations {
        if environments.contains_key(&i.target_environment_id) {
            continue;
        }
        let name = match store.get_environment(&i.target_environment_id).await {
            Ok(env) => env.name,
            Err(StoreError::NotFound(_)) => i.target_environment_id.clone(),
            Err(error) => return Err(error),
        };
        environments.insert(i.target_environment_id.clone(), name);
    }
    let mut by_solution: BTreeMap<String, Vec<InstalledVersion>> = names
        .iter()
        .map(|name| (name.clone(), Vec::new()))
        .collect();
    for (i, current) in with_current(&installations) {
        let Some(list) = by_solution.get_mut(&i.solution_name) else {
            continue;
        };
        list.push(InstalledVersion {
            version: i.version.clone(),
            environment_id: i.target_environment_id.clone(),
            environment_name: environments
                .get(&i.target_environment_id)
                .cloned()
                .unwrap_or_else(|| i.target_environment_id.clone()),
            current,
            pipeline_id: i.pipeline_id.clone(),
            stage_id: i.stage_id.clone(),
            deployment_id: i.deployment_id.clone(),
            requested_by: i.requested_by.clone(),
            requested_by_name: people
                .get(&i.requested_by)
                .cloned()
                .unwrap_or_else(|| i.requested_by.clone()),
            installed_at: i.finished_at,
        });
    }
    let items = by_solution
        .into_iter()
        .map(|(name, installations)| SolutionInstallations {
            name,
            installations,
        })
        .collect();
    Ok((items, next))
}

/// Each installation, newest first as the store reads them, and whether it is what its
/// environment has now: the first (newest) of its solution in that environment.
pub fn with_current(installations: &[Installation]) -> Vec<(&Installation, bool)> {
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    installations
        .iter()
        .map(|i| {
            let key = (i.solution_name.as_str(), i.target_environment_id.as_str());
            (i, seen.insert(key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(solution: &str, version: &str, env: &str, at: Timestamp) -> Installation {
        Installation {
            deployment_id: format!("d-{version}-{env}"),
            pipeline_id: "p".into(),
            stage_id: format!("s-{env}"),
            target_environment_id: env.into(),
            solution_name: solution.into(),
            version: version.into(),
            requested_by: "u".into(),
            finished_at: at,
        }
    }

    #[test]
    fn only_the_newest_installation_of_a_solution_in_an_environment_is_current() {
        // Newest first, as the store answers.
        let list = vec![
            installed("a", "1.0.0.2", "qa", 40),
            installed("a", "1.0.0.1", "prod", 30),
            installed("b", "2.0.0.0", "qa", 20),
            installed("a", "1.0.0.1", "qa", 10),
        ];
        let current: Vec<(String, bool)> = with_current(&list)
            .into_iter()
            .map(|(i, now)| {
                (
                    format!(
                        "{} {} {}",
                        i.solution_name, i.version, i.target_environment_id
                    ),
                    now,
                )
            })
            .collect();
        assert_eq!(
            current,
            vec![
                ("a 1.0.0.2 qa".to_owned(), true),
                ("a 1.0.0.1 prod".to_owned(), true),
                ("b 2.0.0.0 qa".to_owned(), true),
                ("a 1.0.0.1 qa".to_owned(), false),
            ]
        );
    }
}
