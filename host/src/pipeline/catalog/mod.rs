//! The catalog: environments, pipelines, their stages' gate and validator bindings, and
//! the plugins they bind. The API's handlers and the console's pages both change it here,
//! so the checks, the refusals and the audit lines are the same whichever is used.

mod bindings;
mod environments;
mod pipelines;
mod plugins;
mod stages;

#[cfg(test)]
mod tests;

use crate::pipeline::plugin_admin::PluginAdmin;
use crate::pipeline::ports::EnvironmentClient;
use crate::pipeline::store::Store;

pub use bindings::check_stage_name;
pub use environments::{EnvironmentChange, EnvironmentDraft, check_fields};
pub use pipelines::PipelineDraft;
pub use plugins::{ExpectedPlugin, PluginChange};
pub use stages::{StageChange, StageDraft};

/// The catalog over the ports it needs; cheap to make for each request.
#[derive(Clone, Copy)]
pub struct Catalog<'a> {
    pub store: &'a dyn Store,
    pub plugins: &'a dyn PluginAdmin,
    pub environments: &'a dyn EnvironmentClient,
}
