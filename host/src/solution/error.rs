//! Why a solution package is refused.

use super::version::VersionError;

/// Why a solution package could not be read, written or accepted.
///
/// Each variant is one cause; its message says what is wrong and, where there is one,
/// which zip entry or manifest field it is about.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The bytes are not a zip archive (or its central directory is unreadable).
    #[error("not a zip archive: {0}")]
    NotAZip(String),

    /// The package file is bigger than `PackageLimits::max_package_bytes`.
    #[error("the package is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    /// The zip holds more entries than `PackageLimits::max_entries`.
    #[error("the package has {count} zip entries, above the limit of {limit}")]
    TooManyEntries { count: u64, limit: usize },

    /// Decompressing an entry went past a size limit or the compression-ratio limit.
    #[error("zip entry `{entry}` looks like a zip bomb: {detail}")]
    ZipBomb { entry: String, detail: String },

    /// `solution.json` decompresses to more than `PackageLimits::max_manifest_bytes`.
    #[error("solution.json is larger than the limit of {limit} bytes")]
    ManifestTooLarge { limit: u64 },

    /// An entry name that could escape the package: absolute, `..`, a backslash, a drive
    /// letter or a NUL byte.
    #[error("path `{entry}` is unsafe: {reason}")]
    PathTraversal { entry: String, reason: String },

    /// An entry name that is not a clean relative path (not UTF-8, empty segments, `.`).
    #[error("path `{entry}` is not a valid package path: {reason}")]
    InvalidEntryName { entry: String, reason: String },

    /// A symbolic link entry (or, when packing a directory, a symlink on disk).
    #[error("`{entry}` is a symbolic link; packages may hold only regular files")]
    Symlink { entry: String },

    /// A device, FIFO or socket entry.
    #[error("`{entry}` is not a regular file (unix mode {mode:o})")]
    SpecialFile { entry: String, mode: u32 },

    /// An encrypted entry.
    #[error("zip entry `{entry}` is encrypted; packages may not be encrypted")]
    Encrypted { entry: String },

    /// An entry compressed with something other than stored or deflate.
    #[error(
        "zip entry `{entry}` uses an unsupported compression method ({method}); use deflate or stored"
    )]
    UnsupportedCompression { entry: String, method: String },

    /// The zip lists the same entry name twice.
    #[error("the zip lists an entry name more than once{}", name_suffix(entry))]
    DuplicateEntry { entry: Option<String> },

    /// An entry's data is damaged: bad compressed data, a CRC mismatch, a truncated file.
    #[error("zip entry `{entry}` is corrupt: {detail}")]
    Corrupt { entry: String, detail: String },

    /// There is no `solution.json` at the root of the zip.
    #[error("solution.json is missing from the root of the package")]
    MissingManifest,

    /// `solution.json` is not valid JSON, does not match the schema, or breaks a rule.
    #[error("invalid solution.json: {0}")]
    InvalidManifest(String),

    /// A version field in the manifest is not a four-part version.
    #[error("invalid solution.json: {field}: {source}")]
    BadVersion {
        field: String,
        #[source]
        source: VersionError,
    },

    /// Two components share a kind and name, or a path.
    #[error("invalid solution.json: duplicate component: {0}")]
    DuplicateComponent(String),

    /// A component's path is not in the package.
    #[error("component file `{path}` is listed in solution.json but not in the package")]
    MissingComponent { path: String },

    /// A file in the package that is neither `solution.json` nor a listed component.
    #[error(
        "`{entry}` is not listed in solution.json (every file must be a listed component under components/)"
    )]
    UnlistedEntry { entry: String },

    /// Writing a package failed inside the zip library for a reason other than I/O.
    #[error("could not write the package: {0}")]
    Write(String),

    /// Reading or writing the underlying file or stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn name_suffix(entry: &Option<String>) -> String {
    entry
        .as_deref()
        .map(|e| format!(" (`{e}`)"))
        .unwrap_or_default()
}

impl From<VersionError> for PackageError {
    fn from(source: VersionError) -> Self {
        PackageError::BadVersion {
            field: "version".into(),
            source,
        }
    }
}

impl From<zip::result::ZipError> for PackageError {
    /// Errors from the zip writer (the reader maps its errors with the entry name).
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(io) => PackageError::Io(io),
            other => PackageError::Write(other.to_string()),
        }
    }
}
