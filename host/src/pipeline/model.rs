//! The records the host keeps: users, environments, pipelines, plugins, deployments.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::gate::{Config, Decision, EnvironmentKind, Finding, LogLine, PluginWorld, Timestamp};
use crate::pipeline::plugin_limits::PluginLimits;

/// Ids are UUIDv7 strings: unique, and ordered by creation time, so they double as cursors.
pub type Id = String;

/// A new id, ordered after every id made before it by this process.
pub fn new_id() -> Id {
    uuid::Uuid::now_v7().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Changes configuration, loads plugins, sees and runs every pipeline.
    Admin,
    /// Runs the pipelines shared with them, and votes where a gate names them.
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: Id,
    /// The login name, unique.
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// The names of the groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    pub created_at: Timestamp,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether a share or an approver entry names this user.
    pub fn matches(&self, grantee: &Grantee) -> bool {
        match grantee {
            Grantee::User(id) => *id == self.id,
            Grantee::Group(name) => self.groups.iter().any(|g| g == name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    pub id: Id,
    pub name: String,
    /// User ids.
    pub members: Vec<Id>,
    pub created_at: Timestamp,
}

/// Who a pipeline is shared with, or who may vote: `user:<id>` or `group:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grantee {
    User(Id),
    Group(String),
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::User(id) => write!(f, "user:{id}"),
            Grantee::Group(name) => write!(f, "group:{name}"),
        }
    }
}

impl FromStr for Grantee {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("user", id)) if !id.is_empty() => Ok(Grantee::User(id.to_owned())),
            Some(("group", name)) if !name.is_empty() => Ok(Grantee::Group(name.to_owned())),
            _ => Err(format!("{s:?} is neither `user:<id>` nor `group:<name>`")),
        }
    }
}

impl Serialize for Grantee {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grantee {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Grantee {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("`user:<id>` or `group:<name>`"))
            .pattern(Some(r"^(user|group):[\s\S]"))
            .into()
    }
}

impl utoipa::ToSchema for Grantee {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    Pending,
    Success,
    Failed,
}

/// An environment the host deploys from or to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentRecord {
    pub id: Id,
    pub name: String,
    #[schema(value_type = String)]
    pub kind: EnvironmentKind,
    /// The id the environment reports for itself.
    pub environment_id: String,
    /// Where its Environment API is served: `http(s)://…` or `memory://<name>`.
    pub url: String,
    /// Whether a credential is stored; the credential itself is never shown.
    pub has_credential: bool,
    pub validation_status: ValidationStatus,
    pub validation_message: String,
    /// Who may use the environment in a deployment, besides admins' own grants.
    pub access: Vec<Grantee>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PipelineSettings {
    /// Lets a stage receive a version lower than the one it last received.
    pub allow_redeploy_older_versions: bool,
}

/// A plugin bound as a pipeline validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginBinding {
    pub plugin_id: Id,
    #[serde(default)]
    pub config: Config,
}

/// How a gate binding's decision counts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BindingMode {
    /// The gate's decision decides the pre-deployment step.
    #[default]
    Live,
}

/// A plugin bound as a gate of a stage's pre-deployment step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateBinding {
    /// Stable identity, so a deployment's progress stays with this gate however the stage
    /// is edited. Given by the host when the gate is added; send it back to keep it.
    #[serde(default)]
    pub id: Id,
    pub plugin_id: Id,
    #[serde(default)]
    pub config: Config,
    /// Rejects the deployment when the gate has not approved within this many seconds
    /// (at least 1); no timeout when left out.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub approval_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub mode: BindingMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageRecord {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Empty only for a first stage.
    pub previous_stage_id: Option<Id>,
    pub target_environment_id: Id,
    pub pre_deployment_step_required: bool,
    /// Evaluated in order.
    #[serde(default)]
    pub gates: Vec<GateBinding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PipelineRecord {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub development_environment_ids: Vec<Id>,
    pub stages: Vec<StageRecord>,
    pub validators: Vec<PluginBinding>,
    pub settings: PipelineSettings,
    pub shares: Vec<Grantee>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every change. A change made to an older revision is refused, so two
    /// admins editing at once never silently undo each other; `If-Match` takes it too.
    #[serde(default)]
    pub revision: u64,
}

impl PipelineRecord {
    pub fn stage(&self, id: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// 1 for a first stage, 2 for the one after it, and so on.
    pub fn depth(&self, stage_id: &str) -> u32 {
        let mut depth = 0;
        let mut current = self.stage(stage_id);
        while let Some(stage) = current {
            depth += 1;
            if depth as usize > self.stages.len() {
                break;
            }
            current = stage
                .previous_stage_id
                .as_deref()
                .and_then(|id| self.stage(id));
        }
        depth
    }

    /// Whether every plugin id the pipeline binds satisfies `used`.
    pub fn uses_plugin(&self, plugin_id: &str) -> bool {
        self.validators.iter().any(|v| v.plugin_id == plugin_id)
            || self
                .stages
                .iter()
                .flat_map(|s| &s.gates)
                .any(|g| g.plugin_id == plugin_id)
    }
}

/// A loaded plugin, as the host registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginRecord {
    pub id: Id,
    pub name: String,
    pub version: String,
    #[schema(value_type = String)]
    pub world: PluginWorld,
    pub description: String,
    pub config_keys: Vec<String>,
    /// The component's SHA-256, which is also its blob's key.
    pub sha256: String,
    pub size: u64,
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub limits: PluginLimits,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Queued,
    Scheduled,
    Validating,
    PendingApproval,
    Deploying,
    Succeeded,
    Failed,
    Rejected,
    Canceled,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 9] = [
        DeploymentStatus::Queued,
        DeploymentStatus::Scheduled,
        DeploymentStatus::Validating,
        DeploymentStatus::PendingApproval,
        DeploymentStatus::Deploying,
        DeploymentStatus::Succeeded,
        DeploymentStatus::Failed,
        DeploymentStatus::Rejected,
        DeploymentStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Queued => "queued",
            DeploymentStatus::Scheduled => "scheduled",
            DeploymentStatus::Validating => "validating",
            DeploymentStatus::PendingApproval => "pending_approval",
            DeploymentStatus::Deploying => "deploying",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Rejected => "rejected",
            DeploymentStatus::Canceled => "canceled",
        }
    }

    /// Finished deployments never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Succeeded
                | DeploymentStatus::Failed
                | DeploymentStatus::Rejected
                | DeploymentStatus::Canceled
        )
    }

    /// The requester or an admin may cancel until deploying starts.
    pub fn is_cancelable(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Queued
                | DeploymentStatus::Scheduled
                | DeploymentStatus::Validating
                | DeploymentStatus::PendingApproval
        )
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeploymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a deployment status"))
    }
}

/// The pre-deployment step's status, with Power Platform's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(into = "u16", try_from = "u16")]
pub enum PreDeploymentStatus {
    Pending = 10,
    Completed = 20,
    Rejected = 30,
}

impl From<PreDeploymentStatus> for u16 {
    fn from(s: PreDeploymentStatus) -> u16 {
        s as u16
    }
}

impl TryFrom<u16> for PreDeploymentStatus {
    type Error = String;

    fn try_from(v: u16) -> Result<Self, Self::Error> {
        match v {
            10 => Ok(PreDeploymentStatus::Pending),
            20 => Ok(PreDeploymentStatus::Completed),
            30 => Ok(PreDeploymentStatus::Rejected),
            other => Err(format!(
                "{other} is not a pre-deployment status: use 20 (completed) or 30 (rejected)"
            )),
        }
    }
}

/// An environment variable value the maker supplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariableSetting {
    pub name: String,
    /// Never returned by the API for a secret variable.
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// What the maker supplied for the target: variable values and connection bindings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DeploymentSettings {
    pub environment_variables: Vec<VariableSetting>,
    /// Connection reference logical name to connection id.
    pub connection_references: BTreeMap<String, String>,
}

/// How far one gate of the pre-deployment step has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateProgress {
    /// The binding, in the deployment's snapshot, this progress belongs to.
    #[serde(default)]
    pub binding_id: Id,
    pub plugin_id: Id,
    pub plugin_name: String,
    /// Final once true: an approving gate is not asked again.
    pub approved: bool,
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Decision>,
    /// Why the plugin call failed, when it did.
    pub error: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub log: Vec<LogLine>,
    /// When the gate was first asked, for its approval timeout.
    pub started_at: Option<Timestamp>,
    pub evaluated_at: Option<Timestamp>,
    pub evaluations: u32,
    pub duration_us: u64,
    pub fuel_used: u64,
}

/// What one validator found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidatorReport {
    pub plugin_id: Id,
    pub plugin_name: String,
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Finding>,
    pub error: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub log: Vec<LogLine>,
    pub duration_us: u64,
}

/// Who completed or rejected the pre-deployment step from outside, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreDeploymentOverride {
    pub status: PreDeploymentStatus,
    pub by: Id,
    pub at: Timestamp,
    pub comment: String,
}

/// A stage run: one version of a solution going to one stage's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentRecord {
    pub id: Id,
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub source_environment_id: Id,
    pub target_environment_id: Id,
    pub solution_name: String,
    pub version: String,
    pub requested_by: Id,
    pub requested_at: Timestamp,
    pub scheduled_for: Option<Timestamp>,
    pub notes: String,
    pub settings: DeploymentSettings,
    pub status: DeploymentStatus,
    /// Why the deployment ended as it did, or what it waits for.
    pub status_reason: String,
    pub pre_deployment_status: Option<PreDeploymentStatus>,
    pub pre_deployment_override: Option<PreDeploymentOverride>,
    /// The stage's gate bindings as they were when the pre-deployment step started: the
    /// gates this deployment answers to, whatever later edits do to the stage.
    #[serde(default)]
    pub gate_bindings: Vec<GateBinding>,
    /// Progress of each binding in `gate_bindings`, by binding id.
    pub gates: Vec<GateProgress>,
    pub validation: Vec<ValidatorReport>,
    /// Bumped by each retry; the import's operation id includes it.
    pub attempt: u32,
    /// When the current attempt started; votes cast before it belong to an earlier
    /// attempt and no longer count.
    #[serde(default)]
    pub attempt_started_at: Timestamp,
    /// When the engine should look at this deployment again; none while it waits for a
    /// person.
    pub next_run_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// The version installed in the target before this deployment, if any.
    pub installed_version: Option<String>,
    /// What is being deployed: taken from the source for a first stage, and from the
    /// previous stage's successful deployment after that, never exported again.
    #[schema(value_type = Object)]
    pub artifact: super::ports::SolutionVersion,
    /// Calls to an environment that failed in a way worth retrying, in the current step;
    /// the step fails when they reach the engine's limit.
    #[serde(default)]
    pub environment_attempts: u32,
    /// Whether the target accepted this attempt's import; a resumed deployment then only
    /// waits for it.
    #[serde(default)]
    pub import_started: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Optimistic-concurrency counter: every write checks and bumps it.
    pub revision: u64,
}

impl DeploymentRecord {
    /// The import's operation id: the same for every resumption of one attempt, so the
    /// environment imports it once.
    pub fn operation_id(&self) -> String {
        format!("{}-{}", self.id, self.attempt)
    }
}

/// An exported solution version: its managed and unmanaged packages, kept as backups.
/// Later stages import this same artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactRecord {
    pub id: Id,
    pub solution_name: String,
    pub version: String,
    pub managed: super::ports::PackageRef,
    pub unmanaged: super::ports::PackageRef,
    /// The managed package's manifest.
    #[schema(value_type = Object)]
    pub manifest: super::ports::Manifest,
    /// The development environment it was exported from.
    pub source_environment_id: Id,
    /// The deployment whose export made it.
    pub deployment_id: Id,
    /// When it was exported, in milliseconds since the Unix epoch, UTC, like every `_at`
    /// time of this API; `created_at_rfc3339` says the same in RFC 3339.
    pub created_at: Timestamp,
}

impl ArtifactRecord {
    /// The artifact as a deployment carries it: the managed package is the one to import.
    pub fn solution_version(&self) -> super::ports::SolutionVersion {
        super::ports::SolutionVersion {
            name: self.solution_name.clone(),
            version: self.version.clone(),
            publisher_prefix: self.manifest.publisher.prefix.clone(),
            components: self
                .manifest
                .components
                .iter()
                .map(|c| super::gate::ComponentRef {
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                })
                .collect(),
            package_size: self.managed.size,
            package_sha256: self.managed.sha256.clone(),
            unmanaged: Some(self.unmanaged.clone()),
            manifest: Some(self.manifest.clone()),
        }
    }
}

/// A vote cast on a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoteRecord {
    pub id: Id,
    pub deployment_id: Id,
    pub voter_id: Id,
    pub approve: bool,
    pub comment: String,
    pub at: Timestamp,
}

/// One step of a deployment's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub deployment_id: Id,
    /// Order within the deployment, from 1.
    pub seq: u32,
    pub at: Timestamp,
    /// `requested`, `pre_deployment_started`, `vote`, `pre_deployment_completed`,
    /// `deployment_started`, `deployment_completed`, and the others the engine records.
    pub kind: String,
    pub actor: Option<Id>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// The user id, or `system`.
    pub actor: String,
    /// Such as `pipeline.create` or `deployment.vote`.
    pub action: String,
    /// The id of what was changed.
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
