//! `RLock`: Python's `threading.RLock`, a reentrant lock owned by the thread that holds it.
//!
//! The synchronisation core's `RawRLock` (shared with `multiprocessing::RLock`) with the
//! [`Owned`] owner: the holder's ident (`get_ident()`) beside the lock word, and a
//! recursion count. The lock word is the fair state machine of [`Lock`](crate::Lock).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::error::Error;
use crate::error::RELEASE_UNACQUIRED;
use pyconc_core::sync::primitive::AtomicU32;
use pyconc_core::sync::{CurrentThread, Owned, RawLock, RawRLock, WaitWord, deadline_after};

/// A reentrant lock: the thread holding it may acquire it again, and must release it as
/// many times.
///
/// Python: `threading.RLock`. Only the owner may release it.
///
/// # Differences from CPython
/// - `acquire(blocking, timeout)` is [`acquire`](RLock::acquire),
///   [`try_acquire`](RLock::try_acquire) and [`acquire_timeout`](RLock::acquire_timeout);
///   `with rlock:` is [`lock()`](RLock::lock).
/// - CPython's private `_is_owned()` and `_recursion_count()` are public:
///   [`is_owned`](RLock::is_owned), [`recursion_count`](RLock::recursion_count).
///
/// # Examples
///
/// ```
/// use threading::RLock;
///
/// let lock = RLock::new();
/// let _outer = lock.lock();
/// let _inner = lock.lock(); // the owner may nest
/// assert!(lock.is_owned());
/// drop(_inner);
/// drop(_outer);
/// assert_eq!(lock.release().unwrap_err().to_string(), "cannot release un-acquired lock");
/// ```
pub struct RLock {
    word: WaitWord,
    owner: Owned,
    count: AtomicU32,
}

impl RLock {
    /// A new, unlocked reentrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::RLock::new();
    /// assert!(!lock.locked());
    /// assert_eq!(lock.recursion_count(), 0);
    /// ```
    pub fn new() -> RLock {
        RLock { word: WaitWord::new(0), owner: Owned::new(), count: AtomicU32::new(0) }
    }

    fn me() -> CurrentThread {
        CurrentThread
    }

    fn raw(&self) -> RawRLock<'_, &WaitWord, &Owned> {
        RawRLock::new(RawLock::new(&self.word, &self.owner), &self.count)
    }

    /// Acquires the lock, waiting if another thread holds it; the owner's call nests.
    ///
    /// Python: `rlock.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::RLock::new();
    /// lock.acquire();
    /// lock.acquire(); // the owner nests
    /// assert_eq!(lock.recursion_count(), 2);
    /// lock.release()?;
    /// lock.release()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire(&self) {
        self.raw().acquire(Self::me(), None);
    }

    /// Acquires the lock if that needs no waiting.
    ///
    /// Python: `rlock.acquire(blocking=False)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(threading::RLock::new());
    /// assert!(lock.try_acquire());
    /// let theirs = Arc::clone(&lock);
    /// let t = threading::Thread::builder().start(move || assert!(!theirs.try_acquire()))?;
    /// t.join()?;
    /// lock.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire(Self::me())
    }

    /// Waits at most `timeout` for the lock; true if it was acquired.
    ///
    /// Python: `rlock.acquire(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let lock = Arc::new(threading::RLock::new());
    /// let _held = lock.lock();
    /// let theirs = Arc::clone(&lock);
    /// let t = threading::Thread::builder()
    ///     .start(move || assert!(!theirs.acquire_timeout(Duration::from_millis(10))))?;
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire(Self::me(), deadline_after(timeout)).taken()
    }

    /// Releases one level; the lock is free again when the count reaches zero.
    ///
    /// Python: `rlock.release()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot release un-acquired lock` when the caller does not
    /// hold it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(threading::RLock::new());
    /// lock.acquire();
    /// let theirs = Arc::clone(&lock);
    /// let t = threading::Thread::builder().start(move || {
    ///     let refused = theirs.release().unwrap_err();
    ///     assert_eq!(refused.to_string(), "cannot release un-acquired lock");
    /// })?;
    /// t.join()?;
    /// lock.release()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        self.raw().release(Self::me()).map_err(|_| Error::runtime(RELEASE_UNACQUIRED))
    }

    /// Whether the lock is held, by any thread.
    ///
    /// Python: `rlock.locked()` (3.14+; older versions only have it on `Lock`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::RLock::new();
    /// let _held = lock.lock();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.raw().raw().locked()
    }

    /// Whether the calling thread holds the lock.
    ///
    /// Python: `rlock._is_owned()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(threading::RLock::new());
    /// let _held = lock.lock();
    /// assert!(lock.is_owned());
    /// let theirs = Arc::clone(&lock);
    /// threading::Thread::builder().start(move || assert!(!theirs.is_owned()))?.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn is_owned(&self) -> bool {
        self.raw().is_owned(Self::me())
    }

    /// How many times the calling thread holds the lock (0 when it does not).
    ///
    /// Python: `rlock._recursion_count()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::RLock::new();
    /// let _a = lock.lock();
    /// let _b = lock.lock();
    /// assert_eq!(lock.recursion_count(), 2);
    /// ```
    pub fn recursion_count(&self) -> usize {
        self.raw().recursion_count(Self::me()) as usize
    }

    /// Releases every level at once and returns the count: what `Condition::wait` does.
    ///
    /// Python: `rlock._release_save()`.
    pub(crate) fn release_save(&self) -> Result<usize, Error> {
        let levels = self.raw().release_all(Self::me());
        levels.map(|n| n as usize).map_err(|_| Error::runtime(RELEASE_UNACQUIRED))
    }

    /// Re-acquires with the saved count. Python: `rlock._acquire_restore()`.
    pub(crate) fn acquire_restore(&self, count: usize) {
        let levels = u32::try_from(count).unwrap_or(u32::MAX);
        self.raw().restore(Self::me(), levels);
    }

    /// Acquires the lock and returns a guard that releases one level when dropped:
    /// Python's `with rlock:`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = threading::RLock::new();
    /// {
    ///     let _outer = lock.lock(); // `with rlock:`
    ///     let _inner = lock.lock(); // nested `with rlock:` in the same thread
    /// }
    /// assert!(!lock.locked());
    /// ```
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire();
        RLockGuard { lock: self, _owner_only: PhantomData }
    }
}

impl Default for RLock {
    fn default() -> RLock {
        RLock::new()
    }
}

/// CPython's repr: `<locked _thread.RLock object owner=140… count=2>`.
impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.locked() { "locked" } else { "unlocked" };
        write!(
            f,
            "<{state} _thread.RLock object owner={} count={} at {:p}>",
            self.owner.ident(),
            self.raw().levels(),
            self
        )
    }
}

/// Releases one level of an [`RLock`] when dropped; made by [`RLock::lock`].
///
/// Not `Send`: only the owning thread can release an `RLock`.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let lock = threading::RLock::new();
/// send(lock.lock());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    /// Not `Send`: only the owning thread can release an `RLock`.
    _owner_only: PhantomData<*const ()>,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").field("lock", self.lock).finish()
    }
}
