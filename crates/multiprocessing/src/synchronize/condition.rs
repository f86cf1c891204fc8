//! `Condition` across processes: a lock plus a sequence word that `notify` bumps and
//! waiters sleep on. `notify` runs under the lock, so it wakes only threads already
//! waiting.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyconc_core::sync::{Futex, SharedWord};

use super::{Lock, RLock, deadline_after};
use crate::Error;
use crate::error::NOTIFY_NOT_OWNED;
use crate::error::WAIT_NOT_OWNED;
use crate::heap::{SendMem, SharedMemory};

const SEQUENCE: usize = 0;
const WAITING: usize = 1;

#[derive(Clone)]
enum Underlying {
    Lock(Lock),
    RLock(RLock),
}

/// A condition variable that works across processes: Python's
/// `multiprocessing.Condition`.
///
/// Built on an [`RLock`] by default ([`Condition::with_lock`] takes a [`Lock`]).
///
/// # Differences from CPython
/// - `wait(timeout)` is [`wait`](Condition::wait) and
///   [`wait_timeout`](Condition::wait_timeout); `wait_for` takes a closure.
/// - Its lock is robust like [`Lock`]'s: a waiter is not stranded by a process that died
///   holding it.
#[derive(Clone)]
pub struct Condition {
    lock: Underlying,
    mem: Arc<SharedMemory>,
}

impl Condition {
    /// A condition over a new [`RLock`].
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`Condition::try_new`] returns that error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new(); // over an RLock, as CPython's
    /// let _held = cond.lock();
    /// let _again = cond.lock();
    /// ```
    pub fn new() -> Condition {
        Condition::try_new().unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](Condition::new), returning the OS's refusal.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::try_new()?;
    /// assert!(cond.try_acquire());
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new() -> Result<Condition, Error> {
        Ok(Condition {
            lock: Underlying::RLock(RLock::try_new()?),
            mem: Arc::new(SharedMemory::new(16)?),
        })
    }

    /// A condition over `lock`. Python: `multiprocessing.Condition(lock)`.
    ///
    /// # Panics
    /// As [`new`](Condition::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::with_lock(multiprocessing::Lock::new());
    /// assert!(cond.try_acquire());
    /// assert!(!cond.try_acquire(), "a plain Lock does not nest");
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_lock(lock: Lock) -> Condition {
        let mem =
            SharedMemory::new(16).unwrap_or_else(|e| panic!("cannot create shared memory: {e}"));
        Condition { lock: Underlying::Lock(lock), mem: Arc::new(mem) }
    }

    /// A condition over `lock`.
    ///
    /// # Panics
    /// As [`new`](Condition::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::with_rlock(multiprocessing::RLock::new());
    /// cond.acquire();
    /// cond.acquire();
    /// cond.release()?;
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_rlock(lock: RLock) -> Condition {
        let mem =
            SharedMemory::new(16).unwrap_or_else(|e| panic!("cannot create shared memory: {e}"));
        Condition { lock: Underlying::RLock(lock), mem: Arc::new(mem) }
    }

    fn from_shared(lock: Arc<SharedMemory>, mem: Arc<SharedMemory>, reentrant: bool) -> Condition {
        let lock = if reentrant {
            Underlying::RLock(RLock::from_shared(lock))
        } else {
            Underlying::Lock(Lock::from_shared(lock))
        };
        Condition { lock, mem }
    }

    /// Acquires the underlying lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// cond.acquire();
    /// cond.notify_all()?; // allowed: the lock is held
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire(&self) {
        match &self.lock {
            Underlying::Lock(l) => l.acquire(),
            Underlying::RLock(l) => l.acquire(),
        }
    }

    /// Acquires the underlying lock if free.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// assert!(cond.try_acquire());
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        match &self.lock {
            Underlying::Lock(l) => l.try_acquire(),
            Underlying::RLock(l) => l.try_acquire(),
        }
    }

    /// Waits at most `timeout` for the underlying lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiprocessing::Condition::new();
    /// assert!(cond.acquire_timeout(Duration::from_millis(10)));
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        match &self.lock {
            Underlying::Lock(l) => l.acquire_timeout(timeout),
            Underlying::RLock(l) => l.acquire_timeout(timeout),
        }
    }

    /// Releases the underlying lock.
    ///
    /// # Errors
    /// The underlying lock's release errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// cond.acquire();
    /// cond.release()?;
    /// assert!(cond.release().is_err(), "not held any more");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        match &self.lock {
            Underlying::Lock(l) => l.release(),
            Underlying::RLock(l) => l.release(),
        }
    }

    /// Whether the caller may wait/notify: it holds the RLock; for a Lock, it is held
    /// (a `Lock` has no owner to check).
    fn owned(&self) -> bool {
        match &self.lock {
            Underlying::Lock(l) => l.locked(),
            Underlying::RLock(l) => l.is_owned(),
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        if !self.owned() {
            return Err(Error::assertion(WAIT_NOT_OWNED));
        }
        let sequence = self.mem.word(SEQUENCE);
        let seen = sequence.load(Ordering::Acquire);
        self.mem.word(WAITING).fetch_add(1, Ordering::Relaxed);
        let levels = match &self.lock {
            Underlying::Lock(l) => {
                l.release()?;
                1
            }
            Underlying::RLock(l) => l.release_all(),
        };
        let mut notified = false;
        loop {
            SharedWord::from_atomic(sequence).wait(seen, deadline);
            if sequence.load(Ordering::Acquire) != seen {
                notified = true;
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.mem.word(WAITING).fetch_sub(1, Ordering::Relaxed);
        match &self.lock {
            Underlying::Lock(l) => l.acquire(),
            Underlying::RLock(l) => l.restore(levels),
        }
        Ok(notified)
    }

    /// Releases the lock, waits for a notify, and takes the lock again.
    /// Python: `Condition.wait()`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `must acquire() condition before using wait()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Condition, Process, Value};
    ///
    /// let cond = Condition::new();
    /// let ready = Value::new(0u32)?;
    /// let (c, r) = (cond.clone(), ready.clone());
    /// let p = Process::new(move || {
    ///     let _held = c.lock();
    ///     r.set(1);
    ///     c.notify_all().unwrap();
    /// });
    /// {
    ///     let _held = cond.lock();
    ///     p.start()?;
    ///     while ready.get() == 0 {
    ///         cond.wait()?; // releases the lock while waiting
    ///     }
    /// }
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until(None).map(drop)
    }

    /// As [`wait`](Condition::wait), at most `timeout`; whether it was notified.
    ///
    /// # Errors
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiprocessing::Condition::new();
    /// let _held = cond.lock();
    /// assert!(!cond.wait_timeout(Duration::from_millis(10))?, "nobody notified");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until `predicate` is true (checked under the lock), at most `timeout`;
    /// returns the predicate's last value. Python: `Condition.wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiprocessing::Condition::new();
    /// let _held = cond.lock();
    /// let mut polls = 0;
    /// let met = cond.wait_for(|| { polls += 1; polls > 1 }, Some(Duration::from_millis(50)))?;
    /// assert!(!met || polls > 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, Error> {
        let deadline = timeout.and_then(deadline_after);
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.wait_until(deadline)?;
        }
    }

    /// Wakes up to `n` waiters. Python: `Condition.notify(n)`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `lock is not owned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// let refused = cond.notify(1).unwrap_err();
    /// assert_eq!(refused.to_string(), "lock is not owned");
    /// let _held = cond.lock();
    /// cond.notify(1)?; // nobody waits: nothing happens
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> Result<(), Error> {
        if !self.owned() {
            return Err(Error::assertion(NOTIFY_NOT_OWNED));
        }
        let sequence = self.mem.word(SEQUENCE);
        sequence.fetch_add(1, Ordering::Release);
        SharedWord::from_atomic(sequence).wake(u32::try_from(n).unwrap_or(u32::MAX));
        Ok(())
    }

    /// Wakes every waiter. Python: `Condition.notify_all()`.
    ///
    /// # Errors
    /// As [`notify`](Condition::notify).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// let _held = cond.lock();
    /// cond.notify_all()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<(), Error> {
        self.notify(usize::MAX)
    }

    /// How many threads wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// assert_eq!(cond.waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.mem.word(WAITING).load(Ordering::Relaxed) as usize
    }

    fn lock_mem(&self) -> &SharedMemory {
        match &self.lock {
            Underlying::Lock(l) => l.shared_mem(),
            Underlying::RLock(l) => l.shared_mem(),
        }
    }

    /// Acquires the condition's lock and returns a guard that releases it when dropped:
    /// Python's `with condition:`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = multiprocessing::Condition::new();
    /// let _held = cond.lock(); // `with cond:`
    /// cond.notify(1)?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn lock(&self) -> ConditionGuard<'_> {
        self.acquire();
        ConditionGuard { condition: self }
    }
}

/// The guard of [`Condition::lock`]: releases the condition's lock when dropped.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    condition: &'a Condition,
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = self.condition.release();
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lock {
            Underlying::Lock(l) => write!(f, "<Condition({l:?}, {})>", self.waiting()),
            Underlying::RLock(l) => write!(f, "<Condition({l:?}, {})>", self.waiting()),
        }
    }
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&SendMem(self.lock_mem(), "Condition"))?;
        tuple.serialize_element(&SendMem(&self.mem, "Condition"))?;
        tuple.serialize_element(&matches!(self.lock, Underlying::RLock(_)))?;
        tuple.end()
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Condition, D::Error> {
        let (lock, mem, reentrant) =
            <(SharedMemory, SharedMemory, bool)>::deserialize(deserializer)?;
        Ok(Condition::from_shared(Arc::new(lock), Arc::new(mem), reentrant))
    }
}
