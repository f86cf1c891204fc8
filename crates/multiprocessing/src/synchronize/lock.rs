//! `Lock` and `RLock` across processes, robust against a holder that dies.
//!
//! The lock word (word 0 of the object's shared page):
//!
//! | value | meaning |
//! |---|---|
//! | 0 | unlocked |
//! | `id` | locked by `id` (a pid for `Lock`, a thread id for `RLock`), nobody waits |
//! | `id \| CONTENDED` | locked, and someone may sleep on the word: release wakes one |
//!
//! Word 1 is the owner-died flag; word 2 (`RLock`) the recursion count, touched only by
//! the holder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{deadline_after, shared_serde};
use crate::heap::SharedMemory;
use crate::{Error, sys};

const CONTENDED: u32 = 1 << 31;
/// How often a waiter checks that the holder still runs.
const LIVENESS_CHECK: Duration = Duration::from_millis(100);

const STATE: usize = 0;
const OWNER_DIED: usize = 1;
const COUNT: usize = 2;

/// CPython's `multiprocessing` message for releasing an unlocked `Lock`.
pub(crate) const RELEASED_TOO_MANY: &str = "semaphore or lock released too many times";
const RLOCK_NOT_OWNED: &str = "attempt to release recursive lock not owned by thread";

/// How a raw acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    Yes,
    FromDeadOwner,
    TimedOut,
}

pub(crate) fn raw_acquire(word: &AtomicU32, id: u32, deadline: Option<Instant>) -> Acquired {
    if word.compare_exchange(0, id, Ordering::Acquire, Ordering::Relaxed).is_ok() {
        return Acquired::Yes;
    }
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return Acquired::TimedOut; // a try: no sleeping, no contended mark
    }
    loop {
        let value = word.load(Ordering::Relaxed);
        if value == 0 {
            // Someone else may still sleep: keep the CONTENDED bit so release wakes them.
            if word
                .compare_exchange(0, id | CONTENDED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Acquired::Yes;
            }
            continue;
        }
        let contended = value | CONTENDED;
        if value & CONTENDED == 0
            && word
                .compare_exchange(value, contended, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let check_at = Instant::now() + LIVENESS_CHECK;
        let wake_by = deadline.map_or(check_at, |d| d.min(check_at));
        sys::futex_wait(word, contended, Some(wake_by));
        let now = Instant::now();
        if now >= check_at && word.load(Ordering::Relaxed) == contended {
            let holder = (contended & !CONTENDED) as i32;
            if !sys::alive(holder)
                && word
                    .compare_exchange(
                        contended,
                        id | CONTENDED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Acquired::FromDeadOwner;
            }
        }
        if deadline.is_some_and(|d| now >= d) {
            return Acquired::TimedOut;
        }
    }
}

/// The id (pid) holding a lock word, if it is locked.
pub(crate) fn holder(word: &AtomicU32) -> Option<i32> {
    let value = word.load(Ordering::Relaxed) & !CONTENDED;
    (value != 0).then_some(value as i32)
}

/// Releases; `false` if the word was unlocked.
pub(crate) fn raw_release(word: &AtomicU32) -> bool {
    let previous = word.swap(0, Ordering::Release);
    if previous & CONTENDED != 0 {
        sys::futex_wake(word, 1);
    }
    previous != 0
}

fn new_page() -> Arc<SharedMemory> {
    Arc::new(SharedMemory::new(16).unwrap_or_else(|e| panic!("cannot create shared memory: {e}")))
}

fn try_page() -> Result<Arc<SharedMemory>, Error> {
    Ok(Arc::new(SharedMemory::new(16)?))
}

/// A lock that works across processes: Python's `multiprocessing.Lock`.
///
/// Not owned: any thread of any process may release it, as CPython's (a semaphore with
/// value 1). Clones share the lock. Beyond CPython it is *robust*: if the holding process
/// dies, a waiter takes the lock over within about 0.1 s, and [`owner_died`](Lock::owner_died)
/// is true until the new holder releases it.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Lock, Process};
///
/// let lock = Lock::new();
/// lock.acquire();
/// let theirs = lock.clone();
/// let p = Process::new(move || {
///     theirs.acquire(); // waits until the parent releases
///     theirs.release().unwrap();
/// });
/// p.start()?;
/// lock.release()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    mem: Arc<SharedMemory>,
}

shared_serde!(Lock { mem });

impl Lock {
    /// An unlocked lock in a new page of shared memory.
    ///
    /// # Panics
    /// If the OS refuses shared memory (no fds or memory left); [`Lock::try_new`] returns
    /// that error instead.
    pub fn new() -> Lock {
        Lock { mem: new_page() }
    }

    /// As [`new`](Lock::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    pub fn try_new() -> Result<Lock, Error> {
        Ok(Lock { mem: try_page()? })
    }

    pub(crate) fn from_shared(mem: Arc<SharedMemory>) -> Lock {
        Lock { mem }
    }

    pub(crate) fn shared_mem(&self) -> &SharedMemory {
        &self.mem
    }

    fn word(&self) -> &AtomicU32 {
        self.mem.word(STATE)
    }

    fn me() -> u32 {
        sys::getpid().0 as u32
    }

    fn acquired(&self, how: Acquired) -> bool {
        match how {
            Acquired::Yes => true,
            Acquired::FromDeadOwner => {
                self.mem.word(OWNER_DIED).store(1, Ordering::Relaxed);
                true
            }
            Acquired::TimedOut => false,
        }
    }

    /// Waits until the lock is free, then takes it. Python: `Lock.acquire()`.
    pub fn acquire(&self) {
        self.acquired(raw_acquire(self.word(), Self::me(), None));
    }

    /// Takes the lock if it is free. Python: `Lock.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.word().compare_exchange(0, Self::me(), Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Waits at most `timeout`; whether the lock was taken. Python: `Lock.acquire(timeout=t)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        match deadline_after(timeout) {
            Some(deadline) => self.acquired(raw_acquire(self.word(), Self::me(), Some(deadline))),
            None => {
                self.acquire();
                true
            }
        }
    }

    /// Releases the lock (from any thread or process). Python: `Lock.release()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `semaphore or lock released too many times` when it is not locked.
    pub fn release(&self) -> Result<(), Error> {
        self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
        if raw_release(self.word()) { Ok(()) } else { Err(Error::value(RELEASED_TOO_MANY)) }
    }

    /// Whether the lock is held. Python: `Lock.locked()` (3.x's `_semlock._count()`...).
    pub fn locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) != 0
    }

    /// Whether the current holder took the lock over from a holder that died holding it
    /// (robust lock; the data the lock protects may be half-updated).
    pub fn owner_died(&self) -> bool {
        self.locked() && self.mem.word(OWNER_DIED).load(Ordering::Relaxed) != 0
    }
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.word().load(Ordering::Relaxed);
        if state == 0 {
            f.write_str("<Lock(owner=None)>")
        } else {
            write!(f, "<Lock(owner=pid {})>", state & !CONTENDED)
        }
    }
}

/// A re-entrant lock that works across processes: Python's `multiprocessing.RLock`.
///
/// Owned by one thread of one process (its kernel thread id, unique system-wide); that
/// thread may take it again, and must release it as many times. Robust like [`Lock`]: if
/// the holding thread's process dies, a waiter takes it over.
#[derive(Clone)]
pub struct RLock {
    mem: Arc<SharedMemory>,
}

shared_serde!(RLock { mem });

impl RLock {
    /// An unlocked re-entrant lock in a new page of shared memory.
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`RLock::try_new`] returns that error instead.
    pub fn new() -> RLock {
        RLock { mem: new_page() }
    }

    /// As [`new`](RLock::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    pub fn try_new() -> Result<RLock, Error> {
        Ok(RLock { mem: try_page()? })
    }

    pub(crate) fn from_shared(mem: Arc<SharedMemory>) -> RLock {
        RLock { mem }
    }

    pub(crate) fn shared_mem(&self) -> &SharedMemory {
        &self.mem
    }

    fn word(&self) -> &AtomicU32 {
        self.mem.word(STATE)
    }

    fn count(&self) -> &AtomicU32 {
        self.mem.word(COUNT)
    }

    fn me() -> u32 {
        sys::gettid() as u32
    }

    /// Whether the calling thread holds it. Python: `RLock._is_owned()`.
    pub fn is_owned(&self) -> bool {
        self.word().load(Ordering::Relaxed) & !CONTENDED == Self::me()
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_owned() {
            self.count().fetch_add(1, Ordering::Relaxed);
            return true;
        }
        match raw_acquire(self.word(), Self::me(), deadline) {
            Acquired::TimedOut => false,
            how => {
                let died = u32::from(how == Acquired::FromDeadOwner);
                self.mem.word(OWNER_DIED).store(died, Ordering::Relaxed);
                self.count().store(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// Takes the lock, waiting if another thread holds it. Python: `RLock.acquire()`.
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Takes the lock if that needs no waiting. Python: `RLock.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        if self.is_owned() {
            self.count().fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let taken = self
            .word()
            .compare_exchange(0, Self::me(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
            self.count().store(1, Ordering::Relaxed);
        }
        taken
    }

    /// Waits at most `timeout`. Python: `RLock.acquire(timeout=t)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(deadline_after(timeout))
    }

    /// Releases one level; the last one frees the lock. Python: `RLock.release()`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `attempt to release recursive lock not owned by thread`.
    pub fn release(&self) -> Result<(), Error> {
        if !self.is_owned() {
            return Err(Error::assertion(RLOCK_NOT_OWNED));
        }
        if self.count().fetch_sub(1, Ordering::Relaxed) == 1 {
            self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
            raw_release(self.word());
        }
        Ok(())
    }

    /// Releases every level at once, returning how many (for `Condition::wait`).
    pub(crate) fn release_all(&self) -> u32 {
        let levels = self.count().swap(0, Ordering::Relaxed);
        raw_release(self.word());
        levels
    }

    /// Takes the lock again with `levels` levels (after `release_all`).
    pub(crate) fn restore(&self, levels: u32) {
        self.acquire_until(None);
        self.count().store(levels.max(1), Ordering::Relaxed);
    }

    /// Whether any thread holds it.
    pub fn locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) != 0
    }

    /// How many times the calling thread holds it (0 if it does not).
    pub fn recursion_count(&self) -> usize {
        if self.is_owned() { self.count().load(Ordering::Relaxed) as usize } else { 0 }
    }

    /// Whether the calling thread took the lock over from a holder that died.
    pub fn owner_died(&self) -> bool {
        self.is_owned() && self.mem.word(OWNER_DIED).load(Ordering::Relaxed) != 0
    }
}

impl Default for RLock {
    fn default() -> RLock {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.word().load(Ordering::Relaxed) & !CONTENDED;
        if state == 0 {
            f.write_str("<RLock(None, 0)>")
        } else {
            write!(f, "<RLock(tid {state}, {})>", self.count().load(Ordering::Relaxed))
        }
    }
}
