//! What the session sends besides the command PDU itself: how much of a
//! write goes as immediate and unsolicited data (RFC 7143 §4.2.5), how a
//! burst is cut into Data-Out PDUs (DataSN, F bit, the target's
//! MaxRecvDataSegmentLength), and the FIFO of transmit jobs that R2Ts, pings
//! and NOP-In answers queue. The job ring's storage is the caller's, sized
//! from MaxOutstandingR2T and the queue depth (`uapi::r2t_job_capacity`).

use core::ops::DerefMut;

use super::super::negotiate::SessionParams;
use super::task::Dir;

/// How a new command's data starts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandPlan {
    /// Bytes sent in the SCSI Command PDU's own data segment.
    pub immediate: u32,
    /// Where the unsolicited data ends: bytes `immediate..unsolicited_end`
    /// follow as Data-Out PDUs with the reserved TTT.
    pub unsolicited_end: u32,
}

impl CommandPlan {
    /// The plan for a command moving `len` bytes in `dir`, with the
    /// negotiated `p`; no data segment exceeds `max_segment` (our bounce).
    pub fn new(p: &SessionParams, dir: Dir, len: u32, max_segment: u32) -> Self {
        if dir != Dir::Write {
            return CommandPlan {
                immediate: 0,
                unsolicited_end: 0,
            };
        }
        let first = len.min(p.first_burst_len);
        let immediate = if p.immediate_data {
            first.min(p.max_xmit_data_segment_len).min(max_segment)
        } else {
            0
        };
        let unsolicited_end = if p.initial_r2t { immediate } else { first };
        CommandPlan {
            immediate,
            unsolicited_end,
        }
    }

    /// The command PDU's F bit: set unless unsolicited Data-Outs follow.
    pub fn final_bit(&self) -> bool {
        self.unsolicited_end == self.immediate
    }

    /// The unsolicited Data-Out burst after the command PDU, if any.
    pub fn unsolicited(&self) -> Option<(u32, u32)> {
        (self.unsolicited_end > self.immediate)
            .then(|| (self.immediate, self.unsolicited_end - self.immediate))
    }
}

/// One Data-Out PDU of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOutPiece {
    /// BufferOffset.
    pub offset: u32,
    /// Data segment length.
    pub len: u32,
    /// DataSN (from 0 in each burst).
    pub data_sn: u32,
    /// F bit: the burst's last PDU.
    pub last: bool,
}

/// Cuts the burst of `len` bytes at `offset` into Data-Out PDUs.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    offset: u32,
    len: u32,
    done: u32,
    data_sn: u32,
}

impl Burst {
    /// A burst of `len` bytes from `offset`.
    pub const fn new(offset: u32, len: u32) -> Self {
        Burst {
            offset,
            len,
            done: 0,
            data_sn: 0,
        }
    }

    /// The next PDU, of at most `max_segment` bytes (at least 1); `None` once
    /// the burst is sent.
    pub fn next_piece(&mut self, max_segment: u32) -> Option<DataOutPiece> {
        if self.done >= self.len {
            return None;
        }
        let n = (self.len - self.done).min(max_segment.max(1));
        let piece = DataOutPiece {
            offset: self.offset.saturating_add(self.done),
            len: n,
            data_sn: self.data_sn,
            last: self.done + n == self.len,
        };
        self.done += n;
        self.data_sn = self.data_sn.wrapping_add(1);
        Some(piece)
    }
}

/// Something the transmit side must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxJob {
    /// A SCSI Command PDU accepted by `Engine::submit` (its CmdSN taken),
    /// with its immediate and unsolicited data. If the task was taken back
    /// before this went out, its CmdSN still must reach the target, which
    /// holds every later command until it does: a non-immediate NOP-Out with
    /// the task's ITT and CmdSN goes instead, and its answer is dropped like
    /// any late PDU of a taken-back task.
    Command {
        /// The task's tag.
        tag: u16,
        /// The task's seq.
        seq: u64,
        /// The task's ITT.
        itt: u32,
        /// The task's CmdSN.
        cmd_sn: u32,
    },
    /// A solicited Data-Out burst answering an R2T.
    DataOut {
        /// The task's tag.
        tag: u16,
        /// The task's seq (the burst is dropped if the tag was reused).
        seq: u64,
        /// The R2T's Target Transfer Tag.
        ttt: u32,
        /// BufferOffset.
        offset: u32,
        /// Desired Data Transfer Length.
        len: u32,
    },
    /// The answer to a NOP-In ping.
    NopOut {
        /// The NOP-In's TTT.
        ttt: u32,
        /// The NOP-In's LUN.
        lun: u64,
    },
    /// A NOP-Out ping of ours: immediate, carrying the next CmdSN unconsumed
    /// (`None`), or, on a session of several connections, non-immediate with
    /// the CmdSN [`Engine::start_ping`](super::engine::Engine::start_ping)
    /// took for it.
    Ping {
        /// The CmdSN of an ordered (non-immediate) ping.
        ordered_cmd_sn: Option<u32>,
    },
    /// A Logout Request closing the connection (the target asked for it).
    Logout,
}

/// FIFO of transmit jobs over caller storage: bursts of one task must go out
/// in R2T order (DataSequenceInOrder).
#[derive(Debug)]
pub struct JobRing<S> {
    slots: S,
    head: usize,
    len: usize,
}

impl<S: DerefMut<Target = [Option<TxJob>]>> JobRing<S> {
    /// An empty ring over `slots`.
    pub fn new(slots: S) -> Self {
        JobRing {
            slots,
            head: 0,
            len: 0,
        }
    }

    /// How many jobs it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Jobs queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `job`; false if full.
    pub fn push(&mut self, job: TxJob) -> bool {
        let cap = self.slots.len();
        if self.len == cap {
            return false;
        }
        match self.slots.get_mut((self.head + self.len) % cap) {
            Some(s) => {
                *s = Some(job);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The oldest job.
    pub fn pop(&mut self) -> Option<TxJob> {
        if self.len == 0 {
            return None;
        }
        let cap = self.slots.len();
        let job = self.slots.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % cap;
        self.len -= 1;
        job
    }

    /// Drops every job.
    pub fn clear(&mut self) {
        while self.pop().is_some() {}
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;

    fn params(immediate: bool, initial_r2t: bool, first: u32, mxdsl: u32) -> SessionParams {
        SessionParams {
            immediate_data: immediate,
            initial_r2t,
            first_burst_len: first,
            max_xmit_data_segment_len: mxdsl,
            ..SessionParams::default()
        }
    }

    #[test]
    fn reads_send_no_data() {
        let p = params(true, false, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Read, 1 << 20, 1 << 18);
        assert_eq!((c.immediate, c.unsolicited_end), (0, 0));
        assert!(c.final_bit());
        assert!(c.unsolicited().is_none());
        let c = CommandPlan::new(&p, Dir::None, 0, 1 << 18);
        assert!(c.final_bit());
    }

    #[test]
    fn immediate_only_with_initial_r2t() {
        let p = params(true, true, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 1 << 20, 1 << 18);
        assert_eq!((c.immediate, c.unsolicited_end), (8192, 8192));
        assert!(c.final_bit());
    }

    #[test]
    fn unsolicited_up_to_first_burst() {
        let p = params(true, false, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 1 << 20, 1 << 18);
        assert_eq!(c.immediate, 8192);
        assert_eq!(c.unsolicited(), Some((8192, 65536 - 8192)));
        assert!(!c.final_bit());
    }

    #[test]
    fn no_immediate_data_all_as_data_out() {
        let p = params(false, false, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 4096, 1 << 18);
        assert_eq!(c.immediate, 0);
        assert_eq!(c.unsolicited(), Some((0, 4096)));
    }

    #[test]
    fn nothing_unsolicited_at_all() {
        let p = params(false, true, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 4096, 1 << 18);
        assert_eq!((c.immediate, c.unsolicited_end), (0, 0));
        assert!(c.final_bit());
    }

    #[test]
    fn short_write_fits_in_the_command() {
        let p = params(true, false, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 512, 1 << 18);
        assert_eq!((c.immediate, c.unsolicited_end), (512, 512));
        assert!(c.final_bit());
    }

    #[test]
    fn bounce_caps_immediate() {
        let p = params(true, true, 1 << 24, 1 << 24);
        let c = CommandPlan::new(&p, Dir::Write, 1 << 20, 4096);
        assert_eq!(c.immediate, 4096);
    }

    #[test]
    fn zero_length_write() {
        let p = params(true, false, 65536, 8192);
        let c = CommandPlan::new(&p, Dir::Write, 0, 1 << 18);
        assert_eq!((c.immediate, c.unsolicited_end), (0, 0));
        assert!(c.final_bit());
    }

    fn pieces(offset: u32, len: u32, max: u32) -> Vec<DataOutPiece> {
        let mut b = Burst::new(offset, len);
        let mut v = Vec::new();
        while let Some(p) = b.next_piece(max) {
            v.push(p);
        }
        v
    }

    #[test]
    fn burst_cut_at_segment_size() {
        let v = pieces(4096, 20000, 8192);
        assert_eq!(v.len(), 3);
        assert_eq!(
            v.iter().map(|p| (p.offset, p.len)).collect::<Vec<_>>(),
            vec![(4096, 8192), (12288, 8192), (20480, 3616)]
        );
        assert_eq!(v.iter().map(|p| p.data_sn).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(v.iter().filter(|p| p.last).count(), 1);
        assert!(v[2].last);
    }

    #[test]
    fn burst_of_exact_multiple_ends_with_final() {
        let v = pieces(0, 16384, 8192);
        assert_eq!(v.len(), 2);
        assert!(!v[0].last && v[1].last);
    }

    #[test]
    fn empty_burst_sends_nothing() {
        assert!(pieces(0, 0, 8192).is_empty());
    }

    #[test]
    fn zero_segment_size_still_progresses() {
        let v = pieces(0, 3, 0);
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|p| p.len == 1));
    }

    #[test]
    fn burst_covers_every_byte_once() {
        for (len, max) in [
            (1u32, 1u32),
            (511, 512),
            (512, 512),
            (513, 512),
            (1 << 20, 262_144),
        ] {
            let v = pieces(100, len, max);
            let mut at = 100;
            for p in &v {
                assert_eq!(p.offset, at);
                assert!(p.len <= max && p.len > 0);
                at += p.len;
            }
            assert_eq!(at, 100 + len);
        }
    }

    fn ring(cap: usize) -> JobRing<Vec<Option<TxJob>>> {
        JobRing::new(vec![None; cap])
    }

    #[test]
    fn ring_is_fifo() {
        let mut r = ring(3);
        assert!(r.push(TxJob::Ping {
            ordered_cmd_sn: None
        }));
        assert!(r.push(TxJob::Logout));
        assert_eq!(
            r.pop(),
            Some(TxJob::Ping {
                ordered_cmd_sn: None
            })
        );
        assert!(r.push(TxJob::NopOut { ttt: 1, lun: 0 }));
        assert!(r.push(TxJob::Ping {
            ordered_cmd_sn: None
        }));
        assert_eq!(r.len(), 3);
        assert_eq!(r.pop(), Some(TxJob::Logout));
        assert_eq!(r.pop(), Some(TxJob::NopOut { ttt: 1, lun: 0 }));
        assert_eq!(
            r.pop(),
            Some(TxJob::Ping {
                ordered_cmd_sn: None
            })
        );
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn ring_refuses_when_full() {
        let mut r = ring(2);
        assert!(r.push(TxJob::Ping {
            ordered_cmd_sn: None
        }));
        assert!(r.push(TxJob::Ping {
            ordered_cmd_sn: None
        }));
        assert!(!r.push(TxJob::Logout));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn zero_capacity_ring_holds_nothing() {
        let mut r = ring(0);
        assert!(!r.push(TxJob::Ping {
            ordered_cmd_sn: None
        }));
        assert!(r.pop().is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn clear_empties_and_ring_is_reusable() {
        let mut r = ring(2);
        r.push(TxJob::Ping {
            ordered_cmd_sn: None,
        });
        r.push(TxJob::Logout);
        r.clear();
        assert!(r.is_empty());
        assert!(r.push(TxJob::Logout));
        assert_eq!(r.pop(), Some(TxJob::Logout));
    }

    #[test]
    fn ring_wraps_many_times() {
        let mut r = ring(3);
        for i in 0..100u32 {
            assert!(r.push(TxJob::NopOut { ttt: i, lun: 0 }));
            assert_eq!(r.pop(), Some(TxJob::NopOut { ttt: i, lun: 0 }));
        }
    }
}
