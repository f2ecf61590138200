//! Task Management Function Request (RFC 7143 §11.5) and Response (§11.6), with
//! the function and response codes.

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, start, view, PduError};

/// Byte 1 of a TMF request: the function code (bit 7 is always 1).
const FUNCTION_MASK: u8 = 0x7f;

/// Task management function (RFC 7143 §11.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmfFunction {
    /// 1: ABORT TASK (the task named by ReferencedTaskTag).
    AbortTask,
    /// 2: ABORT TASK SET.
    AbortTaskSet,
    /// 3: CLEAR ACA.
    ClearAca,
    /// 4: CLEAR TASK SET.
    ClearTaskSet,
    /// 5: LOGICAL UNIT RESET.
    LogicalUnitReset,
    /// 6: TARGET WARM RESET.
    TargetWarmReset,
    /// 7: TARGET COLD RESET.
    TargetColdReset,
    /// 8: TASK REASSIGN (connection recovery, ErrorRecoveryLevel 2).
    TaskReassign,
    /// Any other 7-bit value, kept so a target can answer "not supported".
    Unknown(u8),
}

impl TmfFunction {
    /// Decodes the low seven bits of byte 1.
    pub const fn from_u8(v: u8) -> TmfFunction {
        match v & FUNCTION_MASK {
            1 => TmfFunction::AbortTask,
            2 => TmfFunction::AbortTaskSet,
            3 => TmfFunction::ClearAca,
            4 => TmfFunction::ClearTaskSet,
            5 => TmfFunction::LogicalUnitReset,
            6 => TmfFunction::TargetWarmReset,
            7 => TmfFunction::TargetColdReset,
            8 => TmfFunction::TaskReassign,
            other => TmfFunction::Unknown(other),
        }
    }

    /// The 7-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            TmfFunction::AbortTask => 1,
            TmfFunction::AbortTaskSet => 2,
            TmfFunction::ClearAca => 3,
            TmfFunction::ClearTaskSet => 4,
            TmfFunction::LogicalUnitReset => 5,
            TmfFunction::TargetWarmReset => 6,
            TmfFunction::TargetColdReset => 7,
            TmfFunction::TaskReassign => 8,
            TmfFunction::Unknown(v) => v & FUNCTION_MASK,
        }
    }
}

/// Task Management Function Request, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMgmtRequest {
    /// I bit: immediate delivery (usual for TMFs so they pass a closed window).
    pub immediate: bool,
    /// The function asked for.
    pub function: TmfFunction,
    /// LUN (ignored by the target for the target-wide functions).
    pub lun: u64,
    /// Initiator Task Tag of this TMF.
    pub itt: u32,
    /// ITT of the task to abort or reassign, else 0xffffffff.
    pub referenced_task_tag: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// RefCmdSN: CmdSN of the referenced task (ABORT TASK).
    pub ref_cmd_sn: u32,
    /// ExpDataSN (TASK REASSIGN), else 0.
    pub exp_data_sn: u32,
}

impl TaskMgmtRequest {
    /// Parses a TMF Request BHS.
    pub fn parse(header: &[u8]) -> Result<TaskMgmtRequest, PduError> {
        let b = view(header, Opcode::TaskMgmtRequest)?;
        Ok(TaskMgmtRequest {
            immediate: b.immediate(),
            function: TmfFunction::from_u8(b.flags()),
            lun: b.lun_raw(),
            itt: b.itt(),
            referenced_task_tag: b.be32(at::W20),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
            ref_cmd_sn: b.be32(at::W32),
            exp_data_sn: b.be32(at::W36),
        })
    }

    /// Writes all 48 bytes (bit 7 of byte 1 is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = FINAL_BIT | self.function.to_u8();
        let mut b = start(header, Opcode::TaskMgmtRequest, self.immediate, flags);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.referenced_task_tag);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
        b.set_be32(at::W32, self.ref_cmd_sn);
        b.set_be32(at::W36, self.exp_data_sn);
    }
}

/// Task management response code (RFC 7143 §11.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmfResponse {
    /// 0: function complete.
    Complete,
    /// 1: task does not exist.
    TaskDoesNotExist,
    /// 2: LUN does not exist.
    LunDoesNotExist,
    /// 3: task still allegiant.
    TaskStillAllegiant,
    /// 4: task allegiance reassignment not supported.
    ReassignNotSupported,
    /// 5: task management function not supported.
    NotSupported,
    /// 6: function authorization failed.
    AuthorizationFailed,
    /// 255: function rejected.
    Rejected,
    /// Any other value.
    Unknown(u8),
}

impl TmfResponse {
    /// Decodes byte 2 of a TMF Response.
    pub const fn from_u8(v: u8) -> TmfResponse {
        match v {
            0 => TmfResponse::Complete,
            1 => TmfResponse::TaskDoesNotExist,
            2 => TmfResponse::LunDoesNotExist,
            3 => TmfResponse::TaskStillAllegiant,
            4 => TmfResponse::ReassignNotSupported,
            5 => TmfResponse::NotSupported,
            6 => TmfResponse::AuthorizationFailed,
            255 => TmfResponse::Rejected,
            other => TmfResponse::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            TmfResponse::Complete => 0,
            TmfResponse::TaskDoesNotExist => 1,
            TmfResponse::LunDoesNotExist => 2,
            TmfResponse::TaskStillAllegiant => 3,
            TmfResponse::ReassignNotSupported => 4,
            TmfResponse::NotSupported => 5,
            TmfResponse::AuthorizationFailed => 6,
            TmfResponse::Rejected => 255,
            TmfResponse::Unknown(v) => v,
        }
    }
}

/// Task Management Function Response, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMgmtResponse {
    /// Outcome of the function.
    pub response: TmfResponse,
    /// Initiator Task Tag of the TMF request.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
}

impl TaskMgmtResponse {
    /// Parses a TMF Response BHS.
    pub fn parse(header: &[u8]) -> Result<TaskMgmtResponse, PduError> {
        let b = view(header, Opcode::TaskMgmtResponse)?;
        Ok(TaskMgmtResponse {
            response: TmfResponse::from_u8(b.byte(2)),
            itt: b.itt(),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::TaskMgmtResponse, false, FINAL_BIT);
        b.set_byte(2, self.response.to_u8());
        b.set_itt(self.itt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fixture, header};
    use super::*;

    #[test]
    fn captured_lun_reset() {
        // iscsi-test-cu's LUN reset against tgtd: immediate, LUN 1, no referenced task.
        let req = TaskMgmtRequest::parse(&fixture("tmf_req")).unwrap();
        assert!(req.immediate);
        assert_eq!(req.function, TmfFunction::LogicalUnitReset);
        assert_eq!(req.lun, 0x0001_0000_0000_0000);
        assert_eq!(req.itt, 0x653a_9812);
        assert_eq!(req.referenced_task_tag, 0xffff_ffff);
        assert_eq!(req.cmd_sn, 0x03ca_ac61);
        assert_eq!(req.exp_stat_sn, 3);
        assert_eq!((req.ref_cmd_sn, req.exp_data_sn), (0, 0));

        let resp = TaskMgmtResponse::parse(&fixture("tmf_resp")).unwrap();
        assert_eq!(resp.response, TmfResponse::Complete);
        assert_eq!(resp.itt, req.itt);
        assert_eq!(resp.stat_sn, req.exp_stat_sn);
        // Immediate: the window does not move past the TMF's CmdSN.
        assert_eq!(resp.exp_cmd_sn, req.cmd_sn);

        let mut out = [0u8; BHS_LEN];
        req.emit(&mut out);
        assert_eq!(out, header(&fixture("tmf_req")));
        resp.emit(&mut out);
        assert_eq!(out, header(&fixture("tmf_resp")));
    }

    #[test]
    fn function_codes_round_trip() {
        for v in 0u8..128 {
            let f = TmfFunction::from_u8(v);
            assert_eq!(f.to_u8(), v);
            assert_eq!(matches!(f, TmfFunction::Unknown(_)), !(1..=8).contains(&v));
        }
        assert_eq!(TmfFunction::from_u8(0x81), TmfFunction::AbortTask);
    }

    #[test]
    fn response_codes_round_trip() {
        for v in 0u8..=255 {
            let r = TmfResponse::from_u8(v);
            assert_eq!(r.to_u8(), v);
            let known = v <= 6 || v == 255;
            assert_eq!(!matches!(r, TmfResponse::Unknown(_)), known);
        }
    }

    #[test]
    fn abort_task_hand_built_bytes() {
        // Hand-built from RFC 7143 §11.5: ABORT TASK of ITT 0x10 (CmdSN 0x20).
        let mut want = [0u8; BHS_LEN];
        want[0] = 0x42;
        want[1] = 0x81;
        want[9] = 0x03; // LUN 3, peripheral addressing
        want[16..20].copy_from_slice(&0x99u32.to_be_bytes());
        want[20..24].copy_from_slice(&0x10u32.to_be_bytes());
        want[24..28].copy_from_slice(&0x21u32.to_be_bytes());
        want[28..32].copy_from_slice(&0x05u32.to_be_bytes());
        want[32..36].copy_from_slice(&0x20u32.to_be_bytes());
        let req = TaskMgmtRequest {
            immediate: true,
            function: TmfFunction::AbortTask,
            lun: 0x0003_0000_0000_0000,
            itt: 0x99,
            referenced_task_tag: 0x10,
            cmd_sn: 0x21,
            exp_stat_sn: 5,
            ref_cmd_sn: 0x20,
            exp_data_sn: 0,
        };
        let mut h = [0u8; BHS_LEN];
        req.emit(&mut h);
        assert_eq!(h, want);
        assert_eq!(TaskMgmtRequest::parse(&want), Ok(req));

        let resp = TaskMgmtResponse {
            response: TmfResponse::TaskDoesNotExist,
            itt: 0x99,
            stat_sn: 5,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x40,
        };
        resp.emit(&mut h);
        assert_eq!(&h[..4], &[0x22, 0x80, 0x01, 0x00]);
        assert_eq!(TaskMgmtResponse::parse(&h), Ok(resp));
    }
}
