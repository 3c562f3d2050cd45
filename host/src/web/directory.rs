//! Names for the ids a page shows: users, environments, the viewer's pipelines and their
//! stages. Read once per page, three small tables, never once per deployment.

use std::collections::HashMap;

use super::error::PageError;
use crate::pipeline::access::visible_pipelines;
use crate::pipeline::model::{EnvironmentRecord, PipelineRecord, StageRecord, User};
use crate::pipeline::services::Services;
use crate::pipeline::store::scan_all;

pub struct Directory {
    users: HashMap<String, String>,
    environments: HashMap<String, EnvironmentRecord>,
    /// The pipelines the viewer may see, as `GET /api/v1/pipelines` lists them.
    pub pipelines: Vec<PipelineRecord>,
}

impl Directory {
    pub async fn load(state: &Services, viewer: &User) -> Result<Directory, PageError> {
        let store = state.store.as_ref();
        let (users, environments, pipelines) = tokio::try_join!(
            scan_all(
                move |p| async move { store.list_users(&p).await },
                |u| u.id.clone()
            ),
            scan_all(
                move |p| async move { store.list_environments(&p).await },
                |e| e.id.clone()
            ),
            visible_pipelines(store, viewer),
        )?;
        let mut pipelines = pipelines;
        pipelines.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Directory {
            users: users.into_iter().map(|u| (u.id, u.display_name)).collect(),
            environments: environments
                .into_iter()
                .map(|e| (e.id.clone(), e))
                .collect(),
            pipelines,
        })
    }

    /// A user's display name, or the id of a user that no longer exists.
    pub fn user<'a>(&'a self, id: &'a str) -> &'a str {
        self.users.get(id).map_or(id, String::as_str)
    }

    /// Every user as (id, display name), by name.
    pub fn users(&self) -> Vec<(&str, &str)> {
        let mut users: Vec<(&str, &str)> = self
            .users
            .iter()
            .map(|(id, name)| (id.as_str(), name.as_str()))
            .collect();
        users.sort_by(|a, b| a.1.cmp(b.1));
        users
    }

    pub fn environment_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.environments.get(id).map_or(id, |e| e.name.as_str())
    }

    pub fn pipeline(&self, id: &str) -> Option<&PipelineRecord> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    pub fn pipeline_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.pipeline(id).map_or(id, |p| p.name.as_str())
    }

    pub fn stage(&self, pipeline_id: &str, stage_id: &str) -> Option<&StageRecord> {
        self.pipeline(pipeline_id).and_then(|p| p.stage(stage_id))
    }

    pub fn stage_name<'a>(&'a self, pipeline_id: &str, stage_id: &'a str) -> &'a str {
        self.stage(pipeline_id, stage_id)
            .map_or(stage_id, |s| s.name.as_str())
    }
}

/// A pipeline's stages in the order they run: by depth, then name.
pub fn stages_in_order(pipeline: &PipelineRecord) -> Vec<&StageRecord> {
    let mut stages: Vec<&StageRecord> = pipeline.stages.iter().collect();
    stages.sort_by(|a, b| {
        pipeline
            .depth(&a.id)
            .cmp(&pipeline.depth(&b.id))
            .then(a.name.cmp(&b.name))
    });
    stages
}
