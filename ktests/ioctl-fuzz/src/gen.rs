//! Argument generators: random-but-valid ioctl arguments (built so that
//! `iscsi_proto::uapi`'s own validation, the code the kernel runs, accepts
//! them), hostile mutations that each break exactly one rule, benign mutations
//! that must still be accepted, raw random structs, and ioctl numbers the
//! module does not know.

use iscsi_proto::negotiate::SessionParams;
use iscsi_proto::uapi::{
    self, set_c_str, ConnList, Event, Handoff, HandoffKind, List, ReloginFailed, RemoveSession,
    MAX_CONNECTIONS, NAME_LEN, PORTAL_LEN,
};

use crate::rng::Rng;

/// The eight ioctls of the ABI, with names.
pub const KNOWN: [(u32, &str); 8] = [
    (uapi::ADD_SESSION, "ADD_SESSION"),
    (uapi::REMOVE_SESSION, "REMOVE_SESSION"),
    (uapi::LIST, "LIST"),
    (uapi::HANDOFF, "HANDOFF"),
    (uapi::WAIT_EVENT, "WAIT_EVENT"),
    (uapi::FAIL_RELOGIN, "FAIL_RELOGIN"),
    (uapi::ADD_CONNECTION, "ADD_CONNECTION"),
    (uapi::LIST_CONNECTIONS, "LIST_CONNECTIONS"),
];

/// ADD_SESSION (`add`) or HANDOFF.
pub fn kind(add: bool) -> HandoffKind {
    if add {
        HandoffKind::Add
    } else {
        HandoffKind::Handoff
    }
}

/// The ioctl's name.
pub fn kind_name(k: HandoffKind) -> &'static str {
    match k {
        HandoffKind::Add => "ADD_SESSION",
        HandoffKind::Handoff => "HANDOFF",
        HandoffKind::AddConnection => "ADD_CONNECTION",
    }
}

/// ioctl type bytes `do_vfs_ioctl` handles itself before the driver sees the
/// call (FIGETBSZ, FS_IOC_GETFSUUID, FIO*, FIFREEZE/FITHAW, FS_IOC_*FLAGS and
/// FIEMAP, FICLONE*): random numbers avoid them, so every unknown number
/// reaches the module (and FIFREEZE never freezes devtmpfs).
const VFS_TYPES: [u8; 6] = [0x00, 0x15, b'T', b'X', b'f', 0x94];

fn ioc(dir: u32, ty: u8, nr: u8, size: u32) -> u32 {
    (dir << 30) | ((size & 0x3fff) << 16) | (u32::from(ty) << 8) | u32::from(nr)
}

/// Each known ioctl re-encoded with a wrong size or direction: a different
/// number, so the module must answer ENOTTY.
pub fn wrong_encodings() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for (cmd, name) in KNOWN {
        let dir = cmd >> 30;
        let size = (cmd >> 16) & 0x3fff;
        let nr = (cmd & 0xff) as u8;
        for s in [0, 1, size - 1, size + 1, size + 8, 0x3fff] {
            out.push((ioc(dir, uapi::IOC_MAGIC, nr, s), format!("{name} size {s}")));
        }
        for d in 0..4 {
            if d != dir {
                out.push((ioc(d, uapi::IOC_MAGIC, nr, size), format!("{name} dir {d}")));
            }
        }
        // The neighbouring type byte.
        out.push((
            ioc(dir, uapi::IOC_MAGIC ^ 1, nr, size),
            format!("{name} type {:#x}", uapi::IOC_MAGIC ^ 1),
        ));
    }
    out
}

/// A number the module does not know and the VFS does not intercept.
pub fn unknown_cmd(rng: &mut Rng) -> u32 {
    loop {
        let cmd = match rng.below(4) {
            // Our type byte, another number.
            0 => ioc(
                rng.below(4) as u32,
                uapi::IOC_MAGIC,
                rng.pick(&[0u8, 7, 8, 0x40, 0x80, 0xff]),
                rng.below(0x4000) as u32,
            ),
            // A known number with a random size.
            1 => {
                let (c, _) = rng.pick(&KNOWN);
                (c & !(0x3fff << 16)) | ((rng.below(0x4000) as u32) << 16)
            }
            // Anything.
            2 => rng.next_u32(),
            // Edge values.
            _ => rng.pick(&[0u32, 1, u32::MAX, 0x8000_0000, 0xe3_00, 0xc000_e300]),
        };
        let ty = ((cmd >> 8) & 0xff) as u8;
        if !VFS_TYPES.contains(&ty) && !KNOWN.iter().any(|(c, _)| *c == cmd) {
            return cmd;
        }
    }
}

fn printable(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(rng.range(0x21, 0x7e) as u8))
        .collect()
}

fn name(rng: &mut Rng, room: usize) -> String {
    match rng.below(4) {
        0 => {
            let n = rng.range(1, room as u32 - 1) as usize;
            printable(rng, n)
        }
        1 => printable(rng, room - 1),
        _ => format!("iqn.2026-11.dev.iscsi-rs:fuzz-{:08x}", rng.next_u32()),
    }
}

/// Sets the three strings of a handoff (always valid ones).
pub fn set_names(h: &mut Handoff, target: &str, initiator: &str, portal: &str) {
    set_c_str(target, &mut h.target_name).expect("target name fits");
    set_c_str(initiator, &mut h.initiator_name).expect("initiator name fits");
    set_c_str(portal, &mut h.portal).expect("portal fits");
}

/// A random ADD_SESSION (`add`) or HANDOFF argument that passes validation
/// (see [`valid_handoff_kind`]).
pub fn valid_handoff(rng: &mut Rng, add: bool, fd: i32) -> Handoff {
    valid_handoff_kind(rng, kind(add), fd)
}

/// A random argument for the ioctl `k` that passes validation: every field
/// anywhere in its allowed range, extremes often. `fd` is used as is; no
/// recipe; `host_no` and `generation` 0. ADD_SESSION asks for one
/// connection most of the time and up to [`MAX_CONNECTIONS`] otherwise; a
/// HANDOFF says 0 ("unchanged"); ADD_CONNECTION names lane 1..16.
pub fn valid_handoff_kind(rng: &mut Rng, k: HandoffKind, fd: i32) -> Handoff {
    let add = k == HandoffKind::Add;
    let mut isid = [0u8; 6];
    rng.fill(&mut isid);
    let stat_sn = rng.edgy_u32();
    let exp_cmd_sn = rng.edgy_u32();
    let mut h = Handoff::from_login(
        &SessionParams::DEFAULT,
        isid,
        rng.range(1, 0xffff) as u16,
        rng.next_u32() as u16,
        stat_sn,
        exp_cmd_sn,
        exp_cmd_sn,
    );
    h.fd = fd;
    // Window: closed (Max = Exp - 1), one, small, large.
    let span = match rng.below(5) {
        0 => u32::MAX, // Exp - 1
        1 => 0,
        2 => rng.range(1, 64),
        3 => rng.range(1, 0xffff),
        _ => rng.range(1, 0x3fff_ffff),
    };
    h.max_cmd_sn = exp_cmd_sn.wrapping_add(span);
    h.cmd_sn = match rng.below(3) {
        0 => h.exp_cmd_sn,
        1 => h.max_cmd_sn.wrapping_add(1),
        _ if span != u32::MAX => exp_cmd_sn.wrapping_add(rng.range(0, span)),
        _ => h.exp_cmd_sn,
    };
    h.header_digest = rng.below(2) as u8;
    h.data_digest = rng.below(2) as u8;
    h.itt_base = rng.pick_or(&[0u32, 1, 2, 0x7fff, 0xfffe], 0, 0xfffe) << 16;
    h.max_recv_data_segment_len = rng.pick_or(
        &[
            uapi::MIN_DATA_SEGMENT_LEN,
            8192,
            262_144,
            uapi::MAX_RECV_DATA_SEGMENT_LEN,
        ],
        uapi::MIN_DATA_SEGMENT_LEN,
        uapi::MAX_RECV_DATA_SEGMENT_LEN,
    );
    h.max_xmit_data_segment_len = rng.pick_or(
        &[uapi::MIN_DATA_SEGMENT_LEN, 8192, uapi::MAX_DATA_SEGMENT_LEN],
        uapi::MIN_DATA_SEGMENT_LEN,
        uapi::MAX_DATA_SEGMENT_LEN,
    );
    h.max_burst_len = rng.pick_or(
        &[
            uapi::MIN_DATA_SEGMENT_LEN,
            262_144,
            uapi::MAX_DATA_SEGMENT_LEN,
        ],
        uapi::MIN_DATA_SEGMENT_LEN,
        uapi::MAX_DATA_SEGMENT_LEN,
    );
    h.first_burst_len = rng.pick_or(
        &[uapi::MIN_DATA_SEGMENT_LEN, h.max_burst_len],
        uapi::MIN_DATA_SEGMENT_LEN,
        h.max_burst_len,
    );
    h.max_outstanding_r2t = rng.pick_or(&[1u32, 2, 0xffff], 1, 0xffff) as u16;
    h.max_connections = rng.pick_or(&[1u32, 0xffff], 1, 0xffff) as u16;
    h.default_time2wait = rng.pick_or(&[0u32, 2, 3600], 0, 3600) as u16;
    h.default_time2retain = rng.pick_or(&[0u32, 20, 3600], 0, 3600) as u16;
    h.initial_r2t = rng.below(2) as u8;
    h.immediate_data = rng.below(2) as u8;
    h.tpgt = rng.next_u32() as u16;
    h.queue_depth = rng.pick_or(
        &[1, 2, 32, uapi::DEFAULT_QUEUE_DEPTH, uapi::MAX_QUEUE_DEPTH],
        1,
        uapi::MAX_QUEUE_DEPTH,
    );
    // The module queues at most MAX_R2T_JOBS Data-Out bursts.
    let r2t_max = (uapi::MAX_R2T_JOBS / h.queue_depth).min(0xffff) as u16;
    h.max_outstanding_r2t = h.max_outstanding_r2t.min(r2t_max);
    let t = name(rng, NAME_LEN);
    let i = name(rng, NAME_LEN);
    let p = match rng.below(3) {
        0 => {
            let n = rng.range(1, PORTAL_LEN as u32 - 1) as usize;
            printable(rng, n)
        }
        _ => format!("127.0.0.1:{}", rng.range(1, 65535)),
    };
    set_names(&mut h, &t, &i, &p);
    if add {
        h.replacement_timeout = rng.pick_or(&[0, 1, uapi::MAX_REPLACEMENT_TIMEOUT], 0, 600);
        h.noop_out_interval = rng.pick_or(&[0u32, 1, 3600], 0, 3600) as u16;
        h.noop_out_timeout = rng.pick_or(&[1u32, 3600], 1, 3600) as u16;
        if h.noop_out_interval == 0 && rng.chance(1, 2) {
            h.noop_out_timeout = 0;
        }
    } else {
        // Ignored by HANDOFF and ADD_CONNECTION: anything goes.
        h.replacement_timeout = rng.edgy_u32();
        h.noop_out_interval = rng.next_u32() as u16;
        h.noop_out_timeout = rng.next_u32() as u16;
    }
    match k {
        HandoffKind::Add => {
            let most = h.max_connections.min(MAX_CONNECTIONS);
            h.connections = match rng.below(4) {
                0 | 1 => 0,
                2 => 1,
                _ => rng.range(1, u32::from(most)) as u16,
            };
        }
        HandoffKind::Handoff => {}
        HandoffKind::AddConnection => {
            h.lane = rng.range(1, u32::from(MAX_CONNECTIONS) - 1) as u16;
            h.cid = h.lane;
        }
    }
    h
}

/// Makes a valid ADD_SESSION argument safe to run over a socket whose peer is
/// not a target: no replacement wait (the initial scan fails at once instead of
/// holding its commands) and 1 s NOP-Out pings (a silent or stuck peer fails
/// the connection within about 2 s).
pub fn tame(h: &mut Handoff, replacement_timeout: u32) {
    h.replacement_timeout = replacement_timeout;
    h.noop_out_interval = 1;
    h.noop_out_timeout = 1;
}

/// Sets a field to a bad value and says which mutation that was: the field's
/// name, or the text given.
macro_rules! bad {
    ($s:ident . $field:ident = $v:expr) => {{
        $s.$field = $v;
        stringify!($field)
    }};
    ($s:ident . $field:ident = $v:expr, $what:expr) => {{
        $s.$field = $v;
        $what
    }};
}

/// The version/size header and the reserved words every uapi struct has.
trait Header {
    fn version(&mut self) -> &mut u32;
    fn size(&mut self) -> &mut u32;
    fn spare(&mut self) -> &mut [u32];
}

macro_rules! header {
    ($($t:ty),+) => {$(
        impl Header for $t {
            fn version(&mut self) -> &mut u32 {
                &mut self.version
            }
            fn size(&mut self) -> &mut u32 {
                &mut self.size
            }
            fn spare(&mut self) -> &mut [u32] {
                &mut self._spare
            }
        }
    )+};
}

header!(Handoff, RemoveSession, List, Event, ReloginFailed, ConnList);

/// Versions no struct has.
const BAD_VERSIONS: [u32; 3] = [0, 2, u32::MAX];

/// A wrong version, one of `bad`.
fn break_version(x: &mut impl Header, rng: &mut Rng, bad: &[u32]) -> &'static str {
    *x.version() = rng.pick(bad);
    "version"
}

/// A wrong size, one of `bad`.
fn break_size(x: &mut impl Header, rng: &mut Rng, bad: &[u32]) -> &'static str {
    *x.size() = rng.pick(bad);
    "size"
}

/// A reserved word set.
fn break_spare(x: &mut impl Header, rng: &mut Rng) -> &'static str {
    let v = rng.pick(&[1, u32::MAX]);
    let spare = x.spare();
    spare[rng.below(spare.len() as u64) as usize] = v;
    "_spare"
}

/// The texts of hostile mutations 18 to 26: each string unterminated, empty,
/// or starting with a bad byte.
const NAME_BREAKS: [&str; 9] = [
    "target_name unterminated",
    "initiator_name unterminated",
    "portal unterminated",
    "target_name empty",
    "initiator_name empty",
    "portal empty",
    "target_name bad byte",
    "initiator_name bad byte",
    "portal bad byte",
];

/// Number of hostile handoff mutations (see [`break_handoff`]).
pub const HANDOFF_BREAKS: usize = 57;

/// Applies hostile mutation `n` (< [`HANDOFF_BREAKS`]) to a valid handoff so
/// that validation for ioctl `k` fails; `None` when `n` does not apply to
/// that ioctl (e.g. a non-zero `host_no` is fine on HANDOFF). `recipe_addr`
/// is a mapped address for the mutations that need a non-null recipe.
pub fn break_handoff(
    h: &mut Handoff,
    n: usize,
    rng: &mut Rng,
    k: HandoffKind,
    recipe_addr: u64,
) -> Option<&'static str> {
    let add = k == HandoffKind::Add;
    let leading = k != HandoffKind::AddConnection;
    let bad_char = rng.pick(&[b' ', 0x7f, 0x80, 0xff, b'\t', 0x01]);
    let size = Handoff::SIZE as u32;
    Some(match n {
        0 => break_version(h, rng, &[0, 2, u32::MAX, 0x100]),
        1 => break_size(h, rng, &[0, 1, size - 1, size + 1, u32::MAX]),
        2 => bad!(h.flags = rng.pick(&[1, 2, 0x8000_0000, u32::MAX])),
        3 => bad!(h._pad0 = rng.range(1, 255) as u8),
        4 => bad!(h._pad1 = rng.pick(&[1, u32::MAX])),
        5 => break_spare(h, rng),
        6 => bad!(h.fd = rng.pick(&[-1, -2, i32::MIN]), "negative fd"),
        7 if add => bad!(
            h.host_no = rng.pick(&[1, 7, u32::MAX]),
            "host_no on ADD_SESSION"
        ),
        8 if add => bad!(
            h.generation = rng.pick(&[1, u32::MAX]),
            "generation on ADD_SESSION"
        ),
        9 if add => {
            h.recipe = recipe_addr;
            h.recipe_len = rng.pick(&[uapi::RECIPE_MAX + 1, 1 << 20, u32::MAX]);
            "recipe_len > RECIPE_MAX"
        }
        10 if add => {
            h.recipe = 0;
            h.recipe_len = rng.pick(&[1, 16, uapi::RECIPE_MAX]);
            "recipe_len without recipe"
        }
        11 if add => {
            h.recipe = recipe_addr;
            h.recipe_len = 0;
            "recipe without recipe_len"
        }
        12 if !add => {
            h.recipe = recipe_addr;
            h.recipe_len = 16;
            "recipe on HANDOFF / ADD_CONNECTION"
        }
        13 if !add => {
            h.recipe = 0;
            h.recipe_len = rng.pick(&[1, u32::MAX]);
            "recipe_len on HANDOFF / ADD_CONNECTION"
        }
        14 if add => {
            bad!(h.replacement_timeout = rng.pick(&[uapi::MAX_REPLACEMENT_TIMEOUT + 1, u32::MAX]))
        }
        15 if add => bad!(h.noop_out_interval = rng.pick(&[3601, u16::MAX])),
        16 if add => {
            h.noop_out_interval = rng.range(1, 3600) as u16;
            h.noop_out_timeout = 0;
            "noop_out_timeout 0 with pings on"
        }
        17 if add => bad!(h.noop_out_timeout = rng.pick(&[3601, u16::MAX])),
        18..=26 => {
            let (name, fill) = match n % 3 {
                0 => (&mut h.target_name[..], b'a'),
                1 => (&mut h.initiator_name[..], b'i'),
                _ => (&mut h.portal[..], b'p'),
            };
            match (n - 18) / 3 {
                0 => name.fill(fill),
                1 => name[0] = 0,
                _ => name[0] = bad_char,
            }
            NAME_BREAKS[n - 18]
        }
        27 => bad!(h.tsih = 0, "tsih 0"),
        28 => bad!(h.header_digest = rng.range(2, 255) as u8),
        29 => bad!(h.data_digest = rng.range(2, 255) as u8),
        30 => bad!(h.initial_r2t = rng.range(2, 255) as u8),
        31 => bad!(h.immediate_data = rng.range(2, 255) as u8),
        32 => bad!(h.data_pdu_in_order = rng.pick(&[0, 2, 255])),
        33 => bad!(h.data_sequence_in_order = rng.pick(&[0, 2, 255])),
        34 => bad!(h.error_recovery_level = rng.range(1, 255) as u8),
        35 => bad!(
            h.max_recv_data_segment_len = rng.pick(&[
                0,
                1,
                uapi::MIN_DATA_SEGMENT_LEN - 1,
                uapi::MAX_RECV_DATA_SEGMENT_LEN + 1,
                u32::MAX,
            ])
        ),
        36 => bad!(
            h.max_xmit_data_segment_len =
                rng.pick(&[0, uapi::MIN_DATA_SEGMENT_LEN - 1, 1 << 24, u32::MAX])
        ),
        37 => bad!(h.max_burst_len = rng.pick(&[0, 1 << 24, u32::MAX])),
        38 => bad!(h.first_burst_len = rng.pick(&[0, 1 << 24, u32::MAX])),
        39 => {
            h.max_burst_len = rng.range(uapi::MIN_DATA_SEGMENT_LEN, 1 << 20);
            h.first_burst_len = h.max_burst_len + 1;
            "first_burst_len > max_burst_len"
        }
        40 => bad!(h.max_outstanding_r2t = 0, "max_outstanding_r2t 0"),
        41 => bad!(h.max_connections = 0, "max_connections 0"),
        42 => bad!(h.default_time2wait = rng.pick(&[3601, u16::MAX])),
        43 => bad!(h.default_time2retain = rng.pick(&[3601, u16::MAX])),
        44 => {
            bad!(h.queue_depth = rng.pick(&[0, uapi::MAX_QUEUE_DEPTH + 1, u32::MAX, 0x8000_0000]))
        }
        45 => {
            // MaxCmdSN more than one behind ExpCmdSN, or 2^31 ahead.
            h.max_cmd_sn =
                h.exp_cmd_sn
                    .wrapping_add(rng.pick(&[0xffff_fffe, 0x8000_0000, 0xc000_0000]));
            "command window"
        }
        46 => {
            let w = h.max_cmd_sn.wrapping_sub(h.exp_cmd_sn);
            if w == u32::MAX {
                // A closed window: anything but ExpCmdSN (= MaxCmdSN + 1).
                h.cmd_sn = h.exp_cmd_sn.wrapping_add(1);
            } else {
                h.cmd_sn = rng.pick(&[h.exp_cmd_sn.wrapping_sub(1), h.max_cmd_sn.wrapping_add(2)]);
            }
            "cmd_sn outside the window"
        }
        47 => {
            h.exp_stat_sn = h.stat_sn.wrapping_add(rng.pick(&[0, 2, 0x8000_0000]));
            "exp_stat_sn != stat_sn + 1"
        }
        48 => {
            h.itt_base = (h.itt_base & 0xffff_0000) | rng.range(1, 0xffff);
            "itt_base low bits"
        }
        49 => bad!(h.itt_base = 0xffff_0000, "itt_base reserved age"),
        50 => {
            // Bytes after the NUL are not looked at, but the NUL must be
            // inside: move it out of a full-length name.
            h.target_name = [b'x'; NAME_LEN];
            h.target_name[NAME_LEN - 1] = b'y';
            "target_name full length, no NUL"
        }
        51 => {
            h.portal[rng.below(PORTAL_LEN as u64 - 1) as usize] = 0;
            h.portal[0] = b' ';
            "portal leading space"
        }
        52 => {
            // One R2T per command more than the module's Data-Out queue holds.
            h.queue_depth = rng.range(1, uapi::MAX_QUEUE_DEPTH);
            let fit = uapi::MAX_R2T_JOBS / h.queue_depth;
            if fit >= 0xffff {
                h.queue_depth = 2;
                h.max_outstanding_r2t = 0xffff;
            } else {
                h.max_outstanding_r2t = fit as u16 + 1;
            }
            "queue_depth x max_outstanding_r2t above MAX_R2T_JOBS"
        }
        53 if leading => bad!(
            h.lane = rng.range(1, u32::from(u16::MAX)) as u16,
            "lane on a leading connection"
        ),
        53 => bad!(
            h.lane = rng.pick(&[0, MAX_CONNECTIONS, MAX_CONNECTIONS + 1, u16::MAX]),
            "lane outside 1..16"
        ),
        54 if leading => {
            h.max_connections = u16::MAX;
            h.connections = rng.range(u32::from(MAX_CONNECTIONS) + 1, u32::from(u16::MAX)) as u16;
            "connections above 16"
        }
        54 => bad!(
            h.connections = rng.range(1, u32::from(u16::MAX)) as u16,
            "connections on ADD_CONNECTION"
        ),
        55 if leading => {
            h.max_connections = rng.range(1, u32::from(MAX_CONNECTIONS) - 1) as u16;
            h.connections =
                rng.range(u32::from(h.max_connections) + 1, u32::from(MAX_CONNECTIONS)) as u16;
            "connections above MaxConnections"
        }
        56 if !leading => {
            h.recipe = rng.pick(&[0, recipe_addr]);
            h.recipe_len = if h.recipe == 0 { 1 } else { 0 };
            "recipe on ADD_CONNECTION"
        }
        _ => return None,
    })
}

/// Number of benign handoff mutations (see [`nudge_handoff`]).
pub const HANDOFF_NUDGES: usize = 12;

/// Applies benign mutation `n`: odd-looking but valid; validation must still
/// pass. `None` when `n` does not apply to ioctl `k`.
pub fn nudge_handoff(
    h: &mut Handoff,
    n: usize,
    rng: &mut Rng,
    k: HandoffKind,
) -> Option<&'static str> {
    let add = k == HandoffKind::Add;
    Some(match n {
        0 => {
            h.stat_sn = u32::MAX;
            h.exp_stat_sn = 0;
            "StatSN wraps"
        }
        1 => {
            h.exp_cmd_sn = u32::MAX;
            h.max_cmd_sn = 30;
            h.cmd_sn = u32::MAX;
            "command window wraps"
        }
        2 => {
            h.itt_base = 0;
            "itt age 0"
        }
        3 => {
            h.tpgt = u16::MAX;
            h.cid = u16::MAX;
            h.tsih = u16::MAX;
            "tpgt/cid/tsih max"
        }
        4 => {
            // Bytes after the NUL are ignored.
            let l = h.target_name.iter().position(|&b| b == 0).unwrap_or(0);
            for b in h.target_name.iter_mut().skip(l + 1) {
                *b = rng.range(0, 255) as u8;
            }
            "junk after target_name's NUL"
        }
        5 if add => {
            h.noop_out_interval = 0;
            h.noop_out_timeout = 0;
            "pings off"
        }
        6 if add => {
            h.replacement_timeout = uapi::MAX_REPLACEMENT_TIMEOUT;
            "replacement_timeout max"
        }
        7 if !add => {
            h.host_no = rng.next_u32();
            h.generation = rng.next_u32();
            "any host/generation on HANDOFF"
        }
        8 if !add => {
            h.replacement_timeout = u32::MAX;
            h.noop_out_interval = u16::MAX;
            h.noop_out_timeout = 0;
            "HANDOFF / ADD_CONNECTION ignore the recovery knobs"
        }
        9 if k != HandoffKind::AddConnection => {
            h.max_connections = MAX_CONNECTIONS;
            h.connections = MAX_CONNECTIONS;
            "16 connections"
        }
        10 if k != HandoffKind::AddConnection => {
            h.max_connections = 1;
            h.connections = 1;
            "connections 1 with MaxConnections 1"
        }
        11 if k == HandoffKind::AddConnection => {
            h.lane = rng.pick(&[1, MAX_CONNECTIONS - 1]);
            h.cid = rng.next_u32() as u16;
            "lane at the edges, any CID"
        }
        _ => return None,
    })
}

/// Breaks a REMOVE_SESSION argument (one of 4 ways).
pub fn break_remove(r: &mut RemoveSession, rng: &mut Rng) -> &'static str {
    match rng.below(4) {
        0 => break_version(r, rng, &BAD_VERSIONS),
        1 => break_size(r, rng, &[0, RemoveSession::SIZE as u32 + 4, u32::MAX]),
        2 => bad!(r.flags = rng.pick(&[2, 3, 0x8000_0001, u32::MAX])),
        _ => break_spare(r, rng),
    }
}

/// Breaks a LIST argument (one of 5 ways).
pub fn break_list(l: &mut List, rng: &mut Rng) -> &'static str {
    let entry = uapi::SessionInfo::SIZE as u32;
    match rng.below(5) {
        0 => break_version(l, rng, &BAD_VERSIONS),
        1 => break_size(l, rng, &[0, List::SIZE as u32 - 8, u32::MAX]),
        2 => bad!(l.entry_size = rng.pick(&[0, 1, entry - 1, entry + 1, u32::MAX])),
        3 => break_spare(l, rng),
        _ => {
            l.capacity = rng.pick(&[1, 2, u32::MAX]);
            l.entries = 0;
            "capacity without entries"
        }
    }
}

/// Breaks a LIST_CONNECTIONS argument (one of 5 ways).
pub fn break_conn_list(l: &mut ConnList, rng: &mut Rng) -> &'static str {
    let entry = uapi::ConnInfo::SIZE as u32;
    match rng.below(5) {
        0 => break_version(l, rng, &BAD_VERSIONS),
        1 => break_size(l, rng, &[0, ConnList::SIZE as u32 - 8, u32::MAX]),
        2 => bad!(l.entry_size = rng.pick(&[0, 1, entry - 1, entry + 1, 640, u32::MAX])),
        3 => break_spare(l, rng),
        _ => {
            l.capacity = rng.pick(&[1, 2, u32::MAX]);
            l.entries = 0;
            "capacity without entries"
        }
    }
}

/// Breaks a WAIT_EVENT argument (one of 5 ways).
pub fn break_event(e: &mut Event, rng: &mut Rng) -> &'static str {
    match rng.below(5) {
        0 => break_version(e, rng, &BAD_VERSIONS),
        1 => break_size(e, rng, &[0, Event::SIZE as u32 + 1, u32::MAX]),
        2 => bad!(e.flags = rng.pick(&[2, 3, 0x8000_0000, u32::MAX])),
        3 => break_spare(e, rng),
        _ => {
            e.recipe = 0;
            e.recipe_capacity = rng.pick(&[1, uapi::RECIPE_MAX, u32::MAX]);
            "recipe_capacity without recipe"
        }
    }
}

/// Output fields of a WAIT_EVENT argument set to junk on the way in: the
/// kernel overwrites them, so the request stays valid.
pub fn junk_event_outputs(e: &mut Event, rng: &mut Rng) {
    e.kind = rng.next_u32();
    e.host_no = rng.next_u32();
    e.generation = rng.next_u32();
    e.reason = rng.next_u32();
    e.attempt = rng.next_u32();
    e.delay_ms = rng.next_u32();
    e.tsih = rng.next_u32() as u16;
    e.recipe_len = rng.next_u32();
    e.connections = rng.next_u32() as u16;
    e.lane = rng.next_u32() as u16;
    rng.fill(&mut e.target_name);
}

/// Breaks a FAIL_RELOGIN argument (one of 4 ways).
pub fn break_fail(f: &mut ReloginFailed, rng: &mut Rng) -> &'static str {
    match rng.below(4) {
        0 => break_version(f, rng, &BAD_VERSIONS),
        1 => break_size(f, rng, &[0, ReloginFailed::SIZE as u32 - 4, u32::MAX]),
        2 => break_spare(f, rng),
        _ => bad!(f.retry_ms = rng.pick(&[uapi::MAX_RETRY_MS + 1, u32::MAX])),
    }
}

/// Random bytes for a struct of `size`; half the time with a correct
/// `version`/`size` header so the junk reaches the deeper checks.
pub fn random_struct(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    match rng.below(4) {
        0 => {}
        1 => b.iter_mut().for_each(|x| *x = 0xff),
        _ => rng.fill(&mut b),
    }
    if size >= 8 && rng.chance(1, 2) {
        b[..4].copy_from_slice(&uapi::VERSION.to_ne_bytes());
        b[4..8].copy_from_slice(&(size as u32).to_ne_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [HandoffKind; 3] = [
        HandoffKind::Add,
        HandoffKind::Handoff,
        HandoffKind::AddConnection,
    ];

    #[test]
    fn valid_handoffs_validate() {
        let mut rng = Rng::new(1);
        let mut many = 0;
        for i in 0..30_000 {
            let k = KINDS[i % 3];
            let h = valid_handoff_kind(&mut rng, k, 3);
            match h.validate(k) {
                Err(e) => panic!("iteration {i}: {e} in {h:?}"),
                Ok(c) if c.connections > 1 => many += 1,
                Ok(_) => {}
            }
            let mut t = h;
            tame(&mut t, 0);
            assert!(t.validate(k).is_ok());
        }
        // Multi-connection sessions are generated, not just allowed.
        assert!(many > 1000, "{many}");
        let add = valid_handoff(&mut rng, true, 3);
        assert_eq!(add.lane, 0);
        assert!(valid_handoff(&mut rng, false, 3)
            .validate(HandoffKind::Handoff)
            .is_ok());
    }

    #[test]
    fn every_break_is_refused_and_every_nudge_accepted() {
        let mut rng = Rng::new(2);
        let mut applied = vec![0u32; HANDOFF_BREAKS + 2];
        let mut nudged = vec![0u32; HANDOFF_NUDGES + 2];
        for round in 0..400 {
            for k in KINDS {
                for n in 0..HANDOFF_BREAKS + 2 {
                    let mut h = valid_handoff_kind(&mut rng, k, 5);
                    if let Some(what) = break_handoff(&mut h, n, &mut rng, k, 0x1000) {
                        assert!(
                            h.validate(k).is_err(),
                            "round {round} break {n} ({what}) {k:?} accepted: {h:?}"
                        );
                        if let Some(a) = applied.get_mut(n) {
                            *a += 1;
                        }
                    }
                }
                for n in 0..HANDOFF_NUDGES + 2 {
                    let mut h = valid_handoff_kind(&mut rng, k, 5);
                    if let Some(what) = nudge_handoff(&mut h, n, &mut rng, k) {
                        assert!(
                            h.validate(k).is_ok(),
                            "nudge {n} ({what}) {k:?}: {:?}",
                            h.validate(k)
                        );
                        if let Some(a) = nudged.get_mut(n) {
                            *a += 1;
                        }
                    }
                }
            }
        }
        assert!(
            nudged[..HANDOFF_NUDGES].iter().all(|&a| a > 0),
            "{nudged:?}"
        );
        assert!(
            nudged[HANDOFF_NUDGES..].iter().all(|&a| a == 0),
            "{nudged:?}"
        );
        // Every mutation applies to at least one of the ioctls; none past the end.
        assert!(
            applied[..HANDOFF_BREAKS].iter().all(|&a| a > 0),
            "{applied:?}"
        );
        assert!(
            applied[HANDOFF_BREAKS..].iter().all(|&a| a == 0),
            "{applied:?}"
        );
    }

    #[test]
    fn other_breaks_are_refused() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let mut r = RemoveSession::new(rng.next_u32(), rng.chance(1, 2));
            assert!(r.validate().is_ok());
            let w = break_remove(&mut r, &mut rng);
            assert!(r.validate().is_err(), "{w}");

            let mut l = List::new(rng.range(0, 4), 0x10000);
            assert!(l.validate().is_ok());
            let w = break_list(&mut l, &mut rng);
            assert!(l.validate().is_err(), "{w}");

            let mut c = ConnList::new(rng.next_u32(), rng.range(0, 4), 0x10000);
            assert!(c.validate().is_ok());
            let w = break_conn_list(&mut c, &mut rng);
            assert!(c.validate().is_err(), "{w}");

            let mut e = Event::request(rng.below(2) as u32, 0x10000, rng.range(0, 4096));
            junk_event_outputs(&mut e, &mut rng);
            assert!(e.validate_request().is_ok());
            let w = break_event(&mut e, &mut rng);
            assert!(e.validate_request().is_err(), "{w}");

            let mut f = ReloginFailed::new(
                rng.next_u32(),
                rng.next_u32(),
                rng.next_u32(),
                rng.range(0, uapi::MAX_RETRY_MS),
            );
            assert!(f.validate().is_ok());
            let w = break_fail(&mut f, &mut rng);
            assert!(f.validate().is_err(), "{w}");
        }
    }

    #[test]
    fn unknown_numbers_are_unknown_and_spare_the_vfs() {
        let mut rng = Rng::new(4);
        for _ in 0..50_000 {
            let c = unknown_cmd(&mut rng);
            assert!(!KNOWN.iter().any(|(k, _)| *k == c));
            assert!(!VFS_TYPES.contains(&(((c >> 8) & 0xff) as u8)), "{c:#x}");
        }
        let w = wrong_encodings();
        assert!(w.len() >= 8 * 9);
        for (c, what) in w {
            assert!(
                !KNOWN.iter().any(|(k, _)| *k == c),
                "{what} is a known number"
            );
        }
    }

    #[test]
    fn ioc_matches_the_uapi_encoding() {
        assert_eq!(
            ioc(3, uapi::IOC_MAGIC, 1, Handoff::SIZE as u32),
            uapi::ADD_SESSION
        );
        assert_eq!(
            ioc(1, uapi::IOC_MAGIC, 6, ReloginFailed::SIZE as u32),
            uapi::FAIL_RELOGIN
        );
        assert_eq!(
            ioc(3, uapi::IOC_MAGIC, 7, Handoff::SIZE as u32),
            uapi::ADD_CONNECTION
        );
        assert_eq!(
            ioc(3, uapi::IOC_MAGIC, 8, ConnList::SIZE as u32),
            uapi::LIST_CONNECTIONS
        );
    }

    #[test]
    fn random_structs_have_the_size_asked() {
        let mut rng = Rng::new(5);
        for size in [8, 32, 672] {
            for _ in 0..50 {
                assert_eq!(random_struct(&mut rng, size).len(), size);
            }
        }
    }
}
