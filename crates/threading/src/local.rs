//! `Local`: per-object thread-local storage, Python's `threading.local`.
//!
//! Each `Local` keeps a map from a per-thread key (never reused, unlike thread ids) to
//! that thread's boxed value. A thread only ever looks up its own key, so the value it
//! gets a reference to is never touched by another thread.
//!
//! # When values are dropped
//!
//! When the `Local` is dropped, every value is. A thread's value is not dropped when the
//! thread exits: `get_or` hands out a plain `&T` that lives as long as the borrow of the
//! `Local`, and for a `T: Sync` that reference can be sent to another thread (a scoped
//! thread, say) that outlives the owner — dropping the value at the owner's exit would
//! then free memory still in use. CPython's `threading.local` drops a thread's values at
//! its exit; to get that in Rust, drop the value yourself with [`Local::take`] at the end
//! of the thread, or keep one `Local` per batch of threads and drop it with them.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Per-object thread-local storage: each thread sees its own value.
///
/// Python: `threading.local()`. `get_or(init)` is attribute access with a default
/// (`getattr(local, "x", None) or setattr(...)`); see the module docs for when values
/// are dropped.
///
/// # Differences from CPython
/// - Values are typed (`Local<T>`) rather than attributes; `get_or` creates this thread's
///   value on first use.
/// - A value reached through [`get_or`](Local::get_or) lives until the `Local` drops
///   (CPython frees a thread's attributes when the thread ends); see the module docs.
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
    values: Mutex<HashMap<u64, Box<T>>>,
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
        Local { values: Mutex::new(HashMap::new()) }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, Box<T>>> {
        pyconc_core::sync::lock(&self.values)
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
        let map = self.map();
        let value: *const T = &**map.get(&key)?;
        drop(map);
        // SAFETY: the box's heap address is stable while its entry stays in the map, and
        // an entry is removed only by `take` (which needs `&mut self`) or by dropping the
        // Local (which needs ownership): neither can happen while this `&self` borrow
        // lives, so the reference stays valid for its lifetime. Keys are per thread, so no
        // other thread reaches this value through `get`/`get_or`.
        Some(unsafe { &*value })
    }

    /// The calling thread's value, made by `init` if it has none yet.
    ///
    /// `init` runs without any lock held, so it may use this or other `Local`s.
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
        let value: *const T = &**map.entry(thread_key()).or_insert(fresh);
        drop(map);
        // SAFETY: as in `get`: a stable heap address, removed only by `take` (`&mut self`)
        // or by dropping the Local, neither possible while this borrow lives.
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
        self.values.get_mut().unwrap_or_else(PoisonError::into_inner).remove(&key).map(|b| *b)
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
