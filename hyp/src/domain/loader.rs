//! Loading a guest image into a domain and preparing its first vCPU.
//!
//! The image's segments are copied to the IPAs their physical-address fields
//! name (the guest starts with its MMU off), which must lie in the domain's RAM
//! and not over the start-info page. Then the start-info page is written and
//! vCPU 0 is set to the entry state of `specs/memory-map.md`.

use tern_abi::domctl::VcpuEntry;
use tern_abi::layout::START_INFO_IPA;
use tern_abi::start_info::{START_INFO_MAGIC, StartInfo};
use tern_abi::{Error, GUEST_ABI, PAGE_SIZE};
use zerocopy::IntoBytes;

use super::{Domain, StoreLoc};
use crate::addr::GuestPhysAddr;
use crate::elf::Elf;
use crate::physmem::PhysMem;

/// `SCTLR_EL1` as a guest first sees it: MMU, caches and alignment checks off,
/// with the bits that are RES1 in ARMv8.0 set (Arm ARM D13.2.118: bits 29, 28,
/// 23, 22, 20 and 11).
pub const SCTLR_EL1_RESET: u64 =
    (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);

/// Loads `image` into `dom` and sets vCPU 0 to enter it. `module_count` goes in
/// the start-info page (dom0 reads modules by index).
///
/// Errors: `InvalidImage` if the ELF is malformed or a segment falls outside
/// RAM or over the start-info page; `InvalidState` if the domain has run.
pub fn load(
    dom: &mut Domain,
    mem: &dyn PhysMem,
    image: &[u8],
    module_count: u32,
) -> Result<u64, Error> {
    if dom.has_run {
        return Err(Error::InvalidState);
    }
    let elf = Elf::parse(image).map_err(|_| Error::InvalidImage)?;
    let info_end = START_INFO_IPA + PAGE_SIZE;
    // Check every segment before writing anything, so a bad image leaves RAM
    // as it was.
    for seg in elf.segments() {
        if !dom.ram.contains(seg.paddr, seg.mem_size) || seg.paddr.0 < info_end {
            return Err(Error::InvalidImage);
        }
    }
    let entry = elf.entry().0;
    if !entry.is_multiple_of(4) {
        return Err(Error::InvalidImage);
    }
    for seg in elf.segments() {
        dom.ram.write(mem, seg.paddr, seg.data)?;
        let tail = GuestPhysAddr(seg.paddr.0 + seg.data.len() as u64);
        dom.ram
            .zero(mem, tail, seg.mem_size - seg.data.len() as u64)?;
    }
    let info = StartInfo {
        magic: START_INFO_MAGIC,
        abi_version: GUEST_ABI.pack() as u32,
        flags: dom.flags().bits(),
        domain_id: dom.id().0,
        vcpus: dom.vcpus.len() as u32,
        ram_base: dom.ram.base().0,
        ram_size: dom.ram.size(),
        console_port: 0,
        module_count,
        name: *dom.name_field(),
        cmdline: dom.cmdline,
        store_domid: dom.store.domid,
        store_gref: dom.store.gref,
        store_port: dom.store.port,
        reserved0: 0,
        ram_phys_base: dom.ram_phys_base(),
        reserved: [0; 152],
    };
    let page = GuestPhysAddr(START_INFO_IPA);
    dom.ram.zero(mem, page, PAGE_SIZE)?;
    dom.ram.write(mem, page, info.as_bytes())?;
    let vcpu_entry = VcpuEntry {
        pc: entry,
        sp: 0,
        x: [START_INFO_IPA, dom.ram.size(), 0, 0],
    };
    dom.set_vcpu_entry(0, &vcpu_entry, SCTLR_EL1_RESET);
    dom.image_loaded = true;
    Ok(entry)
}

/// Records where `dom`'s store is and, if its start-info page is already
/// written, rewrites those fields there.
///
/// Errors: `InvalidState` if the domain has run (its start-info page may be
/// reused memory by now).
pub fn set_store(dom: &mut Domain, mem: &dyn PhysMem, store: StoreLoc) -> Result<(), Error> {
    if dom.has_run {
        return Err(Error::InvalidState);
    }
    dom.store = store;
    if dom.image_loaded {
        let at = START_INFO_IPA + core::mem::offset_of!(StartInfo, store_domid) as u64;
        let fields = [store.domid, store.gref, store.port];
        dom.ram.write(mem, GuestPhysAddr(at), fields.as_bytes())?;
    }
    Ok(())
}

/// A one-segment test image, built field by field (System V gABI layout).
#[cfg(test)]
pub fn test_image(paddr: u64, code: &[u8], bss: u64) -> alloc::vec::Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let mut f = alloc::vec![0u8; EHDR + PHDR];
    let mut put = |at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
    put(0, b"\x7fELF\x02\x01\x01");
    put(16, &2u16.to_le_bytes()); // ET_EXEC
    put(18, &183u16.to_le_bytes()); // EM_AARCH64
    put(20, &1u32.to_le_bytes()); // EV_CURRENT
    put(24, &paddr.to_le_bytes()); // e_entry
    put(32, &(EHDR as u64).to_le_bytes()); // e_phoff
    put(52, &(EHDR as u16).to_le_bytes()); // e_ehsize
    put(54, &(PHDR as u16).to_le_bytes()); // e_phentsize
    put(56, &1u16.to_le_bytes()); // e_phnum
    let p = EHDR;
    put(p, &1u32.to_le_bytes()); // PT_LOAD
    put(p + 4, &5u32.to_le_bytes()); // PF_R | PF_X
    put(p + 8, &((EHDR + PHDR) as u64).to_le_bytes()); // p_offset
    put(p + 16, &paddr.to_le_bytes()); // p_vaddr
    put(p + 24, &paddr.to_le_bytes()); // p_paddr
    put(p + 32, &(code.len() as u64).to_le_bytes()); // p_filesz
    put(p + 40, &(code.len() as u64 + bss).to_le_bytes()); // p_memsz
    put(p + 48, &4u64.to_le_bytes()); // p_align
    f.extend_from_slice(code);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::table::DomainTable;
    use crate::domain::{DomainConfig, VcpuState};
    use crate::physmem::testing::Arena;
    use tern_abi::domctl::{DomainFlags, DomainId};
    use zerocopy::FromBytes;

    fn setup() -> (Arena, Arena, DomainTable, DomainId) {
        let mem = Arena::new(0x8000_0000, 2048);
        let mut frames = Arena::new(0x8000_0000, 2048);
        let mut t = DomainTable::new();
        let cfg = DomainConfig {
            name: b"g",
            pages: 512,
            vcpus: 2,
            cmdline: b"hello=1",
            flags: DomainFlags::from_bits_retain(0),
        };
        let id = t.create(&cfg, &mut frames, &mem).unwrap();
        (mem, frames, t, id)
    }

    #[test]
    fn loads_segments_start_info_and_entry() {
        let (mem, _f, mut t, id) = setup();
        let img = test_image(0x4008_0000, &[9, 8, 7, 6], 8);
        let d = t.get_mut(id).unwrap();
        assert_eq!(load(d, &mem, &img, 0), Ok(0x4008_0000));
        let mut b = [0xffu8; 12];
        d.ram
            .read(&mem, GuestPhysAddr(0x4008_0000), &mut b)
            .unwrap();
        assert_eq!(b, [9, 8, 7, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut page = [0u8; 512];
        d.ram
            .read(&mem, GuestPhysAddr(START_INFO_IPA), &mut page)
            .unwrap();
        let si = StartInfo::read_from_bytes(&page[..]).unwrap();
        assert!(si.is_valid_for_major(1));
        assert_eq!(si.ram_size, 512 * PAGE_SIZE);
        assert_eq!(si.vcpus, 2);
        assert_eq!(tern_abi::strings::field_str(&si.cmdline), Some("hello=1"));
        let v0 = &d.vcpus[0];
        assert_eq!(v0.state, VcpuState::Runnable);
        assert_eq!(v0.ctx.gp.pc, 0x4008_0000);
        assert_eq!(v0.ctx.gp.x[0], START_INFO_IPA);
        assert_eq!(v0.ctx.gp.x[1], 512 * PAGE_SIZE);
        assert_eq!(d.vcpus[1].state, VcpuState::Down);
    }

    #[test]
    fn refuses_images_outside_ram_or_over_start_info() {
        let (mem, _f, mut t, id) = setup();
        let d = t.get_mut(id).unwrap();
        for at in [0x4000_0000, 0x3fff_f000, 0x4020_0000 - 2, 0x9000_0000] {
            let img = test_image(at, &[1, 2, 3, 4], 0);
            assert_eq!(load(d, &mem, &img, 0), Err(Error::InvalidImage), "{at:#x}");
        }
        assert_eq!(load(d, &mem, b"not an elf", 0), Err(Error::InvalidImage));
        assert!(!d.image_loaded);
        d.has_run = true;
        let img = test_image(0x4008_0000, &[1, 2, 3, 4], 0);
        assert_eq!(load(d, &mem, &img, 0), Err(Error::InvalidState));
    }
}
