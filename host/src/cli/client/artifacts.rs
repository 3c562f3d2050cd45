//! `gatehouse artifacts download`: a solution version's backup, the package the host kept
//! when the version was exported, streamed to a file and checked against the host's record.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::commands::{SCAN_LIMIT, connect, emit};
use super::http::Api;
use super::{CliError, GlobalArgs};
use crate::solution::{Version, is_valid_name};

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Download the backup of a solution version, as a zip.
    ///
    /// The managed package, or the unmanaged one with --unmanaged, is streamed to a file
    /// and checked against the host's record of its size and SHA-256. An existing file is
    /// never replaced without --force.
    Download(DownloadArgs),
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The solution's unique name, such as contoso_expenses.
    solution: String,
    /// The four-part version, such as 1.0.0.1.
    version: String,
    /// The unmanaged package instead of the managed one.
    #[arg(long)]
    unmanaged: bool,
    /// The file to write, or a folder to write it in [default:
    /// SOLUTION_VERSION_managed.zip (or _unmanaged.zip) in this folder]
    #[arg(long, short = 'o', value_name = "FILE")]
    output_file: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub async fn run(command: ArtifactsCommand, global: GlobalArgs) -> Result<ExitCode, CliError> {
    match command {
        ArtifactsCommand::Download(args) => download(args, global).await,
    }
}

async fn download(args: DownloadArgs, global: GlobalArgs) -> Result<ExitCode, CliError> {
    let solution = args.solution.trim();
    let version = args.version.trim();
    if !is_valid_name(solution) {
        return Err(CliError::Usage(format!(
            "{solution:?} is not a solution's unique name: those are letters, digits and _"
        )));
    }
    version
        .parse::<Version>()
        .map_err(|e| CliError::Usage(format!("{e}; give the version as 1.0.0.1")))?;
    let kind = if args.unmanaged {
        "unmanaged"
    } else {
        "managed"
    };
    let file_name = format!("{solution}_{version}_{kind}.zip");
    let path = match args.output_file {
        Some(path) if path.is_dir() => path.join(&file_name),
        Some(path) => path,
        None => PathBuf::from(&file_name),
    };
    if !args.force && path.exists() {
        return Err(exists(&path));
    }
    let api = connect(&global)?;
    let package = find_package(&api, solution, version, kind).await?;
    let response = api
        .download(&format!("/artifacts/{solution}/{version}/{kind}"))
        .await?;
    let (size, sha256) = save(response, &path, args.force, &package).await?;
    let written = json!({
        "solution": solution, "version": version, "kind": kind,
        "path": path.display().to_string(), "size": size, "sha256": sha256,
    });
    emit(global.output, &written, || {
        Ok(format!(
            "Saved the {kind} package of {solution} {version} to {} ({size} bytes, SHA-256 {sha256}).",
            path.display()
        ))
    })
}

/// A package as the host's artifact record describes it.
struct Package {
    sha256: String,
    size: u64,
}

/// The record of the package, or an error that lists the versions the caller may download.
async fn find_package(
    api: &Api,
    solution: &str,
    version: &str,
    kind: &str,
) -> Result<Package, CliError> {
    let query = [("solution", solution.to_owned())];
    let artifacts = api.list("/artifacts", &query, SCAN_LIMIT).await?.items;
    let found = artifacts
        .iter()
        .find(|a| a["solution_name"] == solution && a["version"] == version);
    let Some(artifact) = found else {
        let versions: Vec<&str> = artifacts
            .iter()
            .filter_map(|a| a["version"].as_str())
            .collect();
        let stored = if versions.is_empty() {
            format!(
                "none of {solution} is stored that you can see (a backup is kept when a first \
                 stage exports a version; see `gatehouse solutions {solution}`)"
            )
        } else {
            format!(
                "the versions of {solution} stored are: {}",
                versions.join(", ")
            )
        };
        return Err(CliError::Usage(format!(
            "there is no backup of {solution} {version} that you can see; {stored}"
        )));
    };
    let package: &Value = &artifact[kind];
    Ok(Package {
        sha256: package["sha256"].as_str().unwrap_or_default().to_owned(),
        size: package["size"].as_u64().unwrap_or_default(),
    })
}

fn exists(path: &Path) -> CliError {
    CliError::Usage(format!(
        "{} exists already; pass --force to replace it, or -o to write another file",
        path.display()
    ))
}

/// Streams the answer into `path` through a temporary file beside it, so that an
/// interrupted or corrupted download leaves nothing behind; returns the size and the
/// SHA-256, which must be the `expected` package's. Without `replace`, a file that
/// appeared at `path` meanwhile is kept, and this fails.
async fn save(
    mut response: reqwest::Response,
    path: &Path,
    replace: bool,
    expected: &Package,
) -> Result<(u64, String), CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "download".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.{}.part", std::process::id()));
    let fail = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    let mut file = std::fs::File::create(&temp).map_err(fail)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let streamed: Result<(), CliError> = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CliError::Connection(format!("the download stopped: {e}")))?
        {
            hash.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).map_err(fail)?;
        }
        file.sync_all().map_err(fail)?;
        Ok(())
    }
    .await;
    drop(file);
    let sha256 = hex::encode(hash.finalize());
    let checked = streamed.and_then(|()| {
        if expected.sha256 == sha256 && expected.size == size {
            return Ok(());
        }
        Err(CliError::Connection(format!(
            "the download does not match the host's record of the package ({size} bytes with \
             SHA-256 {sha256}, where the record says {} bytes with {}); nothing was saved, \
             try again",
            expected.size, expected.sha256
        )))
    });
    let placed = checked.and_then(|()| place(&temp, path, replace));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    Ok((size, sha256))
}

/// Moves the finished download to `path`; without `replace`, only if nothing is there.
fn place(temp: &Path, path: &Path, replace: bool) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    if replace {
        return std::fs::rename(temp, path).map_err(fail);
    }
    // A hard link fails if the name is taken, where a rename would replace the file.
    match std::fs::hard_link(temp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(temp);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(path)),
        Err(_) if path.exists() => Err(exists(path)),
        // A file system without hard links.
        Err(_) => std::fs::rename(temp, path).map_err(fail),
    }
}
