//! `Semaphore` and `BoundedSemaphore`: Python's counting semaphores.
//!
//! The count is an atomic integer; `acquire` decrements it when it is positive. Sleepers
//! wait on a separate futex word, `releases`, which every release bumps, and are counted in
//! `sleepers`, so that a release wakes threads only when some sleep. A sleeper re-reads the
//! count after announcing itself and sleeps only while `releases` has not moved, so no
//! release can slip between its check and its sleep.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::primitive::{AtomicU32, AtomicUsize, Ordering};
use crate::wait_word::{WaitWord, deadline_after};

pub(crate) const RELEASED_TOO_MANY: &str = "Semaphore released too many times";
pub(crate) const N_AT_LEAST_ONE: &str = "n must be one or more";

/// A counting semaphore: `acquire` waits while the count is zero, then decrements it;
/// `release` increments it.
///
/// Python: `threading.Semaphore(value=1)`. Releasing more than was acquired is allowed;
/// see [`BoundedSemaphore`] for the checked variant. A `usize` count cannot be negative,
/// so CPython's `semaphore initial value must be >= 0` cannot happen here.
///
/// # Examples
///
/// ```
/// use threading::Semaphore;
///
/// let slots = Semaphore::new(2);
/// assert!(slots.try_acquire());
/// assert!(slots.try_acquire());
/// assert!(!slots.try_acquire());
/// slots.release();
/// assert_eq!(slots.value(), 1);
/// ```
pub struct Semaphore {
    value: AtomicUsize,
    releases: WaitWord,
    sleepers: AtomicU32,
}

impl Semaphore {
    /// A semaphore with count `value`.
    pub fn new(value: usize) -> Semaphore {
        Semaphore {
            value: AtomicUsize::new(value),
            releases: WaitWord::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// Decrements the count, waiting while it is zero.
    ///
    /// Python: `sem.acquire()`.
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Decrements the count if it is positive, without waiting.
    ///
    /// Python: `sem.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        let mut value = self.value.load(Ordering::Relaxed);
        while value > 0 {
            match self.value.compare_exchange_weak(
                value,
                value - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => value = seen,
            }
        }
        false
    }

    /// Waits at most `timeout` to decrement the count; true if it did.
    ///
    /// Python: `sem.acquire(timeout=t)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        // A deadline too far away to represent is no deadline.
        self.try_acquire() || self.acquire_until(deadline_after(timeout))
    }

    /// Waits until `deadline` (`None`: forever) to decrement the count.
    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_acquire() {
                return true;
            }
            let seen = self.releases.load();
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let in_time = if self.value.load(Ordering::SeqCst) > 0 {
                true
            } else {
                self.releases.wait(seen, deadline)
            };
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            if !in_time {
                return self.try_acquire();
            }
        }
    }

    /// Increments the count by one, waking a waiter.
    ///
    /// Python: `sem.release()`.
    pub fn release(&self) {
        self.add(1);
    }

    /// Increments the count by `n`, waking up to `n` waiters.
    ///
    /// Python: `sem.release(n)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more` for `n == 0`.
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        self.add(n);
        Ok(())
    }

    fn add(&self, n: usize) {
        self.value.fetch_add(n, Ordering::SeqCst);
        self.wake(n);
    }

    fn wake(&self, n: usize) {
        self.releases.atomic().fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.releases.wake(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    /// The current count. Python: `sem._value`.
    pub fn value(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }

    /// Acquires and returns a guard that releases when dropped: Python's `with sem:`.
    pub fn lock(&self) -> SemaphoreGuard<'_> {
        self.acquire();
        SemaphoreGuard { semaphore: self }
    }
}

impl Default for Semaphore {
    /// CPython's default value, 1.
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

/// CPython's repr: `<threading.Semaphore at 0x…: value=3>`.
impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<threading.Semaphore at {:p}: value={}>", self, self.value())
    }
}

/// Releases a [`Semaphore`] when dropped; made by [`Semaphore::lock`].
#[derive(Debug)]
#[must_use = "the semaphore is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    semaphore: &'a Semaphore,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

/// A semaphore whose count may never exceed its initial value.
///
/// Python: `threading.BoundedSemaphore(value=1)`: catches releasing more often than
/// acquiring.
///
/// # Examples
///
/// ```
/// use threading::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire();
/// sem.release()?;
/// assert_eq!(sem.release().unwrap_err().to_string(), "Semaphore released too many times");
/// # Ok::<(), threading::Error>(())
/// ```
pub struct BoundedSemaphore {
    semaphore: Semaphore,
    initial: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with count and bound `value`.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore { semaphore: Semaphore::new(value), initial: value }
    }

    /// As [`Semaphore::acquire`].
    pub fn acquire(&self) {
        self.semaphore.acquire();
    }

    /// As [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        self.semaphore.try_acquire()
    }

    /// As [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.semaphore.acquire_timeout(timeout)
    }

    /// Increments the count by one.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Semaphore released too many times` if the count would exceed
    /// the initial value; the count is then unchanged.
    pub fn release(&self) -> Result<(), Error> {
        self.release_n(1)
    }

    /// Increments the count by `n`, all or nothing.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more`, or `Semaphore released too many
    /// times` (the count is then unchanged).
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        let initial = self.initial;
        self.semaphore
            .value
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                v.checked_add(n).filter(|&sum| sum <= initial)
            })
            .map_err(|_| Error::value(RELEASED_TOO_MANY))?;
        self.semaphore.wake(n);
        Ok(())
    }

    /// The current count.
    pub fn value(&self) -> usize {
        self.semaphore.value()
    }

    /// The initial value, which the count may not exceed.
    pub fn bound(&self) -> usize {
        self.initial
    }
}

impl Default for BoundedSemaphore {
    /// CPython's default value, 1.
    fn default() -> BoundedSemaphore {
        BoundedSemaphore::new(1)
    }
}

/// CPython's repr: `<threading.BoundedSemaphore at 0x…: value=2/3>`.
impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<threading.BoundedSemaphore at {:p}: value={}/{}>",
            self,
            self.value(),
            self.initial
        )
    }
}
