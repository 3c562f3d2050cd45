//! The environments a piece of work needs, read once, each with its credential.

use std::collections::HashMap;

use crate::pipeline::model::{EnvironmentRecord, Id};
use crate::pipeline::store::{Store, StoreError};

/// LoadedEnvironments by id, from one read of the store.
#[derive(Debug, Default, Clone)]
pub(super) struct LoadedEnvironments(HashMap<Id, (EnvironmentRecord, Option<String>)>);

impl LoadedEnvironments {
    pub(super) async fn load<'a>(
        store: &dyn Store,
        ids: impl IntoIterator<Item = &'a Id>,
    ) -> Result<LoadedEnvironments, StoreError> {
        let mut ids: Vec<Id> = ids.into_iter().cloned().collect();
        ids.sort_unstable();
        ids.dedup();
        let found = store.environments_with_credentials(&ids).await?;
        Ok(LoadedEnvironments(
            found
                .into_iter()
                .map(|(env, credential)| (env.id.clone(), (env, credential)))
                .collect(),
        ))
    }

    /// The environment, or NotFound as `get_environment` would answer.
    pub(super) fn get(&self, id: &str) -> Result<&EnvironmentRecord, StoreError> {
        self.0
            .get(id)
            .map(|(env, _)| env)
            .ok_or_else(|| StoreError::NotFound(format!("environment {id}")))
    }

    pub(super) fn credential(&self, id: &str) -> Option<&str> {
        self.0
            .get(id)
            .and_then(|(_, credential)| credential.as_deref())
    }
}
