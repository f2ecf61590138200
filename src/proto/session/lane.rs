//! One connection of a session (a lane, RFC 7143 §4.3 MC/S): what the rules
//! keep per connection rather than per session. StatSN counts per
//! connection; the connection-only keys (digests, MaxRecvDataSegmentLength)
//! are negotiated per login; every PDU of a task travels on the connection
//! its command went out on (allegiance), so each lane has its own transmit
//! queues; keepalive pings are per connection. CmdSN, the command window, the
//! task table and the ITT age stay session-wide in [`super::engine::Engine`].

use core::ops::DerefMut;

use super::super::negotiate::SessionParams;
use super::super::serial::Sn;
use super::itt::PING_LOW;
use super::seq::StatSeq;
use super::tx::{JobRing, TxJob};

/// Connections a session runs at most (the lanes are blk-mq hardware queues;
/// `uapi::MAX_CONNECTIONS` is the same bound).
pub const MAX_LANES: usize = 16;

/// Low half of a ping's ITT on lanes other than 0: bit 11 set and bits 12..15
/// clear, which no task (generation << 12 | tag below 0x800) and no TMF
/// (0xf800 and up) has.
const PING_LANE_BASE: u16 = 0x0800;

/// Low half of the ITT of lane `lane`'s NOP-Out ping. Lane 0 keeps the
/// single-connection value, so one connection is unchanged on the wire.
pub const fn ping_low(lane: usize) -> u16 {
    if lane == 0 {
        PING_LOW
    } else {
        PING_LANE_BASE | (lane as u16 & 0xff)
    }
}

/// Lane `k`'s bit in a lane mask (`timers::Due::pings`, the driver's push
/// requests); none beyond the [`MAX_LANES`] a session has.
pub const fn lane_bit(k: usize) -> u16 {
    if k < MAX_LANES {
        1 << k
    } else {
        0
    }
}

/// What a logged-in connection brings to its lane: from its final Login
/// Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneStart {
    /// Its CID.
    pub cid: u16,
    /// StatSN of its final Login Response, plus one.
    pub exp_stat_sn: Sn,
    /// The parameters its login negotiated: the session-wide keys equal the
    /// leading connection's, the connection-only keys are its own.
    pub params: SessionParams,
}

/// The transmit queue storage of one lane.
pub struct LaneParts<J> {
    /// Commands accepted and not sent yet: one per tag.
    pub cmds: J,
    /// Pings, NOP-In answers and Logouts.
    pub ctl_jobs: J,
    /// Data-Out bursts answering R2Ts.
    pub jobs: J,
}

/// One connection's state, over job storage `J`.
pub struct Lane<J> {
    /// A logged-in connection runs on it.
    pub up: bool,
    /// Its CID (meaningful while up).
    pub cid: u16,
    /// Its ExpStatSN.
    pub stat: StatSeq,
    /// What its login negotiated.
    pub params: SessionParams,
    /// Commands accepted for this connection and not sent yet, in CmdSN
    /// order: whoever holds its transmit side sends them (after the control
    /// jobs, before the bursts).
    pub cmds: JobRing<J>,
    /// NOP-Outs and Logouts: sent before queued bursts, so a ping measures
    /// the target, not the depth of our own send queue.
    pub ctl_jobs: JobRing<J>,
    /// Data-Out bursts answering this connection's R2Ts, in order.
    pub jobs: JobRing<J>,
    /// When its outstanding NOP-Out ping was sent.
    pub ping_sent_ms: Option<i64>,
    /// When a PDU was last received on it.
    pub last_rx_ms: i64,
}

impl<J: DerefMut<Target = [Option<TxJob>]>> Lane<J> {
    /// A lane with no connection yet, over `parts`.
    pub fn new(parts: LaneParts<J>) -> Self {
        Lane {
            up: false,
            cid: 0,
            stat: StatSeq::new(Sn(0)),
            params: SessionParams::default(),
            cmds: JobRing::new(parts.cmds),
            ctl_jobs: JobRing::new(parts.ctl_jobs),
            jobs: JobRing::new(parts.jobs),
            ping_sent_ms: None,
            last_rx_ms: 0,
        }
    }

    /// The connection `start` comes up on the lane at `now_ms`; `jobs`
    /// replaces the R2T job storage if given (MaxOutstandingR2T changed).
    pub fn come_up(&mut self, start: &LaneStart, jobs: Option<J>, now_ms: i64) {
        if let Some(jobs) = jobs {
            self.jobs = JobRing::new(jobs);
        }
        self.drop_queued();
        self.up = true;
        self.cid = start.cid;
        self.stat = StatSeq::new(start.exp_stat_sn);
        self.params = start.params;
        self.ping_sent_ms = None;
        self.last_rx_ms = now_ms;
    }

    /// The connection is gone: nothing queued for it goes out on another.
    pub fn go_down(&mut self) {
        self.up = false;
        self.ping_sent_ms = None;
        self.drop_queued();
    }

    /// Drops every queued job.
    pub fn drop_queued(&mut self) {
        self.cmds.clear();
        self.ctl_jobs.clear();
        self.jobs.clear();
    }

    /// The next thing to send on this connection: control jobs first (a ping
    /// measures the target, not our queue), then commands, then Data-Out.
    pub fn next_job(&mut self) -> Option<TxJob> {
        self.ctl_jobs
            .pop()
            .or_else(|| self.cmds.pop())
            .or_else(|| self.jobs.pop())
    }

    /// Whether anything waits to be sent on this connection.
    pub fn has_jobs(&self) -> bool {
        !(self.ctl_jobs.is_empty() && self.cmds.is_empty() && self.jobs.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::itt::{Itt, LOGOUT_LOW};
    use super::*;

    #[test]
    fn ping_itts_never_meet_a_task_a_tmf_or_each_other() {
        let mut seen = [0u16; MAX_LANES];
        for (lane, s) in seen.iter_mut().enumerate() {
            let low = ping_low(lane);
            *s = low;
            assert_ne!(low, LOGOUT_LOW);
            if lane > 0 {
                // Tasks: tag below 0x800 (bit 11 clear); TMFs: 0xf800 up.
                assert_ne!(low & 0x0800, 0);
                assert_eq!(low & 0xf000, 0);
            }
            let itt = Itt::internal(7, low);
            assert!(!itt.is_reserved());
        }
        for (i, a) in seen.iter().enumerate() {
            assert!(
                seen[i + 1..].iter().all(|b| b != a),
                "lane {i} shares its ping ITT"
            );
        }
        assert_eq!(ping_low(0), PING_LOW);
    }
}
