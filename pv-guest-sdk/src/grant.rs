//! Grant tables: sharing pages with other domains (`grant_op`,
//! specs/hypercalls.md; the model is Xen's grant tables v1).
//!
//! ```ignore
//! use pv_guest_sdk::grant::{self, Grant, Page};
//! // Granter: share a fresh page with domain 3, read-write.
//! let g = Grant::new(DomainId(3), Page::new()?, false)?;
//! tell_peer(g.gref());
//! // Mapper (domain 3): map it, use it, unmap by dropping.
//! let m = grant::map(granter, gref, false)?;
//! m.write(0, b"hello")?;
//! drop(m);
//! // Granter: take the page back (refused with `Busy` while it is mapped).
//! let page = g.end().map_err(|(_, e)| e)?;
//! ```
//!
//! This domain's own grant table lives in the SDK's bss (`TABLE_ENTRIES`
//! entries) and is registered with the hypervisor on first use. Granting
//! writes an entry (frame and domain first, then the flags with a release
//! store); revoking ([`end_access`]) replaces the entry's first word by zero
//! with a compare-and-swap that only succeeds while the hypervisor's
//! `READING`/`WRITING` bits are clear, so a grant that is mapped or being
//! copied is never revoked under its user (Xen's
//! `gnttab_end_foreign_access_ref`).
//!
//! Shared memory and Rust: a granted or mapped page may change at any
//! moment (the peer writes it), and a hostile peer changes it on purpose.
//! [`PageBuf`] is therefore made of atomic words, and its `read`/`write`
//! copy through them: a value read once with `read` cannot change after it
//! was checked. The plain byte views (`as_bytes`, [`Mapping::bytes`]) are for
//! data the peer has no reason to change; never check and then use bytes of
//! such a view as two separate reads.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

use tern_abi::domctl::DomainId;
use tern_abi::grant::{GRANT_ENTRIES_PER_PAGE, GrantEntry, GrantFlags, MapFlags, Op};
use tern_abi::ring::SharedRing;
use tern_abi::{Call, Error, PAGE_SIZE};

pub use tern_abi::grant::GrantRef;

use crate::hypercall::{self, ipa_of};

mod copy;
mod words;

pub use copy::{CopyBatch, GrantPtr, copy};
pub use words::{load_words, store_words};

/// Bytes of a page.
pub const PAGE_BYTES: usize = PAGE_SIZE as usize;
const PAGE_WORDS: usize = PAGE_BYTES / 8;
/// Pages of this domain's grant table.
pub const TABLE_PAGES: u64 = 4;
/// Grant references this domain can hand out: `0..TABLE_ENTRIES`.
pub const TABLE_ENTRIES: u32 = (TABLE_PAGES * GRANT_ENTRIES_PER_PAGE) as u32;

fn grant_call(op: Op, args: [u64; 4]) -> Result<[u64; 3], Error> {
    let [a2, a3, a4, a5] = args;
    hypercall::call(Call::GrantOp, op.raw(), [a2, a3, a4, a5, 0])
}

// ---------------------------------------------------------------- pages

/// One page of memory that may be shared with another domain: 4 KiB, page
/// aligned, made of atomic words (the peer writes it concurrently).
#[repr(C, align(4096))]
pub struct PageBuf {
    words: [AtomicU64; PAGE_WORDS],
}

const _: () = assert!(size_of::<PageBuf>() == PAGE_BYTES);
const _: () = assert!(size_of::<SharedRing>() == PAGE_BYTES);
const _: () = assert!(align_of::<SharedRing>() == align_of::<PageBuf>());

impl core::fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PageBuf@{:#x}", self.ipa())
    }
}

impl Default for PageBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PageBuf {
    /// A zeroed page (for a `static`).
    pub const fn new() -> Self {
        Self {
            words: [const { AtomicU64::new(0) }; PAGE_WORDS],
        }
    }

    /// Its guest-physical address (VA == IPA).
    pub fn ipa(&self) -> u64 {
        ipa_of(self)
    }

    /// Its frame number, as a grant entry names it.
    pub fn frame(&self) -> u64 {
        self.ipa() / PAGE_SIZE
    }

    /// The page as 512 little-endian words.
    pub fn words(&self) -> &[AtomicU64; PAGE_WORDS] {
        &self.words
    }

    /// The page as bytes. The peer may change them while the view lives:
    /// copy out with [`PageBuf::read`] what must stay as checked.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the page is 4096 initialised bytes that live as long as
        // `&self`; atomics have the layout of their integer, and a byte
        // view of memory another agent (the peer domain, outside this
        // program) writes is the documented caveat above.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), PAGE_BYTES) }
    }

    /// The page as mutable bytes (this program holds the only reference;
    /// the peer may still write it).
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`; `&mut self` excludes every other
        // reference from this program for the view's lifetime.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), PAGE_BYTES) }
    }

    /// Copies `dst.len()` bytes from `offset` into `dst`, one atomic load
    /// per word: the copy is private and the peer cannot change it.
    /// `BadAddress` if the range leaves the page.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        check_range(offset, dst.len())?;
        let mut done = 0;
        if offset.is_multiple_of(8) {
            // Whole words first (the common, aligned case).
            load_words(&self.words[offset / 8..], dst);
            done = dst.len() / 8 * 8;
        }
        while done < dst.len() {
            let at = offset + done;
            let (w, skip) = (at / 8, at % 8);
            let n = (8 - skip).min(dst.len() - done);
            let b = self.words[w].load(Ordering::Relaxed).to_le_bytes();
            dst[done..done + n].copy_from_slice(&b[skip..skip + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies `src` to `offset`, one atomic store (or compare-and-swap for
    /// a partial word) per word. `BadAddress` if the range leaves the page.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), Error> {
        check_range(offset, src.len())?;
        let mut done = 0;
        if offset.is_multiple_of(8) {
            store_words(&self.words[offset / 8..], src);
            done = src.len() / 8 * 8;
        }
        while done < src.len() {
            let at = offset + done;
            let (w, skip) = (at / 8, at % 8);
            let n = (8 - skip).min(src.len() - done);
            let mut b = [0u8; 8];
            b[skip..skip + n].copy_from_slice(&src[done..done + n]);
            let val = u64::from_le_bytes(b);
            if n == 8 {
                self.words[w].store(val, Ordering::Relaxed);
            } else {
                let mask = (u64::MAX >> (64 - 8 * n)) << (8 * skip);
                // Only our bytes change, even if the peer writes the others.
                let _ = self.words[w].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some(old & !mask | val & mask)
                });
            }
            done += n;
        }
        Ok(())
    }

    /// The page as a shared ring (`tern_abi::ring`).
    pub fn as_ring(&self) -> &SharedRing {
        // SAFETY: `SharedRing` is `repr(C)`, 4096 bytes, page aligned
        // (asserted above) and made only of atomic integers, for which any
        // bit pattern is valid; the view borrows `self`.
        unsafe { &*(self as *const Self).cast::<SharedRing>() }
    }
}

fn check_range(offset: usize, len: usize) -> Result<(), Error> {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_BYTES => Ok(()),
        _ => Err(Error::BadAddress),
    }
}

/// A zeroed page from the SDK heap, owned.
pub struct Page(Box<PageBuf>);

impl core::fmt::Debug for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl Page {
    /// Allocates a zeroed page. `NoMemory` if the heap has none.
    pub fn new() -> Result<Self, Error> {
        let layout = core::alloc::Layout::new::<PageBuf>();
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<PageBuf>();
        if p.is_null() {
            return Err(Error::NoMemory);
        }
        // SAFETY: `p` was just allocated by the global allocator with
        // `PageBuf`'s layout, and all-zero bytes are a valid `PageBuf`
        // (atomic integers), so `Box` may own and later free it.
        Ok(Self(unsafe { Box::from_raw(p) }))
    }

    /// Gives the page up for ever (e.g. to grant it with [`grant_access`]).
    pub fn leak(self) -> &'static PageBuf {
        Box::leak(self.0)
    }
}

impl core::ops::Deref for Page {
    type Target = PageBuf;
    fn deref(&self) -> &PageBuf {
        &self.0
    }
}

impl core::ops::DerefMut for Page {
    fn deref_mut(&mut self) -> &mut PageBuf {
        &mut self.0
    }
}

// ---------------------------------------------------------------- the table

/// This domain's grant table: `TABLE_ENTRIES` entries of two words each
/// (`GrantEntry`: word 0 = flags | domid << 32, word 1 = frame).
#[repr(C, align(4096))]
struct Table {
    words: [AtomicU64; TABLE_ENTRIES as usize * 2],
}

const _: () = assert!(size_of::<Table>() as u64 == TABLE_PAGES * PAGE_SIZE);
const _: () = assert!(size_of::<GrantEntry>() == 16);

static TABLE: Table = Table {
    words: [const { AtomicU64::new(0) }; TABLE_ENTRIES as usize * 2],
};

/// Which references are handed out, and whether the table is registered.
struct Refs {
    registered: bool,
    used: [u64; TABLE_ENTRIES as usize / 64],
}

static REFS: spin::Mutex<Refs> = spin::Mutex::new(Refs {
    registered: false,
    used: [0; TABLE_ENTRIES as usize / 64],
});

/// Runs `f` on the reference bitmap with the upcall masked (a handler that
/// granted on this vCPU while it held the lock would deadlock), registering
/// the table first if needed.
fn with_refs<R>(f: impl FnOnce(&mut Refs) -> Result<R, Error>) -> Result<R, Error> {
    crate::without_irqs(|| {
        let mut refs = REFS.lock();
        if !refs.registered {
            grant_call(Op::SetupTable, [ipa_of(&TABLE), TABLE_PAGES, 0, 0])?;
            refs.registered = true;
        }
        f(&mut refs)
    })
}

fn word0(r: GrantRef) -> &'static AtomicU64 {
    &TABLE.words[r.0 as usize * 2]
}

fn frame_word(r: GrantRef) -> &'static AtomicU64 {
    &TABLE.words[r.0 as usize * 2 + 1]
}

/// Registers this domain's grant table now (it is otherwise registered on
/// first use). Idempotent.
pub fn init() -> Result<(), Error> {
    with_refs(|_| Ok(()))
}

/// `query_size`: pages of this domain's registered table and the most a
/// table may have.
pub fn query_size() -> Result<(u64, u64), Error> {
    let [pages, max, _] = grant_call(Op::QuerySize, [0; 4])?;
    Ok((pages, max))
}

/// Grants domain `domid` access to frame `frame` of this domain's RAM.
///
/// # Safety
///
/// Until [`end_access`] of the returned reference succeeds, the peer may
/// read (and, unless `readonly`, write) that page at any time: the caller
/// must keep the page allocated and must not hold Rust references to it
/// that assume nobody else writes it.
pub unsafe fn grant_frame(domid: DomainId, frame: u64, readonly: bool) -> Result<GrantRef, Error> {
    with_refs(|refs| {
        let (w, b) = refs
            .used
            .iter()
            .enumerate()
            .find_map(|(w, &bits)| (bits != u64::MAX).then(|| (w, bits.trailing_ones())))
            .ok_or(Error::TooBig)?;
        refs.used[w] |= 1 << b;
        let r = GrantRef(w as u32 * 64 + b);
        let mut flags = GrantFlags::PERMIT_ACCESS;
        if readonly {
            flags |= GrantFlags::READONLY;
        }
        // The frame first; the flags last with release, so the hypervisor
        // never sees a permitted entry with a stale frame.
        frame_word(r).store(frame, Ordering::Relaxed);
        word0(r).store(GrantEntry::word0(flags, domid.0), Ordering::Release);
        Ok(r)
    })
}

/// Grants domain `domid` access to `page`, which lives for ever (a
/// `static`, or [`Page::leak`]). For a page to take back later use
/// [`Grant`].
pub fn grant_access(
    domid: DomainId,
    page: &'static PageBuf,
    readonly: bool,
) -> Result<GrantRef, Error> {
    // SAFETY: `page` is never freed, and `PageBuf` is made of atomics, so
    // the peer's writes break no Rust reference's assumptions.
    unsafe { grant_frame(domid, page.frame(), readonly) }
}

/// Revokes grant `gref` and frees the reference. `Busy` while the grant is
/// mapped or being copied (the hypervisor's `READING`/`WRITING` bits are
/// set): the grant stays, try again later. `NotFound` if this domain did
/// not hand `gref` out.
pub fn end_access(gref: GrantRef) -> Result<(), Error> {
    with_refs(|refs| {
        if gref.0 >= TABLE_ENTRIES || refs.used[gref.0 as usize / 64] & 1 << (gref.0 % 64) == 0 {
            return Err(Error::NotFound);
        }
        let w = word0(gref);
        let mut cur = w.load(Ordering::Acquire);
        loop {
            let (flags, _) = GrantEntry::split_word0(cur);
            if flags.bits() & GrantFlags::IN_USE.bits() != 0 {
                return Err(Error::Busy);
            }
            // Succeeds only if the hypervisor set no bit since the load: a
            // map that starts after this sees no PERMIT_ACCESS and refuses.
            match w.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        refs.used[gref.0 as usize / 64] &= !(1 << (gref.0 % 64));
        Ok(())
    })
}

/// The flags of entry `gref` of this domain's table as they are now (e.g.
/// to see the hypervisor's `READING`/`WRITING`); `None` beyond the table.
pub fn entry_flags(gref: GrantRef) -> Option<GrantFlags> {
    (gref.0 < TABLE_ENTRIES).then(|| GrantEntry::split_word0(word0(gref).load(Ordering::Acquire)).0)
}

/// A page from the heap granted to another domain, taken back with
/// [`Grant::end`]. Dropping a grant that is still in use leaks its page
/// rather than free memory the peer can reach.
pub struct Grant {
    page: Option<Page>,
    gref: GrantRef,
    peer: DomainId,
}

impl core::fmt::Debug for Grant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Grant({} to domain {})", self.gref.0, self.peer.0)
    }
}

impl Grant {
    /// Grants `page` to `peer` (read-only if `readonly`).
    pub fn new(peer: DomainId, page: Page, readonly: bool) -> Result<Self, Error> {
        // SAFETY: the `Grant` owns the page and frees it only after
        // `end_access` succeeded (`end`, `drop`); `PageBuf` is atomics.
        let gref = unsafe { grant_frame(peer, page.frame(), readonly)? };
        Ok(Self {
            page: Some(page),
            gref,
            peer,
        })
    }

    /// The grant reference to give the peer.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// The domain the page is granted to.
    pub fn peer(&self) -> DomainId {
        self.peer
    }

    /// The page (the peer may be writing it).
    pub fn page(&self) -> &PageBuf {
        self.page.as_ref().expect("a live grant owns its page")
    }

    /// The page, mutably (the peer may still be writing it).
    pub fn page_mut(&mut self) -> &mut PageBuf {
        self.page.as_mut().expect("a live grant owns its page")
    }

    /// Revokes the grant and returns the page; on failure (`Busy`: the peer
    /// has it mapped) returns the grant unchanged with the error.
    pub fn end(mut self) -> Result<Page, (Self, Error)> {
        match end_access(self.gref) {
            Ok(()) => Ok(self.page.take().expect("a live grant owns its page")),
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Some(page) = self.page.take()
            && end_access(self.gref).is_err()
        {
            // Still mapped by the peer: the memory must never be reused.
            core::mem::forget(page);
        }
    }
}

// ---------------------------------------------------------------- mapping

/// A foreign page mapped into this domain (`grant_op map`); unmapped when
/// dropped. Read-only mappings give no mutable access.
#[derive(Debug)]
pub struct Mapping {
    handle: u64,
    ipa: u64,
    /// The page's machine address (dom0 only; else 0).
    machine: u64,
    writable: bool,
}

/// Maps grant `gref` of domain `granter` (read-only if `readonly`).
pub fn map(granter: DomainId, gref: GrantRef, readonly: bool) -> Result<Mapping, Error> {
    let flags = if readonly {
        MapFlags::READONLY
    } else {
        MapFlags::EMPTY
    };
    let [handle, ipa, machine] =
        grant_call(Op::Map, [granter.0.into(), gref.0.into(), flags.bits(), 0])?;
    Ok(Mapping {
        handle,
        ipa,
        machine,
        writable: !readonly,
    })
}

/// `grant_op unmap` of a raw handle (tests of the hypervisor's checks).
///
/// # Safety
///
/// No live [`Mapping`] may hold `handle`: its page would vanish under it.
pub unsafe fn unmap_handle(handle: u64) -> Result<(), Error> {
    grant_call(Op::Unmap, [handle, 0, 0, 0]).map(|_| ())
}

impl Mapping {
    /// The handle the hypervisor gave.
    pub fn handle(&self) -> u64 {
        self.handle
    }

    /// Where the page appears in this domain (in the mapping window).
    pub fn ipa(&self) -> u64 {
        self.ipa
    }

    /// The page's machine address, which the hypervisor tells dom0 alone
    /// (for its devices' DMA); `None` elsewhere.
    pub fn machine(&self) -> Option<u64> {
        (self.machine != 0).then_some(self.machine)
    }

    /// Whether the mapping may be written.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn buf(&self) -> &PageBuf {
        // SAFETY: the hypervisor mapped a page at `ipa` (page aligned, in
        // the mapping window, VA == IPA) and keeps it until `unmap` in
        // `drop`, after the borrow of `self` ends. `PageBuf` is atomics, so
        // the peer's writes break no assumption. A read-only mapping is
        // never written through this view (`shared` refuses it).
        unsafe { &*(self.ipa as usize as *const PageBuf) }
    }

    /// The page's bytes (the granter may change them: copy out with
    /// [`Mapping::read`] what must stay as checked).
    pub fn bytes(&self) -> &[u8] {
        self.buf().as_bytes()
    }

    /// The page's bytes, mutably; `None` for a read-only mapping.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: as in `buf`; the mapping is writable and `&mut self`
        // excludes other references from this program.
        Some(unsafe { &mut *(self.ipa as usize as *mut PageBuf) }.as_mut_bytes())
    }

    /// Copies bytes from `offset` into `dst` (a private snapshot).
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        self.buf().read(offset, dst)
    }

    /// Copies `src` to `offset`. `PermissionDenied` on a read-only mapping.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), Error> {
        self.shared()
            .ok_or(Error::PermissionDenied)?
            .write(offset, src)
    }

    /// The page as shared words; `None` for a read-only mapping.
    pub fn shared(&self) -> Option<&PageBuf> {
        self.writable.then(|| self.buf())
    }

    /// Unmaps now, reporting the hypervisor's answer.
    pub fn unmap(self) -> Result<(), Error> {
        let h = self.handle;
        core::mem::forget(self);
        // SAFETY: `self` is gone, so no mapping holds `h` any more.
        unsafe { unmap_handle(h) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: this mapping is going away; nothing else holds its handle.
        // An error can only mean the hypervisor already dropped it.
        let _ = unsafe { unmap_handle(self.handle) };
    }
}

#[cfg(test)]
mod tests;
