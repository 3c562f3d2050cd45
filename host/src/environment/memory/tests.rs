//! The `memory://` environments: imports run once, and by the reference server's rules.

use super::*;
use crate::pipeline::model::VariableSetting;
use crate::solution::{ConnectionReferenceDef, EnvironmentVariableDef, VariableType};

const TARGET: EnvironmentKind = EnvironmentKind::Target;

fn request(op: &str, package: &PackageRef) -> ImportRequest {
    ImportRequest {
        operation_id: op.into(),
        package: package.clone(),
        settings: DeploymentSettings::default(),
        allow_downgrade: false,
        link_secret: None,
    }
}

#[test]
fn an_operation_imports_once() {
    let envs = MemoryEnvironments::default();
    envs.seed("dev:contoso_app@1.2.0.0").unwrap();
    let exported = envs.export("dev", "contoso_app", "1.2.0.1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.zip");
    envs.download(&exported.managed, &file).unwrap();
    envs.upload("prod", &exported.managed, &file).unwrap();
    let first = envs
        .start_import(
            "prod",
            TARGET,
            &request("op-1", &exported.managed),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(first.status, ImportState::Succeeded);
    let again = envs
        .start_import(
            "prod",
            TARGET,
            &request("op-1", &exported.managed),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(again.status, ImportState::Succeeded);
    assert_eq!(envs.import_count("prod"), 1);
    assert_eq!(
        envs.solution("prod", "contoso_app").unwrap().version,
        "1.2.0.1"
    );
    // The same version again is refused by a new operation.
    let same = envs
        .start_import(
            "prod",
            TARGET,
            &request("op-2", &exported.managed),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(same.status, ImportState::Failed);
    assert!(same.error.unwrap().contains("already installed"));
}

#[test]
fn bad_seeds_say_what_is_expected() {
    let envs = MemoryEnvironments::default();
    assert!(envs.seed("contoso_app@1.0.0.0").is_err());
    assert!(
        envs.seed("dev:contoso_app@1.0")
            .unwrap_err()
            .0
            .contains("four-part")
    );
}

/// Exports `contoso_app` 1.2.0.1 from dev and uploads both packages to prod.
fn exported(envs: &MemoryEnvironments, dir: &Path) -> ExportedSolution {
    envs.seed("dev:contoso_app@1.2.0.0").unwrap();
    let exported = envs.export("dev", "contoso_app", "1.2.0.1").unwrap();
    for (package, file) in [(&exported.managed, "m.zip"), (&exported.unmanaged, "u.zip")] {
        let file = dir.join(file);
        envs.download(package, &file).unwrap();
        envs.upload("prod", package, &file).unwrap();
    }
    exported
}

#[test]
fn a_managed_target_takes_only_managed_packages() {
    let envs = MemoryEnvironments::default();
    let dir = tempfile::tempdir().unwrap();
    let exported = exported(&envs, dir.path());
    let unmanaged = envs
        .start_import(
            "prod",
            TARGET,
            &request("op-u", &exported.unmanaged),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(unmanaged.status, ImportState::Failed);
    assert!(unmanaged.error.unwrap().contains("unmanaged package"));
    assert_eq!(envs.import_count("prod"), 0);
    assert!(envs.info("prod", TARGET).managed);
}

#[test]
fn a_development_environment_takes_no_imports() {
    let envs = MemoryEnvironments::default();
    let dir = tempfile::tempdir().unwrap();
    let exported = exported(&envs, dir.path());
    let check = envs.check(
        "prod",
        EnvironmentKind::Development,
        &exported.manifest,
        &DeploymentSettings::default(),
        false,
    );
    assert!(!check.ok);
    assert_eq!(check.findings[0].code, "wrong_kind");
    let op = envs
        .start_import(
            "prod",
            EnvironmentKind::Development,
            &request("op-d", &exported.managed),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(op.status, ImportState::Failed);
}

#[test]
fn connection_references_bind_to_connections_that_exist() {
    let envs = MemoryEnvironments::default();
    let mut manifest = envs
        .seed("dev:contoso_app@1.0.0.0")
        .map(|()| {
            envs.solution("dev", "contoso_app")
                .unwrap()
                .manifest
                .unwrap()
        })
        .unwrap();
    manifest.managed = true;
    manifest.connection_references = vec![ConnectionReferenceDef {
        logical_name: "contoso_sql".into(),
        connector: "sql".into(),
    }];
    manifest.environment_variables = vec![EnvironmentVariableDef {
        schema_name: "contoso_Retries".into(),
        kind: VariableType::Number,
        default_value: None,
    }];
    let mut settings = DeploymentSettings::default();
    settings
        .connection_references
        .insert("contoso_sql".into(), "shared-sql".into());
    settings.environment_variables.push(VariableSetting {
        name: "contoso_Retries".into(),
        value: Some("3".into()),
        secret: false,
    });
    let check = envs.check("prod", TARGET, &manifest, &settings, false);
    assert_eq!(check.findings.len(), 1, "{check:?}");
    assert_eq!(check.findings[0].code, "unknown_connection");
    envs.add_connection("prod", "shared-sql", "sql").unwrap();
    assert!(envs.add_connection("prod", "shared-sql", "http").is_err());
    let check = envs.check("prod", TARGET, &manifest, &settings, false);
    assert!(check.ok, "{check:?}");
    settings.environment_variables[0].value = Some("many".into());
    let check = envs.check("prod", TARGET, &manifest, &settings, false);
    assert_eq!(check.findings[0].code, "invalid_environment_variable");
}

#[test]
fn once_linked_an_import_must_present_the_latest_link_secret() {
    let envs = MemoryEnvironments::default();
    envs.seed("dev:contoso_app@1.2.0.0").unwrap();
    let exported = envs.export("dev", "contoso_app", "1.2.0.1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.zip");
    envs.download(&exported.managed, &file).unwrap();
    envs.upload("prod", &exported.managed, &file).unwrap();
    let first = envs.link("prod", TARGET, "h1", false).unwrap();
    let first = first.link_secret.expect("a link secret");
    let second = envs.link("prod", TARGET, "h2", true).unwrap();
    assert_eq!(second.info.linked_host.as_deref(), Some("h2"));
    let second = second.link_secret.expect("a link secret");
    assert_ne!(first, second, "force rotates the secret");
    let with = |secret: Option<&str>| ImportRequest {
        link_secret: secret.map(str::to_owned),
        ..request("op-1", &exported.managed)
    };
    for stale in [None, Some(first.as_str())] {
        let refused = envs.start_import("prod", TARGET, &with(stale), Duration::ZERO);
        assert!(
            matches!(&refused, Err(EnvironmentError::Refused(m)) if m.contains("link secret")),
            "{refused:?}"
        );
    }
    assert_eq!(envs.import_count("prod"), 0);
    let done = envs
        .start_import("prod", TARGET, &with(Some(&second)), Duration::ZERO)
        .unwrap();
    assert_eq!(done.status, ImportState::Succeeded);
}
