//! [`OwnedQueue`]: a workqueue the module allocates and destroys, which drains
//! it, when the last user drops it: either for block I/O (WQ_MEM_RECLAIM, so a
//! rescuer guarantees progress under memory pressure) or for long-running
//! items (unbound, no rescuer that such an item could occupy). The kernel
//! crate of 6.12 only offers the system queues.

use core::ptr::NonNull;

use kernel::error::{code, Result};
use kernel::str::CStr;
use kernel::workqueue::Queue;

use super::bindings;

/// An allocated workqueue.
///
/// # Invariants
///
/// `ptr` came from `alloc_workqueue` and is destroyed only in `drop`.
pub(crate) struct OwnedQueue {
    ptr: NonNull<bindings::workqueue_struct>,
}

// SAFETY: workqueues are used from any context and thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: as above; queueing is internally synchronised.
unsafe impl Sync for OwnedQueue {}

/// What a queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueKind {
    /// Short items on the I/O path: WQ_MEM_RECLAIM | WQ_HIGHPRI.
    Io,
    /// Items that sleep for long (a per-session watchdog loop): unbound and
    /// without WQ_MEM_RECLAIM, so none can hold a reclaim rescuer.
    LongRunning,
}

impl OwnedQueue {
    /// Allocates a queue shown as `name` in ps/sysfs.
    pub(crate) fn new(name: &'static CStr, kind: QueueKind) -> Result<Self> {
        let long = kind == QueueKind::LongRunning;
        // SAFETY: `name` is a NUL-terminated static string.
        let ptr = unsafe { bindings::iscsi_rs_alloc_workqueue(name.as_char_ptr(), long) };
        Ok(OwnedQueue {
            ptr: NonNull::new(ptr).ok_or(code::ENOMEM)?,
        })
    }

    /// The queue, for `enqueue`.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: by the invariant the queue lives as long as `self`.
        unsafe { Queue::from_raw(self.ptr.as_ptr()) }
    }
}

impl OwnedQueue {
    /// Waits until the queue is empty, including works queued meanwhile from
    /// within it.
    pub(crate) fn drain(&self) {
        // SAFETY: by the invariant the queue is live.
        unsafe { bindings::drain_workqueue(self.ptr.as_ptr()) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: by the invariant the queue is live and destroyed once; this
        // drains it first (works queued meanwhile from within it still run).
        unsafe { bindings::destroy_workqueue(self.ptr.as_ptr()) };
    }
}
