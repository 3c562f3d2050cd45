//! Path rules shared by zip entry names and component paths in the manifest.

use super::error::PackageError;

/// The manifest's name at the root of every package.
pub const MANIFEST_NAME: &str = "solution.json";
/// Every component file lives under this folder.
pub const COMPONENTS_DIR: &str = "components/";
/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Checks that `name` is a clean relative path with `/` separators: no absolute path, no
/// `..`, no backslash, no drive letter, no NUL or other control character, no empty or `.`
/// segment. A trailing `/` is accepted only when `dir` is true (a directory entry).
///
/// This is stricter than `zip`'s `enclosed_name`, which accepts `a/../b`.
pub fn check_path(name: &str, dir: bool) -> Result<(), PackageError> {
    let traversal = |reason: &str| PackageError::PathTraversal {
        entry: name.to_string(),
        reason: reason.to_string(),
    };
    let invalid = |reason: &str| PackageError::InvalidEntryName {
        entry: name.to_string(),
        reason: reason.to_string(),
    };
    if name.contains('\0') {
        return Err(traversal("it contains a NUL byte"));
    }
    if name.contains('\\') {
        return Err(traversal("it contains a backslash (use `/`)"));
    }
    if name.starts_with('/') {
        return Err(traversal("it is absolute"));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(traversal("it starts with a drive letter"));
    }
    if name.split('/').any(|segment| segment == "..") {
        return Err(traversal("it has a `..` segment"));
    }
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_PATH_BYTES {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("it contains a control character"));
    }
    let body = match name.strip_suffix('/') {
        Some(body) if dir => body,
        Some(_) => return Err(invalid("a file name cannot end with `/`")),
        None => name,
    };
    for segment in body.split('/') {
        if segment.is_empty() {
            return Err(invalid("it has an empty segment (`//`)"));
        }
        if segment == "." {
            return Err(invalid("it has a `.` segment"));
        }
    }
    Ok(())
}

/// Whether `name` (already checked by [`check_path`]) is a file under `components/`.
pub fn is_component_path(name: &str) -> bool {
    name.strip_prefix(COMPONENTS_DIR)
        .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
}
