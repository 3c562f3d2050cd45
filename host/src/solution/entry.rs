//! Decompressing one entry as a stream, counting what goes in and what comes out.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use zip::ZipArchive;
use zip::result::ZipError;

use super::error::PackageError;
use super::limits::{PackageLimits, RATIO_GRACE_BYTES};
use super::path::MANIFEST_NAME;

/// A reader that counts the bytes read through it, so that compression ratios are taken
/// from the compressed bytes actually consumed.
pub(crate) struct Metered<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Metered<R> {
    /// Wraps `inner`; `count` grows by every byte read.
    pub(crate) fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Self { inner, count }
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

impl<R: Seek> Seek for Metered<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Decompresses entry `index` through `sink` in chunks, counting the bytes produced and
/// the compressed bytes consumed, and stops with [`PackageError::ZipBomb`] as soon as the
/// entry passes `entry_limit`, the running `total` passes the package limit, or the
/// compression ratio passes its limit. Returns the entry's decompressed size.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drain_entry<R: Read + Seek>(
    archive: &mut ZipArchive<Metered<R>>,
    name: &str,
    index: usize,
    compressed_counter: &Rc<Cell<u64>>,
    limits: &PackageLimits,
    entry_limit: u64,
    total: &mut u64,
    mut sink: impl FnMut(&[u8]),
) -> Result<u64, PackageError> {
    let mut file = archive.by_index(index).map_err(|e| entry_error(name, e))?;
    let declared = file.size();
    let start = compressed_counter.get();
    let bomb = |detail: String| PackageError::ZipBomb {
        entry: name.to_string(),
        detail,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut produced: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The zip library stops an entry that outgrows its declared size.
            Err(e) if e.to_string().contains("larger than its declared") => {
                return Err(bomb(format!(
                    "it decompresses to more than the {declared} bytes it declares"
                )));
            }
            Err(e) => return Err(io_entry_error(name, e)),
        };
        produced = produced.saturating_add(n as u64);
        *total = total.saturating_add(n as u64);
        if produced > entry_limit {
            if name == MANIFEST_NAME && entry_limit == limits.max_manifest_bytes {
                return Err(PackageError::ManifestTooLarge { limit: entry_limit });
            }
            return Err(bomb(format!(
                "it decompresses to more than {entry_limit} bytes"
            )));
        }
        if *total > limits.max_total_uncompressed {
            return Err(bomb(format!(
                "the package decompresses to more than {} bytes in total",
                limits.max_total_uncompressed
            )));
        }
        let consumed = compressed_counter.get().saturating_sub(start).max(1);
        if produced > RATIO_GRACE_BYTES
            && produced > consumed.saturating_mul(limits.max_compression_ratio)
        {
            return Err(bomb(format!(
                "it decompresses to more than {} times its compressed size",
                limits.max_compression_ratio
            )));
        }
        sink(&buf[..n]);
    }
    if produced != declared {
        return Err(PackageError::Corrupt {
            entry: name.to_string(),
            detail: format!("it declares {declared} bytes but holds {produced}"),
        });
    }
    Ok(produced)
}

/// Whether an I/O error means bad data rather than a failing device or stream. The zip
/// library reports bad data with these kinds (`Other` included, for names it cannot
/// decode).
pub(crate) fn is_data_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidData
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::Other
    )
}

fn io_entry_error(entry: &str, e: io::Error) -> PackageError {
    if is_data_error(&e) {
        PackageError::Corrupt {
            entry: entry.to_string(),
            detail: e.to_string(),
        }
    } else {
        PackageError::Io(e)
    }
}

pub(crate) fn entry_error(entry: &str, e: ZipError) -> PackageError {
    match e {
        ZipError::UnsupportedArchive(msg) if msg == ZipError::PASSWORD_REQUIRED => {
            PackageError::Encrypted {
                entry: entry.to_string(),
            }
        }
        ZipError::CompressionMethodNotSupported(method) => PackageError::UnsupportedCompression {
            entry: entry.to_string(),
            method: format!("method {method}"),
        },
        ZipError::Io(io) => io_entry_error(entry, io),
        other => PackageError::Corrupt {
            entry: entry.to_string(),
            detail: other.to_string(),
        },
    }
}
