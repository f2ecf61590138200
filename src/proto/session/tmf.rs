//! Task management: one TMF outstanding per session at a time, each under an
//! ITT of its own, and what an ABORT TASK answer means for the command.
//!
//! Two rules a kernel driver got wrong before this room existed:
//! - All TMFs shared one ITT and a timed-out one left its slot armed, so a late
//!   ABORT TASK answer was taken as the answer to the LUN RESET sent next, and
//!   commands went back for retry while the target was still resetting.
//! - "Task does not exist" was taken as a successful abort even while the
//!   command was still outstanding here; libiscsi counts it as success only
//!   when the task has already completed, otherwise it escalates.

use super::super::pdu::TmfResponse;

/// Low 16 ITT bits of the first TMF ITT. Task ITTs use generation << 12 | tag
/// with tags below 2048 (0x800), so 0xf800..=0xfffc never meet a task; 0xfffd,
/// 0xfffe and 0xffff stay free for the ping and the logout.
pub const TMF_LOW_FIRST: u32 = 0xf800;
/// How many TMF ITTs there are before they repeat.
pub const TMF_LOW_COUNT: u32 = 0xfffd - TMF_LOW_FIRST;

/// What a TMF Response is to the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmfRx {
    /// The answer to the TMF being waited for.
    Answer,
    /// The answer to a TMF no longer waited for (timed out): ignored.
    Late,
    /// The answer to the TMF being waited for, on another connection than
    /// the one the TMF went out on (connection allegiance, RFC 7143 §5.1):
    /// a protocol violation. Carries the TMF's lane.
    WrongConnection(u8),
}

/// The session's TMF slot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TmfSlot {
    /// Index of the next TMF ITT.
    next: u32,
    /// The TMF being waited for: its ITT, its lane and, once in, its answer.
    waiting: Option<(u32, u8, Option<TmfResponse>)>,
}

impl TmfSlot {
    /// Arms the slot for a new TMF and returns its ITT: `age_bits` (the
    /// connection's ITT high half) | a low half no earlier TMF of the last
    /// [`TMF_LOW_COUNT`] used. Any TMF still waited for is abandoned. The
    /// TMF goes out on lane `lane`, where its answer must come.
    pub fn start(&mut self, age_bits: u32, lane: u8) -> u32 {
        let itt = (age_bits & 0xffff_0000) | (TMF_LOW_FIRST + self.next);
        self.next = (self.next + 1) % TMF_LOW_COUNT;
        self.waiting = Some((itt, lane, None));
        itt
    }

    /// A TMF Response (or a Reject of the TMF) for `itt` arrived on lane
    /// `lane`. One on the wrong connection leaves the slot waiting: the
    /// connection fails, and the TMF with it.
    pub fn on_response(&mut self, itt: u32, response: TmfResponse, lane: usize) -> TmfRx {
        match &mut self.waiting {
            Some((waited, on, None)) if *waited == itt && usize::from(*on) != lane => {
                TmfRx::WrongConnection(*on)
            }
            Some((waited, _, answer @ None)) if *waited == itt => {
                *answer = Some(response);
                TmfRx::Answer
            }
            _ => TmfRx::Late,
        }
    }

    /// The answer to TMF `itt` if it is in; the slot is then free.
    pub fn take_answer(&mut self, itt: u32) -> Option<TmfResponse> {
        match self.waiting {
            Some((waited, _, Some(r))) if waited == itt => {
                self.waiting = None;
                Some(r)
            }
            _ => None,
        }
    }

    /// Stops waiting for TMF `itt` (timeout, connection loss): a late answer
    /// is then [`TmfRx::Late`], never taken for a later TMF.
    pub fn abandon(&mut self, itt: u32) {
        if matches!(self.waiting, Some((waited, _, _)) if waited == itt) {
            self.waiting = None;
        }
    }

    /// Whether TMF `itt` is still waited for.
    pub fn is_waiting(&self, itt: u32) -> bool {
        matches!(self.waiting, Some((waited, _, None)) if waited == itt)
    }
}

/// What an ABORT TASK answer means for the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortOutcome {
    /// Aborted: hand the command back to the midlayer.
    HandBack,
    /// It had already completed: nothing left to hand back, success.
    AlreadyDone,
    /// Not aborted: the midlayer escalates (LUN reset, target reset).
    Escalate,
}

/// Decides ABORT TASK's outcome from the answer (`None`: no answer in time)
/// and whether the command is still outstanding here once it came (the
/// receiver handles PDUs in order and the target answers the TMF after any
/// response for the task, so the table is final then).
pub fn abort_outcome(answer: Option<TmfResponse>, still_outstanding: bool) -> AbortOutcome {
    match (answer, still_outstanding) {
        (Some(TmfResponse::Complete), true) => AbortOutcome::HandBack,
        (Some(TmfResponse::Complete | TmfResponse::TaskDoesNotExist), false) => {
            AbortOutcome::AlreadyDone
        }
        // The target has no such task but we still wait for its status: it
        // lost the command (or never got it); only a reset makes that safe.
        (Some(TmfResponse::TaskDoesNotExist), true) => AbortOutcome::Escalate,
        _ => AbortOutcome::Escalate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: u32 = 0x0007_0000;

    #[test]
    fn each_tmf_gets_its_own_itt_outside_task_and_reserved_tags() {
        let mut slot = TmfSlot::default();
        let mut seen = [false; TMF_LOW_COUNT as usize];
        for _ in 0..TMF_LOW_COUNT {
            let itt = slot.start(AGE | 0x1234, 0);
            assert_eq!(itt >> 16, 7);
            let low = itt & 0xffff;
            // Tasks: low 12 bits < 0x800; reserved: 0xfffd..=0xffff.
            assert!(low & 0x0fff >= 0x800 && low < 0xfffd, "{low:#x}");
            let i = (low - TMF_LOW_FIRST) as usize;
            assert!(!seen[i], "ITT {itt:#x} reused within a cycle");
            seen[i] = true;
        }
    }

    #[test]
    fn late_abort_answer_is_not_taken_for_the_lun_reset() {
        // The bug: ABORT TASK times out, LUN RESET follows, then the ABORT
        // TASK answer arrives. With one shared ITT and the slot left armed,
        // the late answer completed the LUN RESET.
        let mut slot = TmfSlot::default();
        let abort = slot.start(AGE, 0);
        assert_eq!(slot.take_answer(abort), None);
        slot.abandon(abort);
        let reset = slot.start(AGE, 0);
        assert_ne!(abort, reset);
        assert_eq!(
            slot.on_response(abort, TmfResponse::Complete, 0),
            TmfRx::Late
        );
        assert_eq!(slot.take_answer(reset), None);
        assert!(slot.is_waiting(reset));
        assert_eq!(
            slot.on_response(reset, TmfResponse::Complete, 0),
            TmfRx::Answer
        );
        assert_eq!(slot.take_answer(reset), Some(TmfResponse::Complete));
        assert!(!slot.is_waiting(reset));
    }

    #[test]
    fn starting_a_tmf_abandons_the_previous_one_even_without_abandon() {
        let mut slot = TmfSlot::default();
        let first = slot.start(AGE, 0);
        let second = slot.start(AGE, 0);
        assert_eq!(
            slot.on_response(first, TmfResponse::Complete, 0),
            TmfRx::Late
        );
        assert_eq!(slot.take_answer(second), None);
    }

    #[test]
    fn an_answer_on_another_lane_is_a_violation_and_answers_nothing() {
        let mut slot = TmfSlot::default();
        let t = slot.start(AGE, 2);
        assert_eq!(
            slot.on_response(t, TmfResponse::Complete, 0),
            TmfRx::WrongConnection(2)
        );
        assert!(slot.is_waiting(t));
        assert_eq!(slot.on_response(t, TmfResponse::Complete, 2), TmfRx::Answer);
        assert_eq!(slot.take_answer(t), Some(TmfResponse::Complete));
    }

    #[test]
    fn a_second_answer_for_the_same_tmf_is_late() {
        let mut slot = TmfSlot::default();
        let t = slot.start(AGE, 0);
        assert_eq!(slot.on_response(t, TmfResponse::Complete, 0), TmfRx::Answer);
        assert_eq!(slot.on_response(t, TmfResponse::Rejected, 0), TmfRx::Late);
        assert_eq!(slot.take_answer(t), Some(TmfResponse::Complete));
        assert_eq!(slot.on_response(t, TmfResponse::Complete, 0), TmfRx::Late);
    }

    #[test]
    fn task_does_not_exist_escalates_while_the_command_is_outstanding() {
        // The bug: this was a success and the command went back for retry
        // while its status could still come.
        assert_eq!(
            abort_outcome(Some(TmfResponse::TaskDoesNotExist), true),
            AbortOutcome::Escalate
        );
        assert_eq!(
            abort_outcome(Some(TmfResponse::TaskDoesNotExist), false),
            AbortOutcome::AlreadyDone
        );
    }

    #[test]
    fn abort_outcomes() {
        assert_eq!(
            abort_outcome(Some(TmfResponse::Complete), true),
            AbortOutcome::HandBack
        );
        assert_eq!(
            abort_outcome(Some(TmfResponse::Complete), false),
            AbortOutcome::AlreadyDone
        );
        for r in [
            TmfResponse::LunDoesNotExist,
            TmfResponse::NotSupported,
            TmfResponse::AuthorizationFailed,
            TmfResponse::Rejected,
            TmfResponse::Unknown(9),
        ] {
            assert_eq!(abort_outcome(Some(r), true), AbortOutcome::Escalate);
            assert_eq!(abort_outcome(Some(r), false), AbortOutcome::Escalate);
        }
        assert_eq!(abort_outcome(None, true), AbortOutcome::Escalate);
        assert_eq!(abort_outcome(None, false), AbortOutcome::Escalate);
    }
}
