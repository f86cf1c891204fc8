//! `Semaphore` and `BoundedSemaphore` across processes.
//!
//! Words of the shared page: 0 the value, 1 the number of sleepers (a release wakes only
//! when someone sleeps), 2 the bound (`BoundedSemaphore`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{deadline_after, shared_serde};
use crate::error::RELEASED_TOO_MANY;
use crate::error::{N_AT_LEAST_ONE, VALUE_OUT_OF_RANGE};
use crate::heap::SharedMemory;
use crate::{Error, sys};

const VALUE: usize = 0;
const SLEEPERS: usize = 1;
const BOUND: usize = 2;

/// The largest value: CPython's `SEM_VALUE_MAX` on Linux.
pub const SEM_VALUE_MAX: usize = i32::MAX as usize;

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
    /// A semaphore with `value` free slots (at most [`SEM_VALUE_MAX`]).
    ///
    /// # Panics
    /// If the OS refuses shared memory, or `value` is over [`SEM_VALUE_MAX`];
    /// [`Semaphore::try_new`] returns those errors instead.
    pub fn new(value: usize) -> Semaphore {
        Semaphore::try_new(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`new`](Semaphore::new), returning errors.
    ///
    /// # Errors
    /// [`Error::ValueError`] `value out of range`; [`Error::OsError`].
    pub fn try_new(value: usize) -> Result<Semaphore, Error> {
        Ok(Semaphore { mem: new_semaphore(value, value)? })
    }

    fn from_shared(mem: Arc<SharedMemory>) -> Semaphore {
        Semaphore { mem }
    }

    /// Takes a slot, waiting for one. Python: `Semaphore.acquire()`.
    pub fn acquire(&self) {
        acquire(&self.mem, None);
    }

    /// Takes a slot if one is free. Python: `Semaphore.acquire(False)`.
    pub fn try_acquire(&self) -> bool {
        try_acquire(&self.mem)
    }

    /// Waits at most `timeout` for a slot. Python: `Semaphore.acquire(timeout=t)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        acquire(&self.mem, deadline_after(timeout))
    }

    /// Frees a slot. Python: `Semaphore.release()`.
    pub fn release(&self) {
        let _ = release(&self.mem, 1, SEM_VALUE_MAX as u32);
    }

    /// Frees `n` slots.
    ///
    /// # Errors
    /// [`Error::ValueError`] `n must be one or more`.
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        let _ = release(&self.mem, n.min(SEM_VALUE_MAX) as u32, SEM_VALUE_MAX as u32);
        Ok(())
    }

    /// The number of free slots. Python: `Semaphore.get_value()`.
    pub fn value(&self) -> usize {
        self.mem.word(VALUE).load(Ordering::Relaxed) as usize
    }
}

/// A semaphore whose value may not grow past its initial value: Python's
/// `multiprocessing.BoundedSemaphore`.
#[derive(Clone)]
pub struct BoundedSemaphore {
    mem: Arc<SharedMemory>,
}

shared_serde!(BoundedSemaphore { mem });

impl BoundedSemaphore {
    /// A bounded semaphore with `value` free slots, and `value` as its bound.
    ///
    /// # Panics
    /// As [`Semaphore::new`]; [`BoundedSemaphore::try_new`] returns the errors.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore::try_new(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`new`](BoundedSemaphore::new), returning errors.
    ///
    /// # Errors
    /// As [`Semaphore::try_new`].
    pub fn try_new(value: usize) -> Result<BoundedSemaphore, Error> {
        Ok(BoundedSemaphore { mem: new_semaphore(value, value)? })
    }

    fn from_shared(mem: Arc<SharedMemory>) -> BoundedSemaphore {
        BoundedSemaphore { mem }
    }

    /// As [`Semaphore::acquire`].
    pub fn acquire(&self) {
        acquire(&self.mem, None);
    }

    /// As [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        try_acquire(&self.mem)
    }

    /// As [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        acquire(&self.mem, deadline_after(timeout))
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        acquire(&self.mem, deadline)
    }

    /// Frees a slot.
    ///
    /// # Errors
    /// [`Error::ValueError`] `semaphore or lock released too many times` past the bound.
    pub fn release(&self) -> Result<(), Error> {
        self.release_n(1)
    }

    /// Frees `n` slots.
    ///
    /// # Errors
    /// `n must be one or more`; `semaphore or lock released too many times`.
    pub fn release_n(&self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::value(N_AT_LEAST_ONE));
        }
        let bound = self.mem.word(BOUND).load(Ordering::Relaxed);
        release(&self.mem, n.min(SEM_VALUE_MAX) as u32, bound)
    }

    /// The number of free slots.
    pub fn value(&self) -> usize {
        self.mem.word(VALUE).load(Ordering::Relaxed) as usize
    }

    /// The bound.
    pub fn bound(&self) -> usize {
        self.mem.word(BOUND).load(Ordering::Relaxed) as usize
    }
}

fn new_semaphore(value: usize, bound: usize) -> Result<Arc<SharedMemory>, Error> {
    if value > SEM_VALUE_MAX || bound > SEM_VALUE_MAX {
        return Err(Error::value(VALUE_OUT_OF_RANGE));
    }
    let mem = SharedMemory::new(16)?;
    mem.word(VALUE).store(value as u32, Ordering::Relaxed);
    mem.word(BOUND).store(bound as u32, Ordering::Relaxed);
    Ok(Arc::new(mem))
}

fn try_acquire(mem: &SharedMemory) -> bool {
    let value = mem.word(VALUE);
    let mut current = value.load(Ordering::Relaxed);
    while current > 0 {
        match value.compare_exchange_weak(
            current,
            current - 1,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

fn acquire(mem: &SharedMemory, deadline: Option<Instant>) -> bool {
    let value: &AtomicU32 = mem.word(VALUE);
    let sleepers = mem.word(SLEEPERS);
    loop {
        if try_acquire(mem) {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        sleepers.fetch_add(1, Ordering::SeqCst);
        // Sleeps only while the value is still 0 (a release in between changed it).
        if value.load(Ordering::SeqCst) == 0 {
            sys::futex_wait(value, 0, deadline);
        }
        sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn release(mem: &SharedMemory, n: u32, bound: u32) -> Result<(), Error> {
    let value = mem.word(VALUE);
    let mut current = value.load(Ordering::Relaxed);
    loop {
        if u64::from(current) + u64::from(n) > u64::from(bound) {
            return Err(Error::value(RELEASED_TOO_MANY));
        }
        match value.compare_exchange_weak(current, current + n, Ordering::SeqCst, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(now) => current = now,
        }
    }
    if mem.word(SLEEPERS).load(Ordering::SeqCst) > 0 {
        sys::futex_wake(value, n.min(i32::MAX as u32) as i32);
    }
    Ok(())
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
