//! The SCSI midlayer as safe objects: a [`HostTemplate`] built from a [`HostOps`]
//! implementation (queuecommand, eh_abort/device_reset/target_reset, sysfs
//! attributes on the host), a [`Host`] (alloc → add → scan → remove → put), a
//! [`HostHandle`] that blocks and unblocks the host's devices during recovery,
//! and [`Cmd`], an in-flight command with its accessors (CDB, LUN, direction,
//! transfer length, sg copy in and out, sense, result, residual, `scsi_done`).
//!
//! Soundness does not rest on the driver keeping promises: a [`HostHandle`] is
//! revoked before the host is removed (its calls then fail with `ENODEV`), and
//! every [`Cmd`] is checked against a per-tag ownership table ([`CmdSlots`])
//! that the wrapper revokes whenever the midlayer takes a command back (EH),
//! so a handle the driver kept too long can neither touch the command nor
//! complete it twice.
//!
//! Per-command protocol state does not live in the command's private area
//! (`cmd_size` stays 0): the session keeps it in a tag-indexed table under its own
//! lock, which is safe Rust and lets the receive path find a task by ITT.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use kernel::error::{code, to_result, Error, Result};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{new_mutex, Arc, ArcBorrow, Mutex};
use kernel::types::{ForeignOwnable, Opaque};
use kernel::ThisModule;

use super::bindings;
use super::socket::{SkbSlice, TxPages};

/// Why `queuecommand` refuses a command for now (the midlayer retries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Hold this target back (e.g. the CmdSN window is closed).
    Target,
    /// Hold the whole host back (e.g. the connection is being re-established).
    Host,
}

/// Host byte of a command result (`enum scsi_host_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostByte {
    /// DID_OK.
    Ok,
    /// DID_NO_CONNECT: the session is gone.
    NoConnect,
    /// DID_BAD_TARGET: the target answered something impossible.
    BadTarget,
    /// DID_ERROR: transport-level failure of this command.
    Error,
    /// DID_TRANSPORT_DISRUPTED: the connection failed; the midlayer may retry.
    TransportDisrupted,
    /// DID_RESET: ended by a reset.
    Reset,
    /// DID_TRANSPORT_FAILFAST: the transport gave up (replacement timeout);
    /// not retried, so multipath can switch paths.
    TransportFailfast,
}

impl HostByte {
    fn code(self) -> u32 {
        match self {
            HostByte::Ok => bindings::scsi_host_status_DID_OK,
            HostByte::NoConnect => bindings::scsi_host_status_DID_NO_CONNECT,
            HostByte::BadTarget => bindings::scsi_host_status_DID_BAD_TARGET,
            HostByte::Error => bindings::scsi_host_status_DID_ERROR,
            HostByte::TransportDisrupted => bindings::scsi_host_status_DID_TRANSPORT_DISRUPTED,
            HostByte::Reset => bindings::scsi_host_status_DID_RESET,
            HostByte::TransportFailfast => bindings::scsi_host_status_DID_TRANSPORT_FAILFAST,
        }
    }
}

/// Data direction of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataDir {
    /// No data.
    None,
    /// Initiator to target (write).
    ToDevice,
    /// Target to initiator (read).
    FromDevice,
    /// Both (not supported by this initiator).
    Bidirectional,
}

/// Outcome of a reset handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EhStatus {
    /// Done: no command of the scope is held by the driver any more.
    Success,
    /// Escalate.
    Failed,
}

/// Outcome of `eh_abort_handler`: success must hand back the aborted command's
/// handle, so the driver provably keeps no reference to it.
pub(crate) enum EhAbort {
    /// The command is aborted (or was never ours); the midlayer owns it again.
    Success(Option<Cmd>),
    /// Escalate.
    Failed,
}

/// Ownership word of one tag: bit 0 says the driver holds the command, bits
/// 1..8 count accessors inside it, the bits above are the generation, bumped
/// each time the driver lets go (completion, refusal, EH taking it back).
const HELD: u64 = 1;
const USER: u64 = 1 << 1;
const USERS: u64 = 0x7f << 1;
const GENERATION: u64 = 1 << 8;
const GENERATION_MASK: u64 = !(GENERATION - 1);

/// One tag's ownership: the word above and the device of the held command.
struct Slot {
    word: AtomicU64,
    /// `scsi_device` of the held command, as an address (LUN-scoped revokes).
    dev: AtomicUsize,
}

/// Who owns each command of a host, indexed by blk-mq tag. Kept outside the
/// commands (and their tag set) so a [`Cmd`] the driver still holds can be
/// revoked, and can find out it was, even after the host is gone: every `Cmd`
/// keeps this table alive.
///
/// This is what makes the EH contract checked rather than promised: whenever
/// the midlayer takes a command back (an EH handler succeeds for it, or a
/// target reset ends, after which it finishes every command either way) the
/// wrapper revokes the driver's handle first, waiting out accessors in flight;
/// a revoked handle can no longer touch the command, and completing it does
/// nothing.
pub(crate) struct CmdSlots {
    slots: KVec<Slot>,
}

impl CmdSlots {
    fn new(n: usize) -> Result<Arc<Self>> {
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            slots.push(
                Slot {
                    word: AtomicU64::new(0),
                    dev: AtomicUsize::new(0),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Arc::new(CmdSlots { slots }, GFP_KERNEL)?)
    }

    /// Marks tag `i` held by a new handle for a command of device `dev`,
    /// revoking a stale handle first (EH may queue a command the driver still
    /// holds, e.g. its TEST UNIT READY). The generation the handle carries.
    fn take(&self, i: usize, dev: usize) -> Option<u64> {
        let slot = self.slots.get(i)?;
        self.revoke(i);
        slot.dev.store(dev, Ordering::Relaxed);
        // Only the midlayer hands out a tag, so nobody else takes it meanwhile.
        let w = slot.word.fetch_or(HELD, Ordering::AcqRel);
        Some(w & GENERATION_MASK)
    }

    /// Enters tag `i` as an accessor of generation `gen`: false if the handle
    /// was revoked (or let go).
    fn enter(&self, i: usize, gen: u64) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        let mut w = slot.word.load(Ordering::Acquire);
        loop {
            if w & HELD == 0 || w & GENERATION_MASK != gen || w & USERS == USERS {
                return false;
            }
            match slot
                .word
                .compare_exchange(w, w + USER, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    fn leave(&self, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            slot.word.fetch_sub(USER, Ordering::Release);
        }
    }

    /// The handle of generation `gen` lets go of tag `i`: true if it still held
    /// it (so the caller may hand the command on), false if it was revoked.
    fn release(&self, i: usize, gen: u64) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        // The handle is consumed, so no accessor of it is inside.
        slot.word
            .compare_exchange(
                gen | HELD,
                gen.wrapping_add(GENERATION),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Takes tag `i` away from whatever handle holds it, after the accessors
    /// inside have left. Sleeps (process context only).
    fn revoke(&self, i: usize) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        let mut w = slot.word.load(Ordering::Acquire);
        loop {
            if w & HELD == 0 {
                return;
            }
            if w & USERS != 0 {
                // Accessors copy bytes or read a socket without blocking;
                // callers are in process context.
                super::sleep_ms(1);
                w = slot.word.load(Ordering::Acquire);
                continue;
            }
            let next = (w & GENERATION_MASK).wrapping_add(GENERATION);
            match slot
                .word
                .compare_exchange(w, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Revokes every held command, or those of device `dev`.
    fn revoke_all(&self, dev: Option<usize>) {
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.word.load(Ordering::Acquire) & HELD == 0 {
                continue;
            }
            let of_dev = match dev {
                Some(d) => slot.dev.load(Ordering::Relaxed) == d,
                None => true,
            };
            if of_dev {
                self.revoke(i);
            }
        }
    }
}

/// The error of a [`Cmd`] data method when the midlayer took the command back:
/// nothing was copied or read. No other failure of those methods uses it.
pub(crate) const TAKEN_BACK: Error = code::ENODEV;

/// What a command asked for, read once when the driver took it (it does not
/// change while the driver holds it), so these reads need no access checks.
#[derive(Clone, Copy)]
struct CmdInfo {
    cdb: [u8; 32],
    cdb_len: u8,
    lun: u64,
    dir: DataDir,
    transfer_len: u32,
    unique_tag: u32,
}

/// An in-flight SCSI command handed to the driver by `queuecommand`.
///
/// # Invariants
///
/// `ptr` points at a command the midlayer passed to our `queuecommand` for the
/// host whose table is `slots`, at tag `index`. While `slots` says generation
/// `gen` of that tag is held, the midlayer leaves the command (and its data and
/// sense buffers) to the driver; each access to it happens between a successful
/// [`CmdSlots::enter`] and [`CmdSlots::leave`], which a revocation waits for.
/// Once the generation moves on the handle never touches the command again.
pub(crate) struct Cmd {
    ptr: NonNull<bindings::scsi_cmnd>,
    slots: Arc<CmdSlots>,
    index: usize,
    gen: u64,
    info: CmdInfo,
    /// Where [`Cmd::copy_from_skb`] last started in the sg list: null, or an entry
    /// of this command's table with the bytes before it and its index, so
    /// in-order Data-In does not walk the list from its head on every call.
    rx_cursor: bindings::iscsi_rs_sg_cursor,
    /// The same for [`Cmd::pin_pages`] (Data-Out goes in order too).
    tx_cursor: bindings::iscsi_rs_sg_cursor,
}

// SAFETY: the command belongs to the driver alone while held, and every access
// is checked against the slot, which is atomic; any thread may do it.
unsafe impl Send for Cmd {}
// SAFETY: `&Cmd` methods either read the snapshot or enter the slot first.
unsafe impl Sync for Cmd {}

/// An accessor inside a held command (see [`CmdSlots::enter`]).
struct Access<'a> {
    cmd: &'a Cmd,
}

impl Drop for Access<'_> {
    fn drop(&mut self) {
        self.cmd.slots.leave(self.cmd.index);
    }
}

impl Cmd {
    /// Takes the command the midlayer just queued on a host with table
    /// `slots`. `None` if its tag is outside the table (a midlayer bug).
    ///
    /// # Safety
    ///
    /// `ptr` is a command passed to `queuecommand` of that host, not yet
    /// completed, with a live device.
    unsafe fn take(ptr: NonNull<bindings::scsi_cmnd>, slots: &Arc<CmdSlots>) -> Option<Self> {
        let raw = ptr.as_ptr();
        // SAFETY: per the function's contract the command and its device are
        // live, and nothing else writes these fields while it is queued to us.
        let info = unsafe {
            let c = &*raw;
            let len = usize::from(c.cmd_len).min(c.cmnd.len());
            let mut cdb = [0u8; 32];
            if let (Some(d), Some(s)) = (cdb.get_mut(..len), c.cmnd.get(..len)) {
                d.copy_from_slice(s);
            }
            CmdInfo {
                cdb,
                cdb_len: len as u8,
                lun: (*c.device).lun,
                dir: match c.sc_data_direction {
                    bindings::dma_data_direction_DMA_TO_DEVICE => DataDir::ToDevice,
                    bindings::dma_data_direction_DMA_FROM_DEVICE => DataDir::FromDevice,
                    bindings::dma_data_direction_DMA_BIDIRECTIONAL => DataDir::Bidirectional,
                    _ => DataDir::None,
                },
                transfer_len: c.sdb.length,
                unique_tag: bindings::iscsi_rs_cmd_unique_tag(raw),
            }
        };
        let index = (info.unique_tag & 0xffff) as usize;
        // SAFETY: as above: the device is live.
        let dev = unsafe { (*raw).device } as usize;
        let gen = slots.take(index, dev)?;
        // INVARIANT: the slot now says generation `gen` is held by this handle.
        Some(Cmd {
            ptr,
            slots: slots.clone(),
            index,
            gen,
            info,
            rx_cursor: bindings::iscsi_rs_sg_cursor::default(),
            tx_cursor: bindings::iscsi_rs_sg_cursor::default(),
        })
    }

    fn raw(&self) -> *mut bindings::scsi_cmnd {
        self.ptr.as_ptr()
    }

    /// Enters the command, unless it was taken back.
    fn access(&self) -> Option<Access<'_>> {
        self.slots
            .enter(self.index, self.gen)
            .then_some(Access { cmd: self })
    }

    /// Whether the midlayer took the command back (the driver should forget it).
    pub(crate) fn revoked(&self) -> bool {
        self.access().is_none()
    }

    /// The CDB.
    pub(crate) fn cdb(&self) -> &[u8] {
        self.info
            .cdb
            .get(..usize::from(self.info.cdb_len))
            .unwrap_or(&[])
    }

    /// The Linux LUN of the command's device.
    pub(crate) fn lun(&self) -> u64 {
        self.info.lun
    }

    /// The LUN in SAM 8-byte form, as a big-endian u64 (the BHS LUN field).
    pub(crate) fn lun_sam(&self) -> u64 {
        lun_to_sam(self.lun())
    }

    /// The data direction.
    pub(crate) fn direction(&self) -> DataDir {
        self.info.dir
    }

    /// Bytes to transfer (`scsi_bufflen`).
    pub(crate) fn transfer_len(&self) -> u32 {
        self.info.transfer_len
    }

    /// The blk-mq unique tag (hardware queue in bits 16.., tag below).
    pub(crate) fn unique_tag(&self) -> u32 {
        self.info.unique_tag
    }

    /// The blk-mq hardware queue it was dispatched on.
    pub(crate) fn hwq(&self) -> u16 {
        (self.info.unique_tag >> 16) as u16
    }

    /// Copies bytes `from..from + len` of a received skb piece straight into
    /// the data buffer at byte `offset`: Data-In payload in one copy, without
    /// a bounce buffer. With `crc`, the bytes are also folded into that
    /// CRC32C register (no final inversion): the data digest. Fails (copying
    /// nothing) unless both ranges hold and the command is still ours.
    pub(crate) fn copy_from_skb(
        &mut self,
        offset: u32,
        skb: &SkbSlice<'_>,
        from: usize,
        len: usize,
        crc: Option<&mut u32>,
    ) -> Result {
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.transfer_len()) {
            return Err(code::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let (raw_skb, skb_off) = skb.range(from, len)?;
        let crc = crc.map_or(ptr::null_mut(), ptr::from_mut);
        let mut cursor = self.rx_cursor;
        let ret = {
            let _in = self.access().ok_or(TAKEN_BACK)?;
            // SAFETY: we are inside the held command (invariant), whose sg list
            // maps at least `transfer_len` bytes (the range was checked above);
            // the cursor is null or in that list; the skb holds the source
            // range (`range` checked it) while `skb` is borrowed; `crc` is
            // null or a live exclusive borrow.
            unsafe {
                let t = &(*self.raw()).sdb.table;
                bindings::iscsi_rs_skb_to_sg(
                    raw_skb,
                    skb_off,
                    t.sgl,
                    t.nents,
                    offset as usize,
                    len,
                    &mut cursor,
                    crc,
                )
            }
        };
        self.rx_cursor = cursor;
        to_result(ret)
    }

    /// Takes references on the pages of bytes `offset..offset + len` of the
    /// data buffer into `pages`, to send them by reference. `Ok(false)` (and
    /// `pages` empty) if they cannot be sent that way (slab memory, or too
    /// many pages): copy them instead. Fails unless the range lies within
    /// [`Self::transfer_len`] and the command is still ours.
    pub(crate) fn pin_pages(&mut self, offset: u32, len: u32, pages: &mut TxPages) -> Result<bool> {
        let end = u64::from(offset) + u64::from(len);
        if end > u64::from(self.transfer_len()) || len == 0 {
            return Err(code::EINVAL);
        }
        let mut cursor = self.tx_cursor;
        let ret = {
            let _in = self.access().ok_or(TAKEN_BACK)?;
            // SAFETY: we are inside the held command (invariant), whose sg list
            // maps at least `transfer_len` bytes (the range was checked above);
            // the cursor is null or in that list; the array is live and ours.
            unsafe {
                let t = &(*self.raw()).sdb.table;
                bindings::iscsi_rs_pages_get(
                    pages.raw(),
                    t.sgl,
                    t.nents,
                    offset as usize,
                    len as usize,
                    &mut cursor,
                )
            }
        };
        self.tx_cursor = cursor;
        match ret {
            0 => Ok(true),
            e if e == -(bindings::EOPNOTSUPP as c_int) || e == -(bindings::E2BIG as c_int) => {
                Ok(false)
            }
            e => Err(Error::from_errno(e)),
        }
    }

    /// Copies bytes at `offset` of the data buffer into `dst` (all of it).
    pub(crate) fn copy_to_buf(&self, offset: u32, dst: &mut [u8]) -> Result {
        let end = u64::from(offset) + dst.len() as u64;
        if end > u64::from(self.transfer_len()) {
            return Err(code::EINVAL);
        }
        if dst.is_empty() {
            return Ok(());
        }
        let _in = self.access().ok_or(TAKEN_BACK)?;
        // SAFETY: we are inside the held command (invariant), whose sg list
        // maps at least `transfer_len` bytes (the range was checked above);
        // the list is only read.
        let n = unsafe {
            let t = &(*self.raw()).sdb.table;
            bindings::sg_pcopy_to_buffer(
                t.sgl,
                t.nents,
                dst.as_mut_ptr().cast(),
                dst.len(),
                offset as _,
            )
        };
        if n == dst.len() {
            Ok(())
        } else {
            Err(code::EINVAL)
        }
    }

    /// Stores sense data (truncated to the midlayer's buffer). Nothing happens
    /// if the command was taken back.
    pub(crate) fn set_sense(&mut self, sense: &[u8]) {
        let n = sense.len().min(bindings::SCSI_SENSE_BUFFERSIZE as usize);
        let Some(_in) = self.access() else { return };
        // SAFETY: inside the held command; `sense_buffer` holds
        // SCSI_SENSE_BUFFERSIZE bytes.
        unsafe {
            let dst = (*self.raw()).sense_buffer;
            if !dst.is_null() {
                ptr::copy_nonoverlapping(sense.as_ptr(), dst, n);
            }
        }
    }

    /// Sets the result: host byte and SCSI status (nothing if taken back).
    pub(crate) fn set_result(&mut self, host: HostByte, status: u8) {
        let Some(_in) = self.access() else { return };
        // SAFETY: inside the held command.
        unsafe { (*self.raw()).result = ((host.code() << 16) | u32::from(status)) as c_int };
    }

    /// Sets the residual count (`scsi_set_resid`; nothing if taken back).
    pub(crate) fn set_resid(&mut self, resid: u32) {
        let Some(_in) = self.access() else { return };
        // SAFETY: inside the held command.
        unsafe { (*self.raw()).resid_len = resid };
    }

    /// Completes the command (`scsi_done`): the midlayer owns it again. A
    /// command the midlayer already took back is only forgotten.
    pub(crate) fn complete(self) {
        if self.slots.release(self.index, self.gen) {
            // SAFETY: we held the command until the release above, which no
            // revocation can undo; `self` is consumed so this happens once.
            unsafe { bindings::scsi_done(self.raw()) };
        }
    }

    /// Completes the command in the caller's context (`scsi_done_direct`):
    /// the request finishes here instead of in the block softirq, which from
    /// process context means a ksoftirqd wakeup per command. For the receive
    /// path (the socket callback in softirq, or the RX work), called with no
    /// lock of the driver's held: the completion runs right here.
    pub(crate) fn complete_direct(self) {
        if self.slots.release(self.index, self.gen) {
            // SAFETY: as in `complete`: held until the release above, and
            // `self` is consumed so this happens once.
            unsafe { bindings::scsi_done_direct(self.raw()) };
        }
    }

    /// Gives the command back without completing it (refused, or handed to
    /// EH): whether it was still ours.
    fn give_back(self) -> bool {
        self.slots.release(self.index, self.gen)
    }
}

/// The SAM form of a Linux LUN, as a big-endian u64.
fn lun_to_sam(lun: u64) -> u64 {
    let mut l = bindings::scsi_lun::default();
    // SAFETY: plain conversion into a local.
    unsafe { bindings::int_to_scsilun(lun, &mut l) };
    u64::from_be_bytes(l.scsi_lun)
}

/// A command shown to an EH handler without handing it over.
pub(crate) struct EhCmd {
    ptr: *mut bindings::scsi_cmnd,
}

impl EhCmd {
    /// Whether `cmd` is the handle of this very command.
    pub(crate) fn is(&self, cmd: &Cmd) -> bool {
        cmd.raw() == self.ptr
    }

    /// The command's blk-mq unique tag.
    pub(crate) fn unique_tag(&self) -> u32 {
        // SAFETY: the midlayer keeps the command alive during the EH callback.
        unsafe { bindings::iscsi_rs_cmd_unique_tag(self.ptr) }
    }

    /// The LUN of the command's device in SAM form (see [`Cmd::lun_sam`]).
    pub(crate) fn lun_sam(&self) -> u64 {
        // SAFETY: the midlayer keeps the command and its device alive during
        // the EH callback.
        lun_to_sam(unsafe { (*(*self.ptr).device).lun })
    }
}

/// Where a sysfs `show` writes: the page sysfs gave us, bounded.
pub(crate) struct SysfsBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SysfsBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Leave room for sysfs's terminating NUL; truncate silently beyond.
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.len);
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + n),
            s.as_bytes().get(..n),
        ) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}

/// A SCSI host driver: what the midlayer's callbacks do. `queue_command` may
/// block (the template sets `queuecommand_may_block`).
pub(crate) trait HostOps: Send + Sync + Sized + 'static {
    /// The sysfs attributes on the host, shown by `show_attr` and, if
    /// writable, set by `store_attr`.
    const ATTRS: &'static [HostAttr];

    /// Starts `cmd`; on refusal returns it untouched with the busy kind.
    /// `more`: the block layer has more commands for this batch (the
    /// command is not `SCMD_LAST`), so what is sent may wait for them; the
    /// batch ends with a call whose `more` is false, or with `commit`.
    fn queue_command(
        this: ArcBorrow<'_, Self>,
        cmd: Cmd,
        more: bool,
    ) -> core::result::Result<(), (Cmd, Busy)>;

    /// `device_configure`: whether the device's queue must keep pages
    /// stable while a write is in flight (BLK_FEAT_STABLE_WRITES): the
    /// driver computes a digest over pages it sends by reference.
    fn stable_writes(this: ArcBorrow<'_, Self>) -> bool;

    /// `commit_rqs`: a batch of hardware queue `hwq` ended without its last
    /// command (the block layer had told `queue_command` more would come,
    /// then stopped): send what was held back for it. May block, as
    /// `queue_command`.
    fn commit(this: ArcBorrow<'_, Self>, hwq: u16);

    /// `eh_abort_handler`. On success (the command handed back, or "not
    /// ours") the midlayer owns the command again: a handle still kept is
    /// revoked.
    fn eh_abort(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhAbort;

    /// `eh_device_reset_handler` for the LUN of `cmd`. On success the midlayer
    /// takes back every command of that LUN: handles still kept are revoked.
    fn eh_device_reset(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhStatus;

    /// `eh_target_reset_handler`. Whatever it returns, the midlayer then takes
    /// back every command: handles still kept are revoked.
    fn eh_target_reset(this: ArcBorrow<'_, Self>) -> EhStatus;

    /// Writes attribute `ATTRS[index]`.
    fn show_attr(this: ArcBorrow<'_, Self>, index: usize, out: &mut SysfsBuf<'_>);

    /// Sets the writable attribute `ATTRS[index]` from what the user wrote.
    fn store_attr(this: ArcBorrow<'_, Self>, index: usize, input: &[u8]) -> Result;
}

/// A sysfs attribute of the host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostAttr {
    /// File name.
    pub(crate) name: &'static CStr,
    /// Root may write it (mode 0644, else 0444).
    pub(crate) writable: bool,
}

/// Fixed host limits for the template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemplateLimits {
    /// Default commands in flight per host (each host may lower or raise it).
    pub(crate) can_queue: u32,
    /// Scatter-gather entries per command.
    pub(crate) sg_tablesize: u16,
    /// Largest command in 512-byte sectors.
    pub(crate) max_sectors: u32,
}

/// The template and the sysfs attribute tables it points into.
struct TemplateStore {
    sht: bindings::scsi_host_template,
    attrs: KVec<bindings::device_attribute>,
    attr_ptrs: KVec<*mut bindings::attribute>,
    group: bindings::attribute_group,
    groups: [*const bindings::attribute_group; 2],
}

/// A `scsi_host_template` for hosts driven by `T`.
///
/// # Invariants
///
/// `store` is fully initialised, never moves (boxed) and is only read after
/// construction; every host allocated from it holds an `Arc` to this object,
/// so it outlives them.
pub(crate) struct HostTemplate<T: HostOps> {
    store: KBox<Opaque<TemplateStore>>,
    _ops: PhantomData<T>,
}

// SAFETY: after construction the store is read-only (C reads it through const
// pointers); nothing in it is tied to a thread.
unsafe impl<T: HostOps> Send for HostTemplate<T> {}
// SAFETY: as above.
unsafe impl<T: HostOps> Sync for HostTemplate<T> {}

impl<T: HostOps> HostTemplate<T> {
    /// Builds the template named `name` (also the /proc and driver name).
    pub(crate) fn new(
        name: &'static CStr,
        module: &'static ThisModule,
        limits: TemplateLimits,
    ) -> Result<Arc<Self>> {
        let n = T::ATTRS.len();
        let mut attrs = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut attr_ptrs = KVec::with_capacity(n + 1, GFP_KERNEL)?;
        for a in T::ATTRS {
            let mut da = bindings::device_attribute::default();
            da.attr.name = a.name.as_char_ptr();
            da.attr.mode = if a.writable { 0o644 } else { 0o444 };
            da.show = Some(show_cb::<T>);
            if a.writable {
                da.store = Some(store_cb::<T>);
            }
            attrs.push(da, GFP_KERNEL)?;
        }
        let mut sht = bindings::scsi_host_template {
            module: module.as_ptr(),
            name: name.as_char_ptr(),
            proc_name: name.as_char_ptr(),
            queuecommand: Some(queuecommand_cb::<T>),
            commit_rqs: Some(commit_rqs_cb::<T>),
            device_configure: Some(device_configure_cb::<T>),
            eh_abort_handler: Some(eh_abort_cb::<T>),
            eh_device_reset_handler: Some(eh_device_reset_cb::<T>),
            eh_target_reset_handler: Some(eh_target_reset_cb::<T>),
            can_queue: limits.can_queue as c_int,
            this_id: -1,
            sg_tablesize: limits.sg_tablesize,
            max_sectors: limits.max_sectors,
            // Data is copied by the CPU, never DMA-mapped: page-sized segments
            // keep the sg walk simple and match iscsi_tcp.
            dma_boundary: (bindings::PAGE_SIZE - 1) as _,
            max_segment_size: bindings::PAGE_SIZE as _,
            cmd_per_lun: limits.can_queue.min(i16::MAX as u32) as i16,
            ..Default::default()
        };
        sht.set_queuecommand_may_block(1);
        sht.set_track_queue_depth(1);
        let store = KBox::new(
            Opaque::new(TemplateStore {
                sht,
                attrs,
                attr_ptrs: KVec::new(),
                group: bindings::attribute_group::default(),
                groups: [ptr::null(); 2],
            }),
            GFP_KERNEL,
        )?;
        let s = store.get();
        // The box never moves its contents and the vectors are not resized after this.
        // SAFETY: `s` is the boxed, not yet shared store, so the pointers stay valid.
        unsafe {
            for da in (*s).attrs.iter_mut() {
                bindings::iscsi_rs_sysfs_attr_init(&mut da.attr);
                attr_ptrs.push(&raw mut da.attr, GFP_KERNEL)?;
            }
            attr_ptrs.push(ptr::null_mut(), GFP_KERNEL)?;
            (*s).attr_ptrs = attr_ptrs;
            (*s).group.attrs = (*s).attr_ptrs.as_mut_ptr();
            (*s).groups[0] = &raw const (*s).group;
            (*s).sht.shost_groups = (*s).groups.as_mut_ptr();
        }
        Ok(Arc::new(
            HostTemplate {
                store,
                _ops: PhantomData,
            },
            GFP_KERNEL,
        )?)
    }

    fn sht(&self) -> *const bindings::scsi_host_template {
        // SAFETY: the store is initialised (invariant); only a pointer is formed.
        unsafe { &raw const (*self.store.get()).sht }
    }
}

impl<T: HostOps> Drop for HostTemplate<T> {
    fn drop(&mut self) {
        // SAFETY: `Opaque` never drops its contents: drop the store's vectors
        // here. No host uses the template any more (each held an `Arc` to it).
        unsafe { ptr::drop_in_place(self.store.get()) };
    }
}

/// Per-host settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostConfig {
    /// Commands in flight (blk-mq tags), for the whole host.
    pub(crate) can_queue: u32,
    /// blk-mq hardware queues (1..); with more than one, the tags are
    /// shared host-wide (`host_tagset`), so a tag names one command of the
    /// host whatever its queue.
    pub(crate) nr_hw_queues: u32,
    /// Highest LUN + 1 the scan may find.
    pub(crate) max_lun: u64,
    /// Longest CDB.
    pub(crate) max_cmd_len: u16,
}

/// An added host, as the link hands it to block/unblock.
struct LiveHost(NonNull<bindings::Scsi_Host>);

// SAFETY: a Scsi_Host may be blocked and unblocked from any thread.
unsafe impl Send for LiveHost {}

/// The revocable link between a [`Host`] and its [`HostHandle`]s.
///
/// # Invariants
///
/// `live` holds the host exactly while it is added and not being removed: set
/// by [`Host::add`] once `scsi_add_host` succeeded, cleared by [`Host::remove`]
/// before `scsi_remove_host` (which frees the tag set that blocking uses). The
/// lock is held across every use of the pointer, so clearing it waits for them.
#[pin_data]
struct HostLink {
    #[pin]
    live: Mutex<Option<LiveHost>>,
}

/// What `hostdata` points at: the driver's data and the command table.
struct HostPriv {
    data: *const c_void,
    slots: *const c_void,
}

/// A `Scsi_Host` driven by `T`.
///
/// # Invariants
///
/// `shost` came from `scsi_host_alloc` and we hold that reference until drop.
/// Its `hostdata` is a [`HostPriv`] holding `Arc<T>::into_foreign()` and
/// `Arc<CmdSlots>::into_foreign()` until drop; `added` says whether
/// `scsi_add_host` succeeded and `scsi_remove_host` is still due; `link` is
/// live exactly while `added` is true.
pub(crate) struct Host<T: HostOps> {
    shost: NonNull<bindings::Scsi_Host>,
    added: bool,
    link: Arc<HostLink>,
    _template: Arc<HostTemplate<T>>,
}

// SAFETY: the Scsi_Host is refcounted and its API may be used from any thread.
unsafe impl<T: HostOps> Send for Host<T> {}
// SAFETY: `&Host` only reads `host_no` and starts scans, both thread-safe.
unsafe impl<T: HostOps> Sync for Host<T> {}

impl<T: HostOps> Host<T> {
    /// Allocates a host (not yet visible) whose callbacks get `data`.
    pub(crate) fn new(
        template: &Arc<HostTemplate<T>>,
        data: Arc<T>,
        cfg: HostConfig,
    ) -> Result<Self> {
        let slots = CmdSlots::new(cfg.can_queue as usize)?;
        let link = Arc::pin_init(
            pin_init!(HostLink {
                live <- new_mutex!(None, "iscsi_rs::HostLink::live"),
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: the template is valid and outlives the host (we keep an Arc).
        let shost = unsafe {
            bindings::scsi_host_alloc(template.sht(), core::mem::size_of::<HostPriv>() as c_int)
        };
        let shost = NonNull::new(shost).ok_or(code::ENOMEM)?;
        // SAFETY: freshly allocated, not shared yet: its fields are ours to set and
        // `hostdata` has room for a `HostPriv` (the privsize above, and hostdata
        // is aligned for pointers).
        unsafe {
            let h = shost.as_ptr();
            (*h).max_id = 1;
            (*h).max_channel = 0;
            (*h).max_lun = cfg.max_lun;
            (*h).max_cmd_len = cfg.max_cmd_len;
            (*h).can_queue = cfg.can_queue as c_int;
            (*h).cmd_per_lun = cfg.can_queue.min(i16::MAX as u32) as i16;
            (*h).nr_hw_queues = cfg.nr_hw_queues.max(1);
            if cfg.nr_hw_queues > 1 {
                (*h).set_host_tagset(1);
            }
            (*h).hostdata
                .as_mut_ptr()
                .cast::<HostPriv>()
                .write(HostPriv {
                    data: data.into_foreign(),
                    slots: slots.into_foreign(),
                });
        }
        Ok(Host {
            shost,
            added: false,
            link,
            _template: template.clone(),
        })
    }

    /// The SCSI host number (`hostN` in sysfs).
    pub(crate) fn host_no(&self) -> u32 {
        // SAFETY: the host is live (invariant); host_no is set at alloc.
        unsafe { (*self.shost.as_ptr()).host_no }
    }

    /// Makes the host visible (sysfs, callbacks may start) and lets its
    /// handles act on it.
    pub(crate) fn add(&mut self) -> Result {
        if self.added {
            return Err(code::EBUSY);
        }
        // SAFETY: live, allocated host; no parent device (like iscsi_tcp).
        to_result(unsafe {
            bindings::scsi_add_host_with_dma(self.shost.as_ptr(), ptr::null_mut(), ptr::null_mut())
        })?;
        self.added = true;
        // INVARIANT: added, so the handles may use it until `remove`.
        *self.link.live.lock() = Some(LiveHost(self.shost));
        Ok(())
    }

    /// A counted reference that scans the host later, so the `Host` can be
    /// handed on (e.g. registered, where removal may find it) before the scan.
    /// `None` if the host is being deleted.
    pub(crate) fn scanner(&self) -> Option<Scanner> {
        // SAFETY: the host is live (invariant); scsi_host_get takes a reference
        // on its device, or fails if it is being deleted.
        let got = unsafe { bindings::scsi_host_get(self.shost.as_ptr()) };
        Some(Scanner {
            shost: NonNull::new(got)?,
        })
    }

    /// A handle for blocking and unblocking the host's devices later, from any
    /// thread. It acts only while the host is added: once [`Host::remove`]
    /// has begun, its calls fail with `ENODEV`.
    pub(crate) fn handle(&self) -> HostHandle {
        HostHandle {
            link: self.link.clone(),
        }
    }

    /// Removes the host's devices and the host from sysfs. Commands (e.g. the
    /// cache flush of sd) still flow through the callbacks until it returns.
    /// Handles are cut off first, waiting for a block or unblock in progress.
    pub(crate) fn remove(&mut self) {
        if self.added {
            // INVARIANT: revoked before the tag set goes.
            *self.link.live.lock() = None;
            // SAFETY: an added host, removed once.
            unsafe { bindings::scsi_remove_host(self.shost.as_ptr()) };
            self.added = false;
        }
    }
}

impl<T: HostOps> Drop for Host<T> {
    fn drop(&mut self) {
        self.remove();
        // SAFETY: the host is not added (any more), so no callback can run and
        // nothing reads hostdata; it holds our foreign Arcs (invariant).
        unsafe {
            let p = (*self.shost.as_ptr())
                .hostdata
                .as_mut_ptr()
                .cast::<HostPriv>();
            let HostPriv { data, slots } = p.read();
            drop(<Arc<T> as ForeignOwnable>::from_foreign(data));
            drop(<Arc<CmdSlots> as ForeignOwnable>::from_foreign(slots));
            p.write(HostPriv {
                data: ptr::null(),
                slots: ptr::null(),
            });
            bindings::scsi_host_put(self.shost.as_ptr());
        }
    }
}

/// A counted reference to a host for scanning it.
///
/// # Invariants
///
/// `shost` holds a reference from `scsi_host_get`, put in `drop`.
pub(crate) struct Scanner {
    shost: NonNull<bindings::Scsi_Host>,
}

// SAFETY: scanning is thread-safe (the host's scan_mutex serialises it).
unsafe impl Send for Scanner {}

impl Scanner {
    /// Scans the host's one target synchronously (REPORT LUNS, then each LUN).
    /// Does nothing unless the host is added and not being removed: the
    /// midlayer checks the host state under its scan mutex, which removal
    /// takes too, so a scan racing a removal finds no tag set gone.
    pub(crate) fn scan(&self) {
        // SAFETY: we hold a reference (invariant), so the host's memory and
        // its embedded device stay valid; see above for a removed host.
        unsafe {
            bindings::scsi_scan_target(
                &raw mut (*self.shost.as_ptr()).shost_gendev,
                0,
                0,
                u64::MAX, // SCAN_WILD_CARD
                bindings::scsi_scan_mode_SCSI_SCAN_RESCAN,
            )
        };
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `Host::scanner` (invariant).
        unsafe { bindings::scsi_host_put(self.shost.as_ptr()) };
    }
}

/// How a session wants its host's devices during recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceState {
    /// Running: commands flow.
    Running,
    /// Blocked: new commands wait in the block layer.
    Blocked,
    /// Transport-offline: queued and new commands fail at once.
    Offline,
}

/// A revocable handle to a host for recovery: holds I/O back while the
/// connection is re-established and lets it go, or fails it, afterwards.
/// Usable only while the host is added (see [`HostLink`]).
pub(crate) struct HostHandle {
    link: Arc<HostLink>,
}

impl HostHandle {
    /// Moves the host's devices from `from` to `to`, in one step as far as
    /// removal is concerned. Sleeps (it waits for `queuecommand` calls in
    /// progress when blocking): never call it from `queuecommand`. `ENODEV`
    /// once the host is being removed or before it was added.
    pub(crate) fn set(&self, from: DeviceState, to: DeviceState) -> Result {
        let live = self.link.live.lock();
        let Some(LiveHost(shost)) = live.as_ref() else {
            return Err(code::ENODEV);
        };
        let shost = shost.as_ptr();
        // The host is added and not being removed while `live` is held
        // (HostLink invariant), so its tag set and device list are live.
        let block = || {
            // SAFETY: as just said; process context.
            to_result(unsafe { bindings::scsi_host_block(shost) })
        };
        let unblock = |state: u32| {
            // SAFETY: as for `block`.
            to_result(unsafe { bindings::scsi_host_unblock(shost, state as c_int) })
        };
        match to {
            DeviceState::Running => unblock(bindings::scsi_device_state_SDEV_RUNNING),
            DeviceState::Blocked => block(),
            DeviceState::Offline => {
                // Only blocked devices can be moved to transport-offline.
                if from == DeviceState::Running {
                    block()?;
                }
                unblock(bindings::scsi_device_state_SDEV_TRANSPORT_OFFLINE)
            }
        }
    }
}

/// The driver data and command table of host `shost`, borrowed for a callback.
///
/// # Safety
///
/// `shost` is a host created by [`Host::new`] for this `T` and is added (the
/// midlayer calls us only then), so `hostdata` holds live foreign Arcs.
unsafe fn host_priv<'a, T: HostOps>(
    shost: *mut bindings::Scsi_Host,
) -> (ArcBorrow<'a, T>, ArcBorrow<'a, CmdSlots>) {
    // SAFETY: per the function's contract.
    unsafe {
        let p = &*(*shost).hostdata.as_mut_ptr().cast::<HostPriv>();
        (
            <Arc<T> as ForeignOwnable>::borrow(p.data),
            <Arc<CmdSlots> as ForeignOwnable>::borrow(p.slots),
        )
    }
}

/// # Safety
///
/// Called by the midlayer as `queuecommand` for a host of ours.
unsafe extern "C" fn queuecommand_cb<T: HostOps>(
    shost: *mut bindings::Scsi_Host,
    cmd: *mut bindings::scsi_cmnd,
) -> c_int {
    // SAFETY: our host, added (the midlayer only queues then).
    let (data, slots) = unsafe { host_priv::<T>(shost) };
    let Some(ptr) = NonNull::new(cmd) else {
        return bindings::SCSI_MLQUEUE_HOST_BUSY as c_int;
    };
    let slots = Arc::from(slots);
    // SAFETY: the midlayer hands us this command: ours to read until it is
    // taken below. scsi_queue_rq sets SCMD_LAST on a batch's last command.
    let more = unsafe { (*ptr.as_ptr()).flags } as u32 & bindings::SCMD_LAST == 0;
    // SAFETY: the midlayer hands us this command, with a live device.
    let Some(cmd) = (unsafe { Cmd::take(ptr, &slots) }) else {
        pr_err!("iscsi_rs: command tag outside the host's table\n");
        // SAFETY: not taken, so still ours to finish: fail it at once.
        unsafe {
            (*ptr.as_ptr()).result = (HostByte::Error.code() << 16) as c_int;
            bindings::scsi_done(ptr.as_ptr());
        }
        return 0;
    };
    let gen = cmd.gen;
    match T::queue_command(data, cmd, more) {
        Ok(()) => 0,
        Err((back, busy)) => {
            if back.ptr == ptr && back.gen == gen {
                if !back.give_back() {
                    // Revoked meanwhile: EH has it, so it counts as queued.
                    return 0;
                }
                match busy {
                    Busy::Target => bindings::SCSI_MLQUEUE_TARGET_BUSY as c_int,
                    Busy::Host => bindings::SCSI_MLQUEUE_HOST_BUSY as c_int,
                }
            } else {
                // Another command came back (or a stale handle): this one is
                // still held by the driver, so it counts as queued; the one
                // returned is finished with an error rather than lost.
                pr_err!("iscsi_rs: queuecommand refused a command it was not given\n");
                let mut back = back;
                back.set_result(HostByte::Error, 0);
                back.complete();
                0
            }
        }
    }
}

/// # Safety
///
/// Called by the block layer (through the midlayer) as `commit_rqs` for a
/// host of ours, which is added: it dispatched commands to it.
unsafe extern "C" fn commit_rqs_cb<T: HostOps>(shost: *mut bindings::Scsi_Host, hwq: u16) {
    // SAFETY: our host, added.
    let (data, _) = unsafe { host_priv::<T>(shost) };
    T::commit(data, hwq);
}

/// # Safety
///
/// Called by the midlayer as `device_configure` while it adds a device of
/// a host of ours (added: it scans), with the limits of the device's queue
/// being set up.
unsafe extern "C" fn device_configure_cb<T: HostOps>(
    sdev: *mut bindings::scsi_device,
    lim: *mut bindings::queue_limits,
) -> c_int {
    // SAFETY: a device being added has its host.
    let (data, _) = unsafe { host_priv::<T>((*sdev).host) };
    if T::stable_writes(data) && !lim.is_null() {
        // SAFETY: the midlayer hands us the limits to edit for this call.
        unsafe { bindings::iscsi_rs_lim_stable_writes(lim) };
    }
    0
}

/// # Safety
///
/// Called by the midlayer as `eh_abort_handler` with a live command of ours.
unsafe extern "C" fn eh_abort_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: an EH command has a live device and host.
    let (data, slots) = unsafe { host_priv::<T>((*(*cmd).device).host) };
    let eh = EhCmd { ptr: cmd };
    let index = (eh.unique_tag() & 0xffff) as usize;
    let success = bindings::scsi_disposition_SUCCESS as c_int;
    let failed = bindings::scsi_disposition_FAILED as c_int;
    match T::eh_abort(data, &eh) {
        EhAbort::Success(Some(c)) if eh.is(&c) => {
            // If `c` was a stale generation, the current holder is revoked.
            c.give_back();
            slots.revoke(index);
            success
        }
        EhAbort::Success(None) => {
            // "Not ours": make it true before the midlayer reuses the command.
            slots.revoke(index);
            success
        }
        EhAbort::Success(Some(other)) => {
            pr_err!("iscsi_rs: eh_abort handed back another command\n");
            let mut other = other;
            other.set_result(HostByte::Error, 0);
            other.complete();
            failed
        }
        EhAbort::Failed => failed,
    }
}

/// # Safety
///
/// Called by the midlayer as `eh_device_reset_handler` with a live command.
unsafe extern "C" fn eh_device_reset_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: as in `eh_abort_cb`.
    let (data, slots) = unsafe { host_priv::<T>((*(*cmd).device).host) };
    // SAFETY: as above.
    let dev = unsafe { (*cmd).device } as usize;
    match T::eh_device_reset(data, &EhCmd { ptr: cmd }) {
        EhStatus::Success => {
            // The midlayer now finishes the device's commands.
            slots.revoke_all(Some(dev));
            bindings::scsi_disposition_SUCCESS as c_int
        }
        EhStatus::Failed => bindings::scsi_disposition_FAILED as c_int,
    }
}

/// # Safety
///
/// Called by the midlayer as `eh_target_reset_handler` with a live command.
unsafe extern "C" fn eh_target_reset_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: as in `eh_abort_cb`.
    let (data, slots) = unsafe { host_priv::<T>((*(*cmd).device).host) };
    let r = T::eh_target_reset(data);
    // Success or not, the midlayer finishes every command in EH next (with
    // no bus or host reset handler it offlines the devices): and while EH
    // runs, every command of the host is in EH.
    slots.revoke_all(None);
    match r {
        EhStatus::Success => bindings::scsi_disposition_SUCCESS as c_int,
        EhStatus::Failed => bindings::scsi_disposition_FAILED as c_int,
    }
}

/// # Safety
///
/// Called by sysfs as `show` of one of our host attributes: `dev` is the host's
/// class device, `buf` a PAGE_SIZE buffer.
unsafe extern "C" fn show_cb<T: HostOps>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: per this function's contract.
    let Some((data, index)) = (unsafe { attr_target::<T>(dev, attr) }) else {
        return code::EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs gives show() one page.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE) };
    let mut out = SysfsBuf { buf: page, len: 0 };
    T::show_attr(data, index, &mut out);
    out.len as isize
}

/// The host data and the `ATTRS` index behind a sysfs callback.
///
/// # Safety
///
/// `dev` is the class device of an added host of ours and `attr` one of the
/// attributes its template registered (sysfs removes the files and drains
/// their users in scsi_remove_host, before hostdata is cleared).
unsafe fn attr_target<'a, T: HostOps>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
) -> Option<(ArcBorrow<'a, T>, usize)> {
    // SAFETY: per the function's contract.
    let (data, name) = unsafe {
        let shost = bindings::iscsi_rs_dev_to_shost(dev);
        (
            host_priv::<T>(shost).0,
            CStr::from_char_ptr((*attr).attr.name),
        )
    };
    let index = T::ATTRS
        .iter()
        .position(|a| a.name.as_bytes() == name.as_bytes())?;
    Some((data, index))
}

/// # Safety
///
/// Called by sysfs as `store` of one of our writable host attributes: `dev` is
/// the host's class device, `buf` holds `count` bytes.
unsafe extern "C" fn store_cb<T: HostOps>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: per this function's contract.
    let Some((data, index)) = (unsafe { attr_target::<T>(dev, attr) }) else {
        return code::EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs passes `count` readable bytes (at most a page).
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match T::store_attr(data, index, input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// KUnit: the ownership table's rules, without a host (ktests/kunit; compiled
/// only into the test module iscsi_rs_kunit.ko).
#[cfg(iscsi_rs_kunit)]
pub(crate) fn kunit_cmd_slots() -> core::result::Result<(), &'static str> {
    let check = |c: bool, m: &'static str| if c { Ok(()) } else { Err(m) };
    let slots = CmdSlots::new(4).map_err(|_| "no memory")?;
    check(
        slots.take(4, 1).is_none(),
        "a tag beyond the table was taken",
    )?;
    // Held: accessors enter; after the release neither they nor a second
    // release get in.
    let g = slots.take(0, 1).ok_or("tag 0 refused")?;
    check(slots.enter(0, g), "the holder could not enter")?;
    slots.leave(0);
    check(slots.release(0, g), "the holder could not release")?;
    check(!slots.enter(0, g), "entered after the release")?;
    check(!slots.release(0, g), "released twice")?;
    // Revoked: the old generation is locked out, completion is refused.
    let g1 = slots.take(0, 1).ok_or("tag 0 refused again")?;
    check(g1 != g, "generation did not move on")?;
    slots.revoke(0);
    check(!slots.enter(0, g1), "entered a revoked command")?;
    check(!slots.release(0, g1), "completed a revoked command")?;
    // A take over a stale holder (EH requeueing a command still held)
    // revokes the stale handle.
    let g2 = slots.take(1, 1).ok_or("tag 1 refused")?;
    let g3 = slots.take(1, 1).ok_or("tag 1 refused on requeue")?;
    check(!slots.enter(1, g2), "stale handle survived a requeue")?;
    check(slots.enter(1, g3), "new handle locked out")?;
    slots.leave(1);
    // LUN-scoped revocation touches only that device's commands.
    let a = slots.take(2, 7).ok_or("tag 2 refused")?;
    let b = slots.take(3, 8).ok_or("tag 3 refused")?;
    slots.revoke_all(Some(7));
    check(!slots.enter(2, a), "device 7 command not revoked")?;
    check(slots.enter(3, b), "device 8 command revoked")?;
    slots.leave(3);
    slots.revoke_all(None);
    check(!slots.enter(3, b), "revoke_all missed a command")?;
    check(!slots.enter(1, g3), "revoke_all missed tag 1")?;
    Ok(())
}
