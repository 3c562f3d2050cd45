//! What an approval gate or a validator is shown, and what it answers.
//!
//! These mirror the `gatehouse:plugin` WIT contract one to one, as plain serde types, so
//! that a deployment can be written to a JSON file, stored, and replayed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
pub type Timestamp = u64;

/// A binding's configuration, as the admin gave it.
pub type Config = BTreeMap<String, String>;

/// Which of the two plugin worlds a component targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginWorld {
    /// An approval gate of a stage's pre-deployment step.
    Approver,
    /// A custom validator of a pipeline.
    Validator,
}

impl fmt::Display for PluginWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginWorld::Approver => "approver",
            PluginWorld::Validator => "validator",
        })
    }
}

/// What a plugin says about itself in `describe()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub config_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    Development,
    Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub kind: EnvironmentKind,
}

/// A user, with the names of the groups they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The stage being deployed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub name: String,
    /// 1 for a stage without a previous stage, 2 for the one after it, and so on.
    pub depth: u32,
    pub target: Environment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRef {
    pub kind: String,
    pub name: String,
}

/// An environment variable set for a deployment. Secret values never reach a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// A deployment as its gates and validators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFacts {
    pub id: String,
    pub pipeline_id: String,
    pub pipeline_name: String,
    pub stage: Stage,
    pub source: Environment,
    pub solution_name: String,
    pub solution_version: String,
    pub publisher_prefix: String,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub package_size: u64,
    #[serde(default)]
    pub package_sha256: String,
    #[serde(default)]
    pub components: Vec<ComponentRef>,
    #[serde(default)]
    pub installed_version: Option<String>,
    pub requested_by: Principal,
    pub requested_at: Timestamp,
    #[serde(default)]
    pub scheduled_for: Option<Timestamp>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// Connection reference logical name to the connection bound to it.
    #[serde(default)]
    pub connection_references: BTreeMap<String, String>,
}

impl DeploymentFacts {
    /// The value a plugin may see: none for unset and for secret variables.
    pub fn visible_variable(&self, name: &str) -> Option<&str> {
        self.environment_variables
            .iter()
            .find(|v| v.name == name)
            .filter(|v| !v.secret)
            .and_then(|v| v.value.as_deref())
    }
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub voter: Principal,
    pub approve: bool,
    #[serde(default)]
    pub comment: String,
    pub at: Timestamp,
}

/// A gate's answer for one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approve {
        reason: String,
    },
    Reject {
        reason: String,
    },
    Pending {
        message: String,
        /// `user:<id>` or `group:<name>` entries.
        approvers: Vec<String>,
        recheck_after_seconds: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One thing a validator found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub component: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where a plugin log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The plugin called `host.log`.
    Log,
    Stdout,
    Stderr,
}

/// One line of a plugin's log for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub stream: LogStream,
    pub message: String,
}
