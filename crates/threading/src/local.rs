//! `Local`: per-object thread-local storage, Python's `threading.local`.
//!
//! Each `Local` keeps a map from a per-thread key (never reused, unlike thread ids) to
//! that thread's boxed value. A thread only ever looks up its own key, so the value it
//! gets a reference to is never touched by another thread.
//!
//! # When values are dropped
//!
//! - A value reached only through [`Local::with`] is dropped when its thread exits, as
//!   CPython frees a thread's attributes: the reference `with` lends cannot leave the
//!   closure, so nothing can still use the value then. Each thread keeps a list of the
//!   `Local`s it has such values in (weak references, so a `Local` dropped first is simply
//!   skipped), and its exit removes its entries. Memory stays bounded by the threads
//!   alive, however many come and go.
//! - A value reached through [`Local::get`] or [`Local::get_or`] lives until the `Local`
//!   is dropped (or [`Local::take`]n): those hand out a plain `&T` that lives as long as
//!   the borrow of the `Local`, and for a `T: Sync` it can be sent to another thread (a
//!   scoped thread, say) that outlives the owner, so dropping the value at the owner's
//!   exit could free memory still in use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Per-object thread-local storage: each thread sees its own value.
///
/// Python: `threading.local()`. `get_or(init)` is attribute access with a default
/// (`getattr(local, "x", None) or setattr(...)`); see the module docs for when values
/// are dropped.
///
/// # Differences from CPython
/// - Values are typed (`Local<T>`) rather than attributes; `get_or` creates this thread's
///   value on first use.
/// - A value reached through [`with`](Local::with) is dropped when its thread ends, as
///   CPython frees a thread's attributes; one reached through [`get`](Local::get) or
///   [`get_or`](Local::get_or) lives until the `Local` drops (see the module docs).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::sync::Arc;
/// use threading::{Local, Thread};
///
/// let counter: Arc<Local<Cell<u32>>> = Arc::new(Local::new());
/// counter.get_or(|| Cell::new(0)).set(5);
/// let theirs = Arc::clone(&counter);
/// let t = Thread::new(move || {
///     assert_eq!(theirs.get().map(Cell::get), None); // not this thread's value
///     theirs.get_or(|| Cell::new(0)).set(7);
/// });
/// t.start()?;
/// t.join()?;
/// assert_eq!(counter.get().map(Cell::get), Some(5));
/// # Ok::<(), threading::Error>(())
/// ```
pub struct Local<T: Send> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    values: Mutex<HashMap<u64, Entry<T>>>,
}

struct Entry<T> {
    value: Box<T>,
    /// Reached through `get`/`get_or`: kept until the `Local` drops, not at thread exit.
    pinned: bool,
}

/// What a thread's exit does to a `Local` it used through `with`.
trait ThreadExit {
    /// Drops thread `key`'s value unless it is pinned.
    fn thread_exited(&self, key: u64);
}

impl<T: Send> ThreadExit for Inner<T> {
    fn thread_exited(&self, key: u64) {
        let mut values = pyconc_core::sync::lock(&self.values);
        let unpinned = values.get(&key).is_some_and(|entry| !entry.pinned);
        let removed = if unpinned { values.remove(&key) } else { None };
        drop(values);
        // The value's destructor runs outside the lock: it may use this Local again.
        drop(removed);
    }
}

/// The `Local`s the current thread holds `with` values in, visited when it exits.
struct ExitList {
    key: u64,
    locals: RefCell<Vec<Weak<dyn ThreadExit>>>,
}

impl ExitList {
    fn add(&self, local: Weak<dyn ThreadExit>) {
        let mut locals = self.locals.borrow_mut();
        if locals.len() == locals.capacity() {
            locals.retain(|weak| weak.strong_count() > 0);
        }
        locals.push(local);
    }
}

impl Drop for ExitList {
    fn drop(&mut self) {
        for local in self.locals.take() {
            if let Some(local) = local.upgrade() {
                local.thread_exited(self.key);
            }
        }
    }
}

thread_local! {
    static EXIT_LIST: ExitList = ExitList { key: thread_key(), locals: RefCell::new(Vec::new()) };
}

/// A key per thread, never reused within the process.
fn thread_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static KEY: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    // During the thread's own thread-local destruction: a fresh key each time, so such
    // late calls see no value and their values wait for the Local's drop.
    KEY.try_with(|key| *key).unwrap_or_else(|_| NEXT.fetch_add(1, Ordering::Relaxed))
}

impl<T: Send> Local<T> {
    /// An empty `Local`: no thread has a value yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// let counter: threading::Local<Cell<u32>> = threading::Local::new();
    /// counter.get_or(|| Cell::new(0)).set(1);
    /// let t = threading::Thread::builder().start(|| {})?; // another thread: its own value
    /// t.join()?;
    /// assert_eq!(counter.get().map(Cell::get), Some(1));
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn new() -> Local<T> {
        Local { inner: Arc::new(Inner { values: Mutex::new(HashMap::new()) }) }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, Entry<T>>> {
        pyconc_core::sync::lock(&self.inner.values)
    }

    /// Calls `f` with the calling thread's value, made by `init` if it has none yet. A
    /// value made here and never reached through [`get`](Local::get)/[`get_or`](Local::get_or)
    /// is dropped when the thread exits, as CPython drops a thread's attributes.
    ///
    /// Python: `local.x` inside the thread (std's `LocalKey::with` shape). `init` and `f`
    /// run without any lock held, so they may use this or other `Local`s. Called while the
    /// thread's thread-locals are being destroyed, `f` gets a value made for the call alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::sync::Arc;
    ///
    /// let hits: Arc<threading::Local<Cell<u32>>> = Arc::new(threading::Local::new());
    /// let theirs = Arc::clone(&hits);
    /// let t = threading::Thread::new(move || {
    ///     for _ in 0..3 {
    ///         theirs.with(|| Cell::new(0), |n| n.set(n.get() + 1));
    ///     }
    ///     assert_eq!(theirs.with(|| Cell::new(0), Cell::get), 3);
    /// });
    /// t.start()?;
    /// t.join()?;
    /// assert!(hits.is_empty(), "the thread's value went with it");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn with<U>(&self, init: impl FnOnce() -> T, f: impl FnOnce(&T) -> U) -> U
    where
        T: 'static,
    {
        let key = thread_key();
        let existing = self.map().get(&key).map(|entry| &*entry.value as *const T);
        if let Some(value) = existing {
            // SAFETY: the entry is removed only by `take` (`&mut self`), by dropping the
            // Local (ownership), or by this thread's exit — none of which can happen
            // while this call, on this thread, borrows the Local.
            return f(unsafe { &*value });
        }
        let fresh = Box::new(init());
        let weak: Weak<dyn ThreadExit> = Arc::downgrade(&self.inner) as Weak<Inner<T>>;
        if EXIT_LIST.try_with(|list| list.add(weak)).is_err() {
            // The thread's exit list is gone (its thread-locals are being destroyed):
            // nothing would drop a stored value, so this call gets one of its own.
            return f(&fresh);
        }
        let value = {
            let mut map = self.map();
            let entry = map.entry(key).or_insert(Entry { value: fresh, pinned: false });
            &*entry.value as *const T
        };
        // SAFETY: as above.
        f(unsafe { &*value })
    }

    /// The calling thread's value, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// let local: threading::Local<String> = threading::Local::new();
    /// assert_eq!(local.get(), None);
    /// local.get_or(|| "mine".to_owned());
    /// assert_eq!(local.get().map(String::as_str), Some("mine"));
    /// ```
    pub fn get(&self) -> Option<&T> {
        let key = thread_key();
        let mut map = self.map();
        let entry = map.get_mut(&key)?;
        // Reached as a plain `&T` now: kept until the Local drops.
        entry.pinned = true;
        let value: *const T = &*entry.value;
        drop(map);
        // SAFETY: the box's heap address is stable while its entry stays in the map, and a
        // pinned entry is removed only by `take` (which needs `&mut self`) or by dropping
        // the Local (which needs ownership), not at its thread's exit: neither can happen
        // while this `&self` borrow lives, so the reference stays valid for its lifetime. Keys are per thread, so no
        // other thread reaches this value through `get`/`get_or`.
        Some(unsafe { &*value })
    }

    /// The calling thread's value, made by `init` if it has none yet.
    ///
    /// `init` runs without any lock held, so it may use this or other `Local`s. The value
    /// lives until the `Local` is dropped (or [`take`](Local::take)n), not only until the
    /// thread exits: the `&T` returned may outlive the thread. Use [`with`](Local::with)
    /// for CPython's "dropped with its thread".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let local = Arc::new(threading::Local::new());
    /// assert_eq!(*local.get_or(|| 1), 1);
    /// assert_eq!(*local.get_or(|| 2), 1, "made once per thread");
    /// let theirs = Arc::clone(&local);
    /// let t = threading::Thread::builder().start(move || assert_eq!(*theirs.get_or(|| 3), 3))?;
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn get_or(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let fresh = Box::new(init());
        let mut map = self.map();
        let entry = map.entry(thread_key()).or_insert(Entry { value: fresh, pinned: true });
        entry.pinned = true;
        let value: *const T = &*entry.value;
        drop(map);
        // SAFETY: as in `get`: a stable heap address, removed only by `take` (`&mut self`)
        // or by dropping the Local (a pinned entry outlives its thread), neither possible
        // while this borrow lives.
        unsafe { &*value }
    }

    /// Removes the calling thread's value and returns it: the way to drop it when the
    /// thread ends (Python drops it then by itself).
    ///
    /// Needs `&mut self`, so that no reference handed out by `get`/`get_or` is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut local = threading::Local::new();
    /// local.get_or(|| vec![1, 2, 3]);
    /// assert_eq!(local.take(), Some(vec![1, 2, 3]));
    /// assert_eq!(local.get(), None);
    /// ```
    pub fn take(&mut self) -> Option<T> {
        let key = thread_key();
        let mut values = self.inner.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.remove(&key).map(|entry| *entry.value)
    }

    /// How many threads have a value.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = threading::Local::new();
    /// assert_eq!(local.len(), 0);
    /// local.get_or(|| 0u8);
    /// assert_eq!(local.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no thread has a value.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = threading::Local::new();
    /// assert!(local.is_empty());
    /// local.get_or(|| 'x');
    /// assert!(!local.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> Default for Local<T> {
    fn default() -> Local<T> {
        Local::new()
    }
}

impl<T: Send> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<threading.local at {:p}: {} threads>", self, self.len())
    }
}
