//! Packages on disk, content-addressed: `<data_dir>/packages/<sha256>`.
//!
//! A blob is written to a temporary file in the same folder while it is hashed, flushed
//! to disk, and only then renamed to its final name, so a crash never leaves a partial
//! blob under a final name. Temporary files left by a crash are removed at open.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The prefix of temporary files; final names are 64 hex digits and never start with it.
const TEMP_PREFIX: &str = ".tmp-";

pub(super) struct Blobs {
    dir: PathBuf,
}

/// Why a streamed body could not be stored.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The body passed the limit (in bytes); nothing was kept.
    TooLarge(u64),
    /// The client's body failed midway (it disconnected, say).
    Body(String),
    Io(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::TooLarge(limit) => write!(f, "the body is larger than {limit} bytes"),
            WriteError::Body(e) => write!(f, "the request body failed: {e}"),
            WriteError::Io(e) => write!(f, "could not write the package: {e}"),
        }
    }
}

/// A blob under a temporary name, removed when dropped unless [`TempBlob::persist`]ed.
pub(super) struct TempBlob {
    path: PathBuf,
    kept: bool,
}

/// A body written to a temporary blob, with its hash and size.
pub(super) struct Written {
    pub sha256: String,
    pub size: u64,
    pub temp: TempBlob,
}

impl Blobs {
    /// Opens (creating) the package folder and removes what a crash left half written.
    pub fn open(data_dir: &Path) -> io::Result<Blobs> {
        let dir = data_dir.join("packages");
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Blobs { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The final path of a blob; `sha256` must have passed [`is_sha256`].
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    pub async fn exists(&self, sha256: &str) -> bool {
        tokio::fs::try_exists(self.path(sha256))
            .await
            .unwrap_or(false)
    }

    /// The blob opened for reading, with its size, or `None` when there is none.
    pub async fn open_blob(&self, sha256: &str) -> io::Result<Option<(tokio::fs::File, u64)>> {
        match tokio::fs::File::open(self.path(sha256)).await {
            Ok(file) => {
                let size = file.metadata().await?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new, empty temporary blob.
    pub fn temp(&self) -> io::Result<TempBlob> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let path = self
            .dir
            .join(format!("{TEMP_PREFIX}{}", hex::encode(bytes)));
        std::fs::File::create_new(&path)?;
        Ok(TempBlob { path, kept: false })
    }

    /// Streams a request body into a temporary blob, hashing it as it goes; never holds
    /// more than one chunk in memory. Stops reading, and keeps nothing, past `limit` bytes.
    pub async fn write_body(&self, body: Body, limit: u64) -> Result<Written, WriteError> {
        let temp = self.temp().map_err(WriteError::Io)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(temp.path())
            .await
            .map_err(WriteError::Io)?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| WriteError::Body(e.to_string()))?
        {
            size += chunk.len() as u64;
            if size > limit {
                return Err(WriteError::TooLarge(limit));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(WriteError::Io)?;
        }
        out.flush().await.map_err(WriteError::Io)?;
        out.into_inner().sync_all().await.map_err(WriteError::Io)?;
        Ok(Written {
            sha256: hex::encode(hasher.finalize()),
            size,
            temp,
        })
    }
}

impl TempBlob {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the blob to its final name (replacing an identical one), making it durable.
    /// Blocking: call it from `spawn_blocking`, or through [`TempBlob::persist`].
    pub fn persist_blocking(mut self, blobs_dir: &Path, sha256: &str) -> io::Result<PathBuf> {
        let target = blobs_dir.join(sha256);
        std::fs::File::open(&self.path)?.sync_all()?;
        std::fs::rename(&self.path, &target)?;
        self.kept = true;
        #[cfg(unix)]
        if let Ok(dir) = std::fs::File::open(blobs_dir) {
            let _ = dir.sync_all();
        }
        Ok(target)
    }

    pub async fn persist(self, blobs: &Blobs, sha256: &str) -> io::Result<PathBuf> {
        let dir = blobs.dir.clone();
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || self.persist_blocking(&dir, &sha256))
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The SHA-256 and size of a file, read in chunks. Blocking.
pub(super) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Whether `s` names a blob: 64 lower-case hex digits.
pub(super) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
