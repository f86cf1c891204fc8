//! The reentrant lock of both crates: `threading::RLock` and `multiprocessing::RLock`, a
//! [`RawLock`] whose [`Owner`] can tell whether a caller holds it, plus a recursion count.
//!
//! Only the holder changes the count, so it needs no lock of its own; other threads only
//! ask the owner whether they hold the lock, which cannot be true while they do not.

use std::time::Instant;

use super::futex::Futex;
use super::lock::{Acquired, Owner, RawLock};
use super::primitive::{AtomicU32, Ordering};

/// The caller does not hold the lock (CPython: `cannot release un-acquired lock`,
/// `attempt to release recursive lock not owned by thread`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOwned;

/// A reentrant lock over a lock word `F`, its owner record `O` and a recursion count:
/// built on the fly over words the caller keeps (in its own struct, or in shared memory).
#[derive(Debug)]
pub struct RawRLock<'a, F, O> {
    lock: RawLock<F, O>,
    count: &'a AtomicU32,
}

impl<'a, F: Futex, O: Owner> RawRLock<'a, F, O> {
    /// The reentrant lock on `lock` whose recursion count is `count`.
    #[inline]
    pub fn new(lock: RawLock<F, O>, count: &'a AtomicU32) -> RawRLock<'a, F, O> {
        RawRLock { lock, count }
    }

    /// The underlying lock.
    #[inline]
    pub fn raw(&self) -> &RawLock<F, O> {
        &self.lock
    }

    /// Whether `caller` holds the lock.
    #[inline]
    pub fn is_owned(&self, caller: O::Caller) -> bool {
        self.lock.held_by(caller)
    }

    /// Takes one more level if `caller` holds the lock already. At `u32::MAX` levels no
    /// level is added and the answer is still "held" (CPython raises `OverflowError`
    /// there; no program nests that deep).
    #[inline]
    fn reenter(&self, caller: O::Caller) -> bool {
        if !self.is_owned(caller) {
            return false;
        }
        let count = self.count.load(Ordering::Relaxed);
        self.count.store(count.saturating_add(1), Ordering::Relaxed);
        true
    }

    /// Takes the lock for `caller` (again, if it holds it), waiting until `deadline`
    /// (`None`: forever).
    #[inline]
    pub fn acquire(&self, caller: O::Caller, deadline: Option<Instant>) -> Acquired {
        if self.reenter(caller) {
            return Acquired::Yes;
        }
        self.acquire_fresh(caller, deadline)
    }

    /// [`acquire`](Self::acquire) by a caller that does not hold the lock.
    #[inline]
    fn acquire_fresh(&self, caller: O::Caller, deadline: Option<Instant>) -> Acquired {
        let how = self.lock.acquire(caller, deadline);
        if how.taken() {
            self.count.store(1, Ordering::Relaxed);
        }
        how
    }

    /// Takes the lock if that needs no waiting.
    #[inline]
    pub fn try_acquire(&self, caller: O::Caller) -> bool {
        if self.reenter(caller) {
            return true;
        }
        let taken = self.lock.try_acquire(caller);
        if taken {
            self.count.store(1, Ordering::Relaxed);
        }
        taken
    }

    /// Releases one level; the last one frees the lock.
    ///
    /// # Errors
    /// [`NotOwned`] if `caller` does not hold it.
    #[inline]
    pub fn release(&self, caller: O::Caller) -> Result<(), NotOwned> {
        if !self.is_owned(caller) {
            return Err(NotOwned);
        }
        let count = self.count.load(Ordering::Relaxed);
        if count <= 1 {
            self.count.store(0, Ordering::Relaxed);
            self.lock.release();
        } else {
            self.count.store(count - 1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Releases every level at once, returning how many (Python's `_release_save`, for
    /// `Condition.wait`).
    ///
    /// # Errors
    /// [`NotOwned`] if `caller` does not hold it.
    pub fn release_all(&self, caller: O::Caller) -> Result<u32, NotOwned> {
        if !self.is_owned(caller) {
            return Err(NotOwned);
        }
        let levels = self.count.swap(0, Ordering::Relaxed);
        self.lock.release();
        Ok(levels.max(1))
    }

    /// Takes the lock again with `levels` levels (Python's `_acquire_restore`), waiting as
    /// long as it takes; what [`acquire`](Self::acquire) reported.
    pub fn restore(&self, caller: O::Caller, levels: u32) -> Acquired {
        let how = self.lock.acquire(caller, None);
        self.count.store(levels.max(1), Ordering::Relaxed);
        how
    }

    /// How many levels `caller` holds (0 if it does not hold the lock).
    pub fn recursion_count(&self, caller: O::Caller) -> u32 {
        if self.is_owned(caller) { self.count.load(Ordering::Relaxed) } else { 0 }
    }

    /// The number of levels, whoever holds it (for `Debug`).
    pub fn levels(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::WaitWord;
    use crate::sync::lock::{CurrentThread, Owned};

    /// Callers named by number, the holder's number in the word.
    struct ById;

    impl Owner for ById {
        type Caller = u32;
        fn id(caller: u32) -> u32 {
            caller
        }
    }

    #[test]
    fn the_owner_nests_and_must_release_as_often() {
        let (word, count) = (WaitWord::new(0), AtomicU32::new(0));
        let lock = RawRLock::new(RawLock::new(&word, ById), &count);
        assert!(lock.try_acquire(7));
        assert_eq!(lock.acquire(7, None), Acquired::Yes);
        assert_eq!(lock.recursion_count(7), 2);
        assert!(!lock.try_acquire(8), "another caller waits");
        assert_eq!(lock.release(8), Err(NotOwned));
        lock.release(7).unwrap();
        assert!(lock.raw().locked());
        lock.release(7).unwrap();
        assert!(!lock.raw().locked());
        assert_eq!(lock.release(7), Err(NotOwned));
    }

    #[test]
    fn release_all_and_restore_keep_the_levels() {
        let (word, count) = (WaitWord::new(0), AtomicU32::new(0));
        let lock = RawRLock::new(RawLock::new(&word, ById), &count);
        for _ in 0..3 {
            lock.acquire(1, None);
        }
        assert_eq!(lock.release_all(1), Ok(3));
        assert!(!lock.raw().locked());
        lock.restore(1, 3);
        assert_eq!(lock.recursion_count(1), 3);
    }

    #[test]
    fn an_owned_lock_belongs_to_the_thread_that_took_it() {
        let (word, owner, count) = (WaitWord::new(0), Owned::new(), AtomicU32::new(0));
        let lock = RawRLock::new(RawLock::new(&word, &owner), &count);
        assert!(lock.try_acquire(CurrentThread));
        assert!(lock.try_acquire(CurrentThread));
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!lock.is_owned(CurrentThread));
                assert!(!lock.try_acquire(CurrentThread));
                assert_eq!(lock.release(CurrentThread), Err(NotOwned));
            });
        });
        assert_eq!(lock.recursion_count(CurrentThread), 2);
    }
}
