//! `Lock` and `RLock` across processes, robust against a holder that dies.
//!
//! The lock word (word 0 of the object's shared page) is the synchronisation core's
//! `RawLock` word, the holder's id in its low 30 bits (pids and thread ids stay below
//! 2^22, Linux's `PID_MAX_LIMIT`):
//!
//! | value | meaning |
//! |---|---|
//! | 0 | unlocked |
//! | `id` | locked by `id` (a pid for `Lock`, a thread id for `RLock`), nobody waits |
//! | `id \| CONTENDED` | locked, and someone may sleep on the word: release wakes one |
//!
//! Word 1 is the owner-died flag; word 2 (`RLock`) the recursion count, touched only by
//! the holder; the 64-bit word at byte 16 the holder's start time (see [`RobustWord`]).
//!
//! # Who holds it, and whether it still runs
//!
//! An id alone cannot tell: the kernel hands a dead process's pid (or a thread's tid) to
//! the next process it starts. So the holder is its id **and its start time** (`/proc`'s
//! `starttime`, [`sys::Identity`]): a waiter takes the lock over only when that id is gone,
//! is a zombie, or now belongs to a process that started at another time. A liveness
//! check that cannot tell (no `/proc`, out of fds) says the holder runs: it fails closed.
//!
//! A `Lock` is not owned (CPython): a process that took it and *exited normally* leaves
//! it held, for another process to release. Its exit path marks each `Lock` it still
//! holds as [`ABANDONED`] (see [`abandon_held_locks`]), and a waiter never takes such a
//! lock over; only a holder that died without running its exit path (killed, crashed)
//! loses its lock to the next waiter.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{deadline_after, shared_serde};
use crate::heap::SharedMemory;
use crate::sys::{self, Identity};
use pyconc_core::exit::AtExit;
use pyconc_core::fork::WeakList;
pub(crate) use pyconc_core::sync::Acquired;
use pyconc_core::sync::{HOLDER, Owner, RawLock, RawRLock, SharedWord};

use crate::Error;
use crate::error::RELEASED_TOO_MANY;
use crate::error::RLOCK_NOT_OWNED;

/// How often a waiter checks that the holder still runs.
const LIVENESS_CHECK: Duration = Duration::from_millis(100);
/// The start-time slot of a lock whose holder exited normally holding it: it stays held
/// (CPython's `Lock`), for another process to release; no waiter takes it over.
pub(crate) const ABANDONED: u64 = u64::MAX;

const STATE: usize = 0;
const OWNER_DIED: usize = 1;
const COUNT: usize = 2;
/// The 64-bit word (index × 8 bytes) holding the holder's start time.
const START: usize = 2;

/// The robust owner of a lock word in shared memory: the slot beside the word that holds
/// its holder's start time. The holder writes its start time right after it takes the
/// word, and clears it right before it lets the word go; 0 there means "not known yet",
/// and the liveness check then goes by the id alone.
#[derive(Clone, Copy)]
pub(crate) struct StartSlot<'a>(&'a AtomicU64);

impl Owner for StartSlot<'_> {
    type Caller = Identity;
    const LIVENESS_CHECK: Option<Duration> = Some(LIVENESS_CHECK);

    #[inline]
    fn id(caller: Identity) -> u32 {
        caller.id
    }

    #[inline]
    fn acquired(&self, caller: Identity) {
        self.0.store(caller.start, Ordering::Release);
    }

    #[inline]
    fn releasing(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// The holder is `caller` itself: its id and its start time (a thread of another
    /// process that got the holder's id from the kernel is not it).
    #[inline]
    fn holds(&self, caller: Identity, word: &AtomicU32) -> bool {
        word.load(Ordering::Relaxed) & HOLDER == caller.id
            && self.0.load(Ordering::Relaxed) == caller.start
    }

    /// Gone: not [`ABANDONED`], not alive by [`sys::alive`] (which fails closed), and the
    /// slot unchanged meanwhile (else a new holder with the same id came in between).
    fn holder_gone(&self, holder: u32) -> bool {
        let start = self.0.load(Ordering::Acquire);
        start != ABANDONED
            && !sys::alive(Identity { id: holder, start })
            && self.0.load(Ordering::Acquire) == start
    }
}

/// A robust lock word in shared memory and the slot beside it that holds its holder's
/// start time: the synchronisation core's [`RawLock`] with the [`StartSlot`] owner.
#[derive(Clone, Copy)]
pub(crate) struct RobustWord<'a> {
    pub(crate) state: &'a AtomicU32,
    pub(crate) start: &'a AtomicU64,
}

impl<'a> RobustWord<'a> {
    #[inline]
    pub(crate) fn raw(self) -> RawLock<&'a SharedWord, StartSlot<'a>> {
        RawLock::new(SharedWord::from_atomic(self.state), StartSlot(self.start))
    }

    /// Takes the word if it is free, without waiting.
    #[inline]
    pub(crate) fn try_acquire(self, me: Identity) -> bool {
        self.raw().try_acquire(me)
    }

    /// Takes the word, waiting until `deadline` (`None`: forever); takes it over from a
    /// holder that died.
    #[inline]
    pub(crate) fn acquire(self, me: Identity, deadline: Option<Instant>) -> Acquired {
        self.raw().acquire(me, deadline)
    }

    /// The holder, if the word is locked.
    pub(crate) fn holder(self) -> Option<Identity> {
        let id = self.raw().holder()?;
        Some(Identity { id, start: self.start.load(Ordering::Acquire) })
    }

    /// Whether the word is locked by a holder that may still run (see [`sys::alive`]).
    pub(crate) fn held_by_live_holder(self) -> bool {
        self.holder().is_some_and(|h| h.start == ABANDONED || sys::alive(h))
    }

    /// Whether `me` holds the word.
    #[inline]
    pub(crate) fn held_by(self, me: Identity) -> bool {
        self.raw().held_by(me)
    }

    /// Releases; `false` if the word was unlocked.
    #[inline]
    pub(crate) fn release(self) -> bool {
        self.raw().release()
    }
}

/// The user's `Lock` pages this process has, so that its exit path can mark the ones it
/// still holds [`ABANDONED`]. Held across `fork()` (order 60) and kept in a child, which
/// shares the parent's lock pages and marks the ones it holds at its own exit.
static LOCKS: WeakList<SharedMemory> = WeakList::new(60, |locks| {
    if !locks.is_empty() {
        ABANDON_AT_EXIT.install();
    }
});

/// The last exit finalizer: after everything else that might still release a lock.
static ABANDON_AT_EXIT: AtExit = AtExit::new(abandon_held_locks, i32::MIN);

fn register(mem: &Arc<SharedMemory>) {
    LOCKS.add(mem);
    ABANDON_AT_EXIT.install();
}

/// The exit path: every `Lock` this process holds stays held, marked [`ABANDONED`], so
/// that no waiter mistakes this normal exit for a crash and takes it over (CPython's
/// `Lock`: another process may release it).
fn abandon_held_locks() {
    for page in LOCKS.live() {
        abandon_if_held(&page);
    }
}

/// Marks `page`'s lock [`ABANDONED`] if this process holds it. The pid is compared first,
/// so that a process holding none (most, at exit) never reads its start time.
fn abandon_if_held(page: &SharedMemory) {
    let word = robust_word(page);
    if word.holder().is_none_or(|holder| holder.id != sys::getpid().0 as u32) {
        return;
    }
    let me = sys::process_identity();
    if word.held_by(me) {
        let _ =
            word.start.compare_exchange(me.start, ABANDONED, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Shared by every handle of one user's `Lock` in this process: when the last one drops
/// while this process holds the lock, nobody here can release it any more, so it is left
/// held as at exit ([`ABANDONED`]), not taken over as a dead holder's.
struct LeftHeld(Arc<SharedMemory>);

impl Drop for LeftHeld {
    fn drop(&mut self) {
        abandon_if_held(&self.0);
    }
}

fn robust_word(mem: &SharedMemory) -> RobustWord<'_> {
    RobustWord { state: mem.word(STATE), start: mem.word64(START) }
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
/// # Differences from CPython
/// - Robust: if the holding process dies, a waiter takes the lock over within about 0.1 s
///   and [`owner_died`](Lock::owner_died) says so; CPython's waiters wait forever. A
///   process that exits normally holding it leaves it held (CPython's semantics).
/// - `acquire(block, timeout)` is [`acquire`](Lock::acquire),
///   [`try_acquire`](Lock::try_acquire) and [`acquire_timeout`](Lock::acquire_timeout).
/// - Its `Debug` names the holder's pid (`<Lock(owner=pid 4242)>`) where CPython says
///   `SomeOtherProcess`.
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
    /// `None` for the crate's internal locks.
    _left_held: Option<Arc<LeftHeld>>,
}

shared_serde!(Lock { mem });

impl Lock {
    /// An unlocked lock in a new page of shared memory.
    ///
    /// # Panics
    /// If the OS refuses shared memory (no fds or memory left); [`Lock::try_new`] returns
    /// that error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Lock {
        Lock::from_shared(new_page())
    }

    /// As [`new`](Lock::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::try_new()?;
    /// assert!(lock.try_acquire());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new() -> Result<Lock, Error> {
        Ok(Lock::from_shared(try_page()?))
    }

    /// A user's lock on `mem`: its exit path marks it [`ABANDONED`] if it still holds it.
    pub(crate) fn from_shared(mem: Arc<SharedMemory>) -> Lock {
        register(&mem);
        Lock { _left_held: Some(Arc::new(LeftHeld(Arc::clone(&mem)))), mem }
    }

    /// A lock that the crate takes only for short critical sections of its own (a
    /// barrier's, a bare-pipe queue's): one held at exit is taken over like a dead one's.
    pub(crate) fn internal() -> Result<Lock, Error> {
        Ok(Lock::internal_from_shared(try_page()?))
    }

    /// [`Lock::internal`] on shared memory received from the parent.
    pub(crate) fn internal_from_shared(mem: Arc<SharedMemory>) -> Lock {
        Lock { mem, _left_held: None }
    }

    pub(crate) fn shared_mem(&self) -> &SharedMemory {
        &self.mem
    }

    fn word(&self) -> RobustWord<'_> {
        robust_word(&self.mem)
    }

    fn me() -> Identity {
        sys::process_identity()
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
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Lock, Process};
    ///
    /// let lock = Lock::new();
    /// lock.acquire();
    /// let theirs = lock.clone();
    /// // No owner: a child process may release what the parent took.
    /// let p = Process::new(move || theirs.release().unwrap());
    /// p.start()?;
    /// p.join()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.acquired(self.word().acquire(Self::me(), None));
    }

    /// Takes the lock if it is free. Python: `Lock.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new();
    /// assert!(lock.try_acquire());
    /// assert!(!lock.try_acquire(), "not reentrant");
    /// lock.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.word().try_acquire(Self::me())
    }

    /// Waits at most `timeout`; whether the lock was taken. Python: `Lock.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiprocessing::Lock::new();
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!lock.acquire_timeout(Duration::from_millis(10)), "held: times out");
    /// lock.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        match deadline_after(timeout) {
            Some(deadline) => self.acquired(self.word().acquire(Self::me(), Some(deadline))),
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
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new();
    /// lock.acquire();
    /// lock.release()?;
    /// let refused = lock.release().unwrap_err();
    /// assert_eq!(refused.to_string(), "semaphore or lock released too many times");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
        if self.word().release() { Ok(()) } else { Err(Error::value(RELEASED_TOO_MANY)) }
    }

    /// Whether the lock is held. Python: `Lock.locked()` (3.x's `_semlock._count()`...).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new();
    /// let held = lock.lock();
    /// assert!(lock.locked());
    /// drop(held);
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.word().holder().is_some()
    }

    /// Whether the current holder took the lock over from a holder that died holding it
    /// (robust lock; the data the lock protects may be half-updated).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Lock, Process};
    ///
    /// let lock = Lock::new();
    /// let theirs = lock.clone();
    /// let p = Process::new(move || {
    ///     theirs.acquire();
    ///     std::process::abort(); // dies holding the lock
    /// });
    /// p.start()?;
    /// p.join()?;
    /// lock.acquire(); // taken over within about 0.1 s
    /// assert!(lock.owner_died(), "the data it guards may be half-updated");
    /// lock.release()?;
    /// assert!(!lock.owner_died());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn owner_died(&self) -> bool {
        self.locked() && self.mem.word(OWNER_DIED).load(Ordering::Relaxed) != 0
    }

    /// Acquires the lock and returns a guard that releases it when dropped: Python's
    /// `with lock:`. If another thread or process released the lock meanwhile (allowed:
    /// it has no owner), the guard's drop finds it unlocked and does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::Lock::new();
    /// {
    ///     let _held = lock.lock(); // `with lock:`
    ///     assert!(lock.locked());
    /// }
    /// assert!(!lock.locked());
    /// ```
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire();
        LockGuard { lock: self }
    }
}

/// The guard of [`Lock::lock`]: releases the lock when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.word().holder() {
            None => f.write_str("<Lock(owner=None)>"),
            Some(holder) => write!(f, "<Lock(owner=pid {})>", holder.id),
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
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> RLock {
        RLock { mem: new_page() }
    }

    /// As [`new`](RLock::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::try_new()?;
    /// assert!(lock.try_acquire());
    /// assert!(lock.try_acquire(), "the owner nests");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new() -> Result<RLock, Error> {
        Ok(RLock { mem: try_page()? })
    }

    pub(crate) fn from_shared(mem: Arc<SharedMemory>) -> RLock {
        RLock { mem }
    }

    pub(crate) fn shared_mem(&self) -> &SharedMemory {
        &self.mem
    }

    fn word(&self) -> RobustWord<'_> {
        robust_word(&self.mem)
    }

    fn raw(&self) -> RawRLock<'_, &SharedWord, StartSlot<'_>> {
        RawRLock::new(self.word().raw(), self.mem.word(COUNT))
    }

    fn me() -> Identity {
        sys::thread_identity()
    }

    /// Whether the calling thread holds it. Python: `RLock._is_owned()`. A thread of
    /// another process that got the holder's thread id from the kernel does not.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let theirs = lock.clone();
    /// let _held = lock.lock();
    /// assert!(lock.is_owned());
    /// std::thread::spawn(move || assert!(!theirs.is_owned())).join().unwrap();
    /// ```
    pub fn is_owned(&self) -> bool {
        self.raw().is_owned(Self::me())
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        let raw = self.raw();
        let how = raw.acquire(Self::me(), deadline);
        // One level: this call took the lock afresh (a nested one counts two or more).
        if how.taken() && raw.levels() == 1 {
            let died = u32::from(how == Acquired::FromDeadOwner);
            self.mem.word(OWNER_DIED).store(died, Ordering::Relaxed);
        }
        how.taken()
    }

    /// Takes the lock, waiting if another thread holds it. Python: `RLock.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// lock.acquire();
    /// lock.acquire();
    /// assert_eq!(lock.recursion_count(), 2);
    /// lock.release()?;
    /// lock.release()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Takes the lock if that needs no waiting. Python: `RLock.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let theirs = lock.clone();
    /// assert!(lock.try_acquire());
    /// std::thread::spawn(move || assert!(!theirs.try_acquire())).join().unwrap();
    /// lock.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        let raw = self.raw();
        let taken = raw.try_acquire(Self::me());
        if taken && raw.levels() == 1 {
            self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
        }
        taken
    }

    /// Waits at most `timeout`. Python: `RLock.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiprocessing::RLock::new();
    /// let theirs = lock.clone();
    /// let _held = lock.lock();
    /// std::thread::spawn(move || assert!(!theirs.acquire_timeout(Duration::from_millis(10))))
    ///     .join()
    ///     .unwrap();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(deadline_after(timeout))
    }

    /// Releases one level; the last one frees the lock. Python: `RLock.release()`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `attempt to release recursive lock not owned by thread`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let refused = lock.release().unwrap_err();
    /// assert_eq!(refused.to_string(), "attempt to release recursive lock not owned by thread");
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        let raw = self.raw();
        let me = Self::me();
        if raw.recursion_count(me) == 1 {
            self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
        }
        raw.release(me).map_err(|_| Error::assertion(RLOCK_NOT_OWNED))
    }

    /// Releases every level at once, returning how many (for `Condition::wait`).
    pub(crate) fn release_all(&self) -> u32 {
        self.mem.word(OWNER_DIED).store(0, Ordering::Relaxed);
        self.raw().release_all(Self::me()).unwrap_or(0)
    }

    /// Takes the lock again with `levels` levels (after `release_all`).
    pub(crate) fn restore(&self, levels: u32) {
        let how = self.raw().restore(Self::me(), levels);
        let died = u32::from(how == Acquired::FromDeadOwner);
        self.mem.word(OWNER_DIED).store(died, Ordering::Relaxed);
    }

    /// Whether any thread holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let _held = lock.lock();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.word().holder().is_some()
    }

    /// How many times the calling thread holds it (0 if it does not).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let _a = lock.lock();
    /// let _b = lock.lock();
    /// assert_eq!(lock.recursion_count(), 2);
    /// ```
    pub fn recursion_count(&self) -> usize {
        self.raw().recursion_count(Self::me()) as usize
    }

    /// Whether the calling thread took the lock over from a holder that died.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// let _held = lock.lock();
    /// assert!(!lock.owner_died(), "taken from nobody");
    /// ```
    pub fn owner_died(&self) -> bool {
        self.is_owned() && self.mem.word(OWNER_DIED).load(Ordering::Relaxed) != 0
    }

    /// Acquires the lock (again, if this thread holds it) and returns a guard that
    /// releases one level when dropped: Python's `with rlock:`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = multiprocessing::RLock::new();
    /// {
    ///     let _outer = lock.lock(); // `with rlock:`
    ///     let _inner = lock.lock();
    /// }
    /// assert!(!lock.locked());
    /// ```
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard { lock: self }
    }
}

/// The guard of [`RLock::lock`]: releases one level when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl Default for RLock {
    fn default() -> RLock {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.word().holder() {
            None => f.write_str("<RLock(None, 0)>"),
            Some(holder) => {
                write!(f, "<RLock(tid {}, {})>", holder.id, self.raw().levels())
            }
        }
    }
}
