//! Whether an import would succeed: the checks `POST /env/v1/validate` reports and every
//! import runs before it installs, in the reference server and in `memory://` alike. Pure:
//! the caller gathers what the environment holds.

use std::collections::BTreeMap;

use super::wire::{
    ImportSettings, Kind, MissingConnectionReference, MissingEnvironmentVariable, Report,
    ReportFinding, ReportSeverity,
};
use crate::solution::{Manifest, VariableType, Version};

/// What the environment holds, as the checks need it.
pub struct Target<'a> {
    pub kind: Kind,
    pub managed: bool,
    /// Installed solution unique name → version.
    pub installed: &'a BTreeMap<String, Version>,
    /// Connection name → connector.
    pub connections: &'a BTreeMap<String, String>,
}

/// Runs every check and reports them all, not only the first failure.
pub fn check(
    manifest: &Manifest,
    settings: &ImportSettings,
    allow_downgrade: bool,
    target: &Target<'_>,
) -> Report {
    let mut findings = Vec::new();
    // `component` names the variable or connection reference a finding is about, so a
    // client can say how to fix it in its own terms.
    let mut error = |code: &str, component: Option<&str>, message: String| {
        findings.push(ReportFinding {
            severity: ReportSeverity::Error,
            code: code.to_owned(),
            message,
            component: component.map(str::to_owned),
        })
    };
    let name = &manifest.unique_name;
    let version = &manifest.version;

    if target.kind == Kind::Development {
        error(
            "wrong_kind",
            None,
            "this is a development environment, which takes pushed solutions \
             (PUT /env/v1/solutions/{name}), not imports; import into a target environment"
                .to_owned(),
        );
    }
    if target.managed && !manifest.managed {
        error(
            "not_managed",
            None,
            format!(
                "{name} {version} is an unmanaged package and this environment is managed; \
                 import the managed package of the export"
            ),
        );
    }

    let installed = target.installed.get(name);
    let mut version_warning = None;
    if let Some(old) = installed {
        let (code, older) = match version.cmp(old) {
            std::cmp::Ordering::Less => ("version_downgrade", true),
            std::cmp::Ordering::Equal => ("same_version", false),
            std::cmp::Ordering::Greater => ("", false),
        };
        if !code.is_empty() {
            if allow_downgrade {
                version_warning = Some(ReportFinding {
                    severity: ReportSeverity::Warning,
                    code: code.to_owned(),
                    message: format!(
                        "{name} {version} replaces the installed {old} (allowed by allow_downgrade)"
                    ),
                    component: None,
                });
            } else if older {
                error(
                    code,
                    None,
                    format!(
                        "{name} {version} is older than the installed {old}; import {old} or \
                         later, or set allow_downgrade"
                    ),
                );
            } else {
                error(
                    code,
                    None,
                    format!(
                        "{name} {version} is already installed; import a later version, or set \
                         allow_downgrade to import it again"
                    ),
                );
            }
        }
    }

    for dep in &manifest.dependencies {
        match target.installed.get(&dep.unique_name) {
            Some(have) if *have >= dep.min_version => {}
            Some(have) => error(
                "missing_dependency",
                None,
                format!(
                    "{name} needs {} {} or later, and this environment has {have}; import a \
                     newer {} first",
                    dep.unique_name, dep.min_version, dep.unique_name
                ),
            ),
            None => error(
                "missing_dependency",
                None,
                format!(
                    "{name} needs {} {} or later, which is not installed here; import it first",
                    dep.unique_name, dep.min_version
                ),
            ),
        }
    }

    let mut missing_environment_variables = Vec::new();
    for var in &manifest.environment_variables {
        let supplied = settings
            .environment_variables
            .get(&var.schema_name)
            .filter(|v| !v.is_empty());
        if let Some(value) = supplied
            && var.kind != VariableType::Secret
            && let Err(reason) = var.kind.accepts(value)
        {
            error(
                "invalid_environment_variable",
                Some(&var.schema_name),
                format!(
                    "environment variable {} is of type {}: {reason}",
                    var.schema_name,
                    var.kind.as_str()
                ),
            );
        }
        if var.default_value.is_none() && supplied.is_none() {
            error(
                "missing_environment_variable",
                Some(&var.schema_name),
                format!(
                    "environment variable {} needs a value: it has no default",
                    var.schema_name
                ),
            );
            missing_environment_variables.push(MissingEnvironmentVariable {
                schema_name: var.schema_name.clone(),
                kind: var.kind,
            });
        }
    }

    let mut missing_connection_references = Vec::new();
    for reference in &manifest.connection_references {
        let logical = &reference.logical_name;
        let connector = &reference.connector;
        let Some(bound) = settings.connection_references.get(logical) else {
            error(
                "missing_connection_reference",
                Some(logical),
                format!(
                    "connection reference {logical} needs a {connector} connection; bind it \
                     in settings.connection_references"
                ),
            );
            missing_connection_references.push(MissingConnectionReference {
                logical_name: logical.clone(),
                connector: connector.clone(),
            });
            continue;
        };
        match target.connections.get(bound) {
            None => {
                let same: Vec<&str> = target
                    .connections
                    .iter()
                    .filter(|(_, c)| *c == connector)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let hint = if same.is_empty() {
                    format!("register one with POST /env/v1/connections (connector {connector})")
                } else {
                    format!("the {connector} connections here are: {}", same.join(", "))
                };
                error(
                    "unknown_connection",
                    Some(logical),
                    format!(
                        "connection reference {logical} is bound to {bound}, which is not a \
                         connection in this environment; {hint}"
                    ),
                );
            }
            Some(other) if other != connector => error(
                "connector_mismatch",
                Some(logical),
                format!(
                    "connection reference {logical} needs a {connector} connection, and \
                     {bound} is a {other} connection"
                ),
            ),
            Some(_) => {}
        }
    }

    findings.extend(version_warning);
    Report {
        ok: !findings.iter().any(|f| f.severity == ReportSeverity::Error),
        findings,
        missing_environment_variables,
        missing_connection_references,
        installed_version: installed.map(ToString::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(managed: bool) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "unique_name": "contoso_app",
            "display_name": "Contoso App",
            "version": "1.0.0.4",
            "publisher": { "unique_name": "contoso", "prefix": "contoso" },
            "managed": managed,
            "dependencies": [ { "unique_name": "contoso_core", "min_version": "2.0.0.0" } ],
            "environment_variables": [
                { "schema_name": "contoso_ApiUrl", "type": "string" },
                { "schema_name": "contoso_Retries", "type": "number", "default_value": "3" }
            ],
            "connection_references": [ { "logical_name": "contoso_sql", "connector": "sql" } ],
            "components": []
        }))
        .expect("a valid manifest")
    }

    fn v(s: &str) -> Version {
        s.parse().expect("a version")
    }

    struct Env {
        installed: BTreeMap<String, Version>,
        connections: BTreeMap<String, String>,
    }

    impl Env {
        fn new() -> Env {
            Env {
                installed: [("contoso_core".to_owned(), v("2.1.0.0"))].into(),
                connections: [
                    ("shared-sql".to_owned(), "sql".to_owned()),
                    ("shared-http".to_owned(), "http".to_owned()),
                ]
                .into(),
            }
        }
        fn target(&self) -> Target<'_> {
            Target {
                kind: Kind::Target,
                managed: true,
                installed: &self.installed,
                connections: &self.connections,
            }
        }
    }

    fn good_settings() -> ImportSettings {
        ImportSettings {
            environment_variables: [("contoso_ApiUrl".to_owned(), "https://x".to_owned())].into(),
            connection_references: [("contoso_sql".to_owned(), "shared-sql".to_owned())].into(),
        }
    }

    fn codes(report: &Report) -> Vec<&str> {
        report.findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn a_complete_import_is_ok() {
        let env = Env::new();
        let report = check(&manifest(true), &good_settings(), false, &env.target());
        assert!(report.ok, "{report:?}");
        assert!(report.findings.is_empty());
        assert_eq!(report.installed_version, None);
    }

    #[test]
    fn every_missing_value_is_named() {
        let env = Env::new();
        let report = check(
            &manifest(true),
            &ImportSettings::default(),
            false,
            &env.target(),
        );
        assert!(!report.ok);
        assert_eq!(
            codes(&report),
            [
                "missing_environment_variable",
                "missing_connection_reference"
            ]
        );
        assert_eq!(report.missing_environment_variables.len(), 1);
        assert_eq!(
            report.missing_environment_variables[0].schema_name,
            "contoso_ApiUrl"
        );
        assert_eq!(
            report.missing_environment_variables[0].kind,
            VariableType::String
        );
        assert!(report.findings[0].message.contains("contoso_ApiUrl"));
        let named: Vec<Option<&str>> = report
            .findings
            .iter()
            .map(|f| f.component.as_deref())
            .collect();
        assert_eq!(named, [Some("contoso_ApiUrl"), Some("contoso_sql")]);
        assert_eq!(
            report.missing_connection_references,
            [MissingConnectionReference {
                logical_name: "contoso_sql".into(),
                connector: "sql".into()
            }]
        );
    }

    #[test]
    fn connections_must_exist_and_match() {
        let env = Env::new();
        let mut settings = good_settings();
        settings
            .connection_references
            .insert("contoso_sql".into(), "nope".into());
        let report = check(&manifest(true), &settings, false, &env.target());
        assert_eq!(codes(&report), ["unknown_connection"]);
        assert!(report.findings[0].message.contains("shared-sql"));
        settings
            .connection_references
            .insert("contoso_sql".into(), "shared-http".into());
        let report = check(&manifest(true), &settings, false, &env.target());
        assert_eq!(codes(&report), ["connector_mismatch"]);
        assert_eq!(report.findings[0].component.as_deref(), Some("contoso_sql"));
    }

    #[test]
    fn dependencies_must_be_installed_and_new_enough() {
        let mut env = Env::new();
        env.installed.insert("contoso_core".into(), v("1.9.0.0"));
        let report = check(&manifest(true), &good_settings(), false, &env.target());
        assert_eq!(codes(&report), ["missing_dependency"]);
        assert!(report.findings[0].message.contains("1.9.0.0"));
        env.installed.clear();
        let report = check(&manifest(true), &good_settings(), false, &env.target());
        assert_eq!(codes(&report), ["missing_dependency"]);
    }

    #[test]
    fn versions_only_move_up_unless_allowed() {
        let mut env = Env::new();
        env.installed.insert("contoso_app".into(), v("1.0.0.10"));
        let report = check(&manifest(true), &good_settings(), false, &env.target());
        assert_eq!(codes(&report), ["version_downgrade"]);
        assert_eq!(report.installed_version.as_deref(), Some("1.0.0.10"));
        let report = check(&manifest(true), &good_settings(), true, &env.target());
        assert!(report.ok);
        assert_eq!(report.findings[0].severity, ReportSeverity::Warning);

        env.installed.insert("contoso_app".into(), v("1.0.0.4"));
        let report = check(&manifest(true), &good_settings(), false, &env.target());
        assert_eq!(codes(&report), ["same_version"]);
        assert!(check(&manifest(true), &good_settings(), true, &env.target()).ok);

        env.installed.insert("contoso_app".into(), v("1.0.0.3"));
        assert!(check(&manifest(true), &good_settings(), false, &env.target()).ok);
    }

    #[test]
    fn kind_and_managed_are_checked() {
        let env = Env::new();
        let report = check(&manifest(false), &good_settings(), false, &env.target());
        assert_eq!(codes(&report), ["not_managed"]);
        let mut target = env.target();
        target.managed = false;
        assert!(check(&manifest(false), &good_settings(), false, &target).ok);
        target.kind = Kind::Development;
        let report = check(&manifest(true), &good_settings(), false, &target);
        assert_eq!(codes(&report), ["wrong_kind"]);
    }

    #[test]
    fn values_must_fit_their_type() {
        let env = Env::new();
        let mut settings = good_settings();
        settings
            .environment_variables
            .insert("contoso_Retries".into(), "many".into());
        let report = check(&manifest(true), &settings, false, &env.target());
        assert_eq!(codes(&report), ["invalid_environment_variable"]);
        assert!(report.findings[0].message.contains("contoso_Retries"));
    }
}
