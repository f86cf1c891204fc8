//! `Barrier`: Python's `threading.Barrier`, a rendezvous point for a fixed number of
//! threads, reusable cycle after cycle.
//!
//! The state machine is the synchronisation core's `RawBarrier` (the one
//! `multiprocessing::Barrier` runs too, as CPython's `multiprocessing.Barrier` is
//! `threading.Barrier` over shared state): a generation counter that waiters sleep on,
//! advanced by the last arrival, `reset` or `abort`, with a record of which generations
//! ended broken.

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::error::PARTIES;
use pyconc_core::sync::primitive::AtomicU32;
use pyconc_core::sync::{Anonymous, RawBarrier, RawLock, WaitWord, deadline_after};

type Action = Box<dyn Fn() + Send + Sync + 'static>;

/// A barrier for `parties` threads: each `wait` blocks until all have called it.
///
/// Python: `threading.Barrier(parties, action=None, timeout=None)`. `wait` returns the
/// arrival index, `0..parties`; the last arrival runs the action before anyone goes on.
///
/// # Differences from CPython
/// - `parties == 0` makes every `wait` fail with `parties must be > 0` (CPython 3.12's
///   check, at wait rather than construction: 3.11 would hang).
/// - The broken error's text is `broken barrier` (CPython's is empty).
/// - A panicking action gives its thread the broken-barrier error too (CPython re-raises
///   the action's exception there).
/// - A thread arriving for the next cycle does not wait for the previous cycle's threads
///   to leave (CPython's "draining" state): generations keep the cycles apart.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use threading::{Barrier, Thread};
///
/// let barrier = Arc::new(Barrier::new(3).with_action(|| println!("all three arrived")));
/// let threads: Vec<Thread> = (0..3)
///     .map(|_| {
///         let b = Arc::clone(&barrier);
///         Thread::new(move || {
///             let index = b.wait().unwrap();
///             assert!(index < 3);
///         })
///     })
///     .collect();
/// for t in &threads { t.start()?; }
/// threading::joinall(&threads)?;
/// # Ok::<(), threading::Error>(())
/// ```
pub struct Barrier {
    parties: usize,
    action: Option<Action>,
    timeout: Option<Duration>,
    /// The words of [`RawBarrier`].
    lock: RawLock<WaitWord, Anonymous>,
    count: AtomicU32,
    generation: WaitWord,
    broken: AtomicU32,
    outcomes: AtomicU32,
}

impl Barrier {
    /// A barrier for `parties` threads, without action or default timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = threading::Barrier::new(1);
    /// assert_eq!(barrier.wait()?, 0, "one party: never waits");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn new(parties: usize) -> Barrier {
        Barrier {
            parties,
            action: None,
            timeout: None,
            lock: RawLock::new(WaitWord::new(0), Anonymous),
            count: AtomicU32::new(0),
            generation: WaitWord::new(0),
            broken: AtomicU32::new(0),
            outcomes: AtomicU32::new(0),
        }
    }

    /// As [`Barrier::new`], refusing `parties == 0` (CPython 3.12+).
    ///
    /// # Errors
    /// [`Error::ValueError`] `parties must be > 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(threading::Barrier::try_new(0).unwrap_err().to_string(), "parties must be > 0");
    /// assert!(threading::Barrier::try_new(2).is_ok());
    /// ```
    pub fn try_new(parties: usize) -> Result<Barrier, Error> {
        if parties == 0 {
            return Err(Error::value(PARTIES));
        }
        Ok(Barrier::new(parties))
    }

    /// Runs `action` in the last arriving thread of each cycle, before the others are
    /// released. Python: `Barrier(n, action=f)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let rounds = Arc::new(AtomicUsize::new(0));
    /// let r = Arc::clone(&rounds);
    /// let barrier = threading::Barrier::new(1).with_action(move || {
    ///     r.fetch_add(1, Ordering::SeqCst);
    /// });
    /// barrier.wait()?;
    /// barrier.wait()?;
    /// assert_eq!(rounds.load(Ordering::SeqCst), 2, "once per cycle");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Box::new(action));
        self
    }

    /// The timeout of [`wait`](Barrier::wait). Python: `Barrier(n, timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = threading::Barrier::new(2).with_timeout(Duration::from_millis(10));
    /// assert!(matches!(barrier.wait(), Err(threading::Error::BrokenBarrierError)));
    /// assert!(barrier.broken(), "a timeout breaks the barrier");
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Barrier {
        self.timeout = Some(timeout);
        self
    }

    fn raw(&self) -> RawBarrier<'_, &WaitWord, RawLock<WaitWord, Anonymous>> {
        RawBarrier {
            lock: &self.lock,
            count: &self.count,
            generation: &self.generation,
            broken: &self.broken,
            outcomes: &self.outcomes,
            parties: u32::try_from(self.parties).unwrap_or(u32::MAX),
        }
    }

    /// Waits until all parties have arrived (at most the default timeout, if one was set);
    /// returns this thread's arrival index.
    ///
    /// Python: `barrier.wait()`.
    ///
    /// # Errors
    /// [`Error::BrokenBarrierError`] when the barrier is or gets broken or reset;
    /// [`Error::ValueError`] `parties must be > 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let barrier = Arc::new(threading::Barrier::new(2));
    /// let theirs = Arc::clone(&barrier);
    /// let t = threading::Thread::builder().start(move || {
    ///     theirs.wait().unwrap();
    /// })?;
    /// let index = barrier.wait()?;
    /// assert!(index < 2);
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize, Error> {
        self.wait_inner(self.timeout)
    }

    /// As [`wait`](Barrier::wait) with an explicit timeout; a timeout breaks the barrier
    /// for every waiter.
    ///
    /// # Errors
    /// As [`wait`](Barrier::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = threading::Barrier::new(2);
    /// let late = barrier.wait_timeout(Duration::from_millis(10));
    /// assert!(matches!(late, Err(threading::Error::BrokenBarrierError)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, Error> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        if self.parties == 0 {
            return Err(Error::value(PARTIES));
        }
        let action = self.action.as_deref().map(|action| action as &dyn Fn());
        match self.raw().wait(action, timeout.and_then(deadline_after)) {
            Ok(index) => Ok(index as usize),
            Err(_broken) => Err(Error::BrokenBarrierError),
        }
    }

    /// Returns the barrier to its initial state; threads waiting now get the broken
    /// error. Python: `barrier.reset()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = threading::Barrier::new(2);
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// ```
    pub fn reset(&self) {
        self.raw().reset();
    }

    /// Breaks the barrier: current and future waits fail until [`reset`](Barrier::reset).
    /// Python: `barrier.abort()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = threading::Barrier::new(2);
    /// barrier.abort();
    /// assert!(matches!(barrier.wait(), Err(threading::Error::BrokenBarrierError)));
    /// ```
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// The number of threads needed to pass. Python: `barrier.parties`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(threading::Barrier::new(3).parties(), 3);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of threads waiting in the current cycle (0 once it was released, reset
    /// or broken). Python: `barrier.n_waiting`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let barrier = Arc::new(threading::Barrier::new(2));
    /// let theirs = Arc::clone(&barrier);
    /// let t = threading::Thread::builder().start(move || {
    ///     theirs.wait().unwrap();
    /// })?;
    /// while barrier.n_waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// barrier.wait()?;
    /// t.join()?;
    /// assert_eq!(barrier.n_waiting(), 0);
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.raw().n_waiting() as usize
    }

    /// Whether the barrier is broken. Python: `barrier.broken`.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = threading::Barrier::new(2);
    /// assert!(!barrier.broken());
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.raw().broken()
    }
}

/// CPython's repr: `<threading.Barrier at 0x…: waiters=2/3>` or `…: broken>`.
impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.broken() {
            write!(f, "<threading.Barrier at {:p}: broken>", self)
        } else {
            write!(
                f,
                "<threading.Barrier at {:p}: waiters={}/{}>",
                self,
                self.n_waiting(),
                self.parties
            )
        }
    }
}
