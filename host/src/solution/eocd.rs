//! A look at the zip's end-of-central-directory records, to learn how many entries the
//! archive claims before the zip library allocates a table for them.

use std::io::{self, Read, Seek, SeekFrom};

const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const ZIP64_LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const ZIP64_EOCD_SIG: [u8; 4] = *b"PK\x06\x06";
const EOCD_LEN: usize = 22;
const LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_LEN: usize = 56;
const MAX_COMMENT: usize = u16::MAX as usize;
const CD_HEADER_MIN_LEN: u64 = 46;

/// The largest entry count claimed by any plausible end-of-central-directory record (plain
/// or zip64) found at the end of the `size`-byte stream, or `None` when there is none.
/// Being the largest over every candidate whose entries could fit in the file, it is at
/// least the number of entries the zip library can build a table for.
pub fn declared_entry_count<R: Read + Seek>(reader: &mut R, size: u64) -> io::Result<Option<u64>> {
    let tail_len = size.min((EOCD_LEN + MAX_COMMENT) as u64) as usize;
    if tail_len < EOCD_LEN {
        return Ok(None);
    }
    let tail_start = size - tail_len as u64;
    reader.seek(SeekFrom::Start(tail_start))?;
    let mut tail = vec![0u8; tail_len];
    reader.read_exact(&mut tail)?;

    let mut best: Option<u64> = None;
    let mut zip64_offsets = Vec::new();
    for pos in (0..=tail_len - EOCD_LEN).rev() {
        if tail[pos..pos + 4] != EOCD_SIG {
            continue;
        }
        let record = &tail[pos..pos + EOCD_LEN];
        if pos + EOCD_LEN + usize::from(u16_at(record, 20)) > tail_len {
            continue; // its comment would run past the end: not a real record
        }
        let on_disk = u16_at(record, 8);
        let total = u16_at(record, 10);
        let zip64 = on_disk == u16::MAX || total == u16::MAX || u32_at(record, 16) == u32::MAX;
        if zip64 && pos >= LOCATOR_LEN && tail[pos - LOCATOR_LEN..pos][..4] == ZIP64_LOCATOR_SIG {
            // The real count is in the zip64 record the locator points to.
            zip64_offsets.push(u64_at(&tail[pos - LOCATOR_LEN..pos], 8));
        } else {
            let count = u64::from(on_disk.max(total));
            if fits(count, tail_start + pos as u64) {
                best = Some(best.map_or(count, |b| b.max(count)));
            }
        }
        if zip64_offsets.len() >= 4 {
            break;
        }
    }
    for offset in zip64_offsets {
        if offset.saturating_add(ZIP64_EOCD_LEN as u64) > size {
            continue;
        }
        reader.seek(SeekFrom::Start(offset))?;
        let mut record = [0u8; ZIP64_EOCD_LEN];
        reader.read_exact(&mut record)?;
        if record[..4] != ZIP64_EOCD_SIG {
            continue;
        }
        let count = u64_at(&record, 24).max(u64_at(&record, 32));
        if fits(count, offset) {
            best = Some(best.map_or(count, |b| b.max(count)));
        }
    }
    Ok(best)
}

/// Whether `count` central-directory headers (46 bytes at least each) fit in the
/// `before` bytes ahead of the record. A claim that cannot fit cannot be materialized by
/// the zip library, which bounds its table by the bytes present, so it is ignored.
fn fits(count: u64, before: u64) -> bool {
    count.saturating_mul(CD_HEADER_MIN_LEN) <= before
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}
