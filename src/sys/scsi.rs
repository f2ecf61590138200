//! The SCSI midlayer as safe objects: a [`HostTemplate`] built from a [`HostOps`]
//! implementation (queuecommand, eh_abort/device_reset/target_reset, sysfs
//! attributes on the host), a [`Host`] (alloc → add → scan → remove → put), a
//! [`HostHandle`] that blocks and unblocks the host's devices during recovery,
//! and [`Cmd`], an in-flight command with its accessors (CDB, LUN, direction,
//! transfer length, sg copy in and out, sense, result, residual, `scsi_done`).
//!
//! Per-command protocol state does not live in the command's private area
//! (`cmd_size` stays 0): the session keeps it in a tag-indexed table under its own
//! lock, which is safe Rust and lets the receive path find a task by ITT.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use kernel::error::{code, to_result, Result};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::{ForeignOwnable, Opaque};
use kernel::ThisModule;

use super::bindings;
use super::socket::{Recv, SocketEvents, TcpSocket};

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

/// An in-flight SCSI command handed to the driver by `queuecommand`.
///
/// # Invariants
///
/// `ptr` points at a command the midlayer passed to our `queuecommand` and that
/// has not been completed with [`Cmd::complete`] nor handed back by an EH handler:
/// the driver owns it exclusively, including its data buffer and sense buffer.
/// There is at most one `Cmd` per such command.
pub(crate) struct Cmd {
    ptr: NonNull<bindings::scsi_cmnd>,
    /// Where [`Cmd::recv_into`] last started in the sg list: null, or an entry
    /// of this command's table with the bytes before it and its index, so
    /// in-order Data-In does not walk the list from the start each time.
    rx_cursor: bindings::iscsi_rs_sg_cursor,
}

// SAFETY: the command belongs to the driver alone until completed; any thread may
// touch it (the midlayer does not, by contract).
unsafe impl Send for Cmd {}
// SAFETY: `&Cmd` only reads fields the midlayer does not change while we own it.
unsafe impl Sync for Cmd {}

impl Cmd {
    fn raw(&self) -> *mut bindings::scsi_cmnd {
        self.ptr.as_ptr()
    }

    /// The CDB.
    pub(crate) fn cdb(&self) -> &[u8] {
        // SAFETY: by the invariant the command is live and ours; `cmnd` is an
        // inline array whose first `cmd_len` bytes are the CDB.
        let c = unsafe { &*self.raw() };
        let len = usize::from(c.cmd_len).min(c.cmnd.len());
        c.cmnd.get(..len).unwrap_or(&[])
    }

    /// The Linux LUN of the command's device.
    pub(crate) fn lun(&self) -> u64 {
        // SAFETY: a queued command always has a live device.
        unsafe { (*(*self.raw()).device).lun }
    }

    /// The LUN in SAM 8-byte form, as a big-endian u64 (the BHS LUN field).
    pub(crate) fn lun_sam(&self) -> u64 {
        let mut l = bindings::scsi_lun::default();
        // SAFETY: plain conversion into a local.
        unsafe { bindings::int_to_scsilun(self.lun(), &mut l) };
        u64::from_be_bytes(l.scsi_lun)
    }

    /// The data direction.
    pub(crate) fn direction(&self) -> DataDir {
        // SAFETY: by the invariant the command is live.
        match unsafe { (*self.raw()).sc_data_direction } {
            bindings::dma_data_direction_DMA_TO_DEVICE => DataDir::ToDevice,
            bindings::dma_data_direction_DMA_FROM_DEVICE => DataDir::FromDevice,
            bindings::dma_data_direction_DMA_BIDIRECTIONAL => DataDir::Bidirectional,
            _ => DataDir::None,
        }
    }

    /// Bytes to transfer (`scsi_bufflen`).
    pub(crate) fn transfer_len(&self) -> u32 {
        // SAFETY: by the invariant the command is live.
        unsafe { (*self.raw()).sdb.length }
    }

    /// The blk-mq unique tag (hardware queue in bits 16.., tag below).
    pub(crate) fn unique_tag(&self) -> u32 {
        // SAFETY: a queued command is embedded in a started request.
        unsafe { bindings::iscsi_rs_cmd_unique_tag(self.raw()) }
    }

    /// Copies `src` into the data buffer at byte `offset`. Fails (copying nothing)
    /// unless `offset + src.len()` lies within [`Self::transfer_len`].
    pub(crate) fn copy_from_buf(&mut self, offset: u32, src: &[u8]) -> Result {
        let end = u64::from(offset) + src.len() as u64;
        if end > u64::from(self.transfer_len()) {
            return Err(code::EINVAL);
        }
        if src.is_empty() {
            return Ok(());
        }
        // SAFETY: by the invariant we own the command and its sg list, which maps
        // at least `transfer_len` bytes; the range was checked above.
        let n = unsafe {
            let t = &(*self.raw()).sdb.table;
            bindings::sg_pcopy_from_buffer(
                t.sgl,
                t.nents,
                src.as_ptr().cast(),
                src.len(),
                offset as _,
            )
        };
        if n == src.len() {
            Ok(())
        } else {
            Err(code::EINVAL)
        }
    }

    /// Receives up to `len` bytes from `sock`, without blocking, straight into
    /// the data buffer at byte `offset`: Data-In payload without a bounce
    /// buffer. Fails (reading nothing) unless the range lies within
    /// [`Self::transfer_len`].
    pub(crate) fn recv_into<T: SocketEvents>(
        &mut self,
        sock: &TcpSocket<T>,
        offset: u32,
        len: u32,
    ) -> Result<Recv> {
        let end = u64::from(offset) + u64::from(len);
        if end > u64::from(self.transfer_len()) || len == 0 {
            return Err(code::EINVAL);
        }
        // SAFETY: by the invariant we own the command and its sg list, which maps
        // at least `transfer_len` bytes (the range was checked above), and the
        // cursor is null or in that list; the socket is live while `sock` is
        // borrowed, and only its one receiver reads.
        let ret = unsafe {
            let t = &(*self.raw()).sdb.table;
            bindings::iscsi_rs_recv_sg(
                sock.raw(),
                t.sgl,
                t.nents,
                offset as usize,
                len as usize,
                &mut self.rx_cursor,
            )
        };
        TcpSocket::<T>::recv_result(ret)
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
        // SAFETY: as in `copy_from_buf`; the sg list is only read.
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

    /// Stores sense data (truncated to the midlayer's buffer).
    pub(crate) fn set_sense(&mut self, sense: &[u8]) {
        let n = sense.len().min(bindings::SCSI_SENSE_BUFFERSIZE as usize);
        // SAFETY: `sense_buffer` holds SCSI_SENSE_BUFFERSIZE bytes for a live
        // command; we own the command.
        unsafe {
            let dst = (*self.raw()).sense_buffer;
            if !dst.is_null() {
                ptr::copy_nonoverlapping(sense.as_ptr(), dst, n);
            }
        }
    }

    /// Sets the result: host byte and SCSI status.
    pub(crate) fn set_result(&mut self, host: HostByte, status: u8) {
        // SAFETY: we own the command.
        unsafe { (*self.raw()).result = ((host.code() << 16) | u32::from(status)) as c_int };
    }

    /// Sets the residual count (`scsi_set_resid`).
    pub(crate) fn set_resid(&mut self, resid: u32) {
        // SAFETY: we own the command.
        unsafe { (*self.raw()).resid_len = resid };
    }

    /// Completes the command (`scsi_done`): the midlayer owns it again.
    pub(crate) fn complete(self) {
        // SAFETY: by the invariant the command is ours and not completed yet;
        // `self` is consumed so it cannot be completed twice.
        unsafe { bindings::scsi_done(self.raw()) };
    }
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
        let mut l = bindings::scsi_lun::default();
        // SAFETY: the midlayer keeps the command and its device alive during
        // the EH callback; the conversion writes a local.
        unsafe { bindings::int_to_scsilun((*(*self.ptr).device).lun, &mut l) };
        u64::from_be_bytes(l.scsi_lun)
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
    fn queue_command(this: ArcBorrow<'_, Self>, cmd: Cmd) -> core::result::Result<(), (Cmd, Busy)>;

    /// `eh_abort_handler`.
    fn eh_abort(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhAbort;

    /// `eh_device_reset_handler` for the LUN of `cmd`. Success promises that no
    /// command of that LUN is still held (all were completed or dropped).
    fn eh_device_reset(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhStatus;

    /// `eh_target_reset_handler`. Success promises that no command is still held.
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
    /// Commands in flight (blk-mq tags).
    pub(crate) can_queue: u32,
    /// Highest LUN + 1 the scan may find.
    pub(crate) max_lun: u64,
    /// Longest CDB.
    pub(crate) max_cmd_len: u16,
}

/// A `Scsi_Host` driven by `T`, whose `hostdata` holds a reference to the data.
///
/// # Invariants
///
/// `shost` came from `scsi_host_alloc` and we hold that reference until drop.
/// Its `hostdata[0]` holds `Arc<T>::into_foreign()` until drop; `added` says
/// whether `scsi_add_host` succeeded and `scsi_remove_host` is still due.
pub(crate) struct Host<T: HostOps> {
    shost: NonNull<bindings::Scsi_Host>,
    added: bool,
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
        // SAFETY: the template is valid and outlives the host (we keep an Arc).
        let shost = unsafe {
            bindings::scsi_host_alloc(
                template.sht(),
                core::mem::size_of::<*const c_void>() as c_int,
            )
        };
        let shost = NonNull::new(shost).ok_or(code::ENOMEM)?;
        // SAFETY: freshly allocated, not shared yet: its fields are ours to set and
        // `hostdata` has room for one pointer (the privsize above).
        unsafe {
            let h = shost.as_ptr();
            (*h).max_id = 1;
            (*h).max_channel = 0;
            (*h).max_lun = cfg.max_lun;
            (*h).max_cmd_len = cfg.max_cmd_len;
            (*h).can_queue = cfg.can_queue as c_int;
            (*h).cmd_per_lun = cfg.can_queue.min(i16::MAX as u32) as i16;
            *(*h).hostdata.as_mut_ptr().cast::<*const c_void>() = data.into_foreign();
        }
        Ok(Host {
            shost,
            added: false,
            _template: template.clone(),
        })
    }

    /// The SCSI host number (`hostN` in sysfs).
    pub(crate) fn host_no(&self) -> u32 {
        // SAFETY: the host is live (invariant); host_no is set at alloc.
        unsafe { (*self.shost.as_ptr()).host_no }
    }

    /// Makes the host visible (sysfs, callbacks may start).
    pub(crate) fn add(&mut self) -> Result {
        // SAFETY: live, allocated host; no parent device (like iscsi_tcp).
        to_result(unsafe {
            bindings::scsi_add_host_with_dma(self.shost.as_ptr(), ptr::null_mut(), ptr::null_mut())
        })?;
        self.added = true;
        Ok(())
    }

    /// Scans the host's one target synchronously (REPORT LUNS, then each LUN).
    pub(crate) fn scan(&self) {
        if !self.added {
            return;
        }
        // SAFETY: an added host; the scan takes its own references.
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

    /// A counted reference for blocking and unblocking the host later (it stays
    /// valid after the host is removed; the calls then find no devices).
    pub(crate) fn handle(&self) -> Result<HostHandle<T>> {
        // SAFETY: the host is live (invariant); scsi_host_get takes a reference
        // on its device or fails if it is being deleted.
        let got = unsafe { bindings::scsi_host_get(self.shost.as_ptr()) };
        let shost = NonNull::new(got).ok_or(code::ENODEV)?;
        Ok(HostHandle {
            shost,
            _template: self._template.clone(),
        })
    }

    /// Removes the host's devices and the host from sysfs. Commands (e.g. the
    /// cache flush of sd) still flow through the callbacks until it returns.
    pub(crate) fn remove(&mut self) {
        if self.added {
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
        // nothing reads hostdata; it holds our foreign Arc (invariant).
        unsafe {
            let slot = (*self.shost.as_ptr())
                .hostdata
                .as_mut_ptr()
                .cast::<*const c_void>();
            drop(<Arc<T> as ForeignOwnable>::from_foreign(*slot));
            *slot = ptr::null();
            bindings::scsi_host_put(self.shost.as_ptr());
        }
    }
}

/// A counted reference to a host for recovery: holds I/O back while the
/// connection is re-established and lets it go, or fails it, afterwards.
///
/// # Invariants
///
/// `shost` holds a reference from `scsi_host_get`, dropped in `drop`; the
/// template it points to is kept alive by `_template`.
pub(crate) struct HostHandle<T: HostOps> {
    shost: NonNull<bindings::Scsi_Host>,
    _template: Arc<HostTemplate<T>>,
}

// SAFETY: the Scsi_Host is refcounted and block/unblock may run on any thread.
unsafe impl<T: HostOps> Send for HostHandle<T> {}
// SAFETY: as above; the midlayer serialises device state changes itself.
unsafe impl<T: HostOps> Sync for HostHandle<T> {}

impl<T: HostOps> HostHandle<T> {
    /// Blocks every device of the host (new commands wait in the block layer)
    /// and waits for `queuecommand` calls in progress to return. Sleeps; must
    /// not be called from `queuecommand` itself.
    pub(crate) fn block(&self) -> Result {
        // SAFETY: we hold a reference (invariant); process context.
        to_result(unsafe { bindings::scsi_host_block(self.shost.as_ptr()) })
    }

    /// Lets the blocked devices run again (`offline` false), or moves them to
    /// transport-offline so that queued and new commands fail at once
    /// (`offline` true; a later unblock brings them back).
    pub(crate) fn unblock(&self, offline: bool) -> Result {
        let state = if offline {
            bindings::scsi_device_state_SDEV_TRANSPORT_OFFLINE
        } else {
            bindings::scsi_device_state_SDEV_RUNNING
        };
        // SAFETY: we hold a reference (invariant); process context.
        to_result(unsafe { bindings::scsi_host_unblock(self.shost.as_ptr(), state as c_int) })
    }
}

impl<T: HostOps> Drop for HostHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `Host::handle` (invariant).
        unsafe { bindings::scsi_host_put(self.shost.as_ptr()) };
    }
}

/// The data of the host `shost`, borrowed for a callback.
///
/// # Safety
///
/// `shost` is a host created by [`Host::new`] for this `T` and is added (the
/// midlayer calls us only then), so `hostdata[0]` holds a live foreign Arc.
unsafe fn host_data<'a, T: HostOps>(shost: *mut bindings::Scsi_Host) -> ArcBorrow<'a, T> {
    // SAFETY: per the function's contract.
    unsafe {
        let p = *(*shost).hostdata.as_mut_ptr().cast::<*const c_void>();
        <Arc<T> as ForeignOwnable>::borrow(p)
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
    let data = unsafe { host_data::<T>(shost) };
    let Some(ptr) = NonNull::new(cmd) else {
        return bindings::SCSI_MLQUEUE_HOST_BUSY as c_int;
    };
    // INVARIANT: the midlayer hands us the command here; it is ours until done.
    let cmd = Cmd {
        ptr,
        rx_cursor: bindings::iscsi_rs_sg_cursor::default(),
    };
    match T::queue_command(data, cmd) {
        Ok(()) => 0,
        Err((_cmd, Busy::Target)) => bindings::SCSI_MLQUEUE_TARGET_BUSY as c_int,
        Err((_cmd, Busy::Host)) => bindings::SCSI_MLQUEUE_HOST_BUSY as c_int,
    }
}

/// # Safety
///
/// Called by the midlayer as `eh_abort_handler` with a live command of ours.
unsafe extern "C" fn eh_abort_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: an EH command has a live device and host.
    let data = unsafe { host_data::<T>((*(*cmd).device).host) };
    let eh = EhCmd { ptr: cmd };
    match T::eh_abort(data, &eh) {
        EhAbort::Success(None) => bindings::scsi_disposition_SUCCESS as c_int,
        EhAbort::Success(Some(c)) if eh.is(&c) => bindings::scsi_disposition_SUCCESS as c_int,
        EhAbort::Success(Some(_)) | EhAbort::Failed => bindings::scsi_disposition_FAILED as c_int,
    }
}

/// # Safety
///
/// Called by the midlayer as `eh_device_reset_handler` with a live command.
unsafe extern "C" fn eh_device_reset_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: as in `eh_abort_cb`.
    let data = unsafe { host_data::<T>((*(*cmd).device).host) };
    match T::eh_device_reset(data, &EhCmd { ptr: cmd }) {
        EhStatus::Success => bindings::scsi_disposition_SUCCESS as c_int,
        EhStatus::Failed => bindings::scsi_disposition_FAILED as c_int,
    }
}

/// # Safety
///
/// Called by the midlayer as `eh_target_reset_handler` with a live command.
unsafe extern "C" fn eh_target_reset_cb<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> c_int {
    // SAFETY: as in `eh_abort_cb`.
    let data = unsafe { host_data::<T>((*(*cmd).device).host) };
    match T::eh_target_reset(data) {
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
            host_data::<T>(shost),
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
