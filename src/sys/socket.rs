//! [`TcpSocket`]: the connected TCP socket iscsictl hands over, as a safe object.
//! It takes its own reference on the socket's file (`sockfd_lookup`), swaps the
//! socket's `sk_data_ready`/`sk_state_change`/`sk_write_space` callbacks for ours
//! under `sk_callback_lock` (restored on [`TcpSocket::restore_callbacks`] or drop),
//! sends with `kernel_sendmsg` over kvecs (`MSG_MORE` between the parts of a PDU)
//! or, for a command's data, its pages by reference ([`TxPages`],
//! `MSG_SPLICE_PAGES`), blocking or stopping at a full send buffer
//! (`MSG_DONTWAIT`; the caller resumes from the bytes queued once `write_space`
//! reports room), and receives with `tcp_read_sock`: the caller sees each queued
//! skb piece as an [`SkbSlice`] and copies what it wants out of it (header bytes
//! into its own buffer, Data-In payload straight into a command's pages), one
//! copy, no bounce buffer and no `EAGAIN` probing. Reading needs the socket lock,
//! which a [`Reading`] proves: `sk_data_ready` runs with it held (in softirq, or
//! in the task releasing the socket), so the owner receives right there, and
//! [`TcpSocket::with_reading`] takes it in process context.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use kernel::error::{code, to_result, Error, Result};
use kernel::ffi::{c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

use super::bindings;
use crate::proto::crc32c::{crc32c_finish, CRC32C_INIT};

/// `IPPROTO_TCP` (include/uapi/linux/in.h; an enum bindgen does not carry over).
const IPPROTO_TCP: c_int = 6;
/// `TCP_ESTABLISHED` (include/net/tcp_states.h).
const TCP_ESTABLISHED: c_int = 1;
/// The states (include/net/tcp_states.h) a socket reaches only once the peer
/// closed its end (its FIN or a reset came in): TIME_WAIT, CLOSE, CLOSE_WAIT,
/// LAST_ACK, CLOSING.
const TCP_PEER_DONE: [c_int; 5] = [6, 7, 8, 9, 11];

/// What a socket's owner does when the socket signals. Called in softirq context
/// (or in a task releasing the socket lock) with `sk_callback_lock` read-held:
/// nothing that sleeps.
pub(crate) trait SocketEvents: Send + Sync + Sized + 'static {
    /// Bytes (or EOF) can be read; `reading` may read them now.
    fn data_ready(this: ArcBorrow<'_, Self>, reading: &mut Reading<'_>);
    /// The TCP state changed (e.g. the peer closed).
    fn state_change(this: ArcBorrow<'_, Self>);
    /// A send that stopped at a full send buffer may try again (called
    /// only once the socket is writeable, `TcpSocket::writeable`).
    fn write_space(_this: ArcBorrow<'_, Self>) {}
}

/// How a [`Reading::read`] pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// The reader stopped it, or the queue is empty: the socket signals
    /// `data_ready` when more arrives.
    Open,
    /// The peer closed the connection (or we shut it down).
    Closed,
}

/// A piece of a received skb, lent to the reader of [`Reading::read`]
/// for the duration of one callback: bytes `off..off + len` of `skb`.
///
/// # Invariants
///
/// `skb` is a live skb of the socket's receive queue with at least `off + len`
/// bytes; the socket lock keeps it so while the borrow `'a` lasts.
pub(crate) struct SkbSlice<'a> {
    skb: NonNull<bindings::sk_buff>,
    off: u32,
    len: usize,
    _life: PhantomData<&'a bindings::sk_buff>,
}

impl SkbSlice<'_> {
    /// Bytes in the piece.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies the piece's bytes from `at` into `dst` (all of `dst`).
    pub(crate) fn copy_to(&self, at: usize, dst: &mut [u8]) -> Result {
        let (skb, off) = self.range(at, dst.len())?;
        let n = u32::try_from(dst.len()).map_err(|_| code::EINVAL)?;
        // SAFETY: by the invariant the skb holds `off + dst.len()` bytes (checked
        // by `range`); `dst` is writable for its length.
        to_result(unsafe { bindings::iscsi_rs_skb_copy(skb, off, dst.as_mut_ptr().cast(), n) })
    }

    /// The skb and the offset within it of the piece's bytes `at..at + n`,
    /// for the other wrappers in `sys` (a command copying Data-In payload
    /// into its pages). Fails unless the range lies within the piece.
    pub(super) fn range(&self, at: usize, n: usize) -> Result<(*const bindings::sk_buff, u32)> {
        let end = at.checked_add(n).ok_or(code::EINVAL)?;
        if end > self.len {
            return Err(code::EINVAL);
        }
        let off = u32::try_from(at)
            .ok()
            .and_then(|a| self.off.checked_add(a))
            .ok_or(code::EINVAL)?;
        Ok((self.skb.as_ptr(), off))
    }
}

/// Proof that a socket's lock is held (by a socket callback's caller, or by
/// [`TcpSocket::with_reading`]), so its receive queue may be read.
///
/// # Invariants
///
/// `sk` is a live TCP sock whose lock (`bh_lock_sock` with the socket not
/// owned, or ownership through `lock_sock`) is held by this context for `'a`.
pub(crate) struct Reading<'a> {
    sk: *mut bindings::sock,
    _locked: PhantomData<&'a mut bindings::sock>,
}

impl Reading<'_> {
    /// Reads what is queued on `sock`, without blocking: `reader` gets each
    /// skb piece in stream order and returns how many of its bytes it used;
    /// using fewer than offered ends the pass (the rest stays queued for the
    /// next one). Fails with `EINVAL` if `sock` is not the locked socket.
    /// `reader` must not send on or shut down the socket (that would wait for
    /// the lock held here).
    pub(crate) fn read<T, F>(&mut self, sock: &TcpSocket<T>, reader: &mut F) -> Result<ReadEnd>
    where
        T: SocketEvents,
        F: FnMut(&SkbSlice<'_>) -> usize,
    {
        if !sock.is_read_by(self) {
            return Err(code::EINVAL);
        }
        let mut status: c_int = 0;
        let mut pass = ReadPass {
            reader,
            stopped: false,
        };
        // SAFETY: by the invariant `sk` is a live TCP sock whose lock this
        // context holds; `pass` outlives the call and is only used by
        // `read_cb::<F>`, which the helper calls with the skbs of this socket.
        let ret = unsafe {
            bindings::iscsi_rs_tcp_read(
                self.sk,
                ptr::from_mut(&mut pass).cast(),
                Some(read_cb::<F>),
                &mut status,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        match status {
            0 => Ok(ReadEnd::Open),
            s if s < 0 => Err(Error::from_errno(s)),
            // The reader stopped early: what it left (and the FIN) wait for
            // its next pass.
            _ if pass.stopped => Ok(ReadEnd::Open),
            // Drained up to the FIN (tcp_read_sock eats it with the bytes
            // before it).
            _ => Ok(ReadEnd::Closed),
        }
    }
}

/// References on the pages of part of a command's buffer, sent by reference
/// (zero-copy, `MSG_SPLICE_PAGES`) with [`TcpSocket::send_pages_from`]; filled by
/// `Cmd::pin_pages`. The references keep the pages alive while held, so
/// sending needs no access to the command (and may block, or stop and resume
/// later).
///
/// # Invariants
///
/// `ptr` came from `iscsi_rs_pages_alloc` and is freed only in `drop`.
pub(crate) struct TxPages {
    ptr: NonNull<bindings::iscsi_rs_pages>,
}

// SAFETY: the array holds page references, which any thread may use or drop.
unsafe impl Send for TxPages {}
// SAFETY: `&TxPages` gives no access to the array.
unsafe impl Sync for TxPages {}

impl TxPages {
    /// An empty array.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation.
        let ptr = unsafe { bindings::iscsi_rs_pages_alloc() };
        Ok(TxPages {
            ptr: NonNull::new(ptr).ok_or(code::ENOMEM)?,
        })
    }

    /// The array, for `Cmd::pin_pages` (which fills it, dropping what it held).
    pub(super) fn raw(&mut self) -> *mut bindings::iscsi_rs_pages {
        self.ptr.as_ptr()
    }

    /// The CRC32C (digest value) of the bytes of the pages held. The pages
    /// were pinned from a queue with stable writes, or the CRC may not match
    /// what goes out.
    pub(crate) fn crc32c(&mut self) -> u32 {
        // SAFETY: by the invariant the array is live; it is ours (`&mut`),
        // and holds references on every page it names, each within its page.
        let state = unsafe { bindings::iscsi_rs_pages_crc32c(self.ptr.as_ptr(), CRC32C_INIT) };
        crc32c_finish(state)
    }

    /// Drops the page references held.
    pub(crate) fn clear(&mut self) {
        // SAFETY: by the invariant the array is live; it is ours (`&mut`).
        unsafe { bindings::iscsi_rs_pages_put(self.ptr.as_ptr()) };
    }
}

impl Drop for TxPages {
    fn drop(&mut self) {
        // SAFETY: by the invariant the array is live and freed once, here.
        unsafe { bindings::iscsi_rs_pages_free(self.ptr.as_ptr()) };
    }
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
    /// Set by [`TcpSocket::shutdown`]: the connection is given up, and what
    /// it still receives may be thrown away.
    shut: AtomicBool,
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
            shut: AtomicBool::new(false),
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

    /// Sends `parts` back to back from byte `skip` of them on. `more` sets
    /// `MSG_MORE` (more of the same PDU, or another PDU, follows at once).
    /// With `wait` it blocks until every byte is queued; without, it stops
    /// when the send buffer is full, and the socket calls
    /// [`SocketEvents::write_space`] once there is room again. Returns the
    /// bytes queued by this call.
    pub(crate) fn send_from(
        &self,
        parts: &[&[u8]],
        skip: usize,
        more: bool,
        wait: bool,
    ) -> Result<usize> {
        let mut vecs = [bindings::kvec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        }; 4];
        if parts.len() > vecs.len() {
            return Err(code::EINVAL);
        }
        let mut flags = bindings::MSG_NOSIGNAL;
        if more {
            flags |= bindings::MSG_MORE;
        }
        if !wait {
            flags |= bindings::MSG_DONTWAIT;
        }
        let mut sent = 0usize;
        loop {
            // The parts from byte `skip + sent` on.
            let mut at = skip.checked_add(sent).ok_or(code::EINVAL)?;
            let mut n = 0usize;
            let mut total = 0usize;
            for p in parts {
                if at >= p.len() {
                    at -= p.len();
                    continue;
                }
                let s = p.get(at..).unwrap_or(&[]);
                at = 0;
                if let Some(v) = vecs.get_mut(n) {
                    // The iterator is ITER_SOURCE: the kernel only reads through it.
                    v.iov_base = s.as_ptr().cast_mut().cast();
                    v.iov_len = s.len();
                    n += 1;
                    total += s.len();
                }
            }
            if total == 0 {
                return Ok(sent);
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
            if ret == -(bindings::EAGAIN as c_int) && !wait {
                return Ok(sent);
            }
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
            if ret == 0 {
                return Err(errno(bindings::EPIPE));
            }
            sent += ret as usize;
        }
    }

    /// Sends the pages `pages` holds by reference, from byte `skip` of them
    /// on; `more` and `wait` as for [`Self::send_from`]. Returns the bytes
    /// queued by this call. The references stay (TCP took its own for what
    /// it queued): the caller clears them once all is sent.
    pub(crate) fn send_pages_from(
        &self,
        pages: &mut TxPages,
        skip: usize,
        more: bool,
        wait: bool,
    ) -> Result<usize> {
        // SAFETY: the socket is valid; the array is live and holds references
        // on every page it names (filled by `Cmd::pin_pages`, or empty); the
        // helper checks `skip` against its length.
        let ret = unsafe {
            bindings::iscsi_rs_pages_send(self.sock.as_ptr(), pages.raw(), skip, more, !wait)
        };
        if ret < 0 {
            return Err(Error::from_errno(ret as c_int));
        }
        Ok(ret as usize)
    }

    /// Whether a sender that stopped at a full send buffer may try again
    /// (the room [`SocketEvents::write_space`] reports).
    pub(crate) fn writeable(&self) -> bool {
        // SAFETY: the socket is valid (owned by `self`); the helper only reads.
        unsafe { bindings::iscsi_rs_sk_writeable(self.sk()) }
    }

    /// The local TCP port (0 if it has none).
    pub(crate) fn local_port(&self) -> u16 {
        // SAFETY: the socket is valid (owned by `self`); the helper only reads
        // a field of its inet part (a TCP socket is an inet socket).
        unsafe { bindings::iscsi_rs_sk_local_port(self.sk()) }
    }

    /// Sends at once what earlier sends with `more` left queued. Blocks
    /// (takes the socket lock).
    pub(crate) fn push(&self) {
        // SAFETY: the socket is valid (owned by `self`).
        unsafe { bindings::iscsi_rs_tcp_push(self.sk()) }
    }

    /// Runs `f` with the socket lock held (`lock_sock`), in process context:
    /// what `f` reads with the [`Reading`] is this socket's. Softirq input
    /// meanwhile waits in the socket's backlog, processed when the lock is
    /// released (which may call `data_ready` in this task, after `f`).
    pub(crate) fn with_reading<R>(&self, f: impl FnOnce(&mut Reading<'_>) -> R) -> R {
        let sk = self.sk();
        // SAFETY: `sk` is the live sock of a socket we hold; sleeping is
        // allowed here (process context, by the method's contract with its
        // callers: the RX work).
        unsafe { bindings::iscsi_rs_lock_sock(sk) };
        let mut reading = Reading {
            sk,
            _locked: PhantomData,
        };
        let r = f(&mut reading);
        // SAFETY: pairs with the lock above; `reading` is gone.
        unsafe { bindings::iscsi_rs_release_sock(sk) };
        r
    }

    /// Whether `reading` is this socket's lock.
    pub(crate) fn is_read_by(&self, reading: &Reading<'_>) -> bool {
        reading.sk == self.sk()
    }

    /// Whether this socket, shut by [`TcpSocket::shutdown`], still waits for
    /// the peer to close its end: its FIN or a reset has not come yet. Reads
    /// and drops what came meanwhile first, so the peer's FIN finds room
    /// behind its data. False for a socket not shut (a live connection's
    /// data is never touched). Sleeps (takes the socket lock).
    pub(crate) fn awaits_peer_close(&self) -> bool {
        if !self.shut.load(Ordering::Acquire) {
            return false;
        }
        // SAFETY: the socket is valid (owned by `self`); the helper reads it
        // with `sock_recvmsg` into a discarding iterator, in process context
        // (this method's contract).
        unsafe { bindings::iscsi_rs_sock_discard(self.sock.as_ptr()) };
        // SAFETY: the socket is valid (owned by `self`); the helper only reads
        // `sk_state`.
        let state = unsafe { bindings::iscsi_rs_sk_state(self.sk()) };
        !TCP_PEER_DONE.contains(&state)
    }

    /// Shuts the sending direction down (our FIN): blocked senders fail.
    /// The receiving side stays open: shut too, the peer's data still in
    /// flight would make TCP answer with a reset (data after `SHUT_RD` in
    /// FIN_WAIT), so the socket would read as closed while the peer still
    /// tears its end down (see [`TcpSocket::awaits_peer_close`]). Nothing
    /// reads it after its callbacks are restored. Does nothing unless this
    /// handle once owned the callbacks: a socket refused with `EBUSY`
    /// belongs to someone else.
    pub(crate) fn shutdown(&self) {
        if !self.claimed.load(Ordering::Acquire) {
            return;
        }
        self.shut.store(true, Ordering::Release);
        // SAFETY: the socket is valid. Errors (already shut down) do not matter.
        unsafe {
            bindings::kernel_sock_shutdown(self.sock.as_ptr(), bindings::sock_shutdown_cmd_SHUT_WR)
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

/// One [`Reading::read`] pass: the reader, and whether it stopped
/// (tcp_read_sock offers the rest of a piece again after a partial use; once
/// stopped, the pass refuses everything).
struct ReadPass<'a, F> {
    reader: &'a mut F,
    stopped: bool,
}

/// # Safety
///
/// Called by `iscsi_rs_tcp_read` (inside [`Reading::read`]) with the
/// `ctx` it was given, a `&mut ReadPass<F>`, and a piece of a live skb of the
/// locked socket.
unsafe extern "C" fn read_cb<F>(
    ctx: *mut c_void,
    skb: *mut bindings::sk_buff,
    off: c_uint,
    len: usize,
) -> c_int
where
    F: FnMut(&SkbSlice<'_>) -> usize,
{
    // SAFETY: `ctx` is the `&mut ReadPass<F>` that `Reading::read` passed,
    // borrowed for the whole pass and used by nothing else meanwhile.
    let pass = unsafe { &mut *ctx.cast::<ReadPass<'_, F>>() };
    let Some(skb) = NonNull::new(skb) else {
        return 0;
    };
    if pass.stopped {
        return 0;
    }
    // TCP hands skb pieces far below 2 GiB; the bound keeps the return exact.
    let len = len.min(c_int::MAX as usize);
    // INVARIANT: the helper passes a live skb of the socket's queue holding
    // `off + len` bytes, and the socket lock is held until it returns.
    let piece = SkbSlice {
        skb,
        off,
        len,
        _life: PhantomData,
    };
    let used = (pass.reader)(&piece).min(len);
    pass.stopped = used < len;
    used as c_int
}

/// # Safety
///
/// Installed as `sk_data_ready`; called by the network stack with a live `sk`
/// from TCP input processing, which holds the socket's lock: in softirq
/// `bh_lock_sock` with the socket not owned by a task, or in `release_sock`
/// working off the backlog for the task that owns it.
unsafe extern "C" fn data_ready_cb<T: SocketEvents>(sk: *mut bindings::sock) {
    // INVARIANT: TCP calls `sk_data_ready` with the socket locked (above),
    // and the `Reading` does not outlive this call.
    let mut reading = Reading {
        sk,
        _locked: PhantomData,
    };
    // SAFETY: `sk` is live and ours (see `with_owner`).
    unsafe { with_owner::<T>(sk, |owner| T::data_ready(owner, &mut reading)) };
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
    // SAFETY: `sk` is live (the stack's caller); the helper only reads.
    let room = unsafe { bindings::iscsi_rs_sk_writeable(sk) };
    // SAFETY: `sk` is live and ours (see `with_owner`).
    let saved = unsafe {
        with_owner::<T>(sk, |owner| {
            if room {
                T::write_space(owner)
            }
        })
    };
    // The original wakes senders blocked in sendmsg: it must always run.
    if let Some(f) = saved.and_then(|s| s.write_space) {
        // SAFETY: the socket's own callback, called as the stack would.
        unsafe { f(sk) };
    }
}
