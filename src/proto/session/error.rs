//! `SessionError`: each way a target can break the full feature phase, one
//! variant per rule, with the text the kernel logs when it fails the
//! connection (and that iscsictl and ktests/faultd match on).

use core::fmt;

use super::super::pdu::PduError;

/// A protocol violation by the target: the connection fails with this text
/// and ERL 0 recovery takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// A header that does not parse.
    Malformed(PduError),
    /// A PDU for an ITT that is neither in flight nor recently taken back.
    UnknownItt {
        /// The PDU kind.
        what: &'static str,
        /// Its ITT.
        itt: u32,
    },
    /// A PDU for a task on another connection than the one its command
    /// went out on (connection allegiance, RFC 7143 §5.1).
    WrongConnection {
        /// The PDU kind.
        what: &'static str,
        /// Its ITT.
        itt: u32,
        /// The lane it came on.
        lane: usize,
        /// The task's lane.
        task_lane: u8,
    },
    /// A PDU said to come on a lane the session does not have (a caller
    /// bug: the connection fails rather than the kernel).
    NoSuchLane {
        /// The lane.
        lane: usize,
    },
    /// Data-In for a command that reads nothing.
    DataInNotRead {
        /// ITT of the command.
        itt: u32,
    },
    /// Data-In out of order (DataPDUInOrder=Yes is all we negotiate).
    DataInOffset {
        /// ITT of the command.
        itt: u32,
        /// BufferOffset received.
        offset: u32,
        /// The offset the next Data-In must have.
        expected: u32,
    },
    /// A DataSN that is not the next one.
    DataInSn {
        /// ITT of the command.
        itt: u32,
        /// DataSN received.
        data_sn: u32,
        /// DataSN expected.
        expected: u32,
    },
    /// Data-In reaching past the command's buffer.
    DataInBeyond {
        /// ITT of the command.
        itt: u32,
        /// Where the segment ends.
        end: u64,
        /// The buffer's length (ExpectedDataTransferLength).
        len: u32,
    },
    /// R2T for a command that writes nothing.
    R2tNotWrite {
        /// ITT of the command.
        itt: u32,
    },
    /// R2T asking for nothing, or for bytes outside the command's buffer.
    R2tRange {
        /// ITT of the command.
        itt: u32,
        /// BufferOffset asked for.
        offset: u32,
        /// Desired Data Transfer Length.
        len: u32,
        /// The command's length.
        total: u32,
    },
    /// An R2TSN that is not the next one.
    R2tSn {
        /// ITT of the command.
        itt: u32,
        /// R2TSN received.
        got: u32,
        /// R2TSN expected.
        expected: u32,
    },
    /// More R2Ts outstanding for one command than MaxOutstandingR2T.
    R2tTooMany {
        /// ITT of the command.
        itt: u32,
        /// The negotiated MaxOutstandingR2T.
        max: u16,
    },
    /// An R2T longer than MaxBurstLength.
    R2tBurst {
        /// Desired Data Transfer Length.
        len: u32,
        /// The negotiated MaxBurstLength.
        max: u32,
    },
    /// A PDU the target must not send now (or at all, to an initiator).
    Unexpected(&'static str),
    /// More R2Ts and NOP-Ins than the transmit queue holds: the target asks
    /// for more than it negotiated.
    TxQueueFull,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SessionError::Malformed(e) => write!(f, "malformed PDU: {e}"),
            SessionError::UnknownItt { what, itt } => write!(f, "{what} for unknown ITT {itt:#x}"),
            SessionError::WrongConnection {
                what,
                itt,
                lane,
                task_lane,
            } => write!(
                f,
                "{what} for ITT {itt:#x} on connection {lane}, its task's is {task_lane}"
            ),
            SessionError::NoSuchLane { lane } => write!(f, "PDU on unknown connection {lane}"),
            SessionError::DataInNotRead { itt } => write!(f, "Data-In for non-read ITT {itt:#x}"),
            SessionError::DataInOffset {
                itt,
                offset,
                expected,
            } => write!(
                f,
                "Data-In ITT {itt:#x} at offset {offset}, expected {expected} (in order)"
            ),
            SessionError::DataInSn {
                itt,
                data_sn,
                expected,
            } => write!(
                f,
                "Data-In ITT {itt:#x} DataSN {data_sn}, expected {expected}"
            ),
            SessionError::DataInBeyond { itt, end, len } => write!(
                f,
                "Data-In ITT {itt:#x} ends at {end}, beyond the {len}-byte buffer"
            ),
            SessionError::R2tNotWrite { itt } => write!(f, "R2T for non-write ITT {itt:#x}"),
            SessionError::R2tRange {
                itt,
                offset,
                len,
                total,
            } => write!(
                f,
                "R2T ITT {itt:#x} asks for {len} bytes at {offset} of {total}"
            ),
            SessionError::R2tSn { itt, got, expected } => {
                write!(f, "R2T ITT {itt:#x} R2TSN {got}, expected {expected}")
            }
            SessionError::R2tTooMany { itt, max } => {
                write!(f, "R2T ITT {itt:#x} exceeds MaxOutstandingR2T {max}")
            }
            SessionError::R2tBurst { len, max } => {
                write!(f, "R2T of {len} bytes exceeds MaxBurstLength {max}")
            }
            SessionError::Unexpected(what) => write!(f, "unexpected {what}"),
            SessionError::TxQueueFull => f.write_str("more R2Ts/NOP-Ins than the TX queue holds"),
        }
    }
}
