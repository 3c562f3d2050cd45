//! Writing packages: from a directory, from memory, and restamped copies of a package.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::entry::entry_error;
use super::error::PackageError;
use super::limits::PackageLimits;
use super::manifest::Manifest;
use super::path::{MANIFEST_NAME, check_path};
use super::read::{PackageInfo, read_archive};
use super::version::Version;

/// Options for every entry written: deflate, a fixed timestamp (1980-01-01) and mode
/// 0644, so that the same input always gives the same bytes.
fn options(size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
        .large_file(size >= u64::from(u32::MAX))
}

/// `gatehouse solution push ./dir`: dir holds solution.json and components/…; writes a zip.
///
/// The manifest is checked, every listed component must exist, and every file in `dir`
/// other than `solution.json` must be a listed component (hidden files included).
/// Symbolic links are refused. `solution.json` is written as it is on disk, then the
/// components in manifest order.
pub fn pack_directory<W: Write + Seek>(dir: &Path, out: W) -> Result<Manifest, PackageError> {
    let manifest_path = dir.join(MANIFEST_NAME);
    let meta = match fs::symlink_metadata(&manifest_path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(PackageError::MissingManifest),
        Err(e) => return Err(e.into()),
    };
    if meta.file_type().is_symlink() {
        return Err(PackageError::Symlink {
            entry: MANIFEST_NAME.into(),
        });
    }
    let limit = PackageLimits::default().max_manifest_bytes;
    let mut manifest_bytes = Vec::new();
    fs::File::open(&manifest_path)?
        .take(limit + 1)
        .read_to_end(&mut manifest_bytes)?;
    if manifest_bytes.len() as u64 > limit {
        return Err(PackageError::ManifestTooLarge { limit });
    }
    let manifest = Manifest::from_json(&manifest_bytes)?;

    let mut found = Vec::new();
    walk(dir, "", &mut found)?;
    let listed: HashSet<&str> = manifest
        .components
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    let mut sizes = HashMap::new();
    for (rel, size) in found {
        if rel == MANIFEST_NAME {
            continue;
        }
        check_path(&rel, false)?;
        if !listed.contains(rel.as_str()) {
            return Err(PackageError::UnlistedEntry { entry: rel });
        }
        sizes.insert(rel, size);
    }

    if let Some(missing) = manifest
        .components
        .iter()
        .find(|c| !sizes.contains_key(&c.path))
    {
        return Err(PackageError::MissingComponent {
            path: missing.path.clone(),
        });
    }

    let mut zip = ZipWriter::new(out);
    zip.start_file(MANIFEST_NAME, options(manifest_bytes.len() as u64))?;
    zip.write_all(&manifest_bytes)?;
    for component in &manifest.components {
        let size = sizes.get(&component.path).copied().unwrap_or(0);
        zip.start_file(component.path.as_str(), options(size))?;
        let mut file = fs::File::open(dir.join(&component.path))?;
        io::copy(&mut file, &mut zip)?;
    }
    zip.finish()?;
    Ok(manifest)
}

/// Collects the regular files under `dir` as (`/`-separated relative path, size).
fn walk(dir: &Path, prefix: &str, found: &mut Vec<(String, u64)>) -> Result<(), PackageError> {
    let mut entries = fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(PackageError::InvalidEntryName {
                entry: format!("{prefix}{}", file_name.to_string_lossy()),
                reason: "the name is not UTF-8".into(),
            });
        };
        let rel = format!("{prefix}{file_name}");
        let meta = fs::symlink_metadata(entry.path())?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(PackageError::Symlink { entry: rel });
        } else if kind.is_dir() {
            walk(&entry.path(), &format!("{rel}/"), found)?;
        } else if kind.is_file() {
            found.push((rel, meta.len()));
        } else {
            return Err(PackageError::SpecialFile {
                entry: rel,
                mode: file_mode(&meta),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn file_mode(meta: &fs::Metadata) -> u32 {
    std::os::unix::fs::MetadataExt::mode(meta)
}

#[cfg(not(unix))]
fn file_mode(_meta: &fs::Metadata) -> u32 {
    0
}

/// Export: copies a package to `out` with the manifest's version and managed flag rewritten;
/// component entries are copied raw (no recompression) where the zip crate allows
/// (`raw_copy_file`).
///
/// The input is fully checked with [`read_package`](super::read_package)'s rules first.
/// The copy holds `solution.json` (re-serialized, pretty JSON) followed by the components
/// in manifest order; directory entries are not copied. The same input, version and flag
/// always give the same bytes. The returned info describes the copy.
pub fn restamp<R: Read + Seek, W: Write + Seek>(
    input: R,
    out: W,
    version: &Version,
    managed: bool,
    limits: &PackageLimits,
) -> Result<PackageInfo, PackageError> {
    let (info, mut archive) = read_archive(input, limits)?;
    let mut manifest = info.manifest;
    manifest.version = *version;
    manifest.managed = managed;
    manifest.validate()?;
    let json = manifest.to_json();

    let mut zip = ZipWriter::new(out);
    zip.start_file(MANIFEST_NAME, options(json.len() as u64))?;
    zip.write_all(&json)?;
    for component in &manifest.components {
        let index = archive.index_for_name(&component.path).ok_or_else(|| {
            PackageError::MissingComponent {
                path: component.path.clone(),
            }
        })?;
        let file = archive
            .by_index_raw(index)
            .map_err(|e| entry_error(&component.path, e))?;
        zip.raw_copy_file(file)?;
    }
    zip.finish()?;

    let uncompressed_size = info
        .components
        .iter()
        .fold(json.len() as u64, |sum, c| sum.saturating_add(c.size));
    Ok(PackageInfo {
        entries: 1 + info.components.len(),
        components: info.components,
        manifest,
        uncompressed_size,
    })
}

/// Builds a package in memory from a manifest and (path, bytes) pairs: for tests, the demo's
/// sample solution and benchmarks.
///
/// The manifest is validated, and `files` must hold exactly the listed component paths
/// (any order, each once). `solution.json` is the manifest as pretty JSON; the components
/// follow in manifest order.
pub fn build_package(
    manifest: &Manifest,
    files: &[(&str, &[u8])],
) -> Result<Vec<u8>, PackageError> {
    manifest.validate()?;
    let listed: HashSet<&str> = manifest
        .components
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    let mut by_path: HashMap<&str, &[u8]> = HashMap::new();
    for &(path, bytes) in files {
        check_path(path, false)?;
        if !listed.contains(path) {
            return Err(PackageError::UnlistedEntry {
                entry: path.to_string(),
            });
        }
        if by_path.insert(path, bytes).is_some() {
            return Err(PackageError::DuplicateEntry {
                entry: Some(path.to_string()),
            });
        }
    }
    if let Some(missing) = manifest
        .components
        .iter()
        .find(|c| !by_path.contains_key(c.path.as_str()))
    {
        return Err(PackageError::MissingComponent {
            path: missing.path.clone(),
        });
    }
    let json = manifest.to_json();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(MANIFEST_NAME, options(json.len() as u64))?;
    zip.write_all(&json)?;
    for component in &manifest.components {
        let bytes = by_path
            .get(component.path.as_str())
            .copied()
            .unwrap_or_default();
        zip.start_file(component.path.as_str(), options(bytes.len() as u64))?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}
