//! `grant_op copy`: copying between this domain's buffers and granted
//! pages without mapping them.

use alloc::vec::Vec;
use core::marker::PhantomData;

use tern_abi::PAGE_SIZE;
use tern_abi::domctl::DomainId;
use tern_abi::grant::{COPY_BATCH_MAX, CopyFlags, CopyPtr, GrantCopy, Op};
use tern_abi::{Error, status_to_result};

use super::{GrantRef, PAGE_BYTES, check_range, grant_call};
use crate::hypercall::{self, ipa_of};

/// `grant_op copy` of raw operations, in batches of `COPY_BATCH_MAX`; each
/// entry's `status` is written. Returns how many failed.
///
/// # Safety
///
/// Every end without its `*_GREF` flag names an address of this domain's
/// RAM that the hypervisor will read (`src`) or write (`dst`): the caller
/// must own those bytes (writable for `dst`) for the duration of the call.
/// [`CopyBatch`] builds such operations from borrowed buffers safely.
pub unsafe fn copy(ops: &mut [GrantCopy]) -> Result<u32, Error> {
    let mut failed = 0;
    for chunk in ops.chunks_mut(COPY_BATCH_MAX as usize) {
        let ipa = hypercall::ipa_of_mut(chunk);
        let [n, _, _] = grant_call(Op::Copy, [ipa, chunk.len() as u64, 0, 0])?;
        failed += n as u32;
    }
    Ok(failed)
}

/// A batch of grant copies between borrowed buffers of this domain and
/// granted pages, checked and split where a buffer crosses a page (the
/// hypervisor copies within one page per operation).
#[derive(Debug, Default)]
pub struct CopyBatch<'a> {
    pub(super) ops: Vec<GrantCopy>,
    /// For each operation, the index of the `push` it belongs to.
    owner: Vec<usize>,
    pushes: usize,
    bufs: PhantomData<&'a mut [u8]>,
}

/// One end of a copy in a granted page: domain, reference, byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantPtr {
    /// The granting domain.
    pub domid: DomainId,
    /// Its grant reference.
    pub gref: GrantRef,
    /// Byte offset in the page.
    pub offset: usize,
}

impl GrantPtr {
    fn at(self, delta: usize) -> CopyPtr {
        CopyPtr {
            domid: self.domid.0,
            gref: self.gref.0,
            offset: (self.offset + delta) as u64,
        }
    }
}

fn local(ipa: u64) -> CopyPtr {
    CopyPtr {
        domid: 0,
        gref: 0,
        offset: ipa,
    }
}

impl<'a> CopyBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a copy from `len` bytes of a local buffer at `ipa` (split at page
    /// boundaries) to or from `grant`.
    fn push_local(&mut self, grant: GrantPtr, ipa: u64, len: usize, to_grant: bool) -> usize {
        let i = self.pushes;
        self.pushes += 1;
        let mut done = 0;
        while done < len {
            let here = ipa + done as u64;
            let n = (PAGE_BYTES - (here % PAGE_SIZE) as usize).min(len - done);
            let (src, dst, flags) = if to_grant {
                (local(here), grant.at(done), CopyFlags::DST_GREF)
            } else {
                (grant.at(done), local(here), CopyFlags::SRC_GREF)
            };
            self.ops.push(GrantCopy {
                src,
                dst,
                len: n as u16,
                flags: flags.bits(),
                status: 0,
            });
            self.owner.push(i);
            done += n;
        }
        i
    }

    /// Adds a copy of `dst.len()` bytes from `src` into `dst`. Returns the
    /// index for [`CopyBatch::status`]; `BadAddress` if the range leaves the
    /// granted page.
    pub fn from_grant(&mut self, src: GrantPtr, dst: &'a mut [u8]) -> Result<usize, Error> {
        check_range(src.offset, dst.len())?;
        let ipa = hypercall::ipa_of_mut(dst);
        Ok(self.push_local(src, ipa, dst.len(), false))
    }

    /// Adds a copy of `src` into the granted page at `dst`.
    pub fn to_grant(&mut self, src: &'a [u8], dst: GrantPtr) -> Result<usize, Error> {
        check_range(dst.offset, src.len())?;
        Ok(self.push_local(dst, ipa_of(src), src.len(), true))
    }

    /// Adds a copy of `len` bytes between two granted pages.
    pub fn between(&mut self, src: GrantPtr, dst: GrantPtr, len: usize) -> Result<usize, Error> {
        check_range(src.offset, len)?;
        check_range(dst.offset, len)?;
        let i = self.pushes;
        self.pushes += 1;
        self.ops.push(GrantCopy {
            src: src.at(0),
            dst: dst.at(0),
            len: len as u16,
            flags: (CopyFlags::SRC_GREF | CopyFlags::DST_GREF).bits(),
            status: 0,
        });
        self.owner.push(i);
        Ok(i)
    }

    /// Copies added so far.
    pub fn len(&self) -> usize {
        self.pushes
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.pushes == 0
    }

    /// Runs the batch (one hypercall per `COPY_BATCH_MAX` operations).
    /// Returns how many of the added copies failed; [`CopyBatch::status`]
    /// says which and why.
    pub fn run(&mut self) -> Result<usize, Error> {
        if self.ops.is_empty() {
            return Ok(0);
        }
        // SAFETY: every local end was built from a buffer borrowed for 'a
        // (mutably for destinations), which outlives `self`.
        unsafe { copy(&mut self.ops)? };
        Ok((0..self.pushes)
            .filter(|&i| self.status(i).is_err())
            .count())
    }

    /// The outcome of copy `i` after [`CopyBatch::run`].
    pub fn status(&self, i: usize) -> Result<(), Error> {
        self.ops
            .iter()
            .zip(&self.owner)
            .filter(|&(_, &o)| o == i)
            .map(|(op, _)| status_to_result(op.status.into()))
            .find(Result::is_err)
            .unwrap_or(Ok(()))
    }
}
