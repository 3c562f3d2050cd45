//! Size limits applied while reading a package.

/// Limits enforced by [`read_package`](super::read_package) and
/// [`restamp`](super::restamp). Sizes are checked against the bytes actually produced by
/// decompression, never against the sizes the zip declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageLimits {
    /// Largest package (the zip file itself), in bytes.
    pub max_package_bytes: u64,
    /// Most zip entries (files and directories).
    pub max_entries: usize,
    /// Most bytes all entries may decompress to, together.
    pub max_total_uncompressed: u64,
    /// Most bytes one entry may decompress to.
    pub max_entry_uncompressed: u64,
    /// Most bytes `solution.json` may decompress to.
    pub max_manifest_bytes: u64,
    /// Highest ratio of decompressed to compressed bytes for one entry, checked once the
    /// entry has produced more than [`RATIO_GRACE_BYTES`].
    pub max_compression_ratio: u64,
}

/// An entry may decompress to this many bytes before the compression-ratio limit
/// applies, so that small, very regular files (a few KiB of zeros) are not refused.
pub const RATIO_GRACE_BYTES: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;

impl Default for PackageLimits {
    fn default() -> Self {
        Self {
            max_package_bytes: 256 * MIB,
            max_entries: 10_000,
            max_total_uncompressed: 1024 * MIB,
            max_entry_uncompressed: 256 * MIB,
            max_manifest_bytes: MIB,
            max_compression_ratio: 200,
        }
    }
}
