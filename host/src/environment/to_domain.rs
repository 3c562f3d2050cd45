//! How `/env/v1` messages become the domain's port types, and the deployment's settings
//! become the import settings the API takes.

use super::wire::{self, ImportSettings, Kind, OperationStatus, ReportSeverity};
use crate::pipeline::gate::{EnvironmentKind, Finding, Severity};
use crate::pipeline::model::DeploymentSettings;
use crate::pipeline::ports::{
    EnvironmentCheck, EnvironmentInfo, ImportState, ImportStatus, MissingConnection,
    MissingVariable,
};

/// The settings as the Environment API takes them: values by name.
pub fn import_settings(settings: &DeploymentSettings) -> ImportSettings {
    ImportSettings {
        environment_variables: settings
            .environment_variables
            .iter()
            .filter_map(|v| Some((v.name.clone(), v.value.clone()?)))
            .collect(),
        connection_references: settings.connection_references.clone(),
    }
}

pub fn environment_kind(kind: Kind) -> EnvironmentKind {
    match kind {
        Kind::Development => EnvironmentKind::Development,
        Kind::Target => EnvironmentKind::Target,
    }
}

pub fn wire_kind(kind: EnvironmentKind) -> Kind {
    match kind {
        EnvironmentKind::Development => Kind::Development,
        EnvironmentKind::Target => Kind::Target,
    }
}

impl From<wire::EnvInfo> for EnvironmentInfo {
    fn from(info: wire::EnvInfo) -> EnvironmentInfo {
        EnvironmentInfo {
            environment_id: info.environment_id,
            kind: environment_kind(info.kind),
            managed: info.managed,
            linked_host: info.linked_host,
        }
    }
}

impl From<wire::ReportFinding> for Finding {
    fn from(finding: wire::ReportFinding) -> Finding {
        Finding {
            severity: match finding.severity {
                ReportSeverity::Error => Severity::Error,
                ReportSeverity::Warning => Severity::Warning,
                ReportSeverity::Info => Severity::Info,
            },
            code: finding.code,
            message: finding.message,
            component: finding.component,
        }
    }
}

impl From<wire::Report> for EnvironmentCheck {
    fn from(report: wire::Report) -> EnvironmentCheck {
        EnvironmentCheck {
            ok: report.ok,
            findings: report.findings.into_iter().map(Finding::from).collect(),
            missing_environment_variables: report
                .missing_environment_variables
                .into_iter()
                .map(|v| MissingVariable {
                    schema_name: v.schema_name,
                    kind: v.kind.as_str().to_owned(),
                })
                .collect(),
            missing_connection_references: report
                .missing_connection_references
                .into_iter()
                .map(|c| MissingConnection {
                    logical_name: c.logical_name,
                    connector: c.connector,
                })
                .collect(),
            installed_version: report.installed_version,
        }
    }
}

impl From<wire::OperationDoc> for ImportStatus {
    fn from(op: wire::OperationDoc) -> ImportStatus {
        ImportStatus {
            operation_id: op.operation_id,
            status: match op.status {
                OperationStatus::Running => ImportState::Running,
                OperationStatus::Succeeded => ImportState::Succeeded,
                OperationStatus::Failed => ImportState::Failed,
            },
            error: op.error,
        }
    }
}
