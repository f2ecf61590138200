//! The `/dev/iscsi_rs` ioctl ABI, shared by iscsi_rs.ko and iscsictl: `#[repr(C)]`
//! argument structs with explicit padding and `_spare` room, their sizes and field
//! offsets asserted at compile time, the ioctl numbers (Linux `_IOW`/`_IOWR`
//! encoding as const fns), a field-by-field byte codec (native endian, no
//! transmutes) and the validation the kernel applies to everything userspace sends.
//!
//! Versioning: every struct starts with `version` and `size`. A new field takes room
//! from `_spare` (which must be zero today) so old binaries keep working; an
//! incompatible change bumps [`VERSION`] and the kernel refuses the old one.

use core::fmt;
use core::mem::{offset_of, size_of};

use super::negotiate::{AuthMethod, Digest, SessionParams, SessionType};
use super::serial::{CmdWindow, Sn};

/// ABI version carried in every argument struct.
pub const VERSION: u32 = 1;

/// ioctl type byte ("magic"): 0xE3 is unused in Documentation/userspace-api/ioctl.
pub const IOC_MAGIC: u8 = 0xe3;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// Linux `_IOC(dir, type, nr, size)` (asm-generic/ioctl.h, used by x86 and arm64).
/// A size that does not fit the 14-bit field fails the build where it is used.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS), "ioctl argument too large");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IOW(type, nr, size)`: userspace writes the argument.
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOWR(type, nr, size)`: the argument goes in and comes back.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE | IOC_READ, ty, nr, size)
}

/// Create a session from a logged-in socket: [`Handoff`] in, `host_no` out; the
/// ioctl also returns the SCSI host number.
pub const ADD_SESSION: u32 = iowr(IOC_MAGIC, 1, size_of::<Handoff>());
/// Log a session out and remove its SCSI host: [`RemoveSession`].
pub const REMOVE_SESSION: u32 = iow(IOC_MAGIC, 2, size_of::<RemoveSession>());
/// List sessions: [`List`] in and out, [`SessionInfo`] entries written to `entries`.
pub const LIST: u32 = iowr(IOC_MAGIC, 3, size_of::<List>());
/// Hand a new connection to an existing session after re-login (recovery):
/// [`Handoff`] with `host_no` naming the session and `generation` the
/// [`Event`] answered.
pub const HANDOFF: u32 = iowr(IOC_MAGIC, 4, size_of::<Handoff>());
/// Wait (interruptibly) for the next recovery request: [`Event`] in and out
/// (FreeBSD's ISCSIDWAIT). The daemon answers with HANDOFF or FAIL_RELOGIN.
pub const WAIT_EVENT: u32 = iowr(IOC_MAGIC, 5, size_of::<Event>());
/// Report a failed re-login attempt: [`ReloginFailed`]. The kernel offers the
/// request again after `retry_ms`.
pub const FAIL_RELOGIN: u32 = iow(IOC_MAGIC, 6, size_of::<ReloginFailed>());
/// Add a further connection (lane `lane` > 0) to a running session created
/// with `connections` > 1: [`Handoff`] of a non-leading login (same ISID, the
/// session's TSIH, its own CID), `host_no` naming the session and
/// `generation` the session's current one (0 before any recovery).
pub const ADD_CONNECTION: u32 = iowr(IOC_MAGIC, 7, size_of::<Handoff>());
/// List a session's connections: [`ConnList`] in and out, [`ConnInfo`]
/// entries (one per lane, up or not) written to `entries`.
pub const LIST_CONNECTIONS: u32 = iowr(IOC_MAGIC, 8, size_of::<ConnList>());

/// Most connections (lanes) a session may have: one per blk-mq hardware queue.
pub const MAX_CONNECTIONS: u16 = 16;

/// Largest login recipe (opaque to the kernel, see [`Handoff::recipe`]).
pub const RECIPE_MAX: u32 = 4096;
/// Longest replacement timeout accepted, seconds (a day).
pub const MAX_REPLACEMENT_TIMEOUT: u32 = 86_400;
/// Replacement timeout iscsictl asks for when none is configured, seconds
/// (open-iscsi's `replacement_timeout` default).
pub const DEFAULT_REPLACEMENT_TIMEOUT: u32 = 120;
/// NOP-Out interval / timeout iscsictl asks for by default, seconds.
pub const DEFAULT_NOOP_OUT_INTERVAL: u16 = 5;
/// See [`DEFAULT_NOOP_OUT_INTERVAL`].
pub const DEFAULT_NOOP_OUT_TIMEOUT: u16 = 5;

/// [`Event::flags`] (in): offer again every request already handed to a
/// waiter that never answered (a restarted daemon sets it on its first wait).
pub const EVENT_RESCAN: u32 = 1;
/// [`Event::kind`]: the session lost its connection; log in again and HANDOFF.
pub const EVENT_RELOGIN: u32 = 1;

/// [`Event::reason`]: why the connection was lost.
pub mod reason {
    /// The target closed the connection (FIN).
    pub const CLOSED: u32 = 1;
    /// A socket error (reset, timeout, send failure).
    pub const SOCKET: u32 = 2;
    /// A protocol violation by the target (framing, digest, sequence, ...).
    pub const PROTOCOL: u32 = 3;
    /// No answer to a NOP-Out ping within noop_out_timeout.
    pub const NOP_TIMEOUT: u32 = 4;
    /// The target asked for a logout or dropped the connection (Async Message).
    pub const TARGET_REQUEST: u32 = 5;
    /// SCSI error handling escalated to a session reconnect.
    pub const ERROR_HANDLING: u32 = 6;
    /// An earlier re-login attempt failed (FAIL_RELOGIN).
    pub const RELOGIN_FAILED: u32 = 7;

    /// A short text for `code`.
    pub fn describe(code: u32) -> &'static str {
        match code {
            CLOSED => "connection closed by the target",
            SOCKET => "socket error",
            PROTOCOL => "protocol violation",
            NOP_TIMEOUT => "NOP-Out ping timed out",
            TARGET_REQUEST => "requested by the target",
            ERROR_HANDLING => "SCSI error handling",
            RELOGIN_FAILED => "previous re-login failed",
            _ => "unknown",
        }
    }
}

/// Room for an iSCSI name: at most 223 bytes (RFC 7143 §4.2.7.1) plus NUL.
pub const NAME_LEN: usize = 224;
/// Room for a portal string, "host:port" or "[v6]:port", plus NUL.
pub const PORTAL_LEN: usize = 64;

/// Largest MaxRecvDataSegmentLength the module accepts: it keeps one receive
/// buffer of that size per connection for non-Data-In segments.
pub const MAX_RECV_DATA_SEGMENT_LEN: u32 = 1 << 20;
/// Smallest data segment length RFC 7143 allows to be declared (§13.12).
pub const MIN_DATA_SEGMENT_LEN: u32 = 512;
/// Largest value the 24-bit length keys can take (2^24 - 1).
pub const MAX_DATA_SEGMENT_LEN: u32 = 0x00ff_ffff;
/// Largest queue depth (commands in flight per session) the module accepts:
/// the blk-mq tag must fit the 12 low bits of the ITT, with room left for the
/// module's internal ITTs (Logout, TMF) above it.
pub const MAX_QUEUE_DEPTH: u32 = 2048;
/// Queue depth iscsictl uses when none is configured.
pub const DEFAULT_QUEUE_DEPTH: u32 = 128;
/// Most Data-Out bursts the module queues at once: every command in flight may
/// have MaxOutstandingR2T R2Ts outstanding, each one a queued burst, so a
/// handoff whose queue_depth × max_outstanding_r2t exceeds this is refused
/// (64 Ki jobs of about 32 bytes: the queue stays under 2 MiB).
pub const MAX_R2T_JOBS: u32 = 65_536;

/// Data-Out jobs the module's queue must hold for a connection: every R2T the
/// target may have outstanding at once (queue_depth × MaxOutstandingR2T, no
/// cap: a cap lets a target within its rights overflow the queue and fail the
/// connection), plus room for NOP-Out answers.
pub const fn r2t_job_capacity(queue_depth: u32, max_outstanding_r2t: u16) -> usize {
    queue_depth as usize * max_outstanding_r2t as usize + 64
}

/// [`RemoveSession::flags`]: tear down without sending a Logout (dead target).
pub const REMOVE_FORCE: u32 = 1;

/// [`SessionInfo::state`] values.
pub mod state {
    /// Full feature phase, commands flow.
    pub const RUNNING: u8 = 1;
    /// Logout sent, waiting for the response.
    pub const LOGGING_OUT: u8 = 2;
    /// The connection failed and the replacement timeout expired (or recovery
    /// is impossible): commands fail fast until a re-login succeeds.
    pub const FAILED: u8 = 3;
    /// The connection failed; I/O is held while the daemon logs in again.
    pub const RECOVERING: u8 = 4;
}

/// Digest codes in [`Handoff::header_digest`] / [`Handoff::data_digest`].
pub const DIGEST_NONE: u8 = 0;
/// CRC32C digest.
pub const DIGEST_CRC32C: u8 = 1;

/// ADD_SESSION / HANDOFF argument: everything the kernel needs to run the full
/// feature phase on a socket that iscsictl has logged in.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<Handoff>()`.
    pub size: u32,
    /// No flags are defined yet: must be 0.
    pub flags: u32,
    /// The connected, logged-in TCP socket. The kernel takes its own reference;
    /// the caller closes its descriptor afterwards and must not use it meanwhile.
    pub fd: i32,
    /// ADD_SESSION: 0 in, the new SCSI host number out. HANDOFF: the session.
    pub host_no: u32,
    /// Connection ID used at login.
    pub cid: u16,
    /// Target Session Identifying Handle from the final Login Response (non-zero).
    pub tsih: u16,
    /// Initiator Session ID (6 bytes, wire order).
    pub isid: [u8; 6],
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub header_digest: u8,
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub data_digest: u8,
    /// StatSN of the final Login Response.
    pub stat_sn: u32,
    /// ExpStatSN to send next: `stat_sn + 1`.
    pub exp_stat_sn: u32,
    /// ExpCmdSN of the final Login Response.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN of the final Login Response.
    pub max_cmd_sn: u32,
    /// CmdSN of the first full-feature command (normally `exp_cmd_sn`).
    pub cmd_sn: u32,
    /// Session age for the ITTs: bits 16..31 go into every ITT the kernel issues
    /// (so PDUs of an earlier connection are recognised); bits 0..15 must be 0.
    /// Used by ADD_SESSION; on HANDOFF the kernel bumps the session's own age.
    pub itt_base: u32,
    /// Our declared MaxRecvDataSegmentLength (the target sends at most this).
    pub max_recv_data_segment_len: u32,
    /// The target's MaxRecvDataSegmentLength (we send at most this per PDU).
    pub max_xmit_data_segment_len: u32,
    /// FirstBurstLength.
    pub first_burst_len: u32,
    /// MaxBurstLength.
    pub max_burst_len: u32,
    /// MaxOutstandingR2T.
    pub max_outstanding_r2t: u16,
    /// MaxConnections.
    pub max_connections: u16,
    /// DefaultTime2Wait, seconds.
    pub default_time2wait: u16,
    /// DefaultTime2Retain, seconds.
    pub default_time2retain: u16,
    /// InitialR2T (0/1).
    pub initial_r2t: u8,
    /// ImmediateData (0/1).
    pub immediate_data: u8,
    /// DataPDUInOrder (0/1).
    pub data_pdu_in_order: u8,
    /// DataSequenceInOrder (0/1).
    pub data_sequence_in_order: u8,
    /// ErrorRecoveryLevel.
    pub error_recovery_level: u8,
    /// Explicit padding: must be 0.
    pub _pad0: u8,
    /// TargetPortalGroupTag.
    pub tpgt: u16,
    /// Commands in flight at most (SCSI host can_queue), 1..=[`MAX_QUEUE_DEPTH`].
    pub queue_depth: u32,
    /// Explicit padding: must be 0.
    pub _pad1: u32,
    /// TargetName, NUL-terminated.
    pub target_name: [u8; NAME_LEN],
    /// InitiatorName, NUL-terminated.
    pub initiator_name: [u8; NAME_LEN],
    /// The portal logged in to, NUL-terminated (shown in sysfs and LIST).
    pub portal: [u8; PORTAL_LEN],
    /// ADD_SESSION: user address of the login recipe, an opaque blob of at most
    /// [`RECIPE_MAX`] bytes the kernel keeps and hands back with every relogin
    /// [`Event`] (iscsictl's way to log in again; may hold CHAP secrets, so the
    /// kernel zeroes it when the session goes). 0 with `recipe_len` 0: none.
    /// HANDOFF: must be 0.
    pub recipe: u64,
    /// Length of the recipe.
    pub recipe_len: u32,
    /// HANDOFF: the [`Event::generation`] answered. ADD_SESSION: 0.
    pub generation: u32,
    /// Seconds I/O is held after a connection failure before it fails fast
    /// (0: at once), at most [`MAX_REPLACEMENT_TIMEOUT`]. Ignored by HANDOFF.
    pub replacement_timeout: u32,
    /// Seconds of silence before a NOP-Out ping (0: no pings). Ignored by HANDOFF.
    pub noop_out_interval: u16,
    /// Seconds a ping may go unanswered before the connection fails (1..=3600
    /// when pings are on). Ignored by HANDOFF.
    pub noop_out_timeout: u16,
    /// ADD_SESSION: connections (lanes, blk-mq hardware queues) the session
    /// gets; 0 or 1 mean one, as before this field existed. HANDOFF: lanes
    /// the daemon will restore after this leading connection (0: as many as
    /// the session has). ADD_CONNECTION: 0.
    pub connections: u16,
    /// ADD_CONNECTION: the lane this connection serves, 1..[`MAX_CONNECTIONS`]
    /// and below the session's `connections`. ADD_SESSION / HANDOFF: 0 (the
    /// leading connection is always lane 0).
    pub lane: u16,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 9],
}

/// WAIT_EVENT argument: the caller fills `version`, `size`, `flags` and the
/// recipe buffer; the kernel fills the rest.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<Event>()`.
    pub size: u32,
    /// In: [`EVENT_RESCAN`] or 0.
    pub flags: u32,
    /// Out: [`EVENT_RELOGIN`].
    pub kind: u32,
    /// Out: the session's SCSI host number.
    pub host_no: u32,
    /// Out: recovery generation, echoed by HANDOFF / FAIL_RELOGIN so a stale
    /// answer (the session recovered or failed again meanwhile) is refused.
    pub generation: u32,
    /// Out: one of [`reason`].
    pub reason: u32,
    /// Out: re-login attempts already failed for this loss (0 on the first).
    pub attempt: u32,
    /// Out: how long to wait before connecting, milliseconds
    /// (DefaultTime2Wait, Async Message Time2Wait, or backoff).
    pub delay_ms: u32,
    /// Out: TSIH of the session that was lost.
    pub tsih: u16,
    /// Out: its CID.
    pub cid: u16,
    /// Out: its ISID (wire order).
    pub isid: [u8; 6],
    /// Padding: 0.
    pub _pad0: [u8; 2],
    /// In: user address of a buffer for the recipe (0 if `recipe_capacity` is 0).
    pub recipe: u64,
    /// In: size of that buffer; smaller than the recipe fails with ENOSPC.
    pub recipe_capacity: u32,
    /// Out: the recipe's length.
    pub recipe_len: u32,
    /// Out: TargetName.
    pub target_name: [u8; NAME_LEN],
    /// Out: InitiatorName.
    pub initiator_name: [u8; NAME_LEN],
    /// Out: the portal of the lost connection.
    pub portal: [u8; PORTAL_LEN],
    /// Out: lanes the session had (the daemon logs in lane 0, HANDOFFs it,
    /// then ADD_CONNECTIONs lanes 1..connections); 0 from a kernel without
    /// multiple connections, meaning one.
    pub connections: u16,
    /// Out: the lane whose failure caused the event.
    pub lane: u16,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 7],
}

/// FAIL_RELOGIN argument.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloginFailed {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<ReloginFailed>()`.
    pub size: u32,
    /// The session.
    pub host_no: u32,
    /// The [`Event::generation`] answered.
    pub generation: u32,
    /// iscsictl's exit code for the failure (logged by the kernel).
    pub error: u32,
    /// Offer the request again after this many milliseconds (at most 600 000).
    pub retry_ms: u32,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 4],
}

/// REMOVE_SESSION argument.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveSession {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<RemoveSession>()`.
    pub size: u32,
    /// SCSI host number of the session.
    pub host_no: u32,
    /// [`REMOVE_FORCE`] or 0.
    pub flags: u32,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 4],
}

/// LIST argument. The kernel writes up to `capacity` [`SessionInfo`]s to the user
/// address `entries` and sets `count` to the number of sessions (which may exceed
/// `capacity`: call again with more room).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<List>()`.
    pub size: u32,
    /// Entries the buffer at `entries` holds.
    pub capacity: u32,
    /// Out: number of sessions.
    pub count: u32,
    /// User address of `capacity` [`SessionInfo`]s (may be 0 when `capacity` is 0).
    pub entries: u64,
    /// Size of one entry as the caller knows it: `size_of::<SessionInfo>()`.
    pub entry_size: u32,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 5],
}

/// One session in a LIST answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// SCSI host number.
    pub host_no: u32,
    /// One of [`state`].
    pub state: u8,
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub header_digest: u8,
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub data_digest: u8,
    /// Padding.
    pub _pad0: u8,
    /// TSIH.
    pub tsih: u16,
    /// CID.
    pub cid: u16,
    /// ISID.
    pub isid: [u8; 6],
    /// Padding.
    pub _pad1: [u8; 2],
    /// Next CmdSN.
    pub cmd_sn: u32,
    /// ExpCmdSN as last seen.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN as last seen.
    pub max_cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// can_queue of the SCSI host.
    pub queue_depth: u32,
    /// MaxRecvDataSegmentLength (ours).
    pub max_recv_data_segment_len: u32,
    /// MaxRecvDataSegmentLength (the target's).
    pub max_xmit_data_segment_len: u32,
    /// FirstBurstLength.
    pub first_burst_len: u32,
    /// MaxBurstLength.
    pub max_burst_len: u32,
    /// InitialR2T (0/1).
    pub initial_r2t: u8,
    /// ImmediateData (0/1).
    pub immediate_data: u8,
    /// Padding.
    pub _pad2: [u8; 2],
    /// Commands in flight now.
    pub in_flight: u32,
    /// TargetName, NUL-terminated.
    pub target_name: [u8; NAME_LEN],
    /// InitiatorName, NUL-terminated.
    pub initiator_name: [u8; NAME_LEN],
    /// Portal, NUL-terminated.
    pub portal: [u8; PORTAL_LEN],
    /// Connections re-established by recovery since the session was added.
    pub recoveries: u32,
    /// Current recovery generation (see [`Event::generation`]).
    pub generation: u32,
    /// Replacement timeout, seconds.
    pub replacement_timeout: u32,
    /// Connections up now (0 from a kernel without multiple connections).
    pub connections: u16,
    /// Lanes the session was created with (0 from such a kernel: one).
    pub lanes: u16,
    /// Room for later fields.
    pub _spare: [u32; 12],
}

/// LIST_CONNECTIONS argument. The kernel writes up to `capacity` [`ConnInfo`]s
/// (one per lane of session `host_no`) to the user address `entries` and sets
/// `count` to the session's number of lanes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnList {
    /// [`VERSION`].
    pub version: u32,
    /// `size_of::<ConnList>()`.
    pub size: u32,
    /// The session.
    pub host_no: u32,
    /// Entries the buffer at `entries` holds.
    pub capacity: u32,
    /// Out: the session's lanes.
    pub count: u32,
    /// Size of one entry as the caller knows it: `size_of::<ConnInfo>()`.
    pub entry_size: u32,
    /// User address of `capacity` [`ConnInfo`]s (may be 0 when `capacity` is 0).
    pub entries: u64,
    /// Room for later fields: must be 0.
    pub _spare: [u32; 4],
}

/// [`ConnInfo::state`] values.
pub mod conn_state {
    /// No connection on this lane (never added, or lost and not yet back).
    pub const ABSENT: u8 = 0;
    /// Logged in, full feature phase.
    pub const UP: u8 = 1;
    /// Lost (the session is recovering or closed) and shut by us, but the
    /// target has not closed its end yet: it may still be tearing the
    /// connection down. A login with the session's ISID waits for it.
    pub const CLOSING: u8 = 2;
}

/// One lane in a LIST_CONNECTIONS answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Lane (hardware queue) index.
    pub lane: u16,
    /// CID of its connection.
    pub cid: u16,
    /// One of [`conn_state`].
    pub state: u8,
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub header_digest: u8,
    /// [`DIGEST_NONE`] or [`DIGEST_CRC32C`].
    pub data_digest: u8,
    /// Padding.
    pub _pad0: u8,
    /// ExpStatSN of the connection.
    pub exp_stat_sn: u32,
    /// MaxRecvDataSegmentLength (ours).
    pub max_recv_data_segment_len: u32,
    /// MaxRecvDataSegmentLength (the target's).
    pub max_xmit_data_segment_len: u32,
    /// Commands in flight on this lane.
    pub in_flight: u32,
    /// PDUs handed to the socket.
    pub tx_handed_over: u64,
    /// Sends stopped at a full send buffer.
    pub tx_stalled: u64,
    /// Local TCP port (0 when absent).
    pub local_port: u16,
    /// Padding.
    pub _pad1: u16,
    /// Room for later fields.
    pub _spare: [u32; 7],
}

/// A field type of the ABI: fixed size, native byte order.
trait Wire: Sized {
    const LEN: usize;
    fn put(&self, out: &mut [u8]);
    fn get(src: &[u8]) -> Self;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const LEN: usize = size_of::<$t>();
            fn put(&self, out: &mut [u8]) {
                if let Some(d) = out.get_mut(..Self::LEN) {
                    d.copy_from_slice(&self.to_ne_bytes());
                }
            }
            fn get(src: &[u8]) -> Self {
                let mut b = [0u8; size_of::<$t>()];
                if let Some(s) = src.get(..Self::LEN) {
                    b.copy_from_slice(s);
                }
                <$t>::from_ne_bytes(b)
            }
        }
    )*};
}
wire_int!(u8, u16, u32, i32, u64);

impl<const N: usize> Wire for [u8; N] {
    const LEN: usize = N;
    fn put(&self, out: &mut [u8]) {
        if let Some(d) = out.get_mut(..N) {
            d.copy_from_slice(self);
        }
    }
    fn get(src: &[u8]) -> Self {
        let mut b = [0u8; N];
        if let Some(s) = src.get(..N) {
            b.copy_from_slice(s);
        }
        b
    }
}

impl<const N: usize> Wire for [u32; N] {
    const LEN: usize = 4 * N;
    fn put(&self, out: &mut [u8]) {
        for (i, v) in self.iter().enumerate() {
            if let Some(d) = out.get_mut(i * 4..) {
                v.put(d);
            }
        }
    }
    fn get(src: &[u8]) -> Self {
        let mut b = [0u32; N];
        for (i, v) in b.iter_mut().enumerate() {
            *v = u32::get(src.get(i * 4..).unwrap_or(&[]));
        }
        b
    }
}

/// Generates `SIZE`, `to_bytes`, `from_bytes` and `zeroed` for an ABI struct from
/// its field list, and asserts at compile time that the fields tile the struct
/// exactly (no implicit padding, so every byte has a defined value).
macro_rules! abi_struct {
    ($ty:ident { $($f:ident : $ft:ty),* $(,)? }) => {
        impl $ty {
            /// Size in bytes (the `size` field and the ioctl size).
            pub const SIZE: usize = size_of::<$ty>();

            /// Encodes every field at its `repr(C)` offset, native endian.
            pub fn to_bytes(&self) -> [u8; Self::SIZE] {
                let mut out = [0u8; Self::SIZE];
                $( self.$f.put(out.get_mut(offset_of!($ty, $f)..).unwrap_or(&mut [])); )*
                out
            }

            /// Decodes from exactly the bytes userspace passed.
            pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
                $ty { $( $f: <$ft as Wire>::get(b.get(offset_of!($ty, $f)..).unwrap_or(&[])), )* }
            }

            /// All fields zero.
            pub fn zeroed() -> Self {
                Self::from_bytes(&[0u8; Self::SIZE])
            }
        }
        const _: () = {
            let mut sum = 0;
            $( sum += <$ft as Wire>::LEN; )*
            assert!(sum == size_of::<$ty>(), "implicit padding in an ABI struct");
        };
    };
}

abi_struct!(Handoff {
    version: u32,
    size: u32,
    flags: u32,
    fd: i32,
    host_no: u32,
    cid: u16,
    tsih: u16,
    isid: [u8; 6],
    header_digest: u8,
    data_digest: u8,
    stat_sn: u32,
    exp_stat_sn: u32,
    exp_cmd_sn: u32,
    max_cmd_sn: u32,
    cmd_sn: u32,
    itt_base: u32,
    max_recv_data_segment_len: u32,
    max_xmit_data_segment_len: u32,
    first_burst_len: u32,
    max_burst_len: u32,
    max_outstanding_r2t: u16,
    max_connections: u16,
    default_time2wait: u16,
    default_time2retain: u16,
    initial_r2t: u8,
    immediate_data: u8,
    data_pdu_in_order: u8,
    data_sequence_in_order: u8,
    error_recovery_level: u8,
    _pad0: u8,
    tpgt: u16,
    queue_depth: u32,
    _pad1: u32,
    target_name: [u8; NAME_LEN],
    initiator_name: [u8; NAME_LEN],
    portal: [u8; PORTAL_LEN],
    recipe: u64,
    recipe_len: u32,
    generation: u32,
    replacement_timeout: u32,
    noop_out_interval: u16,
    noop_out_timeout: u16,
    connections: u16,
    lane: u16,
    _spare: [u32; 9],
});
abi_struct!(Event {
    version: u32,
    size: u32,
    flags: u32,
    kind: u32,
    host_no: u32,
    generation: u32,
    reason: u32,
    attempt: u32,
    delay_ms: u32,
    tsih: u16,
    cid: u16,
    isid: [u8; 6],
    _pad0: [u8; 2],
    recipe: u64,
    recipe_capacity: u32,
    recipe_len: u32,
    target_name: [u8; NAME_LEN],
    initiator_name: [u8; NAME_LEN],
    portal: [u8; PORTAL_LEN],
    connections: u16,
    lane: u16,
    _spare: [u32; 7],
});
abi_struct!(ReloginFailed {
    version: u32,
    size: u32,
    host_no: u32,
    generation: u32,
    error: u32,
    retry_ms: u32,
    _spare: [u32; 4],
});
abi_struct!(RemoveSession {
    version: u32,
    size: u32,
    host_no: u32,
    flags: u32,
    _spare: [u32; 4]
});
abi_struct!(List {
    version: u32,
    size: u32,
    capacity: u32,
    count: u32,
    entries: u64,
    entry_size: u32,
    _spare: [u32; 5],
});
abi_struct!(SessionInfo {
    host_no: u32,
    state: u8,
    header_digest: u8,
    data_digest: u8,
    _pad0: u8,
    tsih: u16,
    cid: u16,
    isid: [u8; 6],
    _pad1: [u8; 2],
    cmd_sn: u32,
    exp_cmd_sn: u32,
    max_cmd_sn: u32,
    exp_stat_sn: u32,
    queue_depth: u32,
    max_recv_data_segment_len: u32,
    max_xmit_data_segment_len: u32,
    first_burst_len: u32,
    max_burst_len: u32,
    initial_r2t: u8,
    immediate_data: u8,
    _pad2: [u8; 2],
    in_flight: u32,
    target_name: [u8; NAME_LEN],
    initiator_name: [u8; NAME_LEN],
    portal: [u8; PORTAL_LEN],
    recoveries: u32,
    generation: u32,
    replacement_timeout: u32,
    connections: u16,
    lanes: u16,
    _spare: [u32; 12],
});
abi_struct!(ConnList {
    version: u32,
    size: u32,
    host_no: u32,
    capacity: u32,
    count: u32,
    entry_size: u32,
    entries: u64,
    _spare: [u32; 4],
});
abi_struct!(ConnInfo {
    lane: u16,
    cid: u16,
    state: u8,
    header_digest: u8,
    data_digest: u8,
    _pad0: u8,
    exp_stat_sn: u32,
    max_recv_data_segment_len: u32,
    max_xmit_data_segment_len: u32,
    in_flight: u32,
    tx_handed_over: u64,
    tx_stalled: u64,
    local_port: u16,
    _pad1: u16,
    _spare: [u32; 7],
});

// The layout is the ABI: pin sizes and a few offsets so a reordering is caught.
const _: () = assert!(size_of::<Handoff>() == 672);
const _: () = assert!(offset_of!(Handoff, target_name) == 96);
const _: () = assert!(offset_of!(Handoff, recipe) == 608);
const _: () = assert!(offset_of!(Handoff, connections) == 632);
const _: () = assert!(offset_of!(Handoff, lane) == 634);
const _: () = assert!(offset_of!(Handoff, _spare) == 636);
const _: () = assert!(size_of::<Event>() == 608);
const _: () = assert!(offset_of!(Event, recipe) == 48);
const _: () = assert!(offset_of!(Event, target_name) == 64);
const _: () = assert!(offset_of!(Event, connections) == 576);
const _: () = assert!(offset_of!(Event, lane) == 578);
const _: () = assert!(offset_of!(Event, _spare) == 580);
const _: () = assert!(size_of::<ReloginFailed>() == 40);
const _: () = assert!(size_of::<RemoveSession>() == 32);
const _: () = assert!(size_of::<List>() == 48);
const _: () = assert!(offset_of!(List, entries) == 16);
const _: () = assert!(size_of::<SessionInfo>() == 640);
const _: () = assert!(offset_of!(SessionInfo, target_name) == 64);
const _: () = assert!(offset_of!(SessionInfo, connections) == 588);
const _: () = assert!(offset_of!(SessionInfo, lanes) == 590);
const _: () = assert!(offset_of!(SessionInfo, _spare) == 592);
const _: () = assert!(size_of::<ConnList>() == 48);
const _: () = assert!(offset_of!(ConnList, entries) == 24);
const _: () = assert!(size_of::<ConnInfo>() == 72);
const _: () = assert!(offset_of!(ConnInfo, exp_stat_sn) == 8);
const _: () = assert!(offset_of!(ConnInfo, tx_handed_over) == 24);
const _: () = assert!(offset_of!(ConnInfo, local_port) == 40);
const _: () = assert!(offset_of!(ConnInfo, _spare) == 44);

/// Why the kernel refused an argument. One variant per rule, so the log line
/// says exactly what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UapiError {
    /// `version` is not [`VERSION`].
    Version {
        /// What userspace sent.
        got: u32,
    },
    /// `size` does not match the struct this kernel knows.
    Size {
        /// What userspace sent.
        got: u32,
        /// The size expected.
        expected: u32,
    },
    /// A flag bit this kernel does not know.
    UnknownFlags {
        /// The flags sent.
        flags: u32,
    },
    /// A padding or `_spare` field is not zero.
    NonZeroReserved {
        /// The field.
        field: &'static str,
    },
    /// A negative file descriptor.
    BadFd,
    /// A string field without a NUL in its array.
    Unterminated {
        /// The field.
        field: &'static str,
    },
    /// An empty string field.
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A string field with a byte outside printable ASCII (0x21..=0x7e).
    BadChar {
        /// The field.
        field: &'static str,
    },
    /// A boolean field that is neither 0 nor 1.
    NotBool {
        /// The field.
        field: &'static str,
    },
    /// A digest code that is neither [`DIGEST_NONE`] nor [`DIGEST_CRC32C`].
    BadDigest {
        /// The field.
        field: &'static str,
    },
    /// A numeric field outside its allowed range.
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// FirstBurstLength above MaxBurstLength (RFC 7143 §13.14).
    FirstBurstAboveMaxBurst,
    /// queue_depth × max_outstanding_r2t above [`MAX_R2T_JOBS`].
    TooManyR2tJobs {
        /// Commands in flight.
        queue_depth: u32,
        /// MaxOutstandingR2T negotiated.
        max_outstanding_r2t: u16,
    },
    /// ErrorRecoveryLevel > 0: the module implements ERL 0 only.
    UnsupportedErl {
        /// The level sent.
        level: u8,
    },
    /// DataPDUInOrder or DataSequenceInOrder = No: not supported.
    UnsupportedOutOfOrder,
    /// TSIH 0: a logged-in session always has one.
    ZeroTsih,
    /// ExpCmdSN/MaxCmdSN do not form a valid window (RFC 7143 §4.2.2.1).
    BadWindow,
    /// CmdSN outside [ExpCmdSN, MaxCmdSN + 1].
    CmdSnOutsideWindow,
    /// ExpStatSN is not StatSN + 1.
    StatSnMismatch,
    /// `itt_base` has bits below 16 set or would produce the reserved ITT.
    BadIttBase,
    /// `host_no` must be 0 on ADD_SESSION.
    HostNoSet,
    /// LIST: `capacity` > 0 with a null `entries` pointer.
    NullEntries,
    /// LIST: `entry_size` is not the [`SessionInfo`] size this kernel writes.
    EntrySize {
        /// What userspace sent.
        got: u32,
    },
    /// A buffer length without a buffer address (or the reverse).
    NullBuffer {
        /// The field.
        field: &'static str,
    },
    /// A field only HANDOFF may set was set on ADD_SESSION, or the reverse.
    WrongIoctl {
        /// The field.
        field: &'static str,
    },
    /// More connections asked for than MaxConnections allows.
    ConnectionsAboveMaxConnections {
        /// Connections asked for.
        connections: u16,
        /// MaxConnections negotiated.
        max_connections: u16,
    },
    /// ADD_CONNECTION: a session-wide (leading only) key, or the portal group,
    /// differs from the session's: the login was not for this session.
    SessionKeyDiffers {
        /// The key, as RFC 7143 spells it.
        key: &'static str,
    },
    /// HANDOFF / ADD_CONNECTION: a field naming the session differs from it.
    NotThisSession {
        /// The field.
        field: &'static str,
    },
    /// LIST_CONNECTIONS: `entry_size` is not the [`ConnInfo`] size this kernel writes.
    ConnEntrySize {
        /// What userspace sent.
        got: u32,
    },
}

impl fmt::Display for UapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UapiError::Version { got } => {
                write!(f, "ABI version {got}, this module speaks {VERSION}")
            }
            UapiError::Size { got, expected } => {
                write!(f, "argument size {got}, expected {expected}")
            }
            UapiError::UnknownFlags { flags } => write!(f, "unknown flags {flags:#x}"),
            UapiError::NonZeroReserved { field } => write!(f, "reserved field {field} not zero"),
            UapiError::BadFd => f.write_str("negative socket descriptor"),
            UapiError::Unterminated { field } => write!(f, "{field} is not NUL-terminated"),
            UapiError::Empty { field } => write!(f, "{field} is empty"),
            UapiError::BadChar { field } => {
                write!(f, "{field} has a byte outside printable ASCII")
            }
            UapiError::NotBool { field } => write!(f, "{field} is neither 0 nor 1"),
            UapiError::BadDigest { field } => write!(f, "{field} is not a known digest"),
            UapiError::OutOfRange { field, value } => {
                write!(f, "{field} = {value} is out of range")
            }
            UapiError::FirstBurstAboveMaxBurst => {
                f.write_str("FirstBurstLength exceeds MaxBurstLength")
            }
            UapiError::TooManyR2tJobs {
                queue_depth,
                max_outstanding_r2t,
            } => write!(
                f,
                "queue_depth {queue_depth} x MaxOutstandingR2T {max_outstanding_r2t} \
                 exceeds the {MAX_R2T_JOBS} Data-Out bursts the module queues"
            ),
            UapiError::UnsupportedErl { level } => {
                write!(f, "ErrorRecoveryLevel {level} not supported (only 0)")
            }
            UapiError::UnsupportedOutOfOrder => {
                f.write_str("DataPDUInOrder/DataSequenceInOrder=No not supported")
            }
            UapiError::ZeroTsih => f.write_str("TSIH is 0"),
            UapiError::BadWindow => f.write_str("ExpCmdSN/MaxCmdSN are not a valid window"),
            UapiError::CmdSnOutsideWindow => f.write_str("CmdSN lies outside the command window"),
            UapiError::StatSnMismatch => f.write_str("ExpStatSN is not StatSN + 1"),
            UapiError::BadIttBase => f.write_str("itt_base has low bits set or is reserved"),
            UapiError::HostNoSet => f.write_str("host_no must be 0 on ADD_SESSION"),
            UapiError::NullEntries => f.write_str("LIST capacity without an entries buffer"),
            UapiError::EntrySize { got } => write!(f, "LIST entry size {got} unknown"),
            UapiError::NullBuffer { field } => {
                write!(f, "{field}: a length without a buffer address")
            }
            UapiError::WrongIoctl { field } => write!(f, "{field} is not valid for this ioctl"),
            UapiError::ConnectionsAboveMaxConnections {
                connections,
                max_connections,
            } => write!(
                f,
                "{connections} connections asked for, MaxConnections is {max_connections}"
            ),
            UapiError::SessionKeyDiffers { key } => {
                write!(f, "{key} differs from the session's")
            }
            UapiError::NotThisSession { field } => {
                write!(f, "{field} differs from the session's")
            }
            UapiError::ConnEntrySize { got } => {
                write!(f, "LIST_CONNECTIONS entry size {got} unknown")
            }
        }
    }
}

/// The printable-ASCII string before the first NUL of `field`.
pub fn c_str_field<'a>(name: &'static str, field: &'a [u8]) -> Result<&'a str, UapiError> {
    let end = field
        .iter()
        .position(|&b| b == 0)
        .ok_or(UapiError::Unterminated { field: name })?;
    let s = field.get(..end).unwrap_or(&[]);
    if s.is_empty() {
        return Err(UapiError::Empty { field: name });
    }
    if !s.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(UapiError::BadChar { field: name });
    }
    core::str::from_utf8(s).map_err(|_| UapiError::BadChar { field: name })
}

/// Copies `s` into a NUL-terminated array field; `None` if it does not fit
/// (with its NUL) or contains a NUL.
pub fn set_c_str<const N: usize>(s: &str, out: &mut [u8; N]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() >= N || b.contains(&0) {
        return None;
    }
    *out = [0; N];
    out.get_mut(..b.len())?.copy_from_slice(b);
    Some(())
}

fn check_version(version: u32, size: u32, expected: usize) -> Result<(), UapiError> {
    if version != VERSION {
        return Err(UapiError::Version { got: version });
    }
    let expected = expected as u32;
    if size != expected {
        return Err(UapiError::Size {
            got: size,
            expected,
        });
    }
    Ok(())
}

fn check_bool(field: &'static str, v: u8) -> Result<bool, UapiError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(UapiError::NotBool { field }),
    }
}

fn check_digest(field: &'static str, v: u8) -> Result<Digest, UapiError> {
    match v {
        DIGEST_NONE => Ok(Digest::None),
        DIGEST_CRC32C => Ok(Digest::Crc32c),
        _ => Err(UapiError::BadDigest { field }),
    }
}

fn check_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<u32, UapiError> {
    if value < min || value > max {
        return Err(UapiError::OutOfRange { field, value });
    }
    Ok(value)
}

fn check_zero(field: &'static str, all_zero: bool) -> Result<(), UapiError> {
    if all_zero {
        Ok(())
    } else {
        Err(UapiError::NonZeroReserved { field })
    }
}

/// Digest code for the ABI.
pub const fn digest_code(d: Digest) -> u8 {
    match d {
        Digest::None => DIGEST_NONE,
        Digest::Crc32c => DIGEST_CRC32C,
    }
}

/// Which ioctl a [`Handoff`] came with: the rules differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffKind {
    /// ADD_SESSION: a new session, its leading connection.
    Add,
    /// HANDOFF: the leading connection of a session reinstated after a failure.
    Handoff,
    /// ADD_CONNECTION: a further connection of a running session.
    AddConnection,
}

/// A [`Handoff`] that passed [`Handoff::validate`], with typed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The validated argument (names, portal and raw fields).
    pub raw: Handoff,
    /// The negotiated parameters.
    pub params: SessionParams,
    /// The command window from the login.
    pub window: CmdWindow,
    /// CmdSN of the first command.
    pub cmd_sn: Sn,
    /// ExpStatSN to send.
    pub exp_stat_sn: Sn,
    /// ITT high bits (session age).
    pub itt_age: u16,
    /// can_queue.
    pub queue_depth: u32,
    /// Replacement timeout, seconds.
    pub replacement_timeout: u32,
    /// NOP-Out interval, seconds (0: off).
    pub noop_out_interval: u16,
    /// NOP-Out timeout, seconds.
    pub noop_out_timeout: u16,
    /// ADD_SESSION: lanes to create, 1..=[`MAX_CONNECTIONS`] (a 0 on the wire
    /// means 1). HANDOFF: lanes the daemon will restore, where 0 (on the
    /// wire and here) means as many as the session has. ADD_CONNECTION: 1.
    pub connections: u16,
    /// The lane of this connection: 0 except on ADD_CONNECTION.
    pub lane: u16,
}

impl SessionConfig {
    /// TargetName.
    pub fn target_name(&self) -> &str {
        c_str_field("target_name", &self.raw.target_name).unwrap_or("")
    }

    /// InitiatorName.
    pub fn initiator_name(&self) -> &str {
        c_str_field("initiator_name", &self.raw.initiator_name).unwrap_or("")
    }

    /// Portal.
    pub fn portal(&self) -> &str {
        c_str_field("portal", &self.raw.portal).unwrap_or("")
    }

    /// Whether `other` (a HANDOFF or ADD_CONNECTION) names this session:
    /// the same target, initiator, ISID and queue depth. Names the first
    /// field that differs.
    pub fn same_session(&self, other: &SessionConfig) -> Result<(), UapiError> {
        let checks = [
            ("target_name", self.target_name() == other.target_name()),
            (
                "initiator_name",
                self.initiator_name() == other.initiator_name(),
            ),
            ("isid", self.raw.isid == other.raw.isid),
            ("queue_depth", self.queue_depth == other.queue_depth),
        ];
        match checks.iter().find(|(_, same)| !same) {
            Some(&(field, _)) => Err(UapiError::NotThisSession { field }),
            None => Ok(()),
        }
    }

    /// Whether a further connection's login (`other`, ADD_CONNECTION)
    /// agrees with this session on every leading-only key (RFC 7143 §13:
    /// they are negotiated once, on the leading connection) and on the
    /// portal group (a session's connections all belong to one, §4.4.1).
    /// Connection keys (digests, MaxRecvDataSegmentLength) may differ. Names
    /// the first key that differs.
    pub fn same_session_keys(&self, other: &SessionConfig) -> Result<(), UapiError> {
        let (a, b) = (&self.params, &other.params);
        let checks = [
            ("MaxConnections", a.max_connections == b.max_connections),
            ("InitialR2T", a.initial_r2t == b.initial_r2t),
            ("ImmediateData", a.immediate_data == b.immediate_data),
            ("MaxBurstLength", a.max_burst_len == b.max_burst_len),
            ("FirstBurstLength", a.first_burst_len == b.first_burst_len),
            (
                "DefaultTime2Wait",
                a.default_time2wait == b.default_time2wait,
            ),
            (
                "DefaultTime2Retain",
                a.default_time2retain == b.default_time2retain,
            ),
            (
                "MaxOutstandingR2T",
                a.max_outstanding_r2t == b.max_outstanding_r2t,
            ),
            ("DataPDUInOrder", a.data_pdu_in_order == b.data_pdu_in_order),
            (
                "DataSequenceInOrder",
                a.data_sequence_in_order == b.data_sequence_in_order,
            ),
            (
                "ErrorRecoveryLevel",
                a.error_recovery_level == b.error_recovery_level,
            ),
            (
                "TargetPortalGroupTag",
                a.target_portal_group_tag == b.target_portal_group_tag,
            ),
        ];
        match checks.iter().find(|(_, same)| !same) {
            Some(&(key, _)) => Err(UapiError::SessionKeyDiffers { key }),
            None => Ok(()),
        }
    }
}

impl Handoff {
    /// A handoff from the outcome of a normal-session login, with names, portal,
    /// socket and queue depth left for the caller (`version`/`size` filled in).
    /// `stat_sn`, `exp_cmd_sn`, `max_cmd_sn` come from the final Login Response.
    pub fn from_login(
        params: &SessionParams,
        isid: [u8; 6],
        tsih: u16,
        cid: u16,
        stat_sn: u32,
        exp_cmd_sn: u32,
        max_cmd_sn: u32,
    ) -> Handoff {
        let mut h = Handoff::zeroed();
        h.version = VERSION;
        h.size = Handoff::SIZE as u32;
        h.isid = isid;
        h.tsih = tsih;
        h.cid = cid;
        h.header_digest = digest_code(params.header_digest);
        h.data_digest = digest_code(params.data_digest);
        h.stat_sn = stat_sn;
        h.exp_stat_sn = stat_sn.wrapping_add(1);
        h.exp_cmd_sn = exp_cmd_sn;
        h.max_cmd_sn = max_cmd_sn;
        h.cmd_sn = exp_cmd_sn;
        h.itt_base = 1 << 16;
        h.max_recv_data_segment_len = params.max_recv_data_segment_len;
        h.max_xmit_data_segment_len = params.max_xmit_data_segment_len;
        h.first_burst_len = params.first_burst_len;
        h.max_burst_len = params.max_burst_len;
        h.max_outstanding_r2t = params.max_outstanding_r2t;
        h.max_connections = params.max_connections;
        h.default_time2wait = params.default_time2wait;
        h.default_time2retain = params.default_time2retain;
        h.initial_r2t = u8::from(params.initial_r2t);
        h.immediate_data = u8::from(params.immediate_data);
        h.data_pdu_in_order = u8::from(params.data_pdu_in_order);
        h.data_sequence_in_order = u8::from(params.data_sequence_in_order);
        h.error_recovery_level = params.error_recovery_level;
        h.tpgt = params.target_portal_group_tag.unwrap_or(0);
        h.queue_depth = DEFAULT_QUEUE_DEPTH;
        h.replacement_timeout = DEFAULT_REPLACEMENT_TIMEOUT;
        h.noop_out_interval = DEFAULT_NOOP_OUT_INTERVAL;
        h.noop_out_timeout = DEFAULT_NOOP_OUT_TIMEOUT;
        h
    }

    /// Checks every field for the ioctl `kind` (on HANDOFF and ADD_CONNECTION
    /// `host_no` names the session) and returns the typed view. What needs
    /// the running session (is `lane` below its lanes, is the CID free, do
    /// the keys match: [`SessionConfig::same_session_keys`]) is the caller's.
    pub fn validate(&self, kind: HandoffKind) -> Result<SessionConfig, UapiError> {
        let add = kind == HandoffKind::Add;
        check_version(self.version, self.size, Self::SIZE)?;
        if self.flags != 0 {
            return Err(UapiError::UnknownFlags { flags: self.flags });
        }
        check_zero("_pad0", self._pad0 == 0)?;
        check_zero("_pad1", self._pad1 == 0)?;
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        if self.fd < 0 {
            return Err(UapiError::BadFd);
        }
        if add && self.host_no != 0 {
            return Err(UapiError::HostNoSet);
        }
        if add {
            if self.generation != 0 {
                return Err(UapiError::WrongIoctl {
                    field: "generation",
                });
            }
            check_range("recipe_len", self.recipe_len, 0, RECIPE_MAX)?;
            if (self.recipe == 0) != (self.recipe_len == 0) {
                return Err(UapiError::NullBuffer { field: "recipe" });
            }
            check_range(
                "replacement_timeout",
                self.replacement_timeout,
                0,
                MAX_REPLACEMENT_TIMEOUT,
            )?;
            check_range(
                "noop_out_interval",
                u32::from(self.noop_out_interval),
                0,
                3600,
            )?;
            let min_timeout = u32::from(self.noop_out_interval > 0);
            check_range(
                "noop_out_timeout",
                u32::from(self.noop_out_timeout),
                min_timeout,
                3600,
            )?;
        } else if self.recipe != 0 || self.recipe_len != 0 {
            return Err(UapiError::WrongIoctl { field: "recipe" });
        }
        c_str_field("target_name", &self.target_name)?;
        c_str_field("initiator_name", &self.initiator_name)?;
        c_str_field("portal", &self.portal)?;
        if self.tsih == 0 {
            return Err(UapiError::ZeroTsih);
        }
        let header_digest = check_digest("header_digest", self.header_digest)?;
        let data_digest = check_digest("data_digest", self.data_digest)?;
        let initial_r2t = check_bool("initial_r2t", self.initial_r2t)?;
        let immediate_data = check_bool("immediate_data", self.immediate_data)?;
        let pdu_in_order = check_bool("data_pdu_in_order", self.data_pdu_in_order)?;
        let seq_in_order = check_bool("data_sequence_in_order", self.data_sequence_in_order)?;
        if !pdu_in_order || !seq_in_order {
            return Err(UapiError::UnsupportedOutOfOrder);
        }
        if self.error_recovery_level != 0 {
            return Err(UapiError::UnsupportedErl {
                level: self.error_recovery_level,
            });
        }
        let max_recv = check_range(
            "max_recv_data_segment_len",
            self.max_recv_data_segment_len,
            MIN_DATA_SEGMENT_LEN,
            MAX_RECV_DATA_SEGMENT_LEN,
        )?;
        let max_xmit = check_range(
            "max_xmit_data_segment_len",
            self.max_xmit_data_segment_len,
            MIN_DATA_SEGMENT_LEN,
            MAX_DATA_SEGMENT_LEN,
        )?;
        let max_burst = check_range(
            "max_burst_len",
            self.max_burst_len,
            MIN_DATA_SEGMENT_LEN,
            MAX_DATA_SEGMENT_LEN,
        )?;
        let first_burst = check_range(
            "first_burst_len",
            self.first_burst_len,
            MIN_DATA_SEGMENT_LEN,
            MAX_DATA_SEGMENT_LEN,
        )?;
        if first_burst > max_burst {
            return Err(UapiError::FirstBurstAboveMaxBurst);
        }
        check_range(
            "max_outstanding_r2t",
            u32::from(self.max_outstanding_r2t),
            1,
            65535,
        )?;
        check_range("max_connections", u32::from(self.max_connections), 1, 65535)?;
        check_range(
            "default_time2wait",
            u32::from(self.default_time2wait),
            0,
            3600,
        )?;
        check_range(
            "default_time2retain",
            u32::from(self.default_time2retain),
            0,
            3600,
        )?;
        let queue_depth = check_range("queue_depth", self.queue_depth, 1, MAX_QUEUE_DEPTH)?;
        if queue_depth * u32::from(self.max_outstanding_r2t) > MAX_R2T_JOBS {
            return Err(UapiError::TooManyR2tJobs {
                queue_depth,
                max_outstanding_r2t: self.max_outstanding_r2t,
            });
        }
        let window = CmdWindow::new(Sn(self.exp_cmd_sn), Sn(self.max_cmd_sn))
            .map_err(|_| UapiError::BadWindow)?;
        // The first command may be ExpCmdSN itself or, at the edge, MaxCmdSN + 1
        // (a closed window); anything else was never allowed by the target.
        let cmd_sn = Sn(self.cmd_sn);
        if !(window.contains(cmd_sn) || cmd_sn == window.max_cmd_sn().next()) {
            return Err(UapiError::CmdSnOutsideWindow);
        }
        if self.exp_stat_sn != self.stat_sn.wrapping_add(1) {
            return Err(UapiError::StatSnMismatch);
        }
        let age = self.itt_base >> 16;
        if self.itt_base & 0xffff != 0 || age == 0xffff {
            return Err(UapiError::BadIttBase);
        }
        let connections = self.check_lanes(kind)?;
        let params = SessionParams {
            session_type: SessionType::Normal,
            auth_method: AuthMethod::None,
            header_digest,
            data_digest,
            max_connections: self.max_connections,
            initial_r2t,
            immediate_data,
            max_recv_data_segment_len: max_recv,
            max_xmit_data_segment_len: max_xmit,
            max_burst_len: max_burst,
            first_burst_len: first_burst,
            default_time2wait: self.default_time2wait,
            default_time2retain: self.default_time2retain,
            max_outstanding_r2t: self.max_outstanding_r2t,
            data_pdu_in_order: pdu_in_order,
            data_sequence_in_order: seq_in_order,
            error_recovery_level: 0,
            protocol_level: 0,
            target_portal_group_tag: Some(self.tpgt),
        };
        Ok(SessionConfig {
            raw: *self,
            params,
            window,
            cmd_sn,
            exp_stat_sn: Sn(self.exp_stat_sn),
            itt_age: age as u16,
            queue_depth,
            replacement_timeout: self.replacement_timeout,
            noop_out_interval: self.noop_out_interval,
            noop_out_timeout: self.noop_out_timeout,
            connections,
            lane: self.lane,
        })
    }

    /// The `connections` / `lane` rules of `kind`; returns the typed count.
    fn check_lanes(&self, kind: HandoffKind) -> Result<u16, UapiError> {
        let count = |n: u16| -> Result<u16, UapiError> {
            if n <= 1 {
                return Ok(n);
            }
            check_range("connections", u32::from(n), 1, u32::from(MAX_CONNECTIONS))?;
            if n > self.max_connections {
                return Err(UapiError::ConnectionsAboveMaxConnections {
                    connections: n,
                    max_connections: self.max_connections,
                });
            }
            Ok(n)
        };
        match kind {
            HandoffKind::Add | HandoffKind::Handoff => {
                if self.lane != 0 {
                    return Err(UapiError::WrongIoctl { field: "lane" });
                }
                let n = count(self.connections)?;
                // A new session has at least its leading connection; a
                // HANDOFF's 0 means "unchanged" and stays 0.
                Ok(if kind == HandoffKind::Add {
                    n.max(1)
                } else {
                    n
                })
            }
            HandoffKind::AddConnection => {
                if self.connections != 0 {
                    return Err(UapiError::WrongIoctl {
                        field: "connections",
                    });
                }
                check_range(
                    "lane",
                    u32::from(self.lane),
                    1,
                    u32::from(MAX_CONNECTIONS) - 1,
                )?;
                Ok(1)
            }
        }
    }
}

impl RemoveSession {
    /// A request to remove `host_no`.
    pub fn new(host_no: u32, force: bool) -> Self {
        let mut r = RemoveSession::zeroed();
        r.version = VERSION;
        r.size = Self::SIZE as u32;
        r.host_no = host_no;
        r.flags = if force { REMOVE_FORCE } else { 0 };
        r
    }

    /// Checks the argument; returns whether FORCE was asked for.
    pub fn validate(&self) -> Result<bool, UapiError> {
        check_version(self.version, self.size, Self::SIZE)?;
        if self.flags & !REMOVE_FORCE != 0 {
            return Err(UapiError::UnknownFlags { flags: self.flags });
        }
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        Ok(self.flags & REMOVE_FORCE != 0)
    }
}

impl List {
    /// A request for up to `capacity` entries at user address `entries`.
    pub fn new(capacity: u32, entries: u64) -> Self {
        let mut l = List::zeroed();
        l.version = VERSION;
        l.size = Self::SIZE as u32;
        l.capacity = capacity;
        l.entries = entries;
        l.entry_size = SessionInfo::SIZE as u32;
        l
    }

    /// Checks the argument.
    pub fn validate(&self) -> Result<(), UapiError> {
        check_version(self.version, self.size, Self::SIZE)?;
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        if self.entry_size != SessionInfo::SIZE as u32 {
            return Err(UapiError::EntrySize {
                got: self.entry_size,
            });
        }
        if self.capacity > 0 && self.entries == 0 {
            return Err(UapiError::NullEntries);
        }
        Ok(())
    }
}

impl ConnList {
    /// A request for up to `capacity` lanes of session `host_no` at user
    /// address `entries`.
    pub fn new(host_no: u32, capacity: u32, entries: u64) -> Self {
        let mut l = ConnList::zeroed();
        l.version = VERSION;
        l.size = Self::SIZE as u32;
        l.host_no = host_no;
        l.capacity = capacity;
        l.entries = entries;
        l.entry_size = ConnInfo::SIZE as u32;
        l
    }

    /// Checks the argument (the session lookup is the caller's).
    pub fn validate(&self) -> Result<(), UapiError> {
        check_version(self.version, self.size, Self::SIZE)?;
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        if self.entry_size != ConnInfo::SIZE as u32 {
            return Err(UapiError::ConnEntrySize {
                got: self.entry_size,
            });
        }
        if self.capacity > 0 && self.entries == 0 {
            return Err(UapiError::NullEntries);
        }
        Ok(())
    }
}

impl Event {
    /// A wait request with room for a recipe of `recipe_capacity` bytes at
    /// user address `recipe`.
    pub fn request(flags: u32, recipe: u64, recipe_capacity: u32) -> Self {
        let mut e = Event::zeroed();
        e.version = VERSION;
        e.size = Self::SIZE as u32;
        e.flags = flags;
        e.recipe = recipe;
        e.recipe_capacity = recipe_capacity;
        e
    }

    /// Checks a WAIT_EVENT argument; returns whether RESCAN was asked for.
    pub fn validate_request(&self) -> Result<bool, UapiError> {
        check_version(self.version, self.size, Self::SIZE)?;
        if self.flags & !EVENT_RESCAN != 0 {
            return Err(UapiError::UnknownFlags { flags: self.flags });
        }
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        if self.recipe_capacity > 0 && self.recipe == 0 {
            return Err(UapiError::NullBuffer { field: "recipe" });
        }
        Ok(self.flags & EVENT_RESCAN != 0)
    }

    /// TargetName.
    pub fn target_name(&self) -> &str {
        c_str_field("target_name", &self.target_name).unwrap_or("")
    }

    /// InitiatorName.
    pub fn initiator_name(&self) -> &str {
        c_str_field("initiator_name", &self.initiator_name).unwrap_or("")
    }

    /// Portal.
    pub fn portal(&self) -> &str {
        c_str_field("portal", &self.portal).unwrap_or("")
    }
}

/// Longest retry delay FAIL_RELOGIN may ask for, milliseconds.
pub const MAX_RETRY_MS: u32 = 600_000;

impl ReloginFailed {
    /// A report that the attempt for (`host_no`, `generation`) failed.
    pub fn new(host_no: u32, generation: u32, error: u32, retry_ms: u32) -> Self {
        let mut r = ReloginFailed::zeroed();
        r.version = VERSION;
        r.size = Self::SIZE as u32;
        r.host_no = host_no;
        r.generation = generation;
        r.error = error;
        r.retry_ms = retry_ms;
        r
    }

    /// Checks a FAIL_RELOGIN argument.
    pub fn validate(&self) -> Result<(), UapiError> {
        check_version(self.version, self.size, Self::SIZE)?;
        check_zero("_spare", self._spare.iter().all(|&v| v == 0))?;
        check_range("retry_ms", self.retry_ms, 0, MAX_RETRY_MS)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handoff {
        let mut p = SessionParams::DEFAULT;
        p.header_digest = Digest::Crc32c;
        p.max_recv_data_segment_len = 262_144;
        p.target_portal_group_tag = Some(1);
        let mut h = Handoff::from_login(&p, [0x80, 1, 2, 3, 4, 5], 7, 0, 41, 100, 163);
        h.fd = 3;
        set_c_str("iqn.2026-11.dev.iscsi-rs:target0", &mut h.target_name).unwrap();
        set_c_str("iqn.2026-11.dev.iscsi-rs:init", &mut h.initiator_name).unwrap();
        set_c_str("127.0.0.1:3260", &mut h.portal).unwrap();
        h
    }

    #[test]
    fn ioctl_numbers_match_the_c_macros() {
        // _IOWR(0xe3, 1, 672) and _IOW(0xe3, 2, 32) computed by hand:
        // dir << 30 | size << 16 | type << 8 | nr.
        assert_eq!(ADD_SESSION, (3 << 30) | (672 << 16) | (0xe3 << 8) | 1);
        assert_eq!(REMOVE_SESSION, (1 << 30) | (32 << 16) | (0xe3 << 8) | 2);
        assert_eq!(LIST, (3 << 30) | (48 << 16) | (0xe3 << 8) | 3);
        assert_eq!(HANDOFF & 0xff, 4);
        // A well-known kernel number as a check of the encoding: FS_IOC_GETFLAGS
        // is _IOR('f', 1, long) = 0x80086601 on 64-bit.
        assert_eq!(ioc(IOC_READ, b'f', 1, 8), 0x8008_6601);
    }

    #[test]
    fn bytes_round_trip_at_repr_c_offsets() {
        let h = sample();
        let b = h.to_bytes();
        assert_eq!(Handoff::from_bytes(&b), h);
        let off = offset_of!(Handoff, tsih);
        assert_eq!(&b[off..off + 2], &7u16.to_ne_bytes());
        let off = offset_of!(Handoff, target_name);
        assert_eq!(&b[off..off + 4], b"iqn.");
        let l = List::new(4, 0x1000);
        assert_eq!(List::from_bytes(&l.to_bytes()), l);
        let r = RemoveSession::new(3, true);
        assert_eq!(RemoveSession::from_bytes(&r.to_bytes()), r);
        let mut i = SessionInfo::zeroed();
        i.in_flight = 9;
        i.isid = [1, 2, 3, 4, 5, 6];
        assert_eq!(SessionInfo::from_bytes(&i.to_bytes()), i);
    }

    #[test]
    fn valid_handoff_gives_typed_config() {
        let c = sample().validate(HandoffKind::Add).unwrap();
        assert_eq!(c.params.header_digest, Digest::Crc32c);
        assert_eq!(c.params.data_digest, Digest::None);
        assert_eq!(c.params.max_recv_data_segment_len, 262_144);
        assert_eq!(c.window.exp_cmd_sn(), Sn(100));
        assert_eq!(c.window.max_cmd_sn(), Sn(163));
        assert_eq!(c.cmd_sn, Sn(100));
        assert_eq!(c.exp_stat_sn, Sn(42));
        assert_eq!(c.itt_age, 1);
        assert_eq!(c.queue_depth, DEFAULT_QUEUE_DEPTH);
        assert_eq!(c.target_name(), "iqn.2026-11.dev.iscsi-rs:target0");
        assert_eq!(c.portal(), "127.0.0.1:3260");
    }

    #[test]
    fn every_rule_refuses() {
        type Mutator = fn(&mut Handoff);
        let cases: &[(Mutator, UapiError)] = &[
            (|h| h.version = 2, UapiError::Version { got: 2 }),
            (
                |h| h.size = 100,
                UapiError::Size {
                    got: 100,
                    expected: 672,
                },
            ),
            (|h| h.flags = 4, UapiError::UnknownFlags { flags: 4 }),
            (
                |h| h._spare[8] = 1,
                UapiError::NonZeroReserved { field: "_spare" },
            ),
            (
                |h| h.generation = 1,
                UapiError::WrongIoctl {
                    field: "generation",
                },
            ),
            (
                |h| h.recipe_len = 10,
                UapiError::NullBuffer { field: "recipe" },
            ),
            (
                |h| h.recipe = 0x1000,
                UapiError::NullBuffer { field: "recipe" },
            ),
            (
                |h| {
                    h.recipe = 0x1000;
                    h.recipe_len = RECIPE_MAX + 1;
                },
                UapiError::OutOfRange {
                    field: "recipe_len",
                    value: RECIPE_MAX + 1,
                },
            ),
            (
                |h| h.replacement_timeout = MAX_REPLACEMENT_TIMEOUT + 1,
                UapiError::OutOfRange {
                    field: "replacement_timeout",
                    value: MAX_REPLACEMENT_TIMEOUT + 1,
                },
            ),
            (
                |h| h.noop_out_timeout = 0,
                UapiError::OutOfRange {
                    field: "noop_out_timeout",
                    value: 0,
                },
            ),
            (
                |h| h._pad0 = 1,
                UapiError::NonZeroReserved { field: "_pad0" },
            ),
            (|h| h.fd = -1, UapiError::BadFd),
            (|h| h.host_no = 2, UapiError::HostNoSet),
            (
                |h| h.target_name = [b'a'; NAME_LEN],
                UapiError::Unterminated {
                    field: "target_name",
                },
            ),
            (
                |h| h.initiator_name[0] = 0,
                UapiError::Empty {
                    field: "initiator_name",
                },
            ),
            (
                |h| h.portal[3] = b' ',
                UapiError::BadChar { field: "portal" },
            ),
            (|h| h.tsih = 0, UapiError::ZeroTsih),
            (
                |h| h.header_digest = 2,
                UapiError::BadDigest {
                    field: "header_digest",
                },
            ),
            (
                |h| h.initial_r2t = 2,
                UapiError::NotBool {
                    field: "initial_r2t",
                },
            ),
            (
                |h| h.data_pdu_in_order = 0,
                UapiError::UnsupportedOutOfOrder,
            ),
            (
                |h| h.error_recovery_level = 1,
                UapiError::UnsupportedErl { level: 1 },
            ),
            (
                |h| h.max_recv_data_segment_len = 511,
                UapiError::OutOfRange {
                    field: "max_recv_data_segment_len",
                    value: 511,
                },
            ),
            (
                |h| h.max_recv_data_segment_len = MAX_RECV_DATA_SEGMENT_LEN + 1,
                UapiError::OutOfRange {
                    field: "max_recv_data_segment_len",
                    value: MAX_RECV_DATA_SEGMENT_LEN + 1,
                },
            ),
            (
                |h| h.max_xmit_data_segment_len = 1 << 24,
                UapiError::OutOfRange {
                    field: "max_xmit_data_segment_len",
                    value: 1 << 24,
                },
            ),
            (
                |h| h.first_burst_len = h.max_burst_len + 1,
                UapiError::FirstBurstAboveMaxBurst,
            ),
            (
                |h| h.max_outstanding_r2t = 0,
                UapiError::OutOfRange {
                    field: "max_outstanding_r2t",
                    value: 0,
                },
            ),
            (
                |h| {
                    h.queue_depth = 2048;
                    h.max_outstanding_r2t = 33;
                },
                UapiError::TooManyR2tJobs {
                    queue_depth: 2048,
                    max_outstanding_r2t: 33,
                },
            ),
            (
                |h| h.queue_depth = 0,
                UapiError::OutOfRange {
                    field: "queue_depth",
                    value: 0,
                },
            ),
            (
                |h| h.queue_depth = MAX_QUEUE_DEPTH + 1,
                UapiError::OutOfRange {
                    field: "queue_depth",
                    value: MAX_QUEUE_DEPTH + 1,
                },
            ),
            (
                |h| h.max_cmd_sn = h.exp_cmd_sn.wrapping_sub(2),
                UapiError::BadWindow,
            ),
            (
                |h| h.cmd_sn = h.max_cmd_sn + 2,
                UapiError::CmdSnOutsideWindow,
            ),
            (
                |h| h.cmd_sn = h.exp_cmd_sn - 1,
                UapiError::CmdSnOutsideWindow,
            ),
            (|h| h.exp_stat_sn = h.stat_sn, UapiError::StatSnMismatch),
            (|h| h.itt_base = 0x1_0001, UapiError::BadIttBase),
            (|h| h.itt_base = 0xffff_0000, UapiError::BadIttBase),
        ];
        for (i, (mutate, want)) in cases.iter().enumerate() {
            let mut h = sample();
            mutate(&mut h);
            assert_eq!(h.validate(HandoffKind::Add).err(), Some(*want), "case {i}");
        }
    }

    #[test]
    fn handoff_ioctl_rules() {
        let mut h = sample();
        h.host_no = 3;
        h.generation = 2;
        let c = h.validate(HandoffKind::Handoff).unwrap();
        assert_eq!(c.raw.generation, 2);
        h.recipe = 0x1000;
        h.recipe_len = 4;
        assert_eq!(
            h.validate(HandoffKind::Handoff),
            Err(UapiError::WrongIoctl { field: "recipe" })
        );
        // Pings off: a zero timeout is fine.
        let mut h = sample();
        h.noop_out_interval = 0;
        h.noop_out_timeout = 0;
        let c = h.validate(HandoffKind::Add).unwrap();
        assert_eq!(c.noop_out_interval, 0);
        assert_eq!(c.replacement_timeout, DEFAULT_REPLACEMENT_TIMEOUT);
    }

    #[test]
    fn event_and_fail_validation() {
        let e = Event::request(EVENT_RESCAN, 0x1000, RECIPE_MAX);
        assert_eq!(e.validate_request(), Ok(true));
        assert_eq!(Event::from_bytes(&e.to_bytes()), e);
        assert_eq!(Event::request(0, 0, 0).validate_request(), Ok(false));
        assert_eq!(
            Event::request(4, 0, 0).validate_request(),
            Err(UapiError::UnknownFlags { flags: 4 })
        );
        assert_eq!(
            Event::request(0, 0, 16).validate_request(),
            Err(UapiError::NullBuffer { field: "recipe" })
        );
        let mut e = Event::request(0, 0, 0);
        e._spare[6] = 1;
        assert_eq!(
            e.validate_request(),
            Err(UapiError::NonZeroReserved { field: "_spare" })
        );
        let f = ReloginFailed::new(3, 9, 5, 2000);
        assert_eq!(f.validate(), Ok(()));
        assert_eq!(ReloginFailed::from_bytes(&f.to_bytes()), f);
        assert!(ReloginFailed::new(3, 9, 5, MAX_RETRY_MS + 1)
            .validate()
            .is_err());
        assert_eq!(WAIT_EVENT, (3 << 30) | (608 << 16) | (0xe3 << 8) | 5);
        assert_eq!(FAIL_RELOGIN, (1 << 30) | (40 << 16) | (0xe3 << 8) | 6);
        assert_eq!(
            reason::describe(reason::NOP_TIMEOUT),
            "NOP-Out ping timed out"
        );
    }

    #[test]
    fn window_edges_accepted() {
        let mut h = sample();
        h.cmd_sn = h.max_cmd_sn + 1;
        assert!(h.validate(HandoffKind::Add).is_ok());
        // A closed window at login (MaxCmdSN = ExpCmdSN - 1) is legal.
        h.max_cmd_sn = h.exp_cmd_sn - 1;
        h.cmd_sn = h.exp_cmd_sn;
        assert!(h.validate(HandoffKind::Add).is_ok());
        // Wrap-around.
        h.exp_cmd_sn = u32::MAX;
        h.max_cmd_sn = 30;
        h.cmd_sn = u32::MAX;
        assert!(h.validate(HandoffKind::Add).is_ok());
        // HANDOFF names an existing host.
        let mut h = sample();
        h.host_no = 5;
        assert!(h.validate(HandoffKind::Handoff).is_ok());
    }

    #[test]
    fn remove_and_list_validation() {
        assert_eq!(RemoveSession::new(1, false).validate(), Ok(false));
        assert_eq!(RemoveSession::new(1, true).validate(), Ok(true));
        let mut r = RemoveSession::new(1, false);
        r.flags = 2;
        assert_eq!(r.validate(), Err(UapiError::UnknownFlags { flags: 2 }));
        assert_eq!(List::new(0, 0).validate(), Ok(()));
        assert_eq!(List::new(2, 0).validate(), Err(UapiError::NullEntries));
        let mut l = List::new(1, 8);
        l.entry_size = 12;
        assert_eq!(l.validate(), Err(UapiError::EntrySize { got: 12 }));
    }

    #[test]
    fn strings() {
        let mut a = [0u8; 8];
        assert_eq!(set_c_str("1234567", &mut a), Some(()));
        assert_eq!(c_str_field("x", &a), Ok("1234567"));
        assert_eq!(set_c_str("12345678", &mut a), None);
        assert_eq!(set_c_str("a\0b", &mut a), None);
    }

    #[test]
    fn new_ioctl_numbers_match_the_c_macros() {
        // _IOWR(0xe3, 7, 672) and _IOWR(0xe3, 8, 48).
        assert_eq!(ADD_CONNECTION, (3 << 30) | (672 << 16) | (0xe3 << 8) | 7);
        assert_eq!(LIST_CONNECTIONS, (3 << 30) | (48 << 16) | (0xe3 << 8) | 8);
        let all = [
            ADD_SESSION,
            REMOVE_SESSION,
            LIST,
            HANDOFF,
            WAIT_EVENT,
            FAIL_RELOGIN,
            ADD_CONNECTION,
            LIST_CONNECTIONS,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "number {i} used twice");
        }
    }

    #[test]
    fn new_fields_sit_where_spare_was() {
        let mut h = sample();
        h.connections = 0x0102;
        h.lane = 0x0304;
        let b = h.to_bytes();
        assert_eq!(&b[632..634], &0x0102u16.to_ne_bytes());
        assert_eq!(&b[634..636], &0x0304u16.to_ne_bytes());
        assert_eq!(Handoff::from_bytes(&b), h);
        let mut e = Event::request(0, 0, 0);
        e.connections = 4;
        e.lane = 3;
        let b = e.to_bytes();
        assert_eq!(&b[576..578], &4u16.to_ne_bytes());
        assert_eq!(&b[578..580], &3u16.to_ne_bytes());
        assert_eq!(Event::from_bytes(&b), e);
        // Out fields: whatever the caller left there is not looked at.
        assert_eq!(e.validate_request(), Ok(false));
        let mut i = SessionInfo::zeroed();
        i.connections = 2;
        i.lanes = 4;
        let b = i.to_bytes();
        assert_eq!(&b[588..590], &2u16.to_ne_bytes());
        assert_eq!(&b[590..592], &4u16.to_ne_bytes());
        assert_eq!(SessionInfo::from_bytes(&b), i);
    }

    #[test]
    fn zeros_in_the_new_fields_mean_one_connection() {
        let h = sample();
        assert_eq!((h.connections, h.lane), (0, 0));
        let c = h.validate(HandoffKind::Add).unwrap();
        assert_eq!((c.connections, c.lane), (1, 0));
        assert_eq!(h.validate(HandoffKind::Add), Ok(c));
        let mut r = sample();
        r.host_no = 3;
        let c = r.validate(HandoffKind::Handoff).unwrap();
        assert_eq!((c.connections, c.lane), (0, 0), "HANDOFF 0: unchanged");
        assert_eq!(r.validate(HandoffKind::Handoff), Ok(c));
        // 1 is one connection too.
        let mut one = sample();
        one.connections = 1;
        one.max_connections = 1;
        assert_eq!(one.validate(HandoffKind::Add).map(|c| c.connections), Ok(1));
    }

    #[test]
    fn connection_count_rules() {
        let mut h = sample();
        h.max_connections = 16;
        for n in [2, 4, 16] {
            h.connections = n;
            assert_eq!(h.validate(HandoffKind::Add).map(|c| c.connections), Ok(n));
            assert_eq!(
                h.validate(HandoffKind::Handoff).map(|c| c.connections),
                Ok(n)
            );
        }
        h.max_connections = u16::MAX;
        h.connections = MAX_CONNECTIONS + 1;
        let above = UapiError::OutOfRange {
            field: "connections",
            value: 17,
        };
        assert_eq!(h.validate(HandoffKind::Add).err(), Some(above));
        assert_eq!(h.validate(HandoffKind::Handoff).err(), Some(above));
        h.max_connections = 2;
        h.connections = 3;
        let neg = UapiError::ConnectionsAboveMaxConnections {
            connections: 3,
            max_connections: 2,
        };
        assert_eq!(h.validate(HandoffKind::Add).err(), Some(neg));
        assert_eq!(h.validate(HandoffKind::Handoff).err(), Some(neg));
        // The leading connection is lane 0 on both ioctls.
        let mut h = sample();
        h.lane = 1;
        let lane = UapiError::WrongIoctl { field: "lane" };
        assert_eq!(h.validate(HandoffKind::Add).err(), Some(lane));
        assert_eq!(h.validate(HandoffKind::Handoff).err(), Some(lane));
    }

    fn secondary(lane: u16) -> Handoff {
        let mut h = sample();
        h.host_no = 3;
        h.generation = 2;
        h.cid = lane;
        h.lane = lane;
        h
    }

    #[test]
    fn add_connection_rules() {
        for lane in [1, 7, MAX_CONNECTIONS - 1] {
            let c = secondary(lane)
                .validate(HandoffKind::AddConnection)
                .unwrap();
            assert_eq!((c.lane, c.connections), (lane, 1));
            assert_eq!(c.raw.generation, 2);
        }
        // Host 0 is a host number like any other; the kernel looks it up.
        let mut h = secondary(1);
        h.host_no = 0;
        assert!(h.validate(HandoffKind::AddConnection).is_ok());
        type Mutator = fn(&mut Handoff);
        let cases: &[(Mutator, UapiError)] = &[
            (
                |h| h.lane = 0,
                UapiError::OutOfRange {
                    field: "lane",
                    value: 0,
                },
            ),
            (
                |h| h.lane = MAX_CONNECTIONS,
                UapiError::OutOfRange {
                    field: "lane",
                    value: 16,
                },
            ),
            (
                |h| h.connections = 2,
                UapiError::WrongIoctl {
                    field: "connections",
                },
            ),
            (
                |h| {
                    h.recipe = 0x1000;
                    h.recipe_len = 8;
                },
                UapiError::WrongIoctl { field: "recipe" },
            ),
            (
                |h| h.recipe_len = 8,
                UapiError::WrongIoctl { field: "recipe" },
            ),
            (|h| h.tsih = 0, UapiError::ZeroTsih),
            (|h| h.fd = -1, UapiError::BadFd),
            (
                |h| h._spare[0] = 1,
                UapiError::NonZeroReserved { field: "_spare" },
            ),
        ];
        for (i, (mutate, want)) in cases.iter().enumerate() {
            let mut h = secondary(1);
            mutate(&mut h);
            assert_eq!(
                h.validate(HandoffKind::AddConnection).err(),
                Some(*want),
                "case {i}"
            );
        }
        // Like HANDOFF, the recovery knobs are not looked at.
        let mut h = secondary(2);
        h.noop_out_interval = u16::MAX;
        h.noop_out_timeout = 0;
        h.replacement_timeout = u32::MAX;
        assert!(h.validate(HandoffKind::AddConnection).is_ok());
    }

    #[test]
    fn session_keys_and_identity_are_compared() {
        let mut lead = sample();
        lead.max_connections = 4;
        lead.connections = 4;
        let lead = lead.validate(HandoffKind::Add).unwrap();
        let mut s = secondary(1);
        s.max_connections = 4;
        // Connection keys may differ.
        s.header_digest = DIGEST_NONE;
        s.data_digest = DIGEST_CRC32C;
        s.max_recv_data_segment_len = 8192;
        s.max_xmit_data_segment_len = 4096;
        let ok = s.validate(HandoffKind::AddConnection).unwrap();
        assert_eq!(lead.same_session_keys(&ok), Ok(()));
        assert_eq!(lead.same_session(&ok), Ok(()));
        type Mutator = fn(&mut Handoff);
        let keys: &[(Mutator, &str)] = &[
            (|h| h.max_connections = 5, "MaxConnections"),
            (|h| h.initial_r2t ^= 1, "InitialR2T"),
            (|h| h.immediate_data ^= 1, "ImmediateData"),
            (|h| h.max_burst_len -= 512, "MaxBurstLength"),
            (|h| h.first_burst_len -= 512, "FirstBurstLength"),
            (|h| h.default_time2wait += 1, "DefaultTime2Wait"),
            (|h| h.default_time2retain += 1, "DefaultTime2Retain"),
            (|h| h.max_outstanding_r2t += 1, "MaxOutstandingR2T"),
            (|h| h.tpgt += 1, "TargetPortalGroupTag"),
        ];
        for (mutate, key) in keys {
            let mut x = s;
            mutate(&mut x);
            let c = x.validate(HandoffKind::AddConnection).unwrap();
            assert_eq!(
                lead.same_session_keys(&c),
                Err(UapiError::SessionKeyDiffers { key })
            );
        }
        // DataPDUInOrder, DataSequenceInOrder and ErrorRecoveryLevel cannot
        // differ after validation (only Yes/Yes/0 pass); compare them anyway.
        let mut other = ok;
        other.params.error_recovery_level = 1;
        assert_eq!(
            lead.same_session_keys(&other),
            Err(UapiError::SessionKeyDiffers {
                key: "ErrorRecoveryLevel"
            })
        );
        let ids: &[(Mutator, &str)] = &[
            (|h| h.target_name[0] ^= 1, "target_name"),
            (|h| h.initiator_name[0] ^= 1, "initiator_name"),
            (|h| h.isid[5] ^= 1, "isid"),
            (|h| h.queue_depth += 1, "queue_depth"),
        ];
        for (mutate, field) in ids {
            let mut x = s;
            mutate(&mut x);
            let c = x.validate(HandoffKind::AddConnection).unwrap();
            assert_eq!(
                lead.same_session(&c),
                Err(UapiError::NotThisSession { field })
            );
        }
        extern crate std;
        assert_eq!(
            std::format!("{}", UapiError::SessionKeyDiffers { key: "InitialR2T" }),
            "InitialR2T differs from the session's"
        );
    }

    #[test]
    fn conn_list_validation_and_round_trip() {
        let l = ConnList::new(3, 4, 0x1000);
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(ConnList::from_bytes(&l.to_bytes()), l);
        assert_eq!(ConnList::new(3, 0, 0).validate(), Ok(()));
        assert_eq!(
            ConnList::new(3, 2, 0).validate(),
            Err(UapiError::NullEntries)
        );
        let mut x = l;
        x.entry_size = SessionInfo::SIZE as u32;
        assert_eq!(x.validate(), Err(UapiError::ConnEntrySize { got: 640 }));
        let mut x = l;
        x._spare[3] = 1;
        assert_eq!(
            x.validate(),
            Err(UapiError::NonZeroReserved { field: "_spare" })
        );
        let mut x = l;
        x.version = 2;
        assert_eq!(x.validate(), Err(UapiError::Version { got: 2 }));
        let mut x = l;
        x.size = List::SIZE as u32 + 1;
        assert_eq!(
            x.validate(),
            Err(UapiError::Size {
                got: 49,
                expected: 48
            })
        );
        let mut i = ConnInfo::zeroed();
        i.lane = 2;
        i.cid = 7;
        i.state = conn_state::UP;
        i.tx_stalled = 0x0102_0304_0506_0708;
        i.local_port = 40000;
        let b = i.to_bytes();
        assert_eq!(&b[32..40], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&b[40..42], &40000u16.to_ne_bytes());
        assert_eq!(b[4], conn_state::UP);
        assert_eq!(ConnInfo::from_bytes(&b), i);
    }

    #[test]
    fn r2t_job_queue_holds_every_outstanding_r2t() {
        // The old rule capped MaxOutstandingR2T at 16 when sizing the queue:
        // 128 commands with 32 R2Ts each overflowed it.
        let old_rule = 128 * 16 + 64;
        assert!(r2t_job_capacity(128, 32) >= 128 * 32);
        assert!(r2t_job_capacity(128, 32) > old_rule);
        assert!(r2t_job_capacity(1, 1) > 1);
        // The largest accepted handoff still has room.
        assert!(r2t_job_capacity(2048, 32) >= MAX_R2T_JOBS as usize);
    }
}
