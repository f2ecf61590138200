//! The task table: one slot per blk-mq tag holding the command in flight
//! under that tag, its ITT and what has been received or asked of it so far.
//! Storage is the caller's (a `Vec`, a `KVec`…), sized to the queue depth.

use core::ops::DerefMut;

use super::itt::{Itt, GEN_MASK};

/// Tags a table serves at most (`uapi::MAX_QUEUE_DEPTH`): see [`super::itt`].
pub const MAX_TAGS: u32 = 2048;

/// Which way a command's data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// No data.
    None,
    /// Data-In (the target sends).
    Read,
    /// Data-Out (we send).
    Write,
}

/// One command in flight; `C` is the caller's command handle.
#[derive(Debug)]
pub struct Task<C> {
    /// The command.
    pub cmd: C,
    /// Its ITT.
    pub itt: Itt,
    /// Session-unique, never on the wire: tells queued work for an earlier
    /// command under the same tag from work for this one.
    pub seq: u64,
    /// LUN in SAM format.
    pub lun: u64,
    /// The CmdSN it was sent with (RefCmdSN of an ABORT TASK).
    pub cmd_sn: u32,
    /// Data direction.
    pub dir: Dir,
    /// ExpectedDataTransferLength.
    pub len: u32,
    /// Reads: Data-In bytes placed so far (in order, so also the next offset).
    pub received: u32,
    /// Reads: next DataSN.
    pub exp_data_sn: u32,
    /// Writes: R2Ts received whose Data-Out burst is not fully sent.
    pub r2t_outstanding: u16,
    /// Writes: next R2TSN.
    pub exp_r2t_sn: u32,
    /// The lane (connection) its PDUs travel on: all of them, both ways
    /// (connection allegiance, RFC 7143 §5.1).
    pub lane: u8,
}

/// A tag's slot: the ITT generation of its latest command and the command in
/// flight, if any.
#[derive(Debug)]
pub struct Slot<C> {
    generation: u8,
    task: Option<Task<C>>,
}

impl<C> Slot<C> {
    /// An empty slot.
    pub const fn empty() -> Self {
        Slot {
            generation: 0,
            task: None,
        }
    }
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Self::empty()
    }
}

/// What a new command needs besides its tag.
#[derive(Debug)]
pub struct NewTask<C> {
    /// The command.
    pub cmd: C,
    /// LUN in SAM format.
    pub lun: u64,
    /// The CmdSN it is sent with.
    pub cmd_sn: u32,
    /// Data direction.
    pub dir: Dir,
    /// ExpectedDataTransferLength.
    pub len: u32,
    /// The lane its PDUs travel on.
    pub lane: u8,
}

/// Why a command could not take its slot; the command comes back.
#[derive(Debug)]
pub enum InsertError<C> {
    /// The tag is beyond the table (the queue depth).
    NoSuchTag(C),
    /// A command is still in flight under the tag.
    Busy(C),
}

/// The task table over `S`, a slice of slots indexed by tag.
#[derive(Debug)]
pub struct TaskTable<C, S> {
    slots: S,
    in_flight: u32,
    next_seq: u64,
    _cmd: core::marker::PhantomData<C>,
}

impl<C, S: DerefMut<Target = [Slot<C>]>> TaskTable<C, S> {
    /// A table over `slots` (all should be empty).
    pub fn new(slots: S) -> Self {
        let in_flight = slots.iter().filter(|s| s.task.is_some()).count() as u32;
        TaskTable {
            slots,
            in_flight,
            next_seq: 0,
            _cmd: core::marker::PhantomData,
        }
    }

    /// Slots (the queue depth).
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Commands in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Whether `tag` is a slot with no command in flight.
    pub fn is_free(&self, tag: u16) -> bool {
        matches!(self.slots.get(usize::from(tag)), Some(s) if s.task.is_none())
    }

    /// Puts a new command under `tag` with the next generation of that tag's
    /// ITT under `age`; returns its ITT and seq.
    pub fn insert(
        &mut self,
        tag: u16,
        age: u16,
        new: NewTask<C>,
    ) -> Result<(Itt, u64), InsertError<C>> {
        self.insert_avoiding(tag, age, new, |_| false)
    }

    /// [`TaskTable::insert`], skipping generations whose ITT `avoid` names
    /// (ITTs still remembered as taken back: their late PDUs must not find
    /// the new command). If all 16 are named, the next one is used anyway.
    pub fn insert_avoiding(
        &mut self,
        tag: u16,
        age: u16,
        new: NewTask<C>,
        avoid: impl Fn(Itt) -> bool,
    ) -> Result<(Itt, u64), InsertError<C>> {
        let seq = self.next_seq;
        // Tags at or above MAX_TAGS would share ITT low halves with the TMF,
        // ping and logout ITTs (0xf800 and up), whatever the storage holds.
        if u32::from(tag) >= MAX_TAGS {
            return Err(InsertError::NoSuchTag(new.cmd));
        }
        let Some(slot) = self.slots.get_mut(usize::from(tag)) else {
            return Err(InsertError::NoSuchTag(new.cmd));
        };
        if slot.task.is_some() {
            return Err(InsertError::Busy(new.cmd));
        }
        slot.generation = slot.generation.wrapping_add(1) & GEN_MASK;
        for _ in 0..GEN_MASK {
            if !avoid(Itt::task(age, slot.generation, tag)) {
                break;
            }
            slot.generation = slot.generation.wrapping_add(1) & GEN_MASK;
        }
        let itt = Itt::task(age, slot.generation, tag);
        slot.task = Some(Task {
            cmd: new.cmd,
            itt,
            seq,
            lun: new.lun,
            cmd_sn: new.cmd_sn,
            dir: new.dir,
            len: new.len,
            received: 0,
            exp_data_sn: 0,
            r2t_outstanding: 0,
            exp_r2t_sn: 0,
            lane: new.lane,
        });
        self.next_seq = seq.wrapping_add(1);
        self.in_flight += 1;
        Ok((itt, seq))
    }

    /// The task whose ITT is `itt`, if in flight.
    pub fn by_itt(&mut self, itt: Itt) -> Option<&mut Task<C>> {
        self.slots
            .get_mut(usize::from(itt.tag()))?
            .task
            .as_mut()
            .filter(|t| t.itt == itt)
    }

    /// The task under `tag` if it is still the one numbered `seq`.
    pub fn get(&mut self, tag: u16, seq: u64) -> Option<&mut Task<C>> {
        self.slots
            .get_mut(usize::from(tag))?
            .task
            .as_mut()
            .filter(|t| t.seq == seq)
    }

    /// The task under `tag`, whichever it is.
    pub fn peek(&self, tag: u16) -> Option<&Task<C>> {
        self.slots.get(usize::from(tag))?.task.as_ref()
    }

    /// Removes and returns the task under `tag`.
    pub fn take(&mut self, tag: u16) -> Option<Task<C>> {
        let t = self.slots.get_mut(usize::from(tag))?.task.take();
        if t.is_some() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        t
    }

    /// Removes and returns the first task `pred` selects.
    pub fn take_where(&mut self, mut pred: impl FnMut(&Task<C>) -> bool) -> Option<Task<C>> {
        let i = self
            .slots
            .iter()
            .position(|s| s.task.as_ref().is_some_and(&mut pred))?;
        self.take(u16::try_from(i).ok()?)
    }

    /// Removes and returns any task.
    pub fn take_any(&mut self) -> Option<Task<C>> {
        self.take_where(|_| true)
    }

    /// The tasks in flight.
    pub fn iter(&self) -> impl Iterator<Item = &Task<C>> {
        self.slots.iter().filter_map(|s| s.task.as_ref())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn table(depth: usize) -> TaskTable<u32, Vec<Slot<u32>>> {
        TaskTable::new((0..depth).map(|_| Slot::empty()).collect())
    }

    fn new(cmd: u32, dir: Dir, len: u32) -> NewTask<u32> {
        NewTask {
            cmd,
            lun: 0,
            cmd_sn: cmd,
            dir,
            len,
            lane: 0,
        }
    }

    #[test]
    fn insert_and_find_by_itt() {
        let mut t = table(4);
        let (itt, seq) = t.insert(2, 7, new(10, Dir::Read, 512)).unwrap();
        assert_eq!(itt.tag(), 2);
        assert_eq!(itt.age(), 7);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.by_itt(itt).map(|x| x.cmd), Some(10));
        assert_eq!(t.get(2, seq).map(|x| x.cmd), Some(10));
    }

    #[test]
    fn busy_slot_gives_the_command_back() {
        let mut t = table(2);
        t.insert(1, 1, new(1, Dir::None, 0)).unwrap();
        match t.insert(1, 1, new(2, Dir::None, 0)) {
            Err(InsertError::Busy(2)) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn tag_beyond_depth_gives_the_command_back() {
        let mut t = table(2);
        assert!(matches!(
            t.insert(2, 1, new(5, Dir::None, 0)),
            Err(InsertError::NoSuchTag(5))
        ));
        assert!(!t.is_free(2));
    }

    #[test]
    fn reused_tag_gets_a_new_itt() {
        let mut t = table(1);
        let (a, _) = t.insert(0, 1, new(1, Dir::Read, 1)).unwrap();
        t.take(0).unwrap();
        let (b, _) = t.insert(0, 1, new(2, Dir::Read, 1)).unwrap();
        assert_ne!(a, b);
        assert!(
            t.by_itt(a).is_none(),
            "the old ITT must not find the new task"
        );
        assert!(t.by_itt(b).is_some());
    }

    #[test]
    fn sixteen_generations_before_an_itt_repeats() {
        let mut t = table(1);
        let mut seen = Vec::new();
        for i in 0..16 {
            let (itt, _) = t.insert(0, 1, new(i, Dir::None, 0)).unwrap();
            assert!(!seen.contains(&itt));
            seen.push(itt);
            t.take(0);
        }
    }

    #[test]
    fn other_age_does_not_match() {
        let mut t = table(1);
        let (itt, _) = t.insert(0, 3, new(1, Dir::None, 0)).unwrap();
        let older = Itt::task(2, itt.generation(), 0);
        assert!(t.by_itt(older).is_none());
    }

    #[test]
    fn stale_seq_does_not_match() {
        let mut t = table(1);
        let (_, s1) = t.insert(0, 1, new(1, Dir::None, 0)).unwrap();
        t.take(0);
        let (_, s2) = t.insert(0, 1, new(2, Dir::None, 0)).unwrap();
        assert_ne!(s1, s2);
        assert!(t.get(0, s1).is_none());
        assert!(t.get(0, s2).is_some());
    }

    #[test]
    fn internal_itts_find_no_task() {
        let mut t = table(2048);
        for tag in [0u16, 0x7ff] {
            t.insert(tag, 1, new(u32::from(tag), Dir::None, 0)).unwrap();
        }
        for low in [0xf800u16, 0xfffc, super::super::itt::PING_LOW, 0xffff] {
            assert!(t.by_itt(Itt::internal(1, low)).is_none());
        }
        assert!(t.by_itt(Itt::from_wire(u32::MAX)).is_none());
    }

    #[test]
    fn take_counts_down_and_twice_is_none() {
        let mut t = table(3);
        t.insert(0, 1, new(1, Dir::None, 0)).unwrap();
        t.insert(1, 1, new(2, Dir::None, 0)).unwrap();
        assert_eq!(t.take(0).map(|x| x.cmd), Some(1));
        assert!(t.take(0).is_none());
        assert_eq!(t.in_flight(), 1);
        assert!(t.take(9).is_none());
    }

    #[test]
    fn take_where_and_take_any_empty_the_table() {
        let mut t = table(4);
        for i in 0..4u16 {
            t.insert(i, 1, new(u32::from(i), Dir::None, 0)).unwrap();
        }
        assert_eq!(t.take_where(|x| x.cmd == 2).map(|x| x.cmd), Some(2));
        let mut n = 0;
        while t.take_any().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn empty_table_refuses_everything() {
        let mut t = table(0);
        assert!(matches!(
            t.insert(0, 1, new(1, Dir::None, 0)),
            Err(InsertError::NoSuchTag(1))
        ));
        assert!(t.take_any().is_none());
        assert!(t.by_itt(Itt::task(1, 1, 0)).is_none());
    }

    #[test]
    fn tags_from_max_tags_up_are_refused_even_with_storage() {
        let mut t = table(MAX_TAGS as usize + 2);
        assert!(t
            .insert(MAX_TAGS as u16 - 1, 1, new(1, Dir::None, 0))
            .is_ok());
        assert!(matches!(
            t.insert(MAX_TAGS as u16, 1, new(2, Dir::None, 0)),
            Err(InsertError::NoSuchTag(2))
        ));
    }

    #[test]
    fn max_tags_is_the_uapi_queue_depth() {
        assert_eq!(MAX_TAGS, super::super::super::uapi::MAX_QUEUE_DEPTH);
    }

    #[test]
    fn insert_avoiding_skips_named_generations_and_never_fails_for_them() {
        let mut t = table(1);
        let (a, _) = t.insert(0, 1, new(1, Dir::None, 0)).unwrap();
        t.take(0);
        let (b, _) = t
            .insert_avoiding(0, 1, new(2, Dir::None, 0), |i| i.generation() == 2)
            .unwrap();
        assert_eq!((a.generation(), b.generation()), (1, 3));
        t.take(0);
        // Every generation named: the command still goes in.
        assert!(t
            .insert_avoiding(0, 1, new(3, Dir::None, 0), |_| true)
            .is_ok());
    }
}
