//! Solution packages: the zip format, its manifest, and reading and writing it safely.
//!
//! A package is a zip with `solution.json` (the [`Manifest`]) at its root and the
//! component files under `components/`. The format is described for authors in
//! `docs/solution-format.md`.
//!
//! - [`read_package`] checks a package against [`PackageLimits`] and the format's rules,
//!   decompressing every entry as a stream and never trusting the sizes the zip declares;
//! - [`pack_directory`], [`build_package`] and [`restamp`] write packages.

mod entry;
mod eocd;
mod error;
mod limits;
mod manifest;
mod path;
mod read;
mod version;
mod write;

#[cfg(test)]
mod tests;

pub use error::PackageError;
pub use limits::{PackageLimits, RATIO_GRACE_BYTES};
pub use manifest::{
    Component, ConnectionReferenceDef, Dependency, EnvironmentVariableDef, MAX_DISPLAY_CHARS,
    MAX_NAME_CHARS, Manifest, Publisher, VariableType, is_valid_name,
};
pub use path::{COMPONENTS_DIR, MANIFEST_NAME};
pub use read::{ComponentInfo, PackageInfo, read_package, read_package_file};
pub use version::{Version, VersionError};
pub use write::{build_package, pack_directory, restamp};
