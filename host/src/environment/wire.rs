//! The messages of the Environment API (`/env/v1`, docs/environment-api.md), declared once
//! for the host's client and the reference server alike.
//!
//! Requests reject unknown fields, as the API promises. Answers default what a third-party
//! environment may leave out, so that the client reads any conforming server. Request
//! fields are declared in the order the client has always sent them (alphabetical).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::solution::VariableType;

/// The version of the Environment API this crate speaks, as `info` reports it. 1.1 added
/// the link secret.
pub const API_VERSION: &str = "1.1";

/// The header an import presents the link secret in (Environment API 1.1).
pub const LINK_SECRET_HEADER: &str = "Gatehouse-Link-Secret";

/// What an environment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Makers push unmanaged solutions here and export them.
    Development,
    /// Pipelines import exported solutions here.
    Target,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Development => "development",
            Kind::Target => "target",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "development" => Some(Kind::Development),
            "target" => Some(Kind::Target),
            _ => None,
        }
    }
}

/// `GET /env/v1/info`, and the answer of `POST /env/v1/link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvInfo {
    pub environment_id: String,
    #[serde(default)]
    pub name: String,
    pub kind: Kind,
    pub managed: bool,
    #[serde(default)]
    pub linked_host: Option<String>,
    #[serde(default)]
    pub api_version: String,
}

/// `POST /env/v1/link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    #[serde(default)]
    pub force: bool,
    pub host_id: String,
}

/// The answer of `POST /env/v1/link`: the environment's info and, from Environment API
/// 1.1, the secret every import must then present. An older server leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAnswer {
    #[serde(flatten)]
    pub info: EnvInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_secret: Option<String>,
}

/// A list answer: `{ "items": [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// One component of a solution, as `GET /env/v1/solutions/{name}` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentDoc {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub path: String,
}

/// A solution as `GET /env/v1/solutions/{name}` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolutionDoc {
    pub unique_name: String,
    #[serde(default)]
    pub display_name: String,
    pub version: String,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub publisher_prefix: String,
    #[serde(default)]
    pub installed_at: String,
    #[serde(default)]
    pub operation_id: Option<String>,
    #[serde(default)]
    pub package_sha256: String,
    #[serde(default)]
    pub package_size: u64,
    #[serde(default)]
    pub components: Vec<ComponentDoc>,
    /// The solution's manifest as held there, so a host can tell what a deployment of it
    /// needs before exporting it.
    #[serde(default)]
    pub manifest: Option<serde_json::Value>,
}

/// `POST /env/v1/solutions/{name}/export`; the body may also be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A package by content address, with where to fetch it: an export's packages, and the
/// answer of `PUT /env/v1/packages/{sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDoc {
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub href: String,
}

/// The answer of `POST /env/v1/solutions/{name}/export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportDoc {
    #[serde(default)]
    pub unique_name: String,
    #[serde(default)]
    pub version: String,
    /// The managed package's `solution.json`.
    pub manifest: serde_json::Value,
    pub managed: PackageDoc,
    pub unmanaged: PackageDoc,
}

/// The values a deployment supplies for the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportSettings {
    /// Connection reference logical name → the name of a connection registered there.
    pub connection_references: BTreeMap<String, String>,
    /// Environment variable schema name → value.
    pub environment_variables: BTreeMap<String, String>,
}

/// `POST /env/v1/validate`: a package uploaded before, or a manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    #[serde(default)]
    pub allow_downgrade: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    #[serde(default)]
    pub settings: ImportSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportSeverity {
    Error,
    Warning,
    /// Never sent by the reference server; accepted from others.
    Info,
}

/// One result of the import checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFinding {
    pub severity: ReportSeverity,
    pub code: String,
    pub message: String,
    /// Never sent by the reference server; accepted from others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingEnvironmentVariable {
    pub schema_name: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingConnectionReference {
    pub logical_name: String,
    pub connector: String,
}

/// The answer of `POST /env/v1/validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// True when no finding is an error.
    pub ok: bool,
    #[serde(default)]
    pub findings: Vec<ReportFinding>,
    #[serde(default)]
    pub missing_environment_variables: Vec<MissingEnvironmentVariable>,
    #[serde(default)]
    pub missing_connection_references: Vec<MissingConnectionReference>,
    /// The version of this solution installed there now, if any.
    #[serde(default)]
    pub installed_version: Option<String>,
}

impl Report {
    /// The error findings' messages, one sentence each: an operation's `error`.
    pub fn error_summary(&self) -> String {
        self.findings
            .iter()
            .filter(|f| f.severity == ReportSeverity::Error)
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `POST /env/v1/imports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartImportRequest {
    #[serde(default)]
    pub allow_downgrade: bool,
    pub operation_id: String,
    pub package_sha256: String,
    #[serde(default)]
    pub settings: ImportSettings,
}

/// Where an import operation has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Running,
    Succeeded,
    Failed,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<OperationStatus> {
        match s {
            "running" => Some(OperationStatus::Running),
            "succeeded" => Some(OperationStatus::Succeeded),
            "failed" => Some(OperationStatus::Failed),
            _ => None,
        }
    }
}

/// An import operation, as `POST /env/v1/imports` and `GET /env/v1/imports/{id}` answer
/// it; never with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationDoc {
    pub operation_id: String,
    pub status: OperationStatus,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub findings: Vec<ReportFinding>,
    #[serde(default)]
    pub unique_name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// A connection that connection references bind to (`/env/v1/connections`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionDoc {
    pub name: String,
    pub connector: String,
    #[serde(default)]
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's requests keep the bytes they had when it built them with `json!`.
    #[test]
    fn requests_serialize_as_before() {
        let link = LinkRequest {
            force: false,
            host_id: "h".into(),
        };
        assert_eq!(
            serde_json::to_string(&link).unwrap(),
            serde_json::json!({ "host_id": "h", "force": false }).to_string()
        );
        let settings = ImportSettings {
            connection_references: [("sql".to_owned(), "c".to_owned())].into(),
            environment_variables: [("v".to_owned(), "1".to_owned())].into(),
        };
        let import = StartImportRequest {
            allow_downgrade: true,
            operation_id: "op".into(),
            package_sha256: "ab".into(),
            settings: settings.clone(),
        };
        assert_eq!(
            serde_json::to_string(&import).unwrap(),
            serde_json::json!({
                "operation_id": "op", "package_sha256": "ab",
                "settings": { "environment_variables": { "v": "1" }, "connection_references": { "sql": "c" } },
                "allow_downgrade": true,
            })
            .to_string()
        );
        let validate = ValidateRequest {
            allow_downgrade: false,
            manifest: Some(serde_json::json!({ "b": 1, "a": 2 })),
            package_sha256: None,
            settings,
        };
        assert_eq!(
            serde_json::to_string(&validate).unwrap(),
            serde_json::json!({
                "manifest": { "a": 2, "b": 1 },
                "settings": { "environment_variables": { "v": "1" }, "connection_references": { "sql": "c" } },
                "allow_downgrade": false,
            })
            .to_string()
        );
        let export = ExportRequest {
            version: Some("1.0.0.1".into()),
        };
        assert_eq!(
            serde_json::to_string(&export).unwrap(),
            r#"{"version":"1.0.0.1"}"#
        );
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let err = serde_json::from_str::<LinkRequest>(r#"{"host_id":"h","extra":1}"#);
        assert!(err.is_err());
        let err = serde_json::from_str::<ImportSettings>(r#"{"variables":{}}"#);
        assert!(err.is_err());
    }

    #[test]
    fn answers_take_what_a_third_party_may_leave_out() {
        let info: EnvInfo =
            serde_json::from_str(r#"{"environment_id":"e","kind":"target","managed":true}"#)
                .unwrap();
        assert_eq!(info.linked_host, None);
        let report: Report = serde_json::from_str(
            r#"{"ok":true,"findings":[{"severity":"info","code":"c","message":"m","component":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(report.findings[0].severity, ReportSeverity::Info);
        assert_eq!(report.findings[0].component.as_deref(), Some("x"));
        let op: OperationDoc =
            serde_json::from_str(r#"{"operation_id":"o","status":"failed","error":"no"}"#).unwrap();
        assert_eq!(op.status, OperationStatus::Failed);
    }
}
