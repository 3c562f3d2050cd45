//! `solution.json`: the manifest, its JSON form and its rules.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::error::PackageError;
use super::path::{COMPONENTS_DIR, check_path, is_component_path};
use super::version::Version;

/// Longest unique name, schema name, logical name, connector or component kind.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest display name or component name.
pub const MAX_DISPLAY_CHARS: usize = 200;

/// The manifest, `solution.json` at the root of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub unique_name: String,
    pub display_name: String,
    pub version: Version,
    pub publisher: Publisher,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub environment_variables: Vec<EnvironmentVariableDef>,
    #[serde(default)]
    pub connection_references: Vec<ConnectionReferenceDef>,
    #[serde(default)]
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    pub unique_name: String,
    /// 2 to 8 lowercase ASCII letters and digits.
    pub prefix: String,
}

/// Another solution that must be installed, at `min_version` or above, before this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub unique_name: String,
    pub min_version: Version,
}

/// The type of an environment variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariableType {
    String,
    Number,
    Boolean,
    Json,
    DataSource,
    Secret,
}

impl VariableType {
    /// The JSON spelling (`"data_source"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            VariableType::String => "string",
            VariableType::Number => "number",
            VariableType::Boolean => "boolean",
            VariableType::Json => "json",
            VariableType::DataSource => "data_source",
            VariableType::Secret => "secret",
        }
    }

    /// Whether `value` is acceptable for a variable of this type.
    pub fn accepts(self, value: &str) -> Result<(), String> {
        match self {
            VariableType::String | VariableType::DataSource => Ok(()),
            VariableType::Number => match value.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(()),
                _ => Err(format!("`{}` is not a finite number", clip(value))),
            },
            VariableType::Boolean => match value {
                "true" | "false" => Ok(()),
                _ => Err(format!("`{}` is not `true` or `false`", clip(value))),
            },
            VariableType::Json => serde_json::from_str::<serde::de::IgnoredAny>(value)
                .map(|_| ())
                .map_err(|e| format!("not valid JSON: {e}")),
            VariableType::Secret => Err("a secret cannot have a default value".into()),
        }
    }
}

/// An environment variable the solution reads; its value is set per target environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentVariableDef {
    pub schema_name: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// A connection the solution uses; it is bound to a connection per target environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionReferenceDef {
    pub logical_name: String,
    pub connector: String,
}

/// One component file of the solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub kind: String,
    pub name: String,
    /// `components/<…>`, the file's path inside the package.
    pub path: String,
}

impl Manifest {
    /// Parses `solution.json` and checks every rule ([`Manifest::validate`]).
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, PackageError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| explain_parse_error(bytes, e))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The manifest as `solution.json` bytes (pretty JSON, trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Checks the rules that JSON types cannot express: names, prefix, uniqueness,
    /// default values and component paths. It does not look at the package's files.
    pub fn validate(&self) -> Result<(), PackageError> {
        check_name("unique_name", &self.unique_name)?;
        check_display("display_name", &self.display_name)?;
        check_name("publisher.unique_name", &self.publisher.unique_name)?;
        check_prefix(&self.publisher.prefix)?;

        let mut seen = HashSet::new();
        for (i, dep) in self.dependencies.iter().enumerate() {
            let field = format!("dependencies[{i}].unique_name");
            check_name(&field, &dep.unique_name)?;
            if dep.unique_name == self.unique_name {
                return Err(invalid(&field, "a solution cannot depend on itself"));
            }
            if !seen.insert(dep.unique_name.as_str()) {
                return Err(invalid(
                    &field,
                    &format!("`{}` is listed twice", dep.unique_name),
                ));
            }
        }

        let mut seen = HashSet::new();
        for (i, var) in self.environment_variables.iter().enumerate() {
            let field = format!("environment_variables[{i}].schema_name");
            check_name(&field, &var.schema_name)?;
            if !seen.insert(var.schema_name.as_str()) {
                return Err(invalid(
                    &field,
                    &format!("`{}` is listed twice", var.schema_name),
                ));
            }
            if let Some(value) = &var.default_value {
                var.kind.accepts(value).map_err(|reason| {
                    invalid(
                        &format!("environment_variables[{i}].default_value"),
                        &format!("for type {}: {reason}", var.kind.as_str()),
                    )
                })?;
            }
        }

        let mut seen = HashSet::new();
        for (i, conn) in self.connection_references.iter().enumerate() {
            let field = format!("connection_references[{i}].logical_name");
            check_name(&field, &conn.logical_name)?;
            if !seen.insert(conn.logical_name.as_str()) {
                return Err(invalid(
                    &field,
                    &format!("`{}` is listed twice", conn.logical_name),
                ));
            }
            check_name(
                &format!("connection_references[{i}].connector"),
                &conn.connector,
            )?;
        }

        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for (i, comp) in self.components.iter().enumerate() {
            check_name(&format!("components[{i}].kind"), &comp.kind)?;
            check_display(&format!("components[{i}].name"), &comp.name)?;
            check_path(&comp.path, false)?;
            if !is_component_path(&comp.path) {
                return Err(invalid(
                    &format!("components[{i}].path"),
                    &format!("`{}` is not under {COMPONENTS_DIR}", clip(&comp.path)),
                ));
            }
            if !names.insert((comp.kind.as_str(), comp.name.as_str())) {
                return Err(PackageError::DuplicateComponent(format!(
                    "components[{i}]: {} `{}` is listed twice",
                    comp.kind, comp.name
                )));
            }
            if !paths.insert(comp.path.as_str()) {
                return Err(PackageError::DuplicateComponent(format!(
                    "components[{i}]: path `{}` is used by another component",
                    comp.path
                )));
            }
        }
        Ok(())
    }
}

/// Turns a serde error into the most useful [`PackageError`]: a bad version string
/// becomes [`PackageError::BadVersion`] naming its field.
fn explain_parse_error(bytes: &[u8], error: serde_json::Error) -> PackageError {
    if let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(bytes) {
        if let Some(serde_json::Value::String(v)) = doc.get("version")
            && let Err(source) = v.parse::<Version>()
        {
            return PackageError::BadVersion {
                field: "version".into(),
                source,
            };
        }
        if let Some(serde_json::Value::Array(deps)) = doc.get("dependencies") {
            for (i, dep) in deps.iter().enumerate() {
                if let Some(serde_json::Value::String(v)) = dep.get("min_version")
                    && let Err(source) = v.parse::<Version>()
                {
                    return PackageError::BadVersion {
                        field: format!("dependencies[{i}].min_version"),
                        source,
                    };
                }
            }
        }
    }
    PackageError::InvalidManifest(error.to_string())
}

fn invalid(field: &str, reason: &str) -> PackageError {
    PackageError::InvalidManifest(format!("{field}: {reason}"))
}

/// At most 64 characters of `s`, for messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Whether `s` is 1–100 characters of `[A-Za-z0-9_]`.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_CHARS
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_name(field: &str, value: &str) -> Result<(), PackageError> {
    if is_valid_name(value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            &format!(
                "`{}` must be 1 to {MAX_NAME_CHARS} characters of A-Z, a-z, 0-9 and _",
                clip(value)
            ),
        ))
    }
}

fn check_display(field: &str, value: &str) -> Result<(), PackageError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_DISPLAY_CHARS {
        return Err(invalid(
            field,
            &format!("is longer than {MAX_DISPLAY_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), PackageError> {
    let ok = (2..=8).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "publisher.prefix",
            &format!(
                "`{}` must be 2 to 8 lowercase letters and digits",
                clip(prefix)
            ),
        ))
    }
}
