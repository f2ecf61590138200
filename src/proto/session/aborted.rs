//! ITTs of tasks recently taken back by an abort or reset. The target may still
//! send PDUs for them (it answers a LUN reset before its last Data-In for a
//! reset task may have drained), which are dropped instead of failing the
//! connection. A LUN or target reset can take back the whole queue at once, so
//! the set must hold a queue's worth: the storage is the caller's, sized from
//! the queue depth (16 fixed entries used to be the limit, and the 17th
//! straggler after a reset failed the connection).

use core::ops::DerefMut;

/// Entries the set needs for a queue of `depth`: two resets' worth, so the
/// stragglers of one reset survive the next.
pub const fn capacity_for(depth: usize) -> usize {
    depth.saturating_mul(2)
}

/// A ring of ITTs over caller-provided storage (a `Vec`, a `KVec`, a slice
/// in a `Box`…); an empty store holds nothing.
#[derive(Debug)]
pub struct AbortedItts<S> {
    store: S,
    next: usize,
    len: usize,
}

impl<S: DerefMut<Target = [u32]>> AbortedItts<S> {
    /// An empty set over `store` (its contents are ignored).
    pub fn new(store: S) -> Self {
        AbortedItts {
            store,
            next: 0,
            len: 0,
        }
    }

    /// Remembers `itt`, forgetting the oldest entry once full.
    pub fn insert(&mut self, itt: u32) {
        let cap = self.store.len();
        if cap == 0 {
            return;
        }
        if let Some(slot) = self.store.get_mut(self.next) {
            *slot = itt;
        }
        self.next = (self.next + 1) % cap;
        self.len = (self.len + 1).min(cap);
    }

    /// Whether `itt` was taken back recently.
    pub fn contains(&self, itt: u32) -> bool {
        self.store.get(..self.len).is_some_and(|s| s.contains(&itt))
    }

    /// Forgets everything (a new connection: older ITTs cannot match again).
    pub fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn set(depth: usize) -> AbortedItts<Vec<u32>> {
        AbortedItts::new(vec![0; capacity_for(depth)])
    }

    #[test]
    fn a_full_queue_reset_keeps_every_itt() {
        // The bug: a reset of 128 tasks remembered 16; straggler 17 failed
        // the connection.
        let mut s = set(128);
        for itt in 0..128 {
            s.insert(0x10000 | itt);
        }
        assert!((0..128).all(|itt| s.contains(0x10000 | itt)));
        assert!(!s.contains(0x10000 | 128));
    }

    #[test]
    fn two_resets_in_a_row_keep_the_first_ones_stragglers() {
        let mut s = set(32);
        for itt in 0..32 {
            s.insert(itt);
        }
        for itt in 100..132 {
            s.insert(itt);
        }
        assert!(s.contains(0) && s.contains(31) && s.contains(131));
        // A third one pushes the first out.
        for itt in 200..232 {
            s.insert(itt);
        }
        assert!(!s.contains(0) && s.contains(100) && s.contains(231));
        assert_eq!(s.len(), 64);
    }

    #[test]
    fn zero_is_not_found_in_unused_storage() {
        // Unused slots hold 0 (a valid ITT): only inserted entries count.
        let s = set(4);
        assert!(!s.contains(0));
        let mut s = set(4);
        s.insert(5);
        assert!(!s.contains(0) && s.contains(5));
    }

    #[test]
    fn clear_and_empty_storage() {
        let mut s = set(2);
        s.insert(1);
        s.clear();
        assert!(s.is_empty() && !s.contains(1));
        let mut none = AbortedItts::new(Vec::new());
        none.insert(3);
        assert!(!none.contains(3) && none.is_empty());
    }
}
