//! The deployment being decided.

use crate::bindings::types::{self, ComponentRef, Environment, Principal, Stage, Timestamp};

/// The deployment a gate or validator is asked about, read through getters.
///
/// Each getter is one call into the host, so read only what you need, and keep a value in
/// a local rather than calling the getter again. Secret environment variable values never
/// reach a plugin.
#[repr(transparent)]
pub struct Deployment {
    resource: types::Deployment,
}

impl Deployment {
    // Borrowed, never owned: the host keeps the resource and drops it after the call.
    pub(crate) fn from_resource(resource: &types::Deployment) -> &Deployment {
        // SAFETY: `Deployment` is `repr(transparent)` over `types::Deployment`.
        unsafe { &*(resource as *const types::Deployment as *const Deployment) }
    }

    /// The deployment's id.
    pub fn id(&self) -> String {
        self.resource.id()
    }

    /// The id of the pipeline being run.
    pub fn pipeline_id(&self) -> String {
        self.resource.pipeline_id()
    }

    /// The name of the pipeline being run.
    pub fn pipeline_name(&self) -> String {
        self.resource.pipeline_name()
    }

    /// The stage being deployed to, with its target environment.
    pub fn stage(&self) -> Stage {
        self.resource.stage()
    }

    /// The development environment the solution comes from.
    pub fn source(&self) -> Environment {
        self.resource.source()
    }

    /// The solution's unique name.
    pub fn solution_name(&self) -> String {
        self.resource.solution_name()
    }

    /// The version being deployed, four-part: `major.minor.build.revision`.
    pub fn solution_version(&self) -> String {
        self.resource.solution_version()
    }

    /// The publisher's customization prefix, such as `contoso`.
    pub fn publisher_prefix(&self) -> String {
        self.resource.publisher_prefix()
    }

    /// Whether the managed package is being deployed.
    pub fn managed(&self) -> bool {
        self.resource.managed()
    }

    /// The package size in bytes.
    pub fn package_size(&self) -> u64 {
        self.resource.package_size()
    }

    /// The package's SHA-256, lower-case hex.
    pub fn package_sha256(&self) -> String {
        self.resource.package_sha256()
    }

    /// Every component in the solution. Copied from the host on each call.
    pub fn components(&self) -> Vec<ComponentRef> {
        self.resource.components()
    }

    /// The version installed in the target now, if any.
    pub fn installed_version(&self) -> Option<String> {
        self.resource.installed_version()
    }

    /// Who asked for the deployment.
    pub fn requested_by(&self) -> Principal {
        self.resource.requested_by()
    }

    /// When the deployment was asked for, in milliseconds since the Unix epoch.
    pub fn requested_at(&self) -> Timestamp {
        self.resource.requested_at()
    }

    /// When the deployment is scheduled to run, if it was scheduled.
    pub fn scheduled_for(&self) -> Option<Timestamp> {
        self.resource.scheduled_for()
    }

    /// The maker's notes; empty when none were given.
    pub fn notes(&self) -> String {
        self.resource.notes()
    }

    /// The names of the environment variables set for this deployment.
    pub fn environment_variable_names(&self) -> Vec<String> {
        self.resource.environment_variable_names()
    }

    /// The value of an environment variable; `None` when it is unset or secret.
    pub fn environment_variable(&self, name: &str) -> Option<String> {
        self.resource.environment_variable(name)
    }

    /// The connection bound to a connection reference, if any.
    pub fn connection_reference(&self, logical_name: &str) -> Option<String> {
        self.resource.connection_reference(logical_name)
    }
}

impl std::fmt::Debug for Deployment {
    // Only the handle: printing fields would make host calls.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("handle", &self.resource.handle())
            .finish()
    }
}
