//! `Lock`: Python's `threading.Lock`, a mutual-exclusion lock that any thread may release.
//!
//! The state machine is the synchronisation core's `RawLock` (one compare-and-swap per
//! uncontended acquire and release, a short spin, then a futex sleep), with the
//! [`Fair`] owner: anonymous (any thread may release) and fair.
//!
//! # Fairness
//!
//! Normally a released lock is up for grabs: a running thread may take it before the
//! woken sleeper gets the CPU (barging), which is fastest. But a thread that releases and
//! re-acquires in a loop could then starve a sleeper forever. So, as parking_lot does, once
//! at least [`FAIR_INTERVAL`] has passed since this lock last did so, `release` hands the
//! lock directly to a sleeper instead: the lock stays held and only a woken waiter may
//! take it. A waiter therefore waits at most about that long plus one critical section,
//! whatever the other threads do. `tests/conformance/lock.rs`
//! (`a_waiter_is_not_starved_by_a_releasing_reacquirer`, run with `--nocapture`) measures
//! the worst of 20 acquires against a thread that releases and re-acquires in a tight
//! loop: 3–66 µs on the reference 2-core machine.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::error::RELEASE_UNLOCKED;
pub use pyconc_core::sync::FAIR_INTERVAL;
use pyconc_core::sync::{Fair, RawLock, WaitWord, deadline_after};

/// A primitive lock: held by nobody or by one thread, released by any thread.
///
/// Python: `threading.Lock` (`_thread.lock`). Unlike `std::sync::Mutex` it guards no data
/// and has no owner: one thread may acquire it and another release it (CPython semantics).
/// It is not reentrant: the holder's second `acquire` blocks.
///
/// # Differences from CPython
/// - `acquire(blocking, timeout)` is three methods: [`acquire`](Lock::acquire),
///   [`try_acquire`](Lock::try_acquire) and [`acquire_timeout`](Lock::acquire_timeout); a
///   negative timeout (CPython's `ValueError`) cannot be expressed, and timeouts above
///   [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) are clamped instead of refused.
/// - `with lock:` is [`lock()`](Lock::lock), a guard that releases when dropped.
/// - Fair under contention: a waiter is never starved for longer than about
///   [`FAIR_INTERVAL`] (CPython's lock is whatever the OS's semaphore does).
///
/// # Examples
///
/// ```
/// use threading::Lock;
///
/// let lock = Lock::new();
/// {
///     let _held = lock.lock(); // `with lock:`
///     assert!(lock.locked());
///     assert!(!lock.try_acquire());
/// }
/// assert!(!lock.locked());
/// assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
/// ```
pub struct Lock {
    raw: RawLock<WaitWord, Fair>,
}

impl Lock {
    /// A new, unlocked lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Lock {
        Lock { raw: RawLock::new(WaitWord::new(0), Fair::new()) }
    }

    /// Waits until the lock is free and takes it.
    ///
    /// Python: `lock.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(threading::Lock::new());
    /// lock.acquire();
    /// let theirs = Arc::clone(&lock);
    /// // No owner: another thread may release it.
    /// threading::Thread::builder().start(move || theirs.release().unwrap())?.join()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), threading::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) {
        self.raw.acquire((), None);
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// Python: `lock.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::Lock::new();
    /// assert!(lock.try_acquire());
    /// assert!(!lock.try_acquire(), "not reentrant");
    /// lock.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire(())
    }

    /// Waits at most `timeout` for the lock; true if it was taken.
    ///
    /// Python: `lock.acquire(timeout=t)`. A timeout above
    /// [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) is clamped (CPython raises `OverflowError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = threading::Lock::new();
    /// assert!(lock.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!lock.acquire_timeout(Duration::from_millis(10)), "held: times out");
    /// lock.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        // A deadline too far away to represent is no deadline.
        self.acquire_until(deadline_after(timeout))
    }

    /// Waits for the lock until `deadline` (`None`: forever); true if it was taken.
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.raw.acquire((), deadline).taken()
    }

    /// Releases the lock; any thread may do this.
    ///
    /// Python: `lock.release()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `release unlocked lock` when it is not held.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::Lock::new();
    /// lock.acquire();
    /// lock.release()?;
    /// assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
    /// # Ok::<(), threading::Error>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<(), Error> {
        if self.raw.release() { Ok(()) } else { Err(Error::runtime(RELEASE_UNLOCKED)) }
    }

    /// Whether the lock is held.
    ///
    /// Python: `lock.locked()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::Lock::new();
    /// let guard = lock.lock();
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.raw.locked()
    }

    /// Acquires the lock and returns a guard that releases it when dropped: Python's
    /// `with lock:`.
    ///
    /// If another thread released the lock meanwhile (allowed: the lock has no owner), the
    /// guard's drop finds it unlocked and does nothing, where CPython's `__exit__` would
    /// raise `release unlocked lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(threading::Lock::new());
    /// let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    /// let workers: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let (lock, total) = (Arc::clone(&lock), Arc::clone(&total));
    ///         threading::Thread::new(move || {
    ///             let _held = lock.lock(); // `with lock:`
    ///             let seen = total.load(std::sync::atomic::Ordering::Relaxed);
    ///             total.store(seen + 1, std::sync::atomic::Ordering::Relaxed);
    ///         })
    ///     })
    ///     .collect();
    /// for w in &workers { w.start()?; }
    /// threading::joinall(&workers)?;
    /// assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 4);
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire();
        LockGuard { lock: self }
    }
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

/// CPython's repr: `<unlocked _thread.lock object>` / `<locked _thread.lock object>`.
impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.locked() { "locked" } else { "unlocked" };
        write!(f, "<{state} _thread.lock object at {:p}>", self)
    }
}

/// Releases a [`Lock`] when dropped; made by [`Lock::lock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("lock", self.lock).finish()
    }
}
