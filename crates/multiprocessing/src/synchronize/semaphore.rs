//! `Semaphore` and `BoundedSemaphore` across processes. The state machine is
//! `pyconc_core::sync::Semaphore` (shared with `threading`'s semaphores) on a
//! process-shared futex word in a page of shared memory: word 0 is the semaphore's word,
//! word 2 a `BoundedSemaphore`'s bound. `BoundedSemaphore` is a `Semaphore` and that bound.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyconc_core::sync::{Semaphore as RawSemaphore, SharedWord, initial_word};

use super::{deadline_after, shared_serde};
use crate::Error;
use crate::error::{N_AT_LEAST_ONE, RELEASED_TOO_MANY};
use crate::heap::{SendMem, SharedMemory};

const WORD: usize = 0;
const BOUND: usize = 2;

/// The largest count a semaphore holds (2³¹ − 1); `new` and `release` saturate there. The
/// same constant as `threading::SEMAPHORE_VALUE_MAX`.
pub const SEMAPHORE_VALUE_MAX: usize = pyconc_core::sync::SEMAPHORE_VALUE_MAX;

/// CPython's name for [`SEMAPHORE_VALUE_MAX`] (`multiprocessing.synchronize.SEM_VALUE_MAX`).
pub const SEM_VALUE_MAX: usize = SEMAPHORE_VALUE_MAX;

/// A counter of free slots that works across processes: Python's
/// `multiprocessing.Semaphore`.
///
/// # Differences from CPython
/// - `acquire(block, timeout)` is [`acquire`](Semaphore::acquire),
///   [`try_acquire`](Semaphore::try_acquire) and
///   [`acquire_timeout`](Semaphore::acquire_timeout); `release(n)` is
///   [`release_n`](Semaphore::release_n).
/// - [`value`](Semaphore::value) works (CPython's `get_value()`; not on macOS there).
///
/// # Examples
///
/// ```
/// use multiprocessing::Semaphore;
///
/// let slots = Semaphore::new(2);
/// assert!(slots.try_acquire() && slots.try_acquire());
/// assert!(!slots.try_acquire());
/// slots.release();
/// assert_eq!(slots.value(), 1);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    mem: Arc<SharedMemory>,
}

shared_serde!(Semaphore { mem });

impl Semaphore {
    /// A semaphore with `value` free slots (saturated at [`SEMAPHORE_VALUE_MAX`], as
    /// `threading::Semaphore::new`).
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`Semaphore::try_new`] returns that error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(2);
    /// assert_eq!(slots.value(), 2);
    /// ```
    pub fn new(value: usize) -> Semaphore {
        Semaphore::try_new(value).unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](Semaphore::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::try_new(1)?;
    /// assert!(slots.try_acquire());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new(value: usize) -> Result<Semaphore, Error> {
        let mem = SharedMemory::new(16)?;
        mem.word(WORD).store(initial_word(value), Ordering::Relaxed);
        mem.word(BOUND).store(initial_word(value) >> 1, Ordering::Relaxed);
        Ok(Semaphore { mem: Arc::new(mem) })
    }

    fn from_shared(mem: Arc<SharedMemory>) -> Semaphore {
        Semaphore { mem }
    }

    fn raw(&self) -> RawSemaphore<&SharedWord> {
        RawSemaphore::on(SharedWord::from_atomic(self.mem.word(WORD)))
    }

    /// Waits for a free slot and takes it. Python: `Semaphore.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, Semaphore};
    ///
    /// let done = Semaphore::new(0);
    /// let theirs = done.clone();
    /// let p = Process::new(move || theirs.release());
    /// p.start()?;
    /// done.acquire(); // waits for the child's release
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.raw().acquire_until(None);
    }

    /// Takes a free slot if there is one. Python: `Semaphore.acquire(block=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(1);
    /// assert!(slots.try_acquire());
    /// assert!(!slots.try_acquire(), "count is zero");
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire()
    }

    /// Waits at most `timeout` for a free slot; whether it took one.
    /// Python: `Semaphore.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let slots = multiprocessing::Semaphore::new(0);
    /// assert!(!slots.acquire_timeout(Duration::from_millis(10)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire_until(deadline_after(timeout))
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.raw().acquire_until(deadline)
    }

    /// Frees one slot. Python: `Semaphore.release()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(1);
    /// slots.release();
    /// assert_eq!(slots.value(), 2, "an unbounded semaphore may exceed its initial value");
    /// ```
    pub fn release(&self) {
        self.raw().release(1);
    }

    /// Frees `n` slots. Python: `Semaphore.release(n)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more` for `n == 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(0);
    /// slots.release_n(3)?;
    /// assert_eq!(slots.value(), 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        self.raw().release(n);
        Ok(())
    }

    /// The number of free slots. Python: `Semaphore.get_value()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(3);
    /// slots.acquire();
    /// assert_eq!(slots.value(), 2);
    /// ```
    pub fn value(&self) -> usize {
        self.raw().value()
    }

    /// `with sem:` — waits for a slot and frees it when the guard drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let slots = multiprocessing::Semaphore::new(1);
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

/// The guard of [`Semaphore::lock`]: frees the slot when dropped.
#[derive(Debug)]
#[must_use = "the slot is freed as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    semaphore: &'a Semaphore,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

/// A semaphore whose value may not grow past its initial value: Python's
/// `multiprocessing.BoundedSemaphore`.
#[derive(Clone)]
pub struct BoundedSemaphore {
    semaphore: Semaphore,
}

impl BoundedSemaphore {
    /// A semaphore with `value` free slots that refuses to go above `value` (saturated at
    /// [`SEMAPHORE_VALUE_MAX`]).
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`BoundedSemaphore::try_new`] returns that error
    /// instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(2);
    /// assert_eq!((sem.value(), sem.bound()), (2, 2));
    /// ```
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore::try_new(value)
            .unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](BoundedSemaphore::new), returning the OS's refusal as an error.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::try_new(1)?;
    /// assert_eq!(sem.bound(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new(value: usize) -> Result<BoundedSemaphore, Error> {
        Ok(BoundedSemaphore { semaphore: Semaphore::try_new(value)? })
    }

    /// As [`Semaphore::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(1);
    /// sem.acquire();
    /// assert_eq!(sem.value(), 0);
    /// sem.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.semaphore.acquire();
    }

    /// As [`Semaphore::try_acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(1);
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
    /// let sem = multiprocessing::BoundedSemaphore::new(1);
    /// assert!(sem.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.semaphore.acquire_timeout(timeout)
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.semaphore.acquire_until(deadline)
    }

    /// Frees one slot. Python: `BoundedSemaphore.release()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `semaphore or lock released too many times` above the bound.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(1);
    /// let refused = sem.release().unwrap_err();
    /// assert_eq!(refused.to_string(), "semaphore or lock released too many times");
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.release_n(1)
    }

    /// Frees `n` slots, unless that would pass the bound.
    ///
    /// # Errors
    /// `n must be one or more`; `semaphore or lock released too many times`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(3);
    /// sem.acquire();
    /// sem.acquire();
    /// assert!(sem.release_n(3).is_err(), "would exceed the bound: nothing released");
    /// assert_eq!(sem.value(), 1);
    /// sem.release_n(2)?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        if self.semaphore.raw().release_bounded(n, self.bound()) {
            Ok(())
        } else {
            Err(Error::value(RELEASED_TOO_MANY))
        }
    }

    /// The number of free slots.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(2);
    /// sem.acquire();
    /// assert_eq!(sem.value(), 1);
    /// ```
    pub fn value(&self) -> usize {
        self.semaphore.value()
    }

    /// The bound: the initial value.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = multiprocessing::BoundedSemaphore::new(4);
    /// sem.acquire();
    /// assert_eq!(sem.bound(), 4);
    /// ```
    pub fn bound(&self) -> usize {
        self.semaphore.mem.word(BOUND).load(Ordering::Relaxed) as usize
    }
}

impl serde::Serialize for BoundedSemaphore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(
            &(SendMem(&self.semaphore.mem, "BoundedSemaphore"),),
            serializer,
        )
    }
}

impl<'de> serde::Deserialize<'de> for BoundedSemaphore {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (mem,) = <(SharedMemory,)>::deserialize(deserializer)?;
        Ok(BoundedSemaphore { semaphore: Semaphore::from_shared(Arc::new(mem)) })
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Semaphore(value={})>", self.value())
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<BoundedSemaphore(value={}, maxvalue={})>", self.value(), self.bound())
    }
}
