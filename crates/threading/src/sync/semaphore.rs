//! `Semaphore` and `BoundedSemaphore`: Python's counting semaphores. The state machine is
//! `pyconc_core::sync::Semaphore` (shared with `multiprocessing`'s semaphores) on a
//! private futex word; `BoundedSemaphore` is a `Semaphore` and its bound.
//!
//! The count is limited to [`SEMAPHORE_VALUE_MAX`] (2³¹ − 1); larger values saturate.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::error::N_AT_LEAST_ONE;
use crate::error::RELEASED_TOO_MANY;
use pyconc_core::sync::{Semaphore as RawSemaphore, WaitWord, deadline_after, initial_word};

/// The largest count a semaphore holds; `new` and `release` saturate there.
pub const SEMAPHORE_VALUE_MAX: usize = pyconc_core::sync::SEMAPHORE_VALUE_MAX;

/// A counting semaphore: `acquire` waits while the count is zero, then decrements it;
/// `release` increments it.
///
/// Python: `threading.Semaphore(value=1)`. Releasing more than was acquired is allowed;
/// see [`BoundedSemaphore`] for the checked variant. A `usize` count cannot be negative,
/// so CPython's `semaphore initial value must be >= 0` cannot happen here.
///
/// # Differences from CPython
/// - The count is a `usize`: CPython's `semaphore initial value must be >= 0` cannot
///   happen. `release(n)` is [`release_n`](Semaphore::release_n); CPython's private
///   `_value` is [`value`](Semaphore::value).
/// - `with sem:` is [`lock()`](Semaphore::lock).
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
    raw: RawSemaphore<WaitWord>,
}

impl Semaphore {
    /// A semaphore with count `value` (at most [`SEMAPHORE_VALUE_MAX`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(2);
    /// assert_eq!(slots.value(), 2);
    /// ```
    pub fn new(value: usize) -> Semaphore {
        Semaphore { raw: RawSemaphore::on(WaitWord::new(initial_word(value))) }
    }

    /// Decrements the count, waiting while it is zero.
    ///
    /// Python: `sem.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let slots = Arc::new(threading::Semaphore::new(0));
    /// let theirs = Arc::clone(&slots);
    /// let producer = threading::Thread::builder().start(move || theirs.release())?;
    /// slots.acquire(); // waits for the release
    /// producer.join()?;
    /// assert_eq!(slots.value(), 0);
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Decrements the count if it is positive, without waiting.
    ///
    /// Python: `sem.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(1);
    /// assert!(slots.try_acquire());
    /// assert!(!slots.try_acquire(), "count is zero");
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire()
    }

    /// Waits at most `timeout` to decrement the count; true if it did.
    ///
    /// Python: `sem.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let slots = threading::Semaphore::new(1);
    /// assert!(slots.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!slots.acquire_timeout(Duration::from_millis(10)));
    /// slots.release();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw.acquire_until(deadline_after(timeout))
    }

    /// Waits until `deadline` (`None`: forever) to decrement the count.
    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.raw.acquire_until(deadline)
    }

    /// Increments the count by one, waking a waiter.
    ///
    /// Python: `sem.release()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(1);
    /// slots.release();
    /// assert_eq!(slots.value(), 2, "an unbounded semaphore may exceed its initial value");
    /// ```
    pub fn release(&self) {
        self.add(1);
    }

    /// Increments the count by `n`, waking up to `n` waiters.
    ///
    /// Python: `sem.release(n)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more` for `n == 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(0);
    /// slots.release_n(3)?;
    /// assert_eq!(slots.value(), 3);
    /// assert_eq!(slots.release_n(0).unwrap_err().to_string(), "n must be one or more");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        self.add(n);
        Ok(())
    }

    fn add(&self, n: usize) {
        self.raw.release(n);
    }

    /// The current count. Python: `sem._value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(3);
    /// slots.acquire();
    /// assert_eq!(slots.value(), 2);
    /// ```
    pub fn value(&self) -> usize {
        self.raw.value()
    }

    /// Acquires and returns a guard that releases when dropped: Python's `with sem:`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = threading::Semaphore::new(1);
    /// {
    ///     let _slot = slots.lock(); // `with sem:`
    ///     assert_eq!(slots.value(), 0);
    /// }
    /// assert_eq!(slots.value(), 1);
    /// ```
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
    /// A bounded semaphore with count and bound `value` (at most
    /// [`SEMAPHORE_VALUE_MAX`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(2);
    /// assert_eq!((sem.value(), sem.bound()), (2, 2));
    /// ```
    pub fn new(value: usize) -> BoundedSemaphore {
        let value = value.min(SEMAPHORE_VALUE_MAX);
        BoundedSemaphore { semaphore: Semaphore::new(value), initial: value }
    }

    /// As [`Semaphore::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(1);
    /// sem.acquire();
    /// assert_eq!(sem.value(), 0);
    /// sem.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.semaphore.acquire();
    }

    /// As [`Semaphore::try_acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire());
    /// assert!(!sem.try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.semaphore.try_acquire()
    }

    /// As [`Semaphore::acquire_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = threading::BoundedSemaphore::new(1);
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.semaphore.acquire_timeout(timeout)
    }

    /// Increments the count by one.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Semaphore released too many times` if the count would exceed
    /// the initial value; the count is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(1);
    /// assert_eq!(sem.release().unwrap_err().to_string(), "Semaphore released too many times");
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.release_n(1)
    }

    /// Increments the count by `n`, all or nothing.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more`, or `Semaphore released too many
    /// times` (the count is then unchanged).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(3);
    /// sem.acquire();
    /// sem.acquire();
    /// assert!(sem.release_n(3).is_err(), "would exceed the bound: nothing released");
    /// assert_eq!(sem.value(), 1);
    /// sem.release_n(2)?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        if self.semaphore.raw.release_bounded(n, self.initial) {
            Ok(())
        } else {
            Err(Error::value(RELEASED_TOO_MANY))
        }
    }

    /// The current count.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(2);
    /// sem.acquire();
    /// assert_eq!(sem.value(), 1);
    /// ```
    pub fn value(&self) -> usize {
        self.semaphore.value()
    }

    /// The initial value, which the count may not exceed.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = threading::BoundedSemaphore::new(4);
    /// sem.acquire();
    /// assert_eq!(sem.bound(), 4);
    /// ```
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
