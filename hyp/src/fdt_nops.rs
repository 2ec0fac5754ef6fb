//! Squeezing `FDT_NOP` tokens out of a flattened device tree, in place.
//!
//! libfdt "deletes" a node or property cheaply by overwriting it with `FDT_NOP`
//! tokens (`fdt_nop_node`, `fdt_nop_property`). QEMU's `raspi4b` does so for the
//! devices it does not emulate (PCIe, RNG, thermal, Ethernet), and firmware may
//! do the same. The Devicetree Specification allows `FDT_NOP` anywhere in the
//! structure block (v0.4, 5.4.1), but the `fdt` crate (0.1.5) only skips it in
//! some places: a NOP between two sibling nodes makes it panic. Removing the
//! tokens before parsing keeps the tree's meaning and sidesteps that.
//!
//! The structure block only shrinks: every token moves towards the block's start,
//! `size_dt_struct` is updated, and the freed tail is zeroed. The strings block
//! and the memory reservation block do not move (the header's offsets stay
//! valid: the specification does not require the blocks to be contiguous).
#![forbid(unsafe_code)]

/// FDT header field offsets (Devicetree Specification v0.4, 5.2 "Header").
mod header {
    pub const MAGIC: usize = 0;
    pub const TOTALSIZE: usize = 4;
    pub const OFF_DT_STRUCT: usize = 8;
    pub const VERSION: usize = 20;
    pub const SIZE_DT_STRUCT: usize = 36;
    /// Header length up to and including `size_dt_struct` (version 17).
    pub const LEN_V17: usize = 40;
}

/// `magic`, big-endian in the blob.
const FDT_MAGIC: u32 = 0xd00d_feed;
/// First version whose header has `size_dt_struct` (spec 5.2).
const VERSION_WITH_STRUCT_SIZE: u32 = 17;

/// Structure block tokens (spec 5.4.1).
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Tokens, lengths and names are aligned to 4 bytes (spec 5.4.1).
const TOKEN: usize = 4;
/// `FDT_PROP` is followed by `len` and `nameoff`, one word each (spec 5.4.1).
const PROP_HEADER: usize = 8;

/// Why a blob could not be processed. The blob is untouched in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtNopError {
    /// Too short for a header, or bad magic.
    NotFdt,
    /// A header version before 17 (no `size_dt_struct` to update).
    OldVersion(u32),
    /// `totalsize` or the structure block lies outside the buffer.
    Truncated,
    /// An unknown token, or a token running past the structure block, at this
    /// offset from the start of the blob.
    BadToken(usize),
}

fn be32(blob: &[u8], at: usize) -> Option<u32> {
    let bytes = blob.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Length in bytes of the token at `at` (token word included), or `None` if it
/// is malformed or runs past `end`.
fn token_len(blob: &[u8], at: usize, end: usize) -> Option<usize> {
    let len = match be32(blob, at)? {
        FDT_BEGIN_NODE => {
            let name = blob.get(at + TOKEN..end)?;
            let nul = name.iter().position(|&b| b == 0)?;
            TOKEN + (nul + 1).next_multiple_of(TOKEN)
        }
        FDT_PROP => {
            let value_len = be32(blob, at + TOKEN)? as usize;
            TOKEN + PROP_HEADER + value_len.next_multiple_of(TOKEN)
        }
        FDT_END_NODE | FDT_NOP | FDT_END => TOKEN,
        _ => return None,
    };
    (at.checked_add(len)? <= end).then_some(len)
}

/// Removes every `FDT_NOP` token from the structure block of the blob at the
/// start of `blob`; returns how many were removed (0 leaves the blob as it was).
///
/// The whole structure block is validated before anything is written.
pub fn strip_nops(blob: &mut [u8]) -> Result<usize, FdtNopError> {
    if be32(blob, header::MAGIC) != Some(FDT_MAGIC) || blob.len() < header::LEN_V17 {
        return Err(FdtNopError::NotFdt);
    }
    let word = |at| be32(blob, at).ok_or(FdtNopError::NotFdt);
    let version = word(header::VERSION)?;
    if version < VERSION_WITH_STRUCT_SIZE {
        return Err(FdtNopError::OldVersion(version));
    }
    let total = word(header::TOTALSIZE)? as usize;
    let start = word(header::OFF_DT_STRUCT)? as usize;
    let size = word(header::SIZE_DT_STRUCT)? as usize;
    let end = start.checked_add(size).ok_or(FdtNopError::Truncated)?;
    if total > blob.len() || end > total {
        return Err(FdtNopError::Truncated);
    }

    // First pass: validate and count, so that a malformed tree stays untouched.
    let mut nops = 0;
    let mut at = start;
    loop {
        let len = token_len(blob, at, end).ok_or(FdtNopError::BadToken(at))?;
        match be32(blob, at) {
            Some(FDT_NOP) => nops += 1,
            Some(FDT_END) => break,
            _ => {}
        }
        at += len;
    }
    if nops == 0 {
        return Ok(0);
    }

    // Second pass: move every other token down over the gaps.
    let (mut read, mut write) = (start, start);
    loop {
        let token = be32(blob, read);
        let len = token_len(blob, read, end).ok_or(FdtNopError::BadToken(read))?;
        if token != Some(FDT_NOP) {
            blob.copy_within(read..read + len, write);
            write += len;
        }
        read += len;
        if token == Some(FDT_END) {
            break;
        }
    }
    blob[write..end].fill(0);
    let new_size = u32::try_from(write - start).map_err(|_| FdtNopError::Truncated)?;
    blob[header::SIZE_DT_STRUCT..header::SIZE_DT_STRUCT + 4]
        .copy_from_slice(&new_size.to_be_bytes());
    Ok(nops)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Raspberry Pi 4 tree as QEMU 10's `raspi4b` hands it over (dumped
    /// with `-machine dumpdtb=`): four nodes blanked with `FDT_NOP`.
    const QEMU_RASPI4B: &[u8] = include_bytes!("testdata/raspi4b-qemu.dtb");

    #[test]
    fn qemu_raspi4b_tree_parses_after_stripping() {
        // Why this module exists: the `fdt` crate panics on the blob as is.
        let as_is = std::panic::catch_unwind(|| crate::platform::Platform::parse(QEMU_RASPI4B));
        assert!(
            as_is.is_err(),
            "fdt copes with NOPs now: this module can go"
        );
        let mut blob = QEMU_RASPI4B.to_vec();
        let removed = strip_nops(&mut blob).unwrap();
        assert!(removed > 0, "the fixture has blanked nodes");
        let p = crate::platform::Platform::parse(&blob).unwrap();
        assert_eq!(p.cpus.len(), 4);
        assert_eq!(p.console.unwrap().regs.start.get(), 0xfe20_1000);
        assert!(p.initrd.is_some());
        // Nothing left to strip, and the result is stable.
        let once = blob.clone();
        assert_eq!(strip_nops(&mut blob), Ok(0));
        assert_eq!(blob, once);
        // Every node the blanking left is still there (fdt walks them all).
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert!(fdt.find_node("/soc/serial@7e201000").is_some());
        assert!(fdt.find_node("/scb/pcie@7d500000").is_none());
    }

    /// A hand-made tree: root { a = <1>; NOP; child { NOP; }; NOP; }.
    fn tiny(with_nops: bool) -> Vec<u8> {
        let mut s: Vec<u32> = vec![FDT_BEGIN_NODE, 0, FDT_PROP, 4, 0, 1];
        if with_nops {
            s.push(FDT_NOP);
        }
        s.extend([FDT_BEGIN_NODE, u32::from_be_bytes(*b"c\0\0\0")]);
        if with_nops {
            s.push(FDT_NOP);
        }
        s.push(FDT_END_NODE);
        if with_nops {
            s.push(FDT_NOP);
        }
        s.extend([FDT_END_NODE, FDT_END]);
        let strings = b"a\0\0\0";
        let off_struct = header::LEN_V17 + 16; // one empty reservation entry
        let struct_len = s.len() * 4;
        let off_strings = off_struct + struct_len;
        let total = off_strings + strings.len();
        let mut h = [0u32; header::LEN_V17 / 4];
        h[0] = FDT_MAGIC;
        h[1] = total as u32;
        h[2] = off_struct as u32;
        h[3] = off_strings as u32;
        h[4] = header::LEN_V17 as u32; // off_mem_rsvmap
        h[5] = 17;
        h[6] = 16;
        h[8] = strings.len() as u32;
        h[9] = struct_len as u32;
        let mut blob: Vec<u8> = h.iter().flat_map(|w| w.to_be_bytes()).collect();
        blob.extend([0u8; 16]);
        blob.extend(s.iter().flat_map(|w| w.to_be_bytes()));
        blob.extend(strings);
        blob
    }

    #[test]
    fn removes_nops_and_shrinks_the_structure_block() {
        let mut blob = tiny(true);
        let clean = tiny(false);
        assert_eq!(strip_nops(&mut blob), Ok(3));
        let new_size = be32(&blob, header::SIZE_DT_STRUCT).unwrap();
        assert_eq!(new_size, be32(&clean, header::SIZE_DT_STRUCT).unwrap());
        let off = header::LEN_V17 + 16;
        let len = new_size as usize;
        assert_eq!(blob[off..off + len], clean[off..off + len]);
        // The freed tail is zero and the strings did not move.
        assert!(blob[off + len..off + len + 12].iter().all(|&b| b == 0));
        assert_eq!(&blob[blob.len() - 4..], b"a\0\0\0");
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert!(fdt.find_node("/c").is_some());
    }

    #[test]
    fn rejects_bad_blobs_without_writing() {
        let mut short = vec![0u8; 8];
        assert_eq!(strip_nops(&mut short), Err(FdtNopError::NotFdt));

        let mut bad = tiny(true);
        let off = header::LEN_V17 + 16;
        bad[off + 4 * 6..off + 4 * 7].copy_from_slice(&7u32.to_be_bytes()); // unknown token
        let before = bad.clone();
        assert_eq!(strip_nops(&mut bad), Err(FdtNopError::BadToken(off + 24)));
        assert_eq!(bad, before);

        let mut truncated = tiny(true);
        let len = truncated.len();
        truncated.truncate(len - 8);
        assert_eq!(strip_nops(&mut truncated), Err(FdtNopError::Truncated));

        let mut old = tiny(true);
        old[header::VERSION..header::VERSION + 4].copy_from_slice(&16u32.to_be_bytes());
        assert_eq!(strip_nops(&mut old), Err(FdtNopError::OldVersion(16)));
    }
}
