//! Reading and checking a package, streaming, without trusting the sizes the zip declares.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::entry::{Metered, drain_entry, entry_error, is_data_error};
use super::eocd::declared_entry_count;
use super::error::PackageError;
use super::limits::PackageLimits;
use super::manifest::Manifest;
use super::path::{COMPONENTS_DIR, MANIFEST_NAME, check_path, is_component_path};

/// One component file as found in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ComponentInfo {
    pub kind: String,
    pub name: String,
    pub path: String,
    /// Decompressed size, in bytes (counted, not declared).
    pub size: u64,
    /// SHA-256 of the decompressed bytes, lowercase hex.
    pub sha256: String,
}

/// What [`read_package`] found in a valid package.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PackageInfo {
    pub manifest: Manifest,
    /// The components, in manifest order.
    pub components: Vec<ComponentInfo>,
    /// Number of zip entries (files and directories).
    pub entries: usize,
    /// Bytes all entries decompressed to, `solution.json` included.
    pub uncompressed_size: u64,
}

/// Reads and checks a package: limits, entry names and types, the manifest, and every
/// component (decompressed, counted and hashed as a stream). Never panics on bad input.
pub fn read_package<R: Read + Seek>(
    reader: R,
    limits: &PackageLimits,
) -> Result<PackageInfo, PackageError> {
    read_archive(reader, limits).map(|(info, _)| info)
}

/// [`read_package`] on a file.
pub fn read_package_file(path: &Path, limits: &PackageLimits) -> Result<PackageInfo, PackageError> {
    let file = std::fs::File::open(path)?;
    read_package(io::BufReader::with_capacity(64 * 1024, file), limits)
}

/// What the first pass learns about one entry, from the central directory only.
struct EntryMeta {
    name: String,
    dir: bool,
    /// The size the zip declares; checked, never trusted.
    declared: u64,
}

/// Reads a package and keeps the archive open, for [`restamp`](super::restamp).
pub(crate) fn read_archive<R: Read + Seek>(
    mut reader: R,
    limits: &PackageLimits,
) -> Result<(PackageInfo, ZipArchive<Metered<R>>), PackageError> {
    let size = reader.seek(SeekFrom::End(0))?;
    if size > limits.max_package_bytes {
        return Err(PackageError::TooLarge {
            size,
            limit: limits.max_package_bytes,
        });
    }
    // Before the zip library builds its table of entries, bound the count it will read.
    if let Some(count) = declared_entry_count(&mut reader, size)?
        && count > limits.max_entries as u64
    {
        return Err(PackageError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    reader.seek(SeekFrom::Start(0))?;
    let count = Rc::new(Cell::new(0));
    let metered = Metered::new(reader, count.clone());
    let mut archive = ZipArchive::new(metered).map_err(|e| match e {
        ZipError::Io(io) if !is_data_error(&io) => PackageError::Io(io),
        other => PackageError::NotAZip(other.to_string()),
    })?;
    if archive.len() > limits.max_entries {
        return Err(PackageError::TooManyEntries {
            count: archive.len() as u64,
            limit: limits.max_entries,
        });
    }
    if archive.has_duplicate_names() {
        return Err(PackageError::DuplicateEntry { entry: None });
    }

    // Pass 1: names, types and declared sizes, from the central directory.
    let mut metas = Vec::with_capacity(archive.len());
    let mut manifest_index = None;
    let mut files: HashMap<String, usize> = HashMap::new();
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let meta = check_entry(&archive, index, limits)?;
        declared_total = declared_total.saturating_add(meta.declared);
        if declared_total > limits.max_total_uncompressed {
            return Err(PackageError::ZipBomb {
                entry: meta.name,
                detail: format!(
                    "the entries declare more than {} bytes in total",
                    limits.max_total_uncompressed
                ),
            });
        }
        if !meta.dir {
            if meta.name == MANIFEST_NAME {
                manifest_index = Some(index);
            } else {
                files.insert(meta.name.clone(), index);
            }
        }
        metas.push(meta);
    }

    // Pass 2: the manifest.
    let manifest_index = manifest_index.ok_or(PackageError::MissingManifest)?;
    let mut total: u64 = 0;
    let mut manifest_bytes = Vec::new();
    drain_entry(
        &mut archive,
        index_name(&metas, manifest_index),
        manifest_index,
        &count,
        limits,
        limits.max_manifest_bytes.min(limits.max_entry_uncompressed),
        &mut total,
        |chunk| manifest_bytes.extend_from_slice(chunk),
    )?;
    let manifest = Manifest::from_json(&manifest_bytes)?;

    // Every listed component is in the zip, and every file in the zip is listed.
    let mut listed = HashSet::new();
    for component in &manifest.components {
        if !files.contains_key(&component.path) {
            return Err(PackageError::MissingComponent {
                path: component.path.clone(),
            });
        }
        listed.insert(component.path.as_str());
    }
    for meta in &metas {
        if !meta.dir && meta.name != MANIFEST_NAME && !listed.contains(meta.name.as_str()) {
            return Err(PackageError::UnlistedEntry {
                entry: meta.name.clone(),
            });
        }
    }

    // Pass 3: decompress, count and hash every entry, in zip order.
    let mut hashed: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for (index, meta) in metas.iter().enumerate() {
        if index == manifest_index {
            continue;
        }
        if meta.dir {
            let produced = drain_entry(
                &mut archive,
                &meta.name,
                index,
                &count,
                limits,
                limits.max_entry_uncompressed,
                &mut total,
                |_| {},
            )?;
            if produced != 0 {
                return Err(PackageError::Corrupt {
                    entry: meta.name.clone(),
                    detail: "a directory entry holds data".into(),
                });
            }
            continue;
        }
        let mut hasher = Sha256::new();
        let produced = drain_entry(
            &mut archive,
            &meta.name,
            index,
            &count,
            limits,
            limits.max_entry_uncompressed,
            &mut total,
            |chunk| hasher.update(chunk),
        )?;
        hashed.insert(index, (produced, hex::encode(hasher.finalize())));
    }

    let mut components = Vec::with_capacity(manifest.components.len());
    for component in &manifest.components {
        let (size, sha256) = files
            .get(&component.path)
            .and_then(|index| hashed.get(index))
            .cloned()
            .ok_or_else(|| PackageError::MissingComponent {
                path: component.path.clone(),
            })?;
        components.push(ComponentInfo {
            kind: component.kind.clone(),
            name: component.name.clone(),
            path: component.path.clone(),
            size,
            sha256,
        });
    }
    let info = PackageInfo {
        manifest,
        components,
        entries: archive.len(),
        uncompressed_size: total,
    };
    Ok((info, archive))
}

fn index_name(metas: &[EntryMeta], index: usize) -> &str {
    metas.get(index).map(|m| m.name.as_str()).unwrap_or("?")
}

/// Checks one entry's name, type, encryption, compression and declared size.
fn check_entry<R: Read + Seek>(
    archive: &ZipArchive<R>,
    index: usize,
    limits: &PackageLimits,
) -> Result<EntryMeta, PackageError> {
    let entry = archive
        .by_index_data(index)
        .map_err(|e| entry_error(&format!("#{index}"), e))?;
    let raw = entry.name_raw();
    let lossy = || {
        String::from_utf8_lossy(raw)
            .chars()
            .take(200)
            .collect::<String>()
    };
    let Ok(name) = std::str::from_utf8(raw) else {
        return Err(PackageError::InvalidEntryName {
            entry: lossy(),
            reason: "the name is not UTF-8".into(),
        });
    };
    match entry.name() {
        Ok(decoded) if decoded == name => {}
        _ => {
            return Err(PackageError::InvalidEntryName {
                entry: lossy(),
                reason: "the name is stored in two forms that differ (set the UTF-8 flag)".into(),
            });
        }
    }
    let dir = name.ends_with('/');
    check_path(name, dir)?;
    let name = name.to_string();
    // Ours is stricter, but ask the zip library too.
    if entry.enclosed_name().is_none() {
        return Err(PackageError::PathTraversal {
            entry: name,
            reason: "the zip library considers it unsafe".into(),
        });
    }

    if entry.is_symlink() {
        return Err(PackageError::Symlink { entry: name });
    }
    if let Some(mode) = entry.unix_mode() {
        match mode & 0o170000 {
            0 | 0o100000 | 0o040000 => {}
            0o120000 => return Err(PackageError::Symlink { entry: name }),
            _ => return Err(PackageError::SpecialFile { entry: name, mode }),
        }
    }
    if entry.encrypted() {
        return Err(PackageError::Encrypted { entry: name });
    }
    let method = entry.compression();
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(PackageError::UnsupportedCompression {
            entry: name,
            method: format!("{method:?}"),
        });
    }
    if dir {
        if !name.starts_with(COMPONENTS_DIR) {
            return Err(PackageError::UnlistedEntry { entry: name });
        }
    } else if name != MANIFEST_NAME && !is_component_path(&name) {
        return Err(PackageError::UnlistedEntry { entry: name });
    }
    let limit = if name == MANIFEST_NAME {
        limits.max_manifest_bytes.min(limits.max_entry_uncompressed)
    } else {
        limits.max_entry_uncompressed
    };
    if entry.size() > limit {
        if name == MANIFEST_NAME && limits.max_manifest_bytes <= limits.max_entry_uncompressed {
            return Err(PackageError::ManifestTooLarge {
                limit: limits.max_manifest_bytes,
            });
        }
        return Err(PackageError::ZipBomb {
            detail: format!(
                "it declares {} bytes, above the limit of {limit}",
                entry.size()
            ),
            entry: name,
        });
    }
    Ok(EntryMeta {
        name,
        dir,
        declared: entry.size(),
    })
}
