//! The granter's side: finding an entry in its table, checking it, and
//! keeping its `reading`/`writing` bits in step with the uses the
//! hypervisor counts (specs/hypercalls.md, `grant_op`).
//!
//! The bits live in guest memory that the granter may rewrite at any time,
//! so they are a courtesy to the granter (they tell it a grant is in use and
//! must not be revoked). Nothing here trusts them: the hypervisor's own
//! `pins` decide when a bit may be cleared, and a mapping keeps its frame
//! whatever the entry says afterwards.

use tern_abi::Error;
use tern_abi::domctl::DomainId;
use tern_abi::grant::{
    GRANT_ENTRIES_PER_PAGE, GRANT_ENTRY_BYTES, GRANT_TABLE_MAX_PAGES, GrantEntry, GrantFlags,
    GrantRef,
};

use super::{Grants, Pin, TableRegion, live};
use crate::addr::{GuestPhysAddr, PAGE_SIZE, PhysAddr};
use crate::domain::Lifecycle;
use crate::domain::table::DomainTable;
use crate::physmem::PhysMem;

/// Byte offset of `frame` in a [`GrantEntry`].
const FRAME_OFFSET: u64 = core::mem::offset_of!(GrantEntry, frame) as u64;

impl Grants {
    /// `setup_table`: `dom`'s table is `pages` pages of its RAM at `ipa`.
    pub fn setup_table(
        &mut self,
        domains: &DomainTable,
        dom: DomainId,
        ipa: GuestPhysAddr,
        pages: u64,
    ) -> Result<(), Error> {
        if pages == 0 {
            return Err(Error::InvalidArgument);
        }
        if pages > GRANT_TABLE_MAX_PAGES {
            return Err(Error::TooBig);
        }
        let ram = &domains.get(dom)?.ram;
        if !ipa.is_aligned(PAGE_SIZE) || !ram.contains(ipa, pages * PAGE_SIZE) {
            return Err(Error::BadAddress);
        }
        let d = self.dom(dom);
        if !d.pins.is_empty() {
            return Err(Error::Busy);
        }
        d.table = Some(TableRegion { ipa, pages });
        Ok(())
    }

    /// `query_size`: pages of `dom`'s table.
    pub fn table_pages(&self, dom: DomainId) -> u64 {
        self.doms
            .get(&dom)
            .and_then(|d| d.table)
            .map_or(0, |t| t.pages)
    }

    /// The host-physical address of entry `gref` of `granter`'s table.
    fn entry_pa(
        &self,
        domains: &DomainTable,
        granter: DomainId,
        gref: GrantRef,
    ) -> Result<PhysAddr, Error> {
        let d = domains.get(granter)?;
        if d.life == Lifecycle::Dying {
            return Err(Error::NoSuchDomain);
        }
        let t = self
            .doms
            .get(&granter)
            .and_then(|g| g.table)
            .ok_or(Error::InvalidState)?;
        if u64::from(gref.0) >= t.pages * GRANT_ENTRIES_PER_PAGE {
            return Err(Error::NotFound);
        }
        // An entry never crosses a page (16 divides 4096), so its 16 bytes
        // are contiguous behind the one translation.
        let ipa = GuestPhysAddr(t.ipa.0 + u64::from(gref.0) * GRANT_ENTRY_BYTES);
        d.ram.translate(ipa).ok_or(Error::BadAddress)
    }

    /// Takes one use of entry `gref` of `granter` for `caller`: sets
    /// `reading` (and `writing` if `write`) in the entry, checks what the
    /// entry said, and returns the granted frame. On any refusal the bits
    /// are put back as the existing uses require.
    pub(super) fn pin(
        &mut self,
        domains: &DomainTable,
        mem: &dyn PhysMem,
        caller: DomainId,
        granter: DomainId,
        gref: GrantRef,
        write: bool,
    ) -> Result<PhysAddr, Error> {
        let (pa, _) = self.use_entry(domains, mem, caller, granter, gref, write)?;
        let pins = &mut self.dom(granter).pins;
        let p = pins.get(&gref.0).copied().unwrap_or_default();
        pins.insert(
            gref.0,
            Pin {
                readers: p.readers + 1,
                writers: p.writers + u32::from(write),
            },
        );
        Ok(pa)
    }

    /// [`Self::pin`] for the length of one operation under the hypervisor
    /// lock (a copy): the entry's bits are set and checked the same way,
    /// but no use is recorded; [`Self::end_use`] puts them back. Returns the
    /// frame and the entry's address.
    pub(super) fn use_entry(
        &mut self,
        domains: &DomainTable,
        mem: &dyn PhysMem,
        caller: DomainId,
        granter: DomainId,
        gref: GrantRef,
        write: bool,
    ) -> Result<(PhysAddr, PhysAddr), Error> {
        live(domains, caller)?;
        let entry = self.entry_pa(domains, granter, gref)?;
        let bits = use_bits(write);
        let (old, domid) = GrantEntry::split_word0(mem.fetch_or_u64(entry, bits.bits().into()));
        // Not granted, granted to someone else, or read-only for a write.
        let permitted = old.contains(GrantFlags::PERMIT_ACCESS)
            && domid == caller.0
            && !(write && old.contains(GrantFlags::READONLY));
        let frame = match permitted {
            false => Err(Error::PermissionDenied),
            true => self.frame_pa(
                domains,
                granter,
                mem.load_u64(PhysAddr(entry.0 + FRAME_OFFSET)),
            ),
        };
        match frame {
            Ok(pa) => Ok((pa, entry)),
            Err(e) => {
                self.end_use(mem, granter, gref, entry, write);
                Err(e)
            }
        }
    }

    /// Ends a use of [`Self::use_entry`]: clears the bits it set that no
    /// recorded use (a mapping) still needs.
    pub(super) fn end_use(
        &self,
        mem: &dyn PhysMem,
        granter: DomainId,
        gref: GrantRef,
        entry: PhysAddr,
        write: bool,
    ) {
        let left = self
            .doms
            .get(&granter)
            .and_then(|d| d.pins.get(&gref.0).copied())
            .unwrap_or_default();
        restore_bits(mem, entry, use_bits(write), left);
    }

    /// The frame behind frame number `frame` of `granter`'s RAM.
    fn frame_pa(
        &self,
        domains: &DomainTable,
        granter: DomainId,
        frame: u64,
    ) -> Result<PhysAddr, Error> {
        let ipa = frame.checked_mul(PAGE_SIZE).ok_or(Error::BadAddress)?;
        let ram = &domains.get(granter)?.ram;
        if !ram.contains(GuestPhysAddr(ipa), PAGE_SIZE) {
            return Err(Error::BadAddress);
        }
        ram.translate(GuestPhysAddr(ipa)).ok_or(Error::BadAddress)
    }

    /// Gives back one use taken by [`Grants::pin`]; clears the entry's bits
    /// that no remaining use needs. A granter that is gone is skipped.
    pub(super) fn unpin(
        &mut self,
        domains: &DomainTable,
        mem: &dyn PhysMem,
        granter: DomainId,
        gref: GrantRef,
        write: bool,
    ) {
        let Some(d) = self.doms.get_mut(&granter) else {
            return;
        };
        let Some(p) = d.pins.get_mut(&gref.0) else {
            debug_assert!(false, "unpin of an entry with no uses");
            return;
        };
        p.readers -= 1;
        p.writers -= u32::from(write);
        let left = *p;
        if left.readers == 0 {
            d.pins.remove(&gref.0);
        }
        if let Ok(entry) = self.entry_pa(domains, granter, gref) {
            restore_bits(mem, entry, use_bits(write), left);
        }
    }
}

/// The entry bits a use sets: `reading`, and `writing` for a write.
fn use_bits(write: bool) -> GrantFlags {
    if write {
        GrantFlags::READING | GrantFlags::WRITING
    } else {
        GrantFlags::READING
    }
}

/// Clears those of `bits` in the entry at `entry` that the uses `left` do
/// not need.
fn restore_bits(mem: &dyn PhysMem, entry: PhysAddr, bits: GrantFlags, left: Pin) {
    let mut keep = GrantFlags::EMPTY;
    if left.readers > 0 {
        keep |= GrantFlags::READING;
    }
    if left.writers > 0 {
        keep |= GrantFlags::WRITING;
    }
    let clear = bits.bits() & !keep.bits();
    if clear != 0 {
        mem.fetch_and_u64(entry, !u64::from(clear));
    }
}
