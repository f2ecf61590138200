//! `/dev/iscsi_rs`: a misc character device (root only) whose ioctls are
//! dispatched to a safe [`ControlOps`] implementation.

use core::marker::PhantomPinned;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::error::{code, Error, Result};
use kernel::ffi::{c_long, c_uint, c_ulong};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;
use kernel::ThisModule;

use super::bindings;

/// What the chardev's owner does with an ioctl. Called in process context with
/// `CAP_SYS_ADMIN` already checked; `arg` is the untrusted user argument.
pub(crate) trait ControlOps: Sync + Send + Sized {
    /// Handles ioctl `cmd`; the returned value goes back to userspace.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device.
///
/// # Invariants
///
/// While `registered` is true, `misc` is registered with `misc_register`;
/// `misc.fops` points at `fops` and the struct never moves (it is only handed out
/// pinned). `repr(C)` with `misc` first lets the ioctl callback go from the
/// `miscdevice` pointer that `misc_open` stores in `file->private_data` back to us.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct MiscDevice<T: ControlOps> {
    misc: Opaque<bindings::miscdevice>,
    fops: Opaque<bindings::file_operations>,
    ops: T,
    registered: AtomicBool,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: after registration the C fields are only touched by the misc core under
// its own lock and by `drop`; `ops` is `Send + Sync` itself.
unsafe impl<T: ControlOps> Send for MiscDevice<T> {}
// SAFETY: as above; shared references only reach `ops` (Sync) and the atomic flag.
unsafe impl<T: ControlOps> Sync for MiscDevice<T> {}

impl<T: ControlOps> MiscDevice<T> {
    /// Registers `/dev/<name>` (mode 0600) served by `ops`.
    pub(crate) fn register(
        name: &'static CStr,
        module: &'static ThisModule,
        ops: T,
    ) -> Result<Pin<KBox<Self>>> {
        let dev = KBox::pin_init(
            pin_init!(MiscDevice {
                misc: Opaque::new(bindings::miscdevice::default()),
                fops: Opaque::new(bindings::file_operations::default()),
                ops,
                registered: AtomicBool::new(false),
                _pin: PhantomPinned,
            }),
            GFP_KERNEL,
        )?;
        let fops = dev.fops.get();
        let misc = dev.misc.get();
        // `owner` keeps the module (and so `dev`) alive while a file is open.
        // SAFETY: `dev` is pinned and not yet shared, so these writes race with nobody.
        unsafe {
            (*fops).owner = module.as_ptr();
            (*fops).unlocked_ioctl = Some(Self::ioctl_callback);
            (*fops).compat_ioctl = Some(Self::ioctl_callback);
            (*misc).minor = bindings::MISC_DYNAMIC_MINOR as i32;
            (*misc).name = name.as_char_ptr();
            (*misc).fops = fops;
            (*misc).mode = 0o600;
        }
        // SAFETY: `misc` is fully initialised and, by the pinning above, stays at this
        // address until `drop` deregisters it.
        let ret = unsafe { bindings::misc_register(misc) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        dev.registered.store(true, Ordering::Release);
        Ok(dev)
    }

    /// The ioctl handler (e.g. for its teardown at module exit).
    pub(crate) fn ops(&self) -> &T {
        &self.ops
    }

    /// # Safety
    ///
    /// Called by the VFS with a file opened through our misc device.
    unsafe extern "C" fn ioctl_callback(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: plain capability check of the calling task.
        if !unsafe { bindings::iscsi_rs_capable_admin() } {
            return code::EPERM.to_errno() as c_long;
        }
        // misc_open stored our `miscdevice` in `private_data`; it is the first field
        // of the repr(C) `Self`, alive until module exit (fops->owner holds the module).
        // SAFETY: `file` is valid for the call and `private_data` points at `Self`.
        let this = unsafe { &*((*file).private_data as *const Self) };
        match this.ops.ioctl(cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}

#[pinned_drop]
impl<T: ControlOps> PinnedDrop for MiscDevice<T> {
    fn drop(self: Pin<&mut Self>) {
        if self.registered.load(Ordering::Acquire) {
            // SAFETY: by the type invariant `misc` is registered.
            unsafe { bindings::misc_deregister(self.misc.get()) };
        }
    }
}
