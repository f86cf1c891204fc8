//! `Semaphore` and `BoundedSemaphore`: Python's counting semaphores.
//!
//! One futex word: the count in bits 1–31 and, in bit 0, `SLEEPERS` — some thread may
//! sleep on the word. `acquire` decrements the count by compare-and-swap when it is
//! positive, else sets `SLEEPERS` and sleeps while the word is unchanged. `release` adds to
//! the count and clears `SLEEPERS` in one atomic step and, if it was set, wakes every
//! sleeper; those that find the count at zero again set the bit and sleep on. Keeping count
//! and flag in one word leaves no window between a sleeper's check and its sleep.
//!
//! The count is limited to [`SEMAPHORE_VALUE_MAX`] (2³¹ − 1); larger values saturate.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::error::N_AT_LEAST_ONE;
use crate::error::RELEASED_TOO_MANY;
use crate::primitive::Ordering;
use crate::wait_word::{WaitWord, deadline_after};

const SLEEPERS: u32 = 1;
const ONE: u32 = 2;

/// The largest count a semaphore holds; `new` and `release` saturate there.
pub const SEMAPHORE_VALUE_MAX: usize = (u32::MAX >> 1) as usize;

fn count_of(word: u32) -> usize {
    (word >> 1) as usize
}

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
    word: WaitWord,
}

impl Semaphore {
    /// A semaphore with count `value` (at most [`SEMAPHORE_VALUE_MAX`]).
    pub fn new(value: usize) -> Semaphore {
        let value = value.min(SEMAPHORE_VALUE_MAX) as u32;
        Semaphore { word: WaitWord::new(value << 1) }
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
        let word = self.word.atomic();
        let mut state = word.load(Ordering::Relaxed);
        while state >= ONE {
            match word.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => state = seen,
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
        let word = self.word.atomic();
        loop {
            if self.try_acquire() {
                return true;
            }
            let state = word.fetch_or(SLEEPERS, Ordering::Acquire) | SLEEPERS;
            if state >= ONE {
                continue; // released meanwhile
            }
            if !self.word.wait(state, deadline) {
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
        let add = n.min(SEMAPHORE_VALUE_MAX) as u32;
        let old = self
            .word
            .atomic()
            .fetch_update(Ordering::Release, Ordering::Relaxed, |w| {
                let count = (w >> 1).saturating_add(add).min(SEMAPHORE_VALUE_MAX as u32);
                Some(count << 1)
            })
            .unwrap_or_else(|w| w);
        self.wake_if_sleepers(old);
    }

    /// Wakes the sleepers if the word before the release said there were any.
    fn wake_if_sleepers(&self, old: u32) {
        if old & SLEEPERS != 0 {
            self.word.wake_all();
        }
    }

    /// The current count. Python: `sem._value`.
    pub fn value(&self) -> usize {
        count_of(self.word.load())
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
    /// A bounded semaphore with count and bound `value` (at most
    /// [`SEMAPHORE_VALUE_MAX`]).
    pub fn new(value: usize) -> BoundedSemaphore {
        let value = value.min(SEMAPHORE_VALUE_MAX);
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
        let old = self
            .semaphore
            .word
            .atomic()
            .fetch_update(Ordering::Release, Ordering::Relaxed, |w| {
                count_of(w)
                    .checked_add(n)
                    .filter(|&sum| sum <= initial)
                    .map(|sum| (sum as u32) << 1)
            })
            .map_err(|_| Error::value(RELEASED_TOO_MANY))?;
        self.semaphore.wake_if_sleepers(old);
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
