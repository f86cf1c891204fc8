//! `Barrier` across processes: the synchronisation core's `RawBarrier` (the state machine
//! of `threading::Barrier` too, as CPython's `multiprocessing.Barrier` is its
//! `threading.Barrier` over shared state) over words in shared memory, guarded by an
//! internal robust [`Lock`] (a process that dies inside the barrier's short critical
//! section does not wedge it).
//!
//! Words: 0 how many wait in the current generation, 1 the generation (waiters sleep on
//! it), 2 broken (0/1), 3 parties, 4 the ring of the last 32 generations' outcomes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Lock, deadline_after};
use crate::Error;
use crate::error::PARTIES as PARTIES_ZERO;
use crate::heap::{SendMem, SharedMemory};
use pyconc_core::sync::{BarrierLock, RawBarrier, SharedWord};

const COUNT: usize = 0;
const GENERATION: usize = 1;
const BROKEN: usize = 2;
const PARTIES: usize = 3;
const OUTCOMES: usize = 4;

type Action = Arc<dyn Fn() + Send + Sync + 'static>;

/// A barrier for a fixed number of threads or processes: Python's
/// `multiprocessing.Barrier`.
///
/// The action ([`with_action`](Barrier::with_action)) runs in the process of the last
/// arriver; it is a closure of this process, so a spawn or forkserver child, which
/// receives the barrier serialized, has none (give it one with `with_action`).
///
/// # Differences from CPython
/// - The action is a closure of the process that made the barrier; a spawn or forkserver
///   child, which receives the barrier serialized, has none unless it sets one.
/// - `parties == 0` is refused with `parties must be > 0`; the broken error's text is
///   `broken barrier` (CPython's is empty).
///
/// # Examples
///
/// ```
/// use multiprocessing::{Barrier, Process};
///
/// let barrier = Barrier::new(2);
/// let theirs = barrier.clone();
/// let p = Process::new(move || {
///     theirs.wait().unwrap();
/// });
/// p.start()?;
/// barrier.wait()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    lock: Lock,
    mem: Arc<SharedMemory>,
    action: Option<Action>,
    timeout: Option<Duration>,
}

impl Barrier {
    /// A barrier for `parties` parties. With `parties == 0` every `wait` fails with
    /// `parties must be > 0`, as `threading::Barrier::new(0)`'s (CPython 3.12's check, at
    /// wait: 3.11 would hang).
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`Barrier::try_new`] returns that error (and
    /// refuses 0 parties) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = multiprocessing::Barrier::new(1);
    /// assert_eq!(barrier.wait()?, 0, "one party: never waits");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(parties: usize) -> Barrier {
        Barrier::build(parties).unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](Barrier::new), returning errors.
    ///
    /// # Errors
    /// [`Error::ValueError`] `parties must be > 0` (where CPython would hang);
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let refused = multiprocessing::Barrier::try_new(0).unwrap_err();
    /// assert_eq!(refused.to_string(), "parties must be > 0");
    /// ```
    pub fn try_new(parties: usize) -> Result<Barrier, Error> {
        if parties == 0 {
            return Err(Error::value(PARTIES_ZERO));
        }
        Barrier::build(parties)
    }

    /// A barrier for `parties` (at most `u32::MAX`); with 0, every `wait` fails, as
    /// `threading::Barrier::new(0)`'s.
    fn build(parties: usize) -> Result<Barrier, Error> {
        let mem = SharedMemory::new(32)?;
        mem.word(PARTIES).store(parties.min(u32::MAX as usize) as u32, Ordering::Relaxed);
        Ok(Barrier { lock: Lock::internal()?, mem: Arc::new(mem), action: None, timeout: None })
    }

    /// Runs `action` in the last arriver before the others are released.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let rounds = Arc::new(AtomicUsize::new(0));
    /// let r = Arc::clone(&rounds);
    /// let barrier = multiprocessing::Barrier::new(1).with_action(move || {
    ///     r.fetch_add(1, Ordering::SeqCst);
    /// });
    /// barrier.wait()?;
    /// barrier.wait()?;
    /// assert_eq!(rounds.load(Ordering::SeqCst), 2, "once per cycle, in the last arriver");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Arc::new(action));
        self
    }

    /// The default timeout of [`wait`](Barrier::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiprocessing::Barrier::new(2).with_timeout(Duration::from_millis(10));
    /// assert!(matches!(barrier.wait(), Err(multiprocessing::Error::BrokenBarrierError)));
    /// assert!(barrier.broken(), "a timeout breaks the barrier");
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        self.mem.word(index)
    }

    fn raw(&self) -> RawBarrier<'_, &SharedWord, Lock> {
        RawBarrier {
            lock: &self.lock,
            count: self.word(COUNT),
            generation: SharedWord::from_atomic(self.word(GENERATION)),
            broken: self.word(BROKEN),
            outcomes: self.word(OUTCOMES),
            parties: self.word(PARTIES).load(Ordering::Relaxed),
        }
    }

    /// Waits until `parties` parties wait; returns this party's arrival index
    /// (`0..parties`). Python: `Barrier.wait()`.
    ///
    /// # Errors
    /// [`Error::BrokenBarrierError`] if the barrier is or becomes broken (a timeout, an
    /// `abort`, a `reset` while waiting, a panicking action).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Barrier, Process};
    ///
    /// let barrier = Barrier::new(3);
    /// let children: Vec<Process> = (0..2)
    ///     .map(|_| {
    ///         let b = barrier.clone();
    ///         Process::new(move || {
    ///             b.wait().unwrap();
    ///         })
    ///     })
    ///     .collect();
    /// for child in &children {
    ///     child.start()?;
    /// }
    /// let index = barrier.wait()?;
    /// assert!(index < 3);
    /// for child in &children {
    ///     child.join()?;
    /// }
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize, Error> {
        self.wait_until(self.timeout.and_then(deadline_after))
    }

    /// As [`wait`](Barrier::wait) with its own timeout. Python: `Barrier.wait(timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Barrier::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiprocessing::Barrier::new(2);
    /// let late = barrier.wait_timeout(Duration::from_millis(10));
    /// assert!(matches!(late, Err(multiprocessing::Error::BrokenBarrierError)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, Error> {
        self.wait_until(deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, Error> {
        if self.word(PARTIES).load(Ordering::Relaxed) == 0 {
            return Err(Error::value(PARTIES_ZERO));
        }
        let action = self.action.as_deref().map(|action| action as &dyn Fn());
        match self.raw().wait(action, deadline) {
            Ok(index) => Ok(index as usize),
            Err(_broken) => Err(Error::BrokenBarrierError),
        }
    }

    /// Returns the barrier to its initial state; parties waiting now get the broken
    /// error. Python: `Barrier.reset()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = multiprocessing::Barrier::new(2);
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// ```
    pub fn reset(&self) {
        self.raw().reset();
    }

    /// Breaks the barrier: waiting and future `wait`s fail until [`reset`](Barrier::reset).
    /// Python: `Barrier.abort()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = multiprocessing::Barrier::new(2);
    /// barrier.abort();
    /// assert!(matches!(barrier.wait(), Err(multiprocessing::Error::BrokenBarrierError)));
    /// ```
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// The number of parties. Python: `Barrier.parties`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::Barrier::new(3).parties(), 3);
    /// ```
    pub fn parties(&self) -> usize {
        self.word(PARTIES).load(Ordering::Relaxed) as usize
    }

    /// How many parties wait now. Python: `Barrier.n_waiting`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = multiprocessing::Barrier::new(2);
    /// let theirs = barrier.clone();
    /// let waiter = std::thread::spawn(move || theirs.wait());
    /// while barrier.n_waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// barrier.wait()?;
    /// waiter.join().unwrap()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.raw().n_waiting() as usize
    }

    /// Whether the barrier is broken. Python: `Barrier.broken`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = multiprocessing::Barrier::new(2);
    /// assert!(!barrier.broken());
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.raw().broken()
    }
}

/// The barrier's internal lock: held only for a few word updates.
impl BarrierLock for Lock {
    fn acquire(&self) {
        Lock::acquire(self);
    }

    fn release(&self) {
        let _ = Lock::release(self);
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Barrier(parties={}, waiting={}, broken={})>",
            self.parties(),
            self.n_waiting(),
            self.broken()
        )
    }
}

impl serde::Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&SendMem(self.lock.shared_mem(), "Barrier"))?;
        tuple.serialize_element(&SendMem(&self.mem, "Barrier"))?;
        tuple.serialize_element(&self.timeout)?;
        tuple.end()
    }
}

impl<'de> serde::Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Barrier, D::Error> {
        let (lock, mem, timeout) =
            <(SharedMemory, SharedMemory, Option<Duration>)>::deserialize(deserializer)?;
        Ok(Barrier {
            lock: Lock::internal_from_shared(Arc::new(lock)),
            mem: Arc::new(mem),
            action: None,
            timeout,
        })
    }
}
