//! [`TcpSocket`]: the connected TCP socket iscsictl hands over, as a safe object.
//! It takes its own reference on the socket's file (`sockfd_lookup`), swaps the
//! socket's `sk_data_ready`/`sk_state_change`/`sk_write_space` callbacks for ours
//! under `sk_callback_lock` (restored on [`TcpSocket::restore_callbacks`] or drop),
//! sends with `kernel_sendmsg` over kvecs (`MSG_MORE` between the parts of a PDU)
//! and receives with non-blocking `kernel_recvmsg`.
//!
//! Receiving through `kernel_recvmsg` into a bounce buffer costs one copy more than
//! `tcp_read_sock` would (skb → buffer → command pages); that is the planned
//! optimisation once the data path is proven.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use kernel::error::{code, to_result, Error, Result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

use super::bindings;

/// `IPPROTO_TCP` (include/uapi/linux/in.h; an enum bindgen does not carry over).
const IPPROTO_TCP: c_int = 6;
/// `TCP_ESTABLISHED` (include/net/tcp_states.h).
const TCP_ESTABLISHED: c_int = 1;

/// What a socket's owner does when the socket signals. Called in softirq context
/// with `sk_callback_lock` read-held: only non-blocking work (queue a work item).
pub(crate) trait SocketEvents: Send + Sync + Sized + 'static {
    /// Bytes (or EOF) can be read.
    fn data_ready(this: ArcBorrow<'_, Self>);
    /// The TCP state changed (e.g. the peer closed).
    fn state_change(this: ArcBorrow<'_, Self>);
    /// Send buffer space became available.
    fn write_space(_this: ArcBorrow<'_, Self>) {}
}

/// Outcome of a non-blocking receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    /// This many bytes were read.
    Data(usize),
    /// Nothing to read now; the socket will signal `data_ready`.
    WouldBlock,
    /// The peer closed the connection (or we shut it down).
    Closed,
}

/// What `sk_user_data` points at while our callbacks are installed.
struct Hook<T: SocketEvents> {
    owner: Arc<T>,
    /// The callbacks we replaced; written by `iscsi_rs_sk_install` before the hook
    /// is published and read-only afterwards.
    saved: bindings::iscsi_rs_sk_ops,
}

/// A connected TCP socket owned by the module.
///
/// # Invariants
///
/// `sock` was returned by `sockfd_lookup` and we hold the file reference it took,
/// so the socket and its `sk` stay valid until `drop` puts it. `hook` is null or a
/// `KBox<Hook<T>>` leaked by `install_callbacks` and published as `sk_user_data`.
pub(crate) struct TcpSocket<T: SocketEvents> {
    sock: NonNull<bindings::socket>,
    hook: AtomicPtr<Hook<T>>,
    /// Set once `install_callbacks` succeeded: only then is the connection
    /// ours to shut down (a refused second user must not end the owner's).
    claimed: AtomicBool,
    _owner: PhantomData<Arc<T>>,
}

// SAFETY: the socket layer serialises concurrent senders and receivers itself
// (lock_sock); the hook pointer is an atomic; `T` is Send + Sync.
unsafe impl<T: SocketEvents> Send for TcpSocket<T> {}
// SAFETY: as above: every method takes `&self` and is safe to call concurrently.
unsafe impl<T: SocketEvents> Sync for TcpSocket<T> {}

fn errno(e: u32) -> Error {
    Error::from_errno(-(e as c_int))
}

impl<T: SocketEvents> TcpSocket<T> {
    /// Takes a reference on the socket behind the caller's descriptor `fd`, which
    /// must be an established TCP (IPv4 or IPv6) connection.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        let mut err: c_int = 0;
        // SAFETY: plain lookup in the calling task's file table; `err` is valid.
        let sock = unsafe { bindings::sockfd_lookup(fd, &mut err) };
        let sock = NonNull::new(sock).ok_or_else(|| Error::from_errno(err))?;
        let this = TcpSocket {
            sock,
            hook: AtomicPtr::new(ptr::null_mut()),
            claimed: AtomicBool::new(false),
            _owner: PhantomData,
        };
        // From here on `drop` puts the reference.
        let sk = this.sk();
        // SAFETY: `sock` is valid (we hold its file) and so is its `type_`.
        let ty = unsafe { (*this.sock.as_ptr()).type_ };
        if sk.is_null() || u32::from(ty as u16) != bindings::sock_type_SOCK_STREAM {
            return Err(code::EINVAL);
        }
        // SAFETY: `sk` is the live sock of a socket we hold.
        let (family, protocol, state) = unsafe {
            (
                bindings::iscsi_rs_sk_family(sk),
                bindings::iscsi_rs_sk_protocol(sk),
                bindings::iscsi_rs_sk_state(sk),
            )
        };
        let inet = family == bindings::AF_INET as c_int || family == bindings::AF_INET6 as c_int;
        if !inet || protocol != IPPROTO_TCP {
            return Err(code::EINVAL);
        }
        if state != TCP_ESTABLISHED {
            return Err(errno(bindings::ENOTCONN));
        }
        // SAFETY: as above; the helper takes the socket lock itself.
        unsafe { bindings::iscsi_rs_sk_prepare(sk) };
        Ok(this)
    }

    fn sk(&self) -> *mut bindings::sock {
        // SAFETY: by the invariant the socket is valid; `sk` is set for a socket
        // that came from a descriptor and does not change while it is open.
        unsafe { (*self.sock.as_ptr()).sk }
    }

    /// Routes the socket's callbacks to `owner` (which stays referenced until
    /// [`Self::restore_callbacks`]). Fails with `EBUSY` if another kernel user
    /// (or an earlier call) already owns `sk_user_data`.
    pub(crate) fn install_callbacks(&self, owner: Arc<T>) -> Result {
        let hook = KBox::new(
            Hook {
                owner,
                saved: bindings::iscsi_rs_sk_ops::default(),
            },
            GFP_KERNEL,
        )?;
        let raw = KBox::into_raw(hook);
        let ops = bindings::iscsi_rs_sk_ops {
            data_ready: Some(data_ready_cb::<T>),
            state_change: Some(state_change_cb::<T>),
            write_space: Some(write_space_cb::<T>),
        };
        if self
            .hook
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: `raw` came from `KBox::into_raw` above and was not published.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(code::EBUSY);
        }
        // SAFETY: `sk` is valid; `raw` points at a live Hook whose `saved` the
        // helper fills before publishing `raw` under the callback lock.
        let ret = unsafe {
            bindings::iscsi_rs_sk_install(self.sk(), raw.cast(), &ops, &raw mut (*raw).saved)
        };
        if let Err(e) = to_result(ret) {
            self.hook.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: the helper refused, so `raw` was never published.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(e);
        }
        self.claimed.store(true, Ordering::Release);
        Ok(())
    }

    /// Puts the original callbacks back and drops the reference to the owner.
    /// Idempotent. When it returns, no callback of ours runs or will run.
    pub(crate) fn restore_callbacks(&self) {
        let raw = self.hook.swap(ptr::null_mut(), Ordering::AcqRel);
        if raw.is_null() {
            return;
        }
        // SAFETY: `raw` is our published hook; the helper takes the callback lock
        // for writing, which waits for callbacks in flight (they read-hold it).
        unsafe { bindings::iscsi_rs_sk_restore(self.sk(), &(*raw).saved) };
        // SAFETY: unpublished above and no callback can see it any more.
        drop(unsafe { KBox::from_raw(raw) });
    }

    /// Sends `parts` back to back, blocking until all bytes are queued. `more`
    /// sets `MSG_MORE` (more of the same PDU, or another PDU, follows at once).
    pub(crate) fn send(&self, parts: &[&[u8]], more: bool) -> Result {
        let mut vecs = [bindings::kvec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        }; 4];
        if parts.len() > vecs.len() {
            return Err(code::EINVAL);
        }
        // Skip what was already sent after a partial send: (part, offset in it).
        let mut part = 0usize;
        let mut off = 0usize;
        loop {
            let mut n = 0usize;
            let mut total = 0usize;
            for (i, p) in parts.iter().enumerate().skip(part) {
                let start = if i == part { off } else { 0 };
                let s = p.get(start..).unwrap_or(&[]);
                if s.is_empty() {
                    continue;
                }
                if let Some(v) = vecs.get_mut(n) {
                    // The iterator is ITER_SOURCE: the kernel only reads through it.
                    v.iov_base = s.as_ptr().cast_mut().cast();
                    v.iov_len = s.len();
                    n += 1;
                    total += s.len();
                }
            }
            if total == 0 {
                return Ok(());
            }
            let mut flags = bindings::MSG_NOSIGNAL;
            if more {
                flags |= bindings::MSG_MORE;
            }
            let mut msg = bindings::msghdr {
                msg_flags: flags,
                ..Default::default()
            };
            // SAFETY: the socket is valid; `vecs[..n]` describe live slices of
            // `parts` that outlive the call.
            let ret = unsafe {
                bindings::kernel_sendmsg(self.sock.as_ptr(), &mut msg, vecs.as_mut_ptr(), n, total)
            };
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
            if ret == 0 {
                return Err(errno(bindings::EPIPE));
            }
            // Advance past `ret` bytes.
            let mut left = ret as usize;
            while left > 0 {
                let Some(p) = parts.get(part) else { break };
                let avail = p.len().saturating_sub(off);
                if left < avail {
                    off += left;
                    left = 0;
                } else {
                    left -= avail;
                    part += 1;
                    off = 0;
                }
            }
        }
    }

    /// The `struct socket`, for the other wrappers in `sys` (which keep to
    /// the same rules: non-blocking reads by one receiver at a time).
    pub(super) fn raw(&self) -> *mut bindings::socket {
        self.sock.as_ptr()
    }

    /// Maps the return value of a non-blocking `kernel_recvmsg`.
    pub(super) fn recv_result(ret: c_int) -> Result<Recv> {
        match ret {
            0 => Ok(Recv::Closed),
            n if n > 0 => Ok(Recv::Data(n as usize)),
            e if e == -(bindings::EAGAIN as c_int) => Ok(Recv::WouldBlock),
            e => Err(Error::from_errno(e)),
        }
    }

    /// Reads what is available into `buf` without blocking.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<Recv> {
        if buf.is_empty() {
            return Ok(Recv::WouldBlock);
        }
        let mut vec = bindings::kvec {
            iov_base: buf.as_mut_ptr().cast::<c_void>(),
            iov_len: buf.len(),
        };
        let mut msg = bindings::msghdr::default();
        // SAFETY: the socket is valid; `vec` describes `buf`, which outlives the call.
        let ret = unsafe {
            bindings::kernel_recvmsg(
                self.sock.as_ptr(),
                &mut msg,
                &mut vec,
                1,
                buf.len(),
                bindings::MSG_DONTWAIT as c_int,
            )
        };
        Self::recv_result(ret)
    }

    /// Shuts both directions down: blocked senders fail, receivers see EOF.
    /// Does nothing unless this handle once owned the callbacks: a socket
    /// refused with `EBUSY` belongs to someone else.
    pub(crate) fn shutdown(&self) {
        if !self.claimed.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the socket is valid. Errors (already shut down) do not matter.
        unsafe {
            bindings::kernel_sock_shutdown(
                self.sock.as_ptr(),
                bindings::sock_shutdown_cmd_SHUT_RDWR,
            )
        };
    }
}

impl<T: SocketEvents> Drop for TcpSocket<T> {
    fn drop(&mut self) {
        self.restore_callbacks();
        // SAFETY: by the invariant we hold the reference `sockfd_lookup` took on
        // the socket's file (this is `sockfd_put`).
        unsafe { bindings::fput((*self.sock.as_ptr()).file) };
    }
}

/// Runs `f` on the owner published in `sk_user_data`, if any, with the callback
/// lock read-held; returns the saved callbacks so the caller can chain them.
///
/// # Safety
///
/// `sk` is a live sock whose `sk_user_data`, when not null, is a `Hook<T>`
/// published by [`TcpSocket::install_callbacks`].
unsafe fn with_owner<T: SocketEvents>(
    sk: *mut bindings::sock,
    f: impl FnOnce(ArcBorrow<'_, T>),
) -> Option<bindings::iscsi_rs_sk_ops> {
    // SAFETY: `sk` is live (caller); the helper read-locks sk_callback_lock.
    let raw = unsafe { bindings::iscsi_rs_sk_user_lock(sk) }.cast::<Hook<T>>();
    let saved = if raw.is_null() {
        None
    } else {
        // SAFETY: a published hook is freed only after `iscsi_rs_sk_restore` took
        // the callback lock for writing, which our read lock excludes.
        let hook = unsafe { &*raw };
        f(hook.owner.as_arc_borrow());
        Some(hook.saved)
    };
    // SAFETY: pairs with the lock above.
    unsafe { bindings::iscsi_rs_sk_user_unlock(sk) };
    saved
}

/// # Safety
///
/// Installed as `sk_data_ready`; called by the network stack with a live `sk`.
unsafe extern "C" fn data_ready_cb<T: SocketEvents>(sk: *mut bindings::sock) {
    // SAFETY: `sk` is live and ours (see `with_owner`).
    unsafe { with_owner::<T>(sk, T::data_ready) };
}

/// # Safety
///
/// Installed as `sk_state_change`; called by the network stack with a live `sk`.
unsafe extern "C" fn state_change_cb<T: SocketEvents>(sk: *mut bindings::sock) {
    // SAFETY: `sk` is live and ours (see `with_owner`).
    let saved = unsafe { with_owner::<T>(sk, T::state_change) };
    if let Some(f) = saved.and_then(|s| s.state_change) {
        // SAFETY: the socket's own callback, called as the stack would.
        unsafe { f(sk) };
    }
}

/// # Safety
///
/// Installed as `sk_write_space`; called by the network stack with a live `sk`.
unsafe extern "C" fn write_space_cb<T: SocketEvents>(sk: *mut bindings::sock) {
    // SAFETY: `sk` is live and ours (see `with_owner`).
    let saved = unsafe { with_owner::<T>(sk, T::write_space) };
    // The original wakes senders blocked in sendmsg: it must always run.
    if let Some(f) = saved.and_then(|s| s.write_space) {
        // SAFETY: the socket's own callback, called as the stack would.
        unsafe { f(sk) };
    }
}
