//! Four-part solution versions: `major.minor.build.revision`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A solution version, `major.minor.build.revision`, each part a `u32`.
///
/// Versions compare numerically, part by part (`1.10.0.0 > 1.9.0.0`). The text form is
/// canonical: exactly four parts of ASCII digits, with no sign and no leading zeros
/// (`0` itself is fine), so two equal versions always have the same text. In JSON a
/// version is that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
    pub revision: u32,
}

impl Version {
    /// A version from its four parts.
    pub const fn new(major: u32, minor: u32, build: u32, revision: u32) -> Self {
        Self {
            major,
            minor,
            build,
            revision,
        }
    }
}

/// Why a string is not a [`Version`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a version (major.minor.build.revision): {reason}")]
pub struct VersionError {
    /// The text that was given (cut to 64 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VersionError {
    fn new(value: &str, reason: impl Into<String>) -> Self {
        Self {
            value: value.chars().take(64).collect(),
            reason: reason.into(),
        }
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const NAMES: [&str; 4] = ["major", "minor", "build", "revision"];
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 4 {
            return Err(VersionError::new(
                s,
                format!("it has {} part(s), a version has 4", parts.len()),
            ));
        }
        let mut numbers = [0u32; 4];
        for (i, part) in parts.iter().enumerate() {
            let name = NAMES[i];
            if part.is_empty() {
                return Err(VersionError::new(s, format!("the {name} part is empty")));
            }
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError::new(
                    s,
                    format!("the {name} part `{part}` is not a number"),
                ));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(VersionError::new(
                    s,
                    format!("the {name} part `{part}` has a leading zero"),
                ));
            }
            numbers[i] = part.parse().map_err(|_| {
                VersionError::new(s, format!("the {name} part `{part}` is above {}", u32::MAX))
            })?;
        }
        let [major, minor, build, revision] = numbers;
        Ok(Self::new(major, minor, build, revision))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a version string such as \"1.0.0.0\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Version, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl utoipa::PartialSchema for Version {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(
                r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$",
            ))
            .description(Some(
                "Four-part version `major.minor.build.revision`, each part a u32, compared numerically",
            ))
            .examples([serde_json::json!("1.0.0.4")])
            .into()
    }
}

impl utoipa::ToSchema for Version {}
