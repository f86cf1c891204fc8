//! `Condition`: Python's `threading.Condition`, waiting for a state change under a lock.
//!
//! A port of CPython's pure-Python implementation: each waiter enqueues its own one-shot
//! wait word, releases the lock fully (every `RLock` level), sleeps on its word and
//! re-acquires; `notify(n)` wakes the first `n` queued waiters. Waiters are woken in FIFO
//! order and there are no spurious wake-ups. One improvement: a waiter whose timeout
//! expires just as it is notified reports `true` (CPython may lose that notification).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::error::NOTIFY_UNACQUIRED;
use crate::error::WAIT_UNACQUIRED;
use crate::sync::{Lock, LockGuard, RLock, RLockGuard};
use pyconc_core::sync::primitive::{Mutex, lock};
use pyconc_core::sync::{Futex, WaitWord, deadline_after};

const WAITING: u32 = 0;
const NOTIFIED: u32 = 1;

/// The lock under a condition: a [`Lock`] or an [`RLock`].
enum Underlying {
    Lock(Lock),
    RLock(RLock),
}

/// What `wait` saved of the lock while it was released.
enum Saved {
    Lock,
    RLock(usize),
}

impl Underlying {
    /// CPython's `_is_owned`: for a plain `Lock`, "held by anyone" (it has no owner).
    fn is_owned(&self) -> bool {
        match self {
            Underlying::Lock(l) => l.locked(),
            Underlying::RLock(r) => r.is_owned(),
        }
    }

    fn release_save(&self) -> Result<Saved, Error> {
        match self {
            Underlying::Lock(l) => l.release().map(|()| Saved::Lock),
            Underlying::RLock(r) => r.release_save().map(Saved::RLock),
        }
    }

    fn acquire_restore(&self, saved: Saved) {
        match (self, saved) {
            (Underlying::Lock(l), _) => l.acquire(),
            (Underlying::RLock(r), Saved::RLock(count)) => r.acquire_restore(count),
            (Underlying::RLock(r), Saved::Lock) => r.acquire_restore(1),
        }
    }
}

/// A condition variable with its own lock: threads wait until another notifies them.
///
/// Python: `threading.Condition(lock=None)`. [`Condition::new`] makes its own [`RLock`];
/// [`Condition::with_lock`] / [`Condition::with_rlock`] take one. Acquire the condition
/// (it is its lock) before `wait`/`notify`.
///
/// # Differences from CPython
/// - `wait(timeout)` is [`wait`](Condition::wait) and
///   [`wait_timeout`](Condition::wait_timeout); `wait_for(predicate, timeout)` takes a
///   closure and an `Option<Duration>`.
/// - Misuse (waiting or notifying without holding the lock) is an `Err` with CPython's
///   text, not an exception.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use threading::{Condition, Thread};
///
/// let cond = Arc::new(Condition::new());
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c, r) = (Arc::clone(&cond), Arc::clone(&ready));
/// let producer = Thread::new(move || {
///     let _held = c.lock();
///     r.store(true, Ordering::SeqCst);
///     c.notify_all().unwrap();
/// });
/// let _held = cond.lock();
/// producer.start()?;
/// assert!(cond.wait_for(|| ready.load(Ordering::SeqCst), None)?);
/// # drop(_held);
/// # producer.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
pub struct Condition {
    lock: Underlying,
    /// FIFO of waiters; only touched by the lock's holder (as in CPython), the mutex
    /// only makes that visible to the compiler.
    waiters: Mutex<VecDeque<Arc<WaitWord>>>,
}

/// A guard of a condition's lock, made by [`Condition::lock`]; releases it when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub enum ConditionGuard<'a> {
    /// The condition is over a [`Lock`].
    Lock(LockGuard<'a>),
    /// The condition is over an [`RLock`].
    RLock(RLockGuard<'a>),
}

impl Condition {
    /// A condition over a new [`RLock`], as CPython's default.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new(); // over an RLock, as CPython's
    /// let _held = cond.lock();
    /// let _again = cond.lock(); // an RLock nests
    /// ```
    pub fn new() -> Condition {
        Condition::with_rlock(RLock::new())
    }

    /// A condition over `lock`. Python: `Condition(Lock())`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::with_lock(threading::Lock::new());
    /// assert!(cond.try_acquire());
    /// assert!(!cond.try_acquire(), "a plain Lock does not nest");
    /// cond.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn with_lock(lock: Lock) -> Condition {
        Condition { lock: Underlying::Lock(lock), waiters: Mutex::new(VecDeque::new()) }
    }

    /// A condition over `lock`. Python: `Condition(RLock())`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::with_rlock(threading::RLock::new());
    /// cond.acquire();
    /// cond.acquire();
    /// cond.release()?;
    /// cond.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn with_rlock(lock: RLock) -> Condition {
        Condition { lock: Underlying::RLock(lock), waiters: Mutex::new(VecDeque::new()) }
    }

    /// Acquires the underlying lock. Python: `cond.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// cond.acquire();
    /// cond.notify_all()?; // allowed: the lock is held
    /// cond.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire(&self) {
        match &self.lock {
            Underlying::Lock(l) => l.acquire(),
            Underlying::RLock(r) => r.acquire(),
        }
    }

    /// Acquires the underlying lock if that needs no waiting.
    /// Python: `cond.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// assert!(cond.try_acquire());
    /// cond.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        match &self.lock {
            Underlying::Lock(l) => l.try_acquire(),
            Underlying::RLock(r) => r.try_acquire(),
        }
    }

    /// Waits at most `timeout` for the underlying lock. Python: `cond.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = threading::Condition::new();
    /// assert!(cond.acquire_timeout(Duration::from_millis(10)));
    /// cond.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        match &self.lock {
            Underlying::Lock(l) => l.acquire_timeout(timeout),
            Underlying::RLock(r) => r.acquire_timeout(timeout),
        }
    }

    /// Releases the underlying lock. Python: `cond.release()`.
    ///
    /// # Errors
    /// The lock's: `release unlocked lock` or `cannot release un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// cond.acquire();
    /// cond.release()?;
    /// assert!(cond.release().is_err(), "not held any more");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        match &self.lock {
            Underlying::Lock(l) => l.release(),
            Underlying::RLock(r) => r.release(),
        }
    }

    /// Acquires the underlying lock for a scope: Python's `with cond:`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// let _held = cond.lock(); // `with cond:`
    /// cond.notify(1)?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn lock(&self) -> ConditionGuard<'_> {
        match &self.lock {
            Underlying::Lock(l) => ConditionGuard::Lock(l.lock()),
            Underlying::RLock(r) => ConditionGuard::RLock(r.lock()),
        }
    }

    /// Releases the lock, waits until notified, re-acquires it.
    ///
    /// Python: `cond.wait()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot wait on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let cond = Arc::new(threading::Condition::new());
    /// let ready = Arc::new(AtomicBool::new(false));
    /// let (c, r) = (Arc::clone(&cond), Arc::clone(&ready));
    /// let producer = threading::Thread::builder().start(move || {
    ///     let _held = c.lock();
    ///     r.store(true, Ordering::SeqCst);
    ///     c.notify_all().unwrap();
    /// })?;
    /// {
    ///     let _held = cond.lock();
    ///     while !ready.load(Ordering::SeqCst) {
    ///         cond.wait()?; // releases the lock while waiting
    ///     }
    /// }
    /// producer.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until(None).map(|_| ())
    }

    /// As [`wait`](Condition::wait), for at most `timeout`; true if notified.
    ///
    /// Python: `cond.wait(timeout)`. A zero timeout only releases and re-acquires.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot wait on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = threading::Condition::new();
    /// let _held = cond.lock();
    /// assert!(!cond.wait_timeout(Duration::from_millis(10))?, "nobody notified");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        match deadline_after(timeout) {
            Some(deadline) => self.wait_until(Some(deadline)),
            None => self.wait_until(None),
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        if !self.lock.is_owned() {
            return Err(Error::runtime(WAIT_UNACQUIRED));
        }
        let waiter = Arc::new(WaitWord::new(WAITING));
        lock(&self.waiters).push_back(Arc::clone(&waiter));
        let saved = match self.lock.release_save() {
            Ok(saved) => saved,
            Err(e) => {
                self.forget(&waiter);
                return Err(e);
            }
        };
        while waiter.load() == WAITING {
            if !waiter.wait(WAITING, deadline) {
                break;
            }
        }
        self.lock.acquire_restore(saved);
        // Holding the lock again, no notify can race with this check.
        let notified = waiter.load() == NOTIFIED;
        if !notified {
            self.forget(&waiter);
        }
        Ok(notified)
    }

    fn forget(&self, waiter: &Arc<WaitWord>) {
        lock(&self.waiters).retain(|w| !Arc::ptr_eq(w, waiter));
    }

    /// Waits until `predicate` returns true, with one deadline across wake-ups; returns
    /// the predicate's last value (false: timed out).
    ///
    /// Python: `cond.wait_for(predicate, timeout=None)`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot wait on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let cond = Arc::new(threading::Condition::new());
    /// let items = Arc::new(Mutex::new(Vec::new()));
    /// let (c, i) = (Arc::clone(&cond), Arc::clone(&items));
    /// let producer = threading::Thread::builder().start(move || {
    ///     let _held = c.lock();
    ///     i.lock().unwrap().push(42);
    ///     c.notify(1).unwrap();
    /// })?;
    /// let _held = cond.lock();
    /// assert!(cond.wait_for(|| !items.lock().unwrap().is_empty(), None)?);
    /// drop(_held);
    /// producer.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, Error> {
        let deadline = timeout.and_then(deadline_after);
        let timed = timeout.is_some() && deadline.is_some();
        loop {
            if predicate() {
                return Ok(true);
            }
            if timed {
                let deadline = deadline.unwrap_or_else(Instant::now);
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                self.wait_until(Some(deadline))?;
            } else {
                self.wait_until(None)?;
            }
        }
    }

    /// Wakes up to `n` waiting threads, the longest-waiting first.
    ///
    /// Python: `cond.notify(n=1)`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot notify on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// let refused = cond.notify(1).unwrap_err();
    /// assert_eq!(refused.to_string(), "cannot notify on un-acquired lock");
    /// let _held = cond.lock();
    /// cond.notify(1)?; // nobody waits: nothing happens
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> Result<(), Error> {
        if !self.lock.is_owned() {
            return Err(Error::runtime(NOTIFY_UNACQUIRED));
        }
        let mut waiters = lock(&self.waiters);
        for _ in 0..n {
            let Some(waiter) = waiters.pop_front() else { break };
            // A swap rather than a store: loom (0.7) models a plain store racing with the
            // waiter's futex check unfaithfully; the swap is just as cheap.
            waiter.atomic().swap(NOTIFIED, pyconc_core::sync::primitive::Ordering::AcqRel);
            waiter.wake(1);
        }
        Ok(())
    }

    /// Wakes every waiting thread.
    ///
    /// Python: `cond.notify_all()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot notify on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// let _held = cond.lock();
    /// cond.notify_all()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<(), Error> {
        self.notify(usize::MAX)
    }

    /// Obsolete spelling of [`notify_all`](Condition::notify_all).
    ///
    /// Python: `cond.notifyAll()` (deprecated since 3.10, still in 3.11).
    ///
    /// # Errors
    /// As [`notify_all`](Condition::notify_all).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// let _held = cond.lock();
    /// #[allow(deprecated)]
    /// cond.notifyAll()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    #[deprecated(note = "notifyAll() is deprecated, use notify_all() instead")]
    #[allow(non_snake_case, reason = "CPython's name, kept for code ported from Python")]
    pub fn notifyAll(&self) -> Result<(), Error> {
        self.notify_all()
    }

    /// The number of threads waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = threading::Condition::new();
    /// assert_eq!(cond.waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        lock(&self.waiters).len()
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

/// CPython's repr: `<Condition(<lock repr>, N)>`.
impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lock {
            Underlying::Lock(l) => write!(f, "<Condition({l:?}, {})>", self.waiting()),
            Underlying::RLock(r) => write!(f, "<Condition({r:?}, {})>", self.waiting()),
        }
    }
}
