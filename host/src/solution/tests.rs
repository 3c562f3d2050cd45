//! Tests for the solution package format: every rejection, versions, round trips, and
//! property-based fuzzing.
//!
//! Fuzz case counts (fixed, see `fuzz_config`): arbitrary bytes 8,000; mutated valid
//! packages 8,000; arbitrary and mutated manifest JSON 6,000 — 22,000 cases in all.

use std::io::{Cursor, Write};

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::*;

// ---------------------------------------------------------------- helpers

fn sample_manifest() -> Manifest {
    Manifest {
        unique_name: "contoso_app".into(),
        display_name: "Contoso App".into(),
        version: Version::new(1, 0, 0, 3),
        publisher: Publisher {
            unique_name: "contoso".into(),
            prefix: "contoso".into(),
        },
        managed: false,
        dependencies: vec![Dependency {
            unique_name: "contoso_base".into(),
            min_version: Version::new(2, 1, 0, 0),
        }],
        environment_variables: vec![
            EnvironmentVariableDef {
                schema_name: "contoso_ApiUrl".into(),
                kind: VariableType::String,
                default_value: Some("https://example.test".into()),
            },
            EnvironmentVariableDef {
                schema_name: "contoso_Key".into(),
                kind: VariableType::Secret,
                default_value: None,
            },
        ],
        connection_references: vec![ConnectionReferenceDef {
            logical_name: "contoso_sql".into(),
            connector: "sql".into(),
        }],
        components: vec![
            Component {
                kind: "table".into(),
                name: "contoso_order".into(),
                path: "components/order.json".into(),
            },
            Component {
                kind: "flow".into(),
                name: "Order approval".into(),
                path: "components/flows/approval.json".into(),
            },
        ],
    }
}

const ORDER: &[u8] = br#"{"columns":["id","total"]}"#;
const APPROVAL: &[u8] = br#"{"trigger":"order_created","steps":[1,2,3]}"#;

fn sample_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("components/order.json", ORDER),
        ("components/flows/approval.json", APPROVAL),
    ]
}

fn sample_package() -> Vec<u8> {
    build_package(&sample_manifest(), &sample_files()).expect("sample package builds")
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read(bytes: &[u8]) -> Result<PackageInfo, PackageError> {
    read_package(Cursor::new(bytes), &PackageLimits::default())
}

fn read_with(bytes: &[u8], limits: PackageLimits) -> Result<PackageInfo, PackageError> {
    read_package(Cursor::new(bytes), &limits)
}

/// A zip with exactly these entries (names unchecked), deflated unless `stored`.
fn raw_zip(entries: &[(&str, &[u8])], stored: bool) -> Vec<u8> {
    let method = if stored {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    };
    let options = SimpleFileOptions::default().compression_method(method);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        if name.ends_with('/') {
            zip.add_directory(*name, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

/// The sample manifest's JSON and its two components, plus `extra` entries.
fn sample_entries_with(extra: &[(&'static str, &'static [u8])]) -> Vec<u8> {
    let json = sample_manifest().to_json();
    let mut entries: Vec<(&str, &[u8])> = vec![("solution.json", &json)];
    entries.extend(sample_files());
    entries.extend_from_slice(extra);
    raw_zip(&entries, false)
}

/// A package whose solution.json is `json` and that holds the sample components.
fn package_with_json(json: &str) -> Vec<u8> {
    let mut entries: Vec<(&str, &[u8])> = vec![("solution.json", json.as_bytes())];
    entries.extend(sample_files());
    raw_zip(&entries, false)
}

/// The sample manifest as a JSON value, edited by `edit`, in a package.
fn package_with_edit(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut doc = serde_json::to_value(sample_manifest()).unwrap();
    edit(&mut doc);
    package_with_json(&doc.to_string())
}

/// Offsets of the central-directory header and local header of entry `name`.
fn headers(zip: &[u8], name: &str) -> (usize, usize) {
    let u16_at = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]) as usize;
    let mut pos = 0;
    while pos + 46 <= zip.len() {
        if zip[pos..pos + 4] == *b"PK\x01\x02" {
            let len = u16_at(pos + 28);
            if &zip[pos + 46..pos + 46 + len] == name.as_bytes() {
                let local = u32::from_le_bytes(zip[pos + 42..pos + 46].try_into().unwrap());
                return (pos, local as usize);
            }
        }
        pos += 1;
    }
    panic!("no central header for {name}");
}

/// Writes `value` at `cd_off` in entry `name`'s central header and `local_off` in its
/// local header.
fn patch(zip: &mut [u8], name: &str, cd_off: usize, local_off: usize, value: &[u8]) {
    let (cd, local) = headers(zip, name);
    zip[cd + cd_off..cd + cd_off + value.len()].copy_from_slice(value);
    zip[local + local_off..local + local_off + value.len()].copy_from_slice(value);
}

macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!(
                "expected {}, got {:?}",
                stringify!($pattern),
                other.map(|_| "Ok(..)")
            ),
        }
    };
}

// ---------------------------------------------------------------- versions

#[test]
fn version_parses_displays_and_serializes_as_a_string() {
    let v: Version = "1.2.3.4".parse().unwrap();
    assert_eq!(v, Version::new(1, 2, 3, 4));
    assert_eq!(v.to_string(), "1.2.3.4");
    assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3.4\"");
    assert_eq!(
        serde_json::from_str::<Version>("\"0.0.0.0\"").unwrap(),
        Version::default()
    );
    let max = format!("{0}.{0}.{0}.{0}", u32::MAX);
    assert_eq!(max.parse::<Version>().unwrap().to_string(), max);
    assert!(serde_json::from_str::<Version>("1").is_err());
}

#[test]
fn versions_compare_numerically() {
    let v = |s: &str| s.parse::<Version>().unwrap();
    assert!(v("1.10.0.0") > v("1.9.0.0"));
    assert!(v("2.0.0.0") > v("1.99.99.99"));
    assert!(v("1.0.0.10") > v("1.0.0.9"));
    assert!(v("1.0.10.0") > v("1.0.9.99"));
    assert!(v("1.0.0.0") < v("1.0.0.1"));
    assert_eq!(v("1.2.3.4").cmp(&v("1.2.3.4")), std::cmp::Ordering::Equal);
}

#[test]
fn bad_versions_are_refused() {
    for bad in [
        "",
        "1",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "1.2.3.",
        "a.b.c.d",
        "1.2.3.x",
        "01.2.3.4",
        "+1.2.3.4",
        "-1.2.3.4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "4294967296.0.0.0",
        "1.2.3.٣",
    ] {
        assert!(bad.parse::<Version>().is_err(), "{bad:?} should be refused");
    }
    let err = "1.2.3".parse::<Version>().unwrap_err();
    assert!(err.to_string().contains("1.2.3"), "{err}");
}

// ---------------------------------------------------------------- round trips

#[test]
fn build_package_reads_back() {
    let info = read(&sample_package()).unwrap();
    assert_eq!(info.manifest, sample_manifest());
    assert_eq!(info.entries, 3);
    assert_eq!(info.components.len(), 2);
    assert_eq!(info.components[0].path, "components/order.json");
    assert_eq!(info.components[0].sha256, sha(ORDER));
    assert_eq!(info.components[0].size, ORDER.len() as u64);
    assert_eq!(info.components[1].name, "Order approval");
    assert_eq!(info.components[1].sha256, sha(APPROVAL));
    let json_len = sample_manifest().to_json().len() as u64;
    assert_eq!(
        info.uncompressed_size,
        json_len + ORDER.len() as u64 + APPROVAL.len() as u64
    );
    // The same input gives the same bytes.
    assert_eq!(sample_package(), sample_package());
}

#[test]
fn pack_directory_round_trips_through_read_package() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("components/flows")).unwrap();
    std::fs::write(
        dir.path().join("solution.json"),
        sample_manifest().to_json(),
    )
    .unwrap();
    std::fs::write(dir.path().join("components/order.json"), ORDER).unwrap();
    std::fs::write(dir.path().join("components/flows/approval.json"), APPROVAL).unwrap();

    let mut out = Cursor::new(Vec::new());
    let manifest = pack_directory(dir.path(), &mut out).unwrap();
    assert_eq!(manifest, sample_manifest());
    let info = read(out.get_ref()).unwrap();
    assert_eq!(info.manifest, manifest);
    assert_eq!(info.components[0].sha256, sha(ORDER));
    assert_eq!(info.components[1].sha256, sha(APPROVAL));

    let file = dir.path().join("package.zip");
    std::fs::write(&file, out.get_ref()).unwrap();
    assert_eq!(
        read_package_file(&file, &PackageLimits::default()).unwrap(),
        info
    );
}

#[test]
fn pack_directory_refuses_unlisted_missing_and_symlinked_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("components/flows")).unwrap();
    assert_err!(
        pack_directory(dir.path(), Cursor::new(Vec::new())),
        PackageError::MissingManifest
    );
    std::fs::write(
        dir.path().join("solution.json"),
        sample_manifest().to_json(),
    )
    .unwrap();
    std::fs::write(dir.path().join("components/order.json"), ORDER).unwrap();
    assert_err!(
        pack_directory(dir.path(), Cursor::new(Vec::new())),
        PackageError::MissingComponent { path } if path == "components/flows/approval.json"
    );
    std::fs::write(dir.path().join("components/flows/approval.json"), APPROVAL).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
    assert_err!(
        pack_directory(dir.path(), Cursor::new(Vec::new())),
        PackageError::UnlistedEntry { entry } if entry == "notes.txt"
    );
    std::fs::remove_file(dir.path().join("notes.txt")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("components/link")).unwrap();
        assert_err!(
            pack_directory(dir.path(), Cursor::new(Vec::new())),
            PackageError::Symlink { entry } if entry == "components/link"
        );
    }
}

#[test]
fn restamp_changes_version_and_managed_and_keeps_components() {
    let original = sample_package();
    let before = read(&original).unwrap();
    let version = Version::new(1, 0, 0, 4);
    let mut out = Cursor::new(Vec::new());
    let info = restamp(
        Cursor::new(&original),
        &mut out,
        &version,
        true,
        &PackageLimits::default(),
    )
    .unwrap();
    assert_eq!(info.manifest.version, version);
    assert!(info.manifest.managed);

    let after = read(out.get_ref()).unwrap();
    assert_eq!(after, info, "restamp describes the package it wrote");
    assert_eq!(after.manifest.version, version);
    assert!(after.manifest.managed);
    assert_eq!(
        after.components, before.components,
        "components keep their sha256"
    );
    let mut expected = before.manifest.clone();
    expected.version = version;
    expected.managed = true;
    assert_eq!(after.manifest, expected);

    // Components are copied raw: same compressed bytes.
    let mut a = zip::ZipArchive::new(Cursor::new(&original)).unwrap();
    let mut b = zip::ZipArchive::new(Cursor::new(out.get_ref())).unwrap();
    for c in &before.components {
        let raw = |archive: &mut zip::ZipArchive<Cursor<&Vec<u8>>>| {
            let index = archive.index_for_name(&c.path).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut archive.by_index_raw(index).unwrap(), &mut bytes)
                .unwrap();
            bytes
        };
        assert_eq!(raw(&mut a), raw(&mut b));
    }

    // Deterministic, and restamping back gives back the unmanaged manifest.
    let mut again = Cursor::new(Vec::new());
    restamp(
        Cursor::new(&original),
        &mut again,
        &version,
        true,
        &PackageLimits::default(),
    )
    .unwrap();
    assert_eq!(again.get_ref(), out.get_ref());
    let mut back = Cursor::new(Vec::new());
    let info = restamp(
        Cursor::new(out.get_ref()),
        &mut back,
        &Version::new(1, 0, 0, 3),
        false,
        &PackageLimits::default(),
    )
    .unwrap();
    assert_eq!(info.manifest, sample_manifest());
}

#[test]
fn restamp_refuses_a_bad_input() {
    let mut out = Cursor::new(Vec::new());
    assert_err!(
        restamp(
            Cursor::new(b"not a zip".to_vec()),
            &mut out,
            &Version::new(1, 0, 0, 0),
            true,
            &PackageLimits::default()
        ),
        PackageError::NotAZip(_)
    );
}

#[test]
fn directory_entries_under_components_are_accepted() {
    let json = sample_manifest().to_json();
    let zip = raw_zip(
        &[
            ("solution.json", &json),
            ("components/", b""),
            ("components/flows/", b""),
            ("components/order.json", ORDER),
            ("components/flows/approval.json", APPROVAL),
        ],
        false,
    );
    let info = read(&zip).unwrap();
    assert_eq!(info.entries, 5);
    assert_eq!(info.components[1].sha256, sha(APPROVAL));
}

// ---------------------------------------------------------------- rejections: the zip

#[test]
fn not_a_zip_is_refused() {
    assert_err!(read(b""), PackageError::NotAZip(_));
    assert_err!(read(b"hello, world"), PackageError::NotAZip(_));
    let mut truncated = sample_package();
    truncated.truncate(truncated.len() - 30);
    assert_err!(read(&truncated), PackageError::NotAZip(_));
}

#[test]
fn too_large_is_refused() {
    let package = sample_package();
    let limits = PackageLimits {
        max_package_bytes: package.len() as u64 - 1,
        ..PackageLimits::default()
    };
    assert_err!(
        read_with(&package, limits),
        PackageError::TooLarge { size, .. } if size == package.len() as u64
    );
    let limits = PackageLimits {
        max_package_bytes: package.len() as u64,
        ..PackageLimits::default()
    };
    assert!(read_with(&package, limits).is_ok());
}

#[test]
fn too_many_entries_is_refused() {
    let package = sample_package();
    let limits = PackageLimits {
        max_entries: 2,
        ..PackageLimits::default()
    };
    assert_err!(
        read_with(&package, limits),
        PackageError::TooManyEntries { count: 3, limit: 2 }
    );
    let limits = PackageLimits {
        max_entries: 3,
        ..PackageLimits::default()
    };
    assert!(read_with(&package, limits).is_ok());
}

fn bomb_package(size: usize) -> Vec<u8> {
    let zeros = vec![0u8; size];
    let mut manifest = sample_manifest();
    manifest.components.push(Component {
        kind: "data".into(),
        name: "zeros".into(),
        path: "components/zeros.bin".into(),
    });
    let mut files = sample_files();
    files.push(("components/zeros.bin", &zeros));
    build_package(&manifest, &files).unwrap()
}

#[test]
fn zip_bomb_over_the_entry_limit_is_refused() {
    let package = bomb_package(1 << 20);
    assert!(package.len() < 8 * 1024, "zeros compress well");
    let limits = PackageLimits {
        max_entry_uncompressed: 64 * 1024,
        ..PackageLimits::default()
    };
    assert_err!(
        read_with(&package, limits),
        PackageError::ZipBomb { entry, .. } if entry == "components/zeros.bin"
    );
}

#[test]
fn zip_bomb_lying_about_its_size_is_refused_while_streaming() {
    let mut package = bomb_package(1 << 20);
    // Declare 100 bytes instead of 1 MiB, in both headers.
    patch(
        &mut package,
        "components/zeros.bin",
        24,
        22,
        &100u32.to_le_bytes(),
    );
    let err = read(&package).unwrap_err();
    assert!(
        matches!(&err, PackageError::ZipBomb { entry, detail }
            if entry == "components/zeros.bin" && detail.contains("declares")),
        "{err:?}"
    );
}

#[test]
fn zip_bomb_over_the_total_limit_is_refused() {
    let package = bomb_package(200 * 1024);
    let limits = PackageLimits {
        max_total_uncompressed: 100 * 1024,
        ..PackageLimits::default()
    };
    assert_err!(read_with(&package, limits), PackageError::ZipBomb { .. });
}

#[test]
fn zip_bomb_over_the_compression_ratio_is_refused() {
    // 4 MiB of zeros deflate to ~4 KiB: a ratio near 1000, above the default 200.
    let package = bomb_package(4 << 20);
    let err = read(&package).unwrap_err();
    assert!(
        matches!(&err, PackageError::ZipBomb { detail, .. } if detail.contains("times")),
        "{err:?}"
    );
    let limits = PackageLimits {
        max_compression_ratio: 5000,
        ..PackageLimits::default()
    };
    assert!(read_with(&package, limits).is_ok());
}

#[test]
fn path_traversal_is_refused() {
    let json = sample_manifest().to_json();
    for (name, what) in [
        ("components/../../x", ".."),
        ("../solution.json", ".."),
        ("/etc/passwd", "absolute"),
        ("/components/a.json", "absolute"),
        ("components\\..\\x", "backslash"),
        ("C:/windows/x", "drive"),
        ("c:x", "drive"),
        ("components/a\0.json", "NUL"),
    ] {
        let zip = raw_zip(
            &[
                ("solution.json", &json),
                ("components/order.json", ORDER),
                ("components/flows/approval.json", APPROVAL),
                (name, b"x"),
            ],
            false,
        );
        let err = read(&zip).unwrap_err();
        assert!(
            matches!(&err, PackageError::PathTraversal { entry, reason }
                if entry == name && reason.contains(what)),
            "{name:?}: {err:?}"
        );
    }
    // The zip library's own check would allow this one; ours does not.
    let zip = sample_entries_with(&[("components/a/../order2.json", b"x")]);
    assert_err!(read(&zip), PackageError::PathTraversal { .. });
}

#[test]
fn unclean_names_are_refused() {
    for name in [
        "components//a.json",
        "components/./a.json",
        "components/a\n.json",
    ] {
        let zip = sample_entries_with(&[(name, b"x")]);
        assert_err!(read(&zip), PackageError::InvalidEntryName { entry, .. } if entry == name);
    }
}

#[test]
fn symlink_entries_are_refused() {
    let json = sample_manifest().to_json();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    zip.start_file("solution.json", options).unwrap();
    zip.write_all(&json).unwrap();
    for (path, data) in sample_files() {
        zip.start_file(path, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.add_symlink("components/link", "/etc/passwd", options)
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert_err!(read(&bytes), PackageError::Symlink { entry } if entry == "components/link");
}

#[test]
fn encrypted_entries_are_refused() {
    let mut zip = sample_package();
    // General-purpose flag bit 0: encrypted.
    patch(&mut zip, "components/order.json", 8, 6, &1u16.to_le_bytes());
    assert_err!(
        read(&zip),
        PackageError::Encrypted { entry } if entry == "components/order.json"
    );
}

#[test]
fn unsupported_compression_is_refused() {
    let mut zip = sample_package();
    // Method 12 is bzip2.
    patch(
        &mut zip,
        "components/order.json",
        10,
        8,
        &12u16.to_le_bytes(),
    );
    assert_err!(
        read(&zip),
        PackageError::UnsupportedCompression { entry, .. } if entry == "components/order.json"
    );
}

#[test]
fn corrupt_entries_are_refused() {
    let json = sample_manifest().to_json();
    let mut zip = raw_zip(
        &[
            ("solution.json", &json),
            ("components/order.json", ORDER),
            ("components/flows/approval.json", APPROVAL),
        ],
        true,
    );
    let at = zip.windows(ORDER.len()).position(|w| w == ORDER).unwrap();
    zip[at + 3] ^= 0x20;
    assert_err!(
        read(&zip),
        PackageError::Corrupt { entry, .. } if entry == "components/order.json"
    );
}

#[test]
fn duplicate_entry_names_are_refused() {
    let json = sample_manifest().to_json();
    let mut zip = raw_zip(
        &[
            ("solution.json", &json),
            ("components/order.json", ORDER),
            ("components/order.jsoX", ORDER),
            ("components/flows/approval.json", APPROVAL),
        ],
        false,
    );
    let (cd, local) = headers(&zip, "components/order.jsoX");
    let last = "components/order.jsoX".len() - 1;
    zip[cd + 46 + last] = b'n';
    zip[local + 30 + last] = b'n';
    assert_err!(read(&zip), PackageError::DuplicateEntry { .. });
}

#[test]
fn unlisted_entries_are_refused() {
    let zip = sample_entries_with(&[("components/extra.json", b"{}")]);
    let err = read(&zip).unwrap_err();
    assert!(
        matches!(&err, PackageError::UnlistedEntry { entry } if entry == "components/extra.json"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not listed in solution.json"),
        "{err}"
    );
    let zip = sample_entries_with(&[("README.md", b"hi")]);
    assert_err!(read(&zip), PackageError::UnlistedEntry { entry } if entry == "README.md");
    let zip = sample_entries_with(&[("other/", b"")]);
    assert_err!(read(&zip), PackageError::UnlistedEntry { entry } if entry == "other/");
    assert_err!(
        build_package(&sample_manifest(), &[("components/x.json", b"{}")]),
        PackageError::UnlistedEntry { .. }
    );
}

#[test]
fn missing_manifest_is_refused() {
    let zip = raw_zip(&sample_files(), false);
    assert_err!(read(&zip), PackageError::MissingManifest);
    // Not at the root.
    let json = sample_manifest().to_json();
    let zip = raw_zip(&[("components/solution.json", &json)], false);
    assert_err!(read(&zip), PackageError::MissingManifest);
}

#[test]
fn missing_components_are_refused() {
    let json = sample_manifest().to_json();
    let zip = raw_zip(
        &[("solution.json", &json), ("components/order.json", ORDER)],
        false,
    );
    assert_err!(
        read(&zip),
        PackageError::MissingComponent { path } if path == "components/flows/approval.json"
    );
}

#[test]
fn manifest_too_large_is_refused() {
    let limits = PackageLimits {
        max_manifest_bytes: 64,
        ..PackageLimits::default()
    };
    assert_err!(
        read_with(&sample_package(), limits),
        PackageError::ManifestTooLarge { limit: 64 }
    );
}

// ---------------------------------------------------------------- rejections: the manifest

#[test]
fn invalid_json_is_refused() {
    for json in ["", "{", "[]", "null", "{\"unique_name\": 5}", "\u{feff}{}"] {
        assert_err!(
            read(&package_with_json(json)),
            PackageError::InvalidManifest(_)
        );
    }
}

#[test]
fn unknown_fields_are_refused() {
    let zip = package_with_edit(|doc| doc["colour"] = "blue".into());
    assert_err!(read(&zip), PackageError::InvalidManifest(m) if m.contains("colour"));
    let zip = package_with_edit(|doc| doc["publisher"]["prefx"] = "x".into());
    assert_err!(read(&zip), PackageError::InvalidManifest(m) if m.contains("prefx"));
    let zip = package_with_edit(|doc| doc["components"][0]["size"] = 3.into());
    assert_err!(read(&zip), PackageError::InvalidManifest(m) if m.contains("size"));
}

#[test]
fn bad_versions_in_the_manifest_are_refused() {
    let zip = package_with_edit(|doc| doc["version"] = "1.2.3".into());
    let err = read(&zip).unwrap_err();
    assert!(
        matches!(&err, PackageError::BadVersion { field, .. } if field == "version"),
        "{err:?}"
    );
    assert!(err.to_string().contains("1.2.3"), "{err}");
    let zip = package_with_edit(|doc| doc["dependencies"][0]["min_version"] = "x".into());
    assert_err!(
        read(&zip),
        PackageError::BadVersion { field, .. } if field == "dependencies[0].min_version"
    );
    let zip = package_with_edit(|doc| doc["version"] = 1.into());
    assert_err!(read(&zip), PackageError::InvalidManifest(_));
}

#[test]
fn unknown_variable_types_are_refused() {
    let zip = package_with_edit(|doc| doc["environment_variables"][0]["type"] = "float".into());
    assert_err!(read(&zip), PackageError::InvalidManifest(m) if m.contains("float"));
    for kind in [
        "string",
        "number",
        "boolean",
        "json",
        "data_source",
        "secret",
    ] {
        let zip = package_with_edit(|doc| {
            doc["environment_variables"][0]["type"] = kind.into();
            doc["environment_variables"][0]
                .as_object_mut()
                .unwrap()
                .remove("default_value");
        });
        assert!(read(&zip).is_ok(), "{kind}");
    }
}

#[test]
fn default_values_must_fit_their_type() {
    for (kind, value, ok) in [
        ("number", "12.5", true),
        ("number", "abc", false),
        ("number", "NaN", false),
        ("boolean", "true", true),
        ("boolean", "yes", false),
        ("json", "{\"a\":[1]}", true),
        ("json", "{", false),
        ("secret", "hunter2", false),
        ("data_source", "anything", true),
    ] {
        let zip = package_with_edit(|doc| {
            doc["environment_variables"][0]["type"] = kind.into();
            doc["environment_variables"][0]["default_value"] = value.into();
        });
        let result = read(&zip);
        if ok {
            assert!(result.is_ok(), "{kind} {value}: {result:?}");
        } else {
            assert_err!(result, PackageError::InvalidManifest(m) if m.contains("default_value"));
        }
    }
}

#[test]
fn names_and_prefix_are_checked() {
    let long = "a".repeat(101);
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "unique_name",
            Box::new(|d| d["unique_name"] = "bad-name".into()),
        ),
        ("unique_name", Box::new(|d| d["unique_name"] = "".into())),
        (
            "unique_name",
            Box::new(move |d| d["unique_name"] = long.clone().into()),
        ),
        (
            "display_name",
            Box::new(|d| d["display_name"] = "  ".into()),
        ),
        (
            "publisher.unique_name",
            Box::new(|d| d["publisher"]["unique_name"] = "a b".into()),
        ),
        (
            "publisher.prefix",
            Box::new(|d| d["publisher"]["prefix"] = "A1".into()),
        ),
        (
            "publisher.prefix",
            Box::new(|d| d["publisher"]["prefix"] = "c".into()),
        ),
        (
            "publisher.prefix",
            Box::new(|d| d["publisher"]["prefix"] = "abcdefghi".into()),
        ),
        (
            "environment_variables[1].schema_name",
            Box::new(|d| d["environment_variables"][1]["schema_name"] = "é".into()),
        ),
        (
            "environment_variables[1].schema_name",
            Box::new(|d| d["environment_variables"][1]["schema_name"] = "contoso_ApiUrl".into()),
        ),
        (
            "connection_references[0].logical_name",
            Box::new(|d| d["connection_references"][0]["logical_name"] = "x.y".into()),
        ),
        (
            "connection_references[0].connector",
            Box::new(|d| d["connection_references"][0]["connector"] = "".into()),
        ),
        (
            "dependencies[0].unique_name",
            Box::new(|d| d["dependencies"][0]["unique_name"] = "contoso_app".into()),
        ),
        (
            "components[0].kind",
            Box::new(|d| d["components"][0]["kind"] = "".into()),
        ),
        (
            "components[0].path",
            Box::new(|d| d["components"][0]["path"] = "order.json".into()),
        ),
    ];
    for (field, edit) in edits {
        let zip = package_with_edit(|doc| edit(doc));
        let err = read(&zip).unwrap_err();
        assert!(
            matches!(&err, PackageError::InvalidManifest(m) if m.starts_with(field)),
            "{field}: {err:?}"
        );
    }
    let long_ok = "a".repeat(100);
    let zip = package_with_edit(|d| d["unique_name"] = long_ok.into());
    assert!(read(&zip).is_ok());
}

#[test]
fn unsafe_component_paths_in_the_manifest_are_refused() {
    let zip = package_with_edit(|d| d["components"][0]["path"] = "components/../x".into());
    assert_err!(read(&zip), PackageError::PathTraversal { .. });
    let zip = package_with_edit(|d| d["components"][0]["path"] = "components/".into());
    assert_err!(read(&zip), PackageError::InvalidEntryName { .. });
}

#[test]
fn duplicate_components_are_refused() {
    let zip = package_with_edit(|d| {
        d["components"][1]["kind"] = "table".into();
        d["components"][1]["name"] = "contoso_order".into();
    });
    assert_err!(read(&zip), PackageError::DuplicateComponent(m) if m.contains("contoso_order"));
    let zip = package_with_edit(|d| {
        d["components"][1]["path"] = "components/order.json".into();
    });
    assert_err!(
        read(&zip),
        PackageError::DuplicateComponent(m) if m.contains("components/order.json")
    );
}

#[test]
fn optional_lists_default_to_empty() {
    let json = r#"{"unique_name":"tiny","display_name":"Tiny","version":"0.0.0.1",
        "publisher":{"unique_name":"me","prefix":"me"}}"#;
    let zip = raw_zip(&[("solution.json", json.as_bytes())], false);
    let info = read(&zip).unwrap();
    assert!(!info.manifest.managed);
    assert!(info.manifest.components.is_empty());
    assert_eq!(info.entries, 1);
}

#[test]
fn error_messages_name_the_entry() {
    let zip = sample_entries_with(&[("components/extra.json", b"{}")]);
    assert!(
        read(&zip)
            .unwrap_err()
            .to_string()
            .contains("components/extra.json")
    );
    let package = bomb_package(1 << 20);
    let limits = PackageLimits {
        max_entry_uncompressed: 1024,
        ..PackageLimits::default()
    };
    let message = read_with(&package, limits).unwrap_err().to_string();
    assert!(message.contains("components/zeros.bin"), "{message}");
}

#[test]
fn fake_end_records_in_data_do_not_count_as_entries() {
    // A stored component holding an end-of-central-directory signature that claims
    // 60,000 entries: it cannot be a real record (the entries could not fit), so the
    // package is fine.
    let mut fake = b"PK\x05\x06\0\0\0\0".to_vec();
    fake.extend_from_slice(&60_000u16.to_le_bytes());
    fake.extend_from_slice(&60_000u16.to_le_bytes());
    fake.extend_from_slice(&[0; 10]);
    let mut manifest = sample_manifest();
    manifest.components.push(Component {
        kind: "data".into(),
        name: "fake".into(),
        path: "components/fake.bin".into(),
    });
    let json = manifest.to_json();
    let mut entries: Vec<(&str, &[u8])> = vec![("solution.json", &json)];
    entries.extend(sample_files());
    entries.push(("components/fake.bin", &fake));
    let zip = raw_zip(&entries, true);
    assert!(zip.windows(4).filter(|w| *w == b"PK\x05\x06").count() >= 2);
    assert!(read(&zip).is_ok());
}

/// Found by `fuzz_mutated_packages_never_panic`: a flipped central-directory byte made
/// restamp's output look, to the entry-count pre-check, like it claimed 19,280 entries.
#[test]
fn fuzz_regression_restamped_copy_reads_back() {
    let json = sample_manifest().to_json();
    let mut entries: Vec<(&str, &[u8])> = vec![("solution.json", &json)];
    entries.extend(sample_files());
    let mut bytes = raw_zip(&entries, true);
    apply(
        &mut bytes,
        &Mutation::Flip {
            at: 1_486_769_840_653_606_478,
            mask: 8,
        },
    );
    if read(&bytes).is_ok() {
        let mut out = Cursor::new(Vec::new());
        restamp(
            Cursor::new(&bytes),
            &mut out,
            &Version::new(9, 9, 9, 9),
            true,
            &PackageLimits::default(),
        )
        .unwrap();
        read(out.get_ref()).unwrap();
    }
}

// ---------------------------------------------------------------- fuzzing

/// Fixed case counts, no regression files, so a run is bounded and leaves nothing behind.
fn fuzz_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Truncate { len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        3 => (any::<usize>(), prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1..16usize).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len().max(1);
    match mutation {
        Mutation::Flip { at, mask } => {
            if let Some(b) = bytes.get_mut(at % len) {
                *b ^= mask;
            }
        }
        Mutation::Set { at, byte } => {
            if let Some(b) = bytes.get_mut(at % len) {
                *b = *byte;
            }
        }
        Mutation::Truncate { len: keep } => bytes.truncate(keep % len),
        Mutation::Insert { at, bytes: more } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, more.iter().copied());
        }
        Mutation::Remove { at, len: n } => {
            let at = at % len;
            let end = (at + n).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
    }
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z_.0-9/]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        Just(Value::String("1.2.3.4".into())),
        Just(Value::String("components/order.json".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,16}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The sample manifest with the value at one path (a field, or a field of a list item)
/// replaced by an arbitrary value.
fn mutated_manifest() -> impl Strategy<Value = serde_json::Value> {
    const FIELDS: &[&str] = &[
        "unique_name",
        "display_name",
        "version",
        "publisher",
        "managed",
        "dependencies",
        "environment_variables",
        "connection_references",
        "components",
    ];
    const ITEM_FIELDS: &[&str] = &[
        "unique_name",
        "min_version",
        "schema_name",
        "type",
        "default_value",
        "logical_name",
        "connector",
        "kind",
        "name",
        "path",
        "extra",
    ];
    (
        prop::sample::select(FIELDS),
        prop::option::of((0..3usize, prop::sample::select(ITEM_FIELDS))),
        json_value(),
    )
        .prop_map(|(field, item, value)| {
            let mut doc = serde_json::to_value(sample_manifest()).unwrap();
            match item {
                Some((i, item_field)) => {
                    if let Some(serde_json::Value::Array(list)) = doc.get_mut(field)
                        && let Some(serde_json::Value::Object(obj)) = list.get_mut(i)
                    {
                        obj.insert(item_field.to_string(), value);
                    } else {
                        doc[field] = value;
                    }
                }
                None => doc[field] = value,
            }
            doc
        })
}

/// Small limits, so that fuzzed inputs also reach the limit checks.
fn small_limits() -> PackageLimits {
    PackageLimits {
        max_package_bytes: 64 * 1024,
        max_entries: 16,
        max_total_uncompressed: 256 * 1024,
        max_entry_uncompressed: 128 * 1024,
        max_manifest_bytes: 16 * 1024,
        max_compression_ratio: 50,
    }
}

proptest! {
    #![proptest_config(fuzz_config(8_000))]

    /// (a) Arbitrary bytes, raw and behind a zip signature: an error or a package, never a
    /// panic.
    #[test]
    fn fuzz_arbitrary_bytes_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 0..1024),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"PK\x03\x04"[..]), Just(&b"PK\x05\x06"[..])],
        small in any::<bool>(),
    ) {
        bytes.splice(0..0, prefix.iter().copied());
        let limits = if small { small_limits() } else { PackageLimits::default() };
        let result = read_package(Cursor::new(&bytes), &limits);
        // In memory there is no I/O to fail: bad bytes are refused as bad data.
        prop_assert!(!matches!(result, Err(PackageError::Io(_))), "{:?}", result);
    }

    /// (b) A valid package with 1 to 4 mutations: never a panic; restamp neither.
    #[test]
    fn fuzz_mutated_packages_never_panic(
        mutations in prop::collection::vec(mutation(), 1..5),
        stored in any::<bool>(),
    ) {
        let mut bytes = if stored {
            let json = sample_manifest().to_json();
            let mut entries: Vec<(&str, &[u8])> = vec![("solution.json", &json)];
            entries.extend(sample_files());
            raw_zip(&entries, true)
        } else {
            sample_package()
        };
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let result = read_package(Cursor::new(&bytes), &PackageLimits::default());
        prop_assert!(!matches!(result, Err(PackageError::Io(_))), "{:?}", result);
        if result.is_ok() {
            let mut out = Cursor::new(Vec::new());
            let restamped = restamp(
                Cursor::new(&bytes),
                &mut out,
                &Version::new(9, 9, 9, 9),
                true,
                &PackageLimits::default(),
            );
            prop_assert!(restamped.is_ok(), "{:?}", restamped.err());
            prop_assert!(read_package(Cursor::new(out.get_ref()), &PackageLimits::default()).is_ok());
        }
    }
}

proptest! {
    #![proptest_config(fuzz_config(3_000))]

    /// (c) Arbitrary JSON values as solution.json: never a panic, and never accepted
    /// unless it is a valid manifest.
    #[test]
    fn fuzz_arbitrary_manifest_json_never_panics(value in json_value()) {
        let json = value.to_string();
        let parsed = Manifest::from_json(json.as_bytes());
        let result = read_package(Cursor::new(package_with_json(&json)), &PackageLimits::default());
        prop_assert_eq!(parsed.is_ok(), result.is_ok());
    }

    /// (c) The sample manifest with one field replaced by an arbitrary value: never a
    /// panic; when accepted, it round-trips through build_package and restamp.
    #[test]
    fn fuzz_mutated_manifest_json_never_panics(doc in mutated_manifest()) {
        let json = doc.to_string();
        let zip = package_with_json(&json);
        match read_package(Cursor::new(&zip), &PackageLimits::default()) {
            Ok(info) => {
                let rebuilt = build_package(&info.manifest, &sample_files());
                prop_assert!(rebuilt.is_ok(), "{:?}", rebuilt.err());
                let again = read_package(Cursor::new(rebuilt.unwrap()), &PackageLimits::default());
                prop_assert_eq!(again.map(|i| i.manifest).ok(), Some(info.manifest));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
