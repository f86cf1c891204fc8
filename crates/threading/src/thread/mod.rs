//! `Thread`, its `Builder` and the `Runnable` trait: Python's `threading.Thread`.
//!
//! A [`Thread`] is a cheap, clonable handle (an `Arc` inside) to one thread of control.
//! It is created unstarted, started once, and can then be joined any number of times, from
//! any number of threads at once, with or without a timeout — which `std::thread::JoinHandle`
//! cannot do. Two handles are equal when they name the same thread.
//!
//! # Lifecycle
//!
//! The state lives in one futex word (`pyconc_core::sync::WaitWord`), so that joiners sleep in the
//! kernel and a forked child can reset it without locks:
//!
//! | state      | set by                                   | `is_alive` | `ident`/`native_id` |
//! |------------|------------------------------------------|------------|---------------------|
//! | `INITIAL`  | `Thread::new`                            | false      | `None`              |
//! | `STARTING` | `start()`, before the OS thread exists   | true       | wait for `RUNNING`  |
//! | `RUNNING`  | the new thread, first thing it does      | true       | set                 |
//! | `ENDED`    | the thread's last thread-local destructor | false      | kept                |
//!
//! Bit `DAEMON` holds the daemon flag (only changeable in `INITIAL`, so a racing
//! `set_daemon`/`start` pair is decided by one compare-and-swap) and bit `WAITERS` says a
//! joiner sleeps on the word, so that a thread nobody joins ends without a system call.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyconc_core::sync::lock;
use std::time::{Duration, Instant};

use crate::error::{self, Error};
use crate::sys;
use pyconc_core::sync::{Futex, WaitWord, deadline_after};

pub(crate) mod excepthook;
pub(crate) mod registry;

pub(crate) const INITIAL: u32 = 0;
pub(crate) const STARTING: u32 = 1;
pub(crate) const RUNNING: u32 = 2;
pub(crate) const ENDED: u32 = 3;
const STATE_MASK: u32 = 0b11;
pub(crate) const DAEMON: u32 = 1 << 2;
const WAITERS: u32 = 1 << 31;

/// Which of CPython's three thread classes a handle stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `threading.Thread`: created by `Thread::new` or a `Builder`.
    Started,
    /// `threading._MainThread`: the process's first thread.
    Main,
    /// `threading._DummyThread`: a thread not started by this crate.
    Dummy,
}

type Target = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct Inner {
    kind: Kind,
    name: Mutex<String>,
    state: WaitWord,
    ident: AtomicU64,
    native_id: AtomicU64,
    /// The thread's position in `enumerate()` order; set when it is registered.
    pub(crate) key: AtomicU64,
    target: Mutex<Option<Target>>,
    stack_size: Option<usize>,
    /// The OS thread, until a joiner reaps it (dropping it detaches the thread).
    handle: Mutex<Option<pyconc_core::os_thread::JoinHandle<()>>>,
    /// Set by the one joiner that reaps the OS thread.
    reaped: AtomicBool,
}

/// Something a [`Thread`] can run: Python's "subclass `Thread` and override `run()`" style.
///
/// Every `FnOnce() + Send + 'static` closure or function is `Runnable`, so most code just
/// passes a closure. Implement it for a struct to write a thread the object-oriented way,
/// like the Python course's `Counter(Thread)` class.
///
/// Python: `threading.Thread.run()`.
///
/// # Examples
///
/// ```
/// use threading::{Runnable, Thread};
///
/// struct Counter { count: u32, delay_ms: u64 }
///
/// impl Runnable for Counter {
///     fn run(self) {
///         let name = threading::current_thread().name();
///         for i in 0..self.count {
///             println!("{name}: counting {i}");
///             std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
///         }
///     }
/// }
///
/// let c5 = Thread::builder().name("Count5").target(Counter { count: 5, delay_ms: 1 });
/// c5.start()?;
/// c5.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
pub trait Runnable: Send + 'static {
    /// The thread's activity; called once, in the new thread.
    fn run(self);

    /// The name CPython appends to a default thread name (`Thread-3 (counter)`): the
    /// function's name for a function item, `None` for closures and `Runnable` structs
    /// (CPython gives subclasses no suffix either).
    #[doc(hidden)]
    fn target_name() -> Option<&'static str>
    where
        Self: Sized,
    {
        None
    }
}

impl<F: FnOnce() + Send + 'static> Runnable for F {
    fn run(self) {
        self()
    }

    fn target_name() -> Option<&'static str> {
        function_name(std::any::type_name::<F>())
    }
}

/// The last path segment of a function item's type name (`app::work<u8>` -> `work`);
/// `None` for closures and function pointers, which have no name of their own.
fn function_name(type_name: &'static str) -> Option<&'static str> {
    if type_name.contains("{{closure}}") || type_name.starts_with("fn(") || type_name.contains(' ')
    {
        return None;
    }
    let path = type_name.split('<').next().unwrap_or(type_name);
    let last = path.rsplit("::").next().unwrap_or(path);
    (!last.is_empty()).then_some(last)
}

/// A thread of control: Python's `threading.Thread`.
///
/// Python: `threading.Thread(group=None, target=None, name=None, args=(), kwargs=None, *, daemon=None)`.
/// Create with [`Thread::new`] (or [`Thread::builder`] for the keyword arguments), then
/// [`start`](Thread::start) and [`join`](Thread::join). `Thread` is a cheap handle: clones
/// refer to the same thread, and `==`/`Hash` compare identity.
///
/// # Differences from CPython
/// - Arguments are captured by the closure instead of `args`/`kwargs`; there is no
///   `group`. A named function's name is appended to `Thread-N` as CPython 3.10+ does
///   (`Thread-3 (counter)`); a closure adds none.
/// - `join` returns `Ok(())`, and `join_timeout` returns `Ok(bool)` (true: the thread has
///   ended) instead of `None` plus a separate `is_alive()` check; misuse (joining the
///   current thread, an unstarted one) is an `Err` with CPython's text, not an exception.
/// - A panic in the target goes to [`excepthook`](crate::excepthook) as an exception
///   does in CPython, and the thread ends normally; `join` still returns `Ok`.
/// - Subclassing `Thread` and overriding `run` is [`Runnable`].
/// - The name also goes to the OS when the thread starts (and when the thread renames
///   itself), cut to the kernel's 15 bytes, so `top -H`, `ps -L`, `gdb` and `perf` show
///   `Thread-3 (counte`: CPython 3.14 does this, 3.11 does not.
///
/// # Examples
///
/// ```
/// use threading::Thread;
///
/// fn counter() {
///     let me = threading::current_thread();
///     println!("{}: counting", me.name());
/// }
///
/// let t = Thread::new(counter);
/// assert!(t.name().ends_with(" (counter)"));
/// t.start()?;
/// t.join()?;
/// assert!(!t.is_alive());
/// # Ok::<(), threading::Error>(())
/// ```
#[derive(Clone)]
pub struct Thread {
    pub(crate) inner: Arc<Inner>,
}

impl Thread {
    /// A new, unstarted thread that will run `target`.
    ///
    /// Python: `threading.Thread(target=...)`. Its name is `Thread-N`, with ` (function)`
    /// appended for a function item target, as CPython 3.10+ does; it is daemonic when the
    /// creating thread is.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| println!("hello from a thread"));
    /// assert!(t.name().starts_with("Thread-"));
    /// t.start()?;
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn new<R: Runnable>(target: R) -> Thread {
        Builder::new().target(target)
    }

    /// A builder for the keyword arguments of `threading.Thread(...)`: name, daemon,
    /// stack size.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("worker").daemon(true).start(|| {})?;
    /// assert!(t.daemon());
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        kind: Kind,
        name: String,
        daemon: bool,
        state: u32,
        target: Option<Target>,
        stack_size: Option<usize>,
    ) -> Thread {
        let state = state | if daemon { DAEMON } else { 0 };
        Thread {
            inner: Arc::new(Inner {
                kind,
                name: Mutex::new(name),
                state: WaitWord::new(state),
                ident: AtomicU64::new(0),
                native_id: AtomicU64::new(0),
                key: AtomicU64::new(0),
                target: Mutex::new(target),
                stack_size,
                handle: Mutex::new(None),
                reaped: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        self.inner.kind
    }

    fn state(&self) -> u32 {
        self.inner.state.load() & STATE_MASK
    }

    /// Starts the thread's activity in a new OS thread.
    ///
    /// Python: `threading.Thread.start()`. When it returns, the thread is alive, listed by
    /// [`enumerate`](crate::enumerate) and has an [`ident`](Thread::ident).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| println!("hello from a thread"));
    /// t.start()?;
    /// assert!(t.ident().is_some());
    /// t.join()?;
    /// assert_eq!(t.start().unwrap_err().to_string(), "threads can only be started once");
    /// # Ok::<(), threading::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::RuntimeError`] `threads can only be started once` on a second call (also
    ///   for the main thread and dummy threads, which are started already);
    /// - [`Error::CantStartThread`] `can't start new thread` when the OS refuses; the
    ///   thread can then be started again.
    pub fn start(&self) -> Result<(), Error> {
        let word = self.inner.state.atomic();
        let mut current = word.load(Ordering::Acquire);
        loop {
            if current & STATE_MASK != INITIAL {
                return Err(Error::runtime(error::START_TWICE));
            }
            let next = (current & !STATE_MASK) | STARTING;
            match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        pyconc_core::panic::install_hook();
        registry::add(self);

        let stack_size = self.inner.stack_size.or_else(registry::default_stack_size);
        let this = self.clone();
        // The target stays in `inner.target` until the new thread takes it, so that it is
        // still there for another `start()` if the OS refuses to create the thread. An
        // `os_thread`, not a `std::thread`: a forked child can start it whatever the
        // parent's other threads were doing at the fork (see `pyconc_core::os_thread`).
        match pyconc_core::os_thread::spawn(None, stack_size, move || bootstrap(this)) {
            Ok(handle) => {
                self.inner.ident.store(handle.as_pthread_t(), Ordering::Release);
                *lock(&self.inner.handle) = Some(handle);
                Ok(())
            }
            Err(e) => {
                registry::remove(self);
                let _ = word.fetch_and(!STATE_MASK, Ordering::AcqRel);
                Err(Error::CantStartThread(e))
            }
        }
    }

    fn take_target(&self) -> Option<Target> {
        lock(&self.inner.target).take()
    }

    /// Releases the ended OS thread's resources (`pthread_join`), once, so that its stack
    /// returns to the C library's cache before the joiner goes on — as `std`'s join does.
    /// A handle that nobody joins is detached when the last `Thread` clone is dropped.
    fn reap(&self) {
        if self.inner.reaped.swap(true, Ordering::AcqRel) {
            return;
        }
        let handle = lock(&self.inner.handle).take();
        if let Some(handle) = handle {
            // The thread has passed its last user code; this waits only for its OS exit.
            let _ = handle.join();
        }
    }

    /// An untimed join's fast path: the first joiner waits for the OS thread itself
    /// (`pthread_join`, one sleep) instead of for the state word and then the OS thread.
    /// False when another joiner reaps it, or `start()` has not stored the handle yet.
    fn join_os_thread(&self) -> bool {
        if self.inner.reaped.swap(true, Ordering::AcqRel) {
            return false;
        }
        let handle = lock(&self.inner.handle).take();
        match handle {
            Some(handle) => {
                let _ = handle.join();
                // Its last thread-local destructor set ENDED before it exited; should the
                // OS thread have ended some other way, say so now.
                if self.state() != ENDED {
                    registry::remove(self);
                    self.advance(ENDED);
                }
                true
            }
            None => {
                self.inner.reaped.store(false, Ordering::Release);
                false
            }
        }
    }

    /// After `fork()`, in the child: the OS thread behind this handle does not exist here,
    /// so it must never be `pthread_join`ed.
    pub(crate) fn forget_os_thread(&self) {
        if !self.inner.reaped.swap(true, Ordering::AcqRel) {
            if let Ok(mut handle) = self.inner.handle.try_lock() {
                std::mem::forget(handle.take());
            }
        }
    }

    /// Waits until the thread ends.
    ///
    /// Python: `threading.Thread.join()`. Returns once the target has returned (or
    /// panicked: a panic is never propagated to joiners, as in CPython) and the thread's
    /// thread-local destructors have run. Any number of threads may join at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| std::thread::sleep(std::time::Duration::from_millis(20)));
    /// t.start()?;
    /// t.join()?;
    /// assert!(!t.is_alive());
    /// # Ok::<(), threading::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::AssertionError`] `cannot join a dummy thread`,
    /// [`Error::RuntimeError`] `cannot join thread before it is started` or
    /// `cannot join current thread`.
    pub fn join(&self) -> Result<(), Error> {
        self.wait_end(None).map(|_| ())
    }

    /// Waits at most `timeout` for the thread to end; `Ok(true)` when it has ended.
    ///
    /// Python: `threading.Thread.join(timeout)` followed by `not t.is_alive()`. A zero
    /// timeout only checks. Timeouts above [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) are clamped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let t = threading::Thread::new(|| std::thread::sleep(Duration::from_millis(300)));
    /// t.start()?;
    /// assert!(!t.join_timeout(Duration::from_millis(10))?, "still running");
    /// assert!(t.join_timeout(Duration::from_secs(30))?, "ended");
    /// # Ok::<(), threading::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`join`](Thread::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        // A deadline too far away to represent is no deadline, as for the primitives.
        self.wait_end(deadline_after(timeout))
    }

    pub(crate) fn wait_end(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        if self.inner.kind == Kind::Dummy {
            return Err(Error::AssertionError(error::JOIN_DUMMY.into()));
        }
        match self.state() {
            INITIAL => return Err(Error::runtime(error::JOIN_BEFORE_START)),
            ENDED => {
                self.reap();
                return Ok(true);
            }
            _ => {}
        }
        if self.inner.ident.load(Ordering::Acquire) == sys::pthread_self() {
            // A live thread's ident is unique among live threads, so this is the caller.
            return Err(Error::runtime(error::JOIN_CURRENT));
        }
        if deadline.is_none() && self.join_os_thread() {
            return Ok(true);
        }
        let ended = self.wait_for_state(ENDED, deadline);
        if ended {
            self.reap();
        }
        Ok(ended)
    }

    /// Sleeps until the state is at least `wanted`; false if `deadline` passed first.
    fn wait_for_state(&self, wanted: u32, deadline: Option<Instant>) -> bool {
        let word = self.inner.state.atomic();
        loop {
            let current = word.load(Ordering::Acquire);
            if current & STATE_MASK >= wanted {
                return true;
            }
            if current & WAITERS == 0
                && word
                    .compare_exchange(
                        current,
                        current | WAITERS,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_err()
            {
                continue;
            }
            if !self.inner.state.wait(current | WAITERS, deadline) {
                return self.state() >= wanted;
            }
        }
    }

    /// Moves the state forward (clearing `WAITERS`) and wakes sleepers if there were any.
    pub(crate) fn advance(&self, state: u32) {
        let word = self.inner.state.atomic();
        let old = word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some((w & DAEMON) | state))
            .unwrap_or_else(|w| w);
        if old & WAITERS != 0 {
            self.inner.state.wake_all();
        }
    }

    /// Whether the thread is alive: from `start()` until its target returned and it is
    /// about to exit.
    ///
    /// Python: `threading.Thread.is_alive()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| {});
    /// assert!(!t.is_alive(), "not started");
    /// t.start()?;
    /// t.join()?;
    /// assert!(!t.is_alive(), "ended");
    /// assert!(threading::main_thread().is_alive());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(self.state(), STARTING | RUNNING)
    }

    /// The thread's name, used for identification only; several threads may share it.
    ///
    /// Python: `threading.Thread.name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("worker").target(|| {});
    /// assert_eq!(t.name(), "worker");
    /// t.set_name("renamed");
    /// assert_eq!(t.name(), "renamed");
    /// ```
    pub fn name(&self) -> String {
        lock(&self.inner.name).clone()
    }

    /// Renames the thread, at any time.
    ///
    /// Python: `threading.Thread.name = ...`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| {});
    /// t.set_name("renamed");
    /// assert_eq!(t.name(), "renamed");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        let name = name.into();
        // The OS keeps a thread's name too (set at start); a thread renaming itself renames
        // it there as well. Another thread's is left: its pthread_t may be gone by now.
        if self.ident_raw() == sys::pthread_self() && self.is_alive() {
            sys::set_thread_name(&name);
        }
        *lock(&self.inner.name) = name;
    }

    /// Whether the thread is a daemon thread: one the process does not wait for at exit.
    ///
    /// Python: `threading.Thread.daemon`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().daemon(true).target(|| {});
    /// assert!(t.daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.inner.state.load() & DAEMON != 0
    }

    /// Sets the daemon flag; allowed only before `start()`.
    ///
    /// Python: `threading.Thread.daemon = ...` (and the obsolete `setDaemon()`).
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot set daemon status of active thread` once the thread
    /// was started (even after it ended), and for the main and dummy threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| {});
    /// t.set_daemon(true)?;
    /// t.start()?;
    /// let refused = t.set_daemon(false).unwrap_err();
    /// assert_eq!(refused.to_string(), "cannot set daemon status of active thread");
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn set_daemon(&self, daemonic: bool) -> Result<(), Error> {
        let word = self.inner.state.atomic();
        word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
            (w & STATE_MASK == INITIAL).then_some(if daemonic { w | DAEMON } else { w & !DAEMON })
        })
        .map(|_| ())
        .map_err(|_| Error::runtime(error::DAEMON_ACTIVE))
    }

    /// The thread's identifier (`pthread_self()`), `None` before start. Kept after the
    /// thread ended; may be reused by a later thread.
    ///
    /// Python: `threading.Thread.ident`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| {});
    /// assert_eq!(t.ident(), None, "not started");
    /// t.start()?;
    /// t.join()?;
    /// assert!(t.ident().is_some(), "kept after the thread ended");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn ident(&self) -> Option<u64> {
        match self.state() {
            INITIAL => None,
            STARTING => {
                let ident = self.inner.ident.load(Ordering::Acquire);
                if ident != 0 {
                    return Some(ident);
                }
                self.wait_for_state(RUNNING, None);
                Some(self.inner.ident.load(Ordering::Acquire))
            }
            _ => Some(self.inner.ident.load(Ordering::Acquire)),
        }
    }

    /// The kernel's id of the thread (`gettid()`), `None` before start.
    ///
    /// Python: `threading.Thread.native_id`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::new(|| {});
    /// assert_eq!(t.native_id(), None);
    /// t.start()?;
    /// assert!(t.native_id().is_some_and(|tid| tid > 0));
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn native_id(&self) -> Option<u64> {
        match self.state() {
            INITIAL => None,
            STARTING => {
                self.wait_for_state(RUNNING, None);
                Some(self.inner.native_id.load(Ordering::Acquire))
            }
            _ => Some(self.inner.native_id.load(Ordering::Acquire)),
        }
    }

    /// The stored ident without waiting (0 while unknown).
    pub(crate) fn ident_raw(&self) -> u64 {
        self.inner.ident.load(Ordering::Acquire)
    }

    pub(crate) fn set_ids(&self, ident: u64, native_id: u64) {
        self.inner.ident.store(ident, Ordering::Release);
        self.inner.native_id.store(native_id, Ordering::Release);
    }

    /// Obsolete spelling of [`name`](Thread::name).
    ///
    /// Python: `threading.Thread.getName()` (deprecated since 3.10).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("old-style").target(|| {});
    /// #[allow(deprecated)]
    /// let name = t.get_name();
    /// assert_eq!(name, t.name());
    /// ```
    #[deprecated(note = "get the name attribute: use Thread::name")]
    pub fn get_name(&self) -> String {
        self.name()
    }

    /// Obsolete spelling of [`daemon`](Thread::daemon).
    ///
    /// Python: `threading.Thread.isDaemon()` (deprecated since 3.10).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().daemon(true).target(|| {});
    /// #[allow(deprecated)]
    /// let daemonic = t.is_daemon();
    /// assert!(daemonic);
    /// ```
    #[deprecated(note = "get the daemon attribute: use Thread::daemon")]
    pub fn is_daemon(&self) -> bool {
        self.daemon()
    }

    /// Runs the target in the calling thread, without starting a new one.
    ///
    /// Python: `threading.Thread.run()` called directly. The target runs at most once:
    /// afterwards `start()` would run nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&runs);
    /// let t = threading::Thread::new(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// t.run(); // in the calling thread
    /// t.run(); // the target runs at most once
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// ```
    pub fn run(&self) {
        if let Some(target) = self.take_target() {
            target();
        }
    }
}

/// The first and last thing a started thread does.
fn bootstrap(this: Thread) {
    this.set_ids(sys::pthread_self(), sys::gettid());
    sys::set_thread_name(&this.name());
    // First thread-local with a destructor in this thread, so destroyed last: its drop marks
    // the thread ended after every other thread-local destructor has run.
    registry::set_current(&this);
    this.advance(RUNNING);
    if let Some(target) = this.take_target() {
        excepthook::run_target(&this, target);
    }
    registry::target_returned();
}

impl PartialEq for Thread {
    fn eq(&self, other: &Thread) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Thread {}

impl Hash for Thread {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.inner).hash(state);
    }
}

/// CPython's `repr()`: `<Thread(Thread-1, started daemon 140234)>`.
impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.inner.kind {
            Kind::Started => "Thread",
            Kind::Main => "_MainThread",
            Kind::Dummy => "_DummyThread",
        };
        let status = match self.state() {
            INITIAL => "initial",
            ENDED => "stopped",
            _ => "started",
        };
        write!(f, "<{class}({}, {status}", self.name())?;
        if self.daemon() {
            f.write_str(" daemon")?;
        }
        if self.state() != INITIAL {
            write!(f, " {}", self.inner.ident.load(Ordering::Acquire))?;
        }
        f.write_str(")>")
    }
}

/// The keyword arguments of `threading.Thread(...)`: name, daemon, stack size.
///
/// Python: `Thread(target=f, name="worker", daemon=True)` is
/// `Thread::builder().name("worker").daemon(true).target(f)`.
///
/// # Examples
///
/// ```
/// use threading::Thread;
///
/// let t = Thread::builder().name("worker").daemon(true).start(|| {})?;
/// assert_eq!(t.name(), "worker");
/// assert!(t.daemon());
/// t.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with CPython's defaults: `Thread-N` name, daemon inherited.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Builder::new().name("io").start(|| {})?;
    /// assert_eq!(t.name(), "io");
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The thread's name (Python `name=`). An empty name means the default `Thread-N`,
    /// as in CPython.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("poller").target(|| {});
    /// assert_eq!(t.name(), "poller");
    /// let unnamed = threading::Thread::builder().name("").target(|| {});
    /// assert!(unnamed.name().starts_with("Thread-"), "empty: the default name");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The daemon flag (Python `daemon=`); by default inherited from the creating thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().daemon(true).target(|| {});
    /// assert!(t.daemon());
    /// ```
    pub fn daemon(mut self, daemonic: bool) -> Builder {
        self.daemon = Some(daemonic);
        self
    }

    /// The new thread's stack size in bytes; by default the process-wide
    /// [`stack_size`](crate::stack_size) setting, else 2 MiB (std's default for its threads).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().stack_size(256 * 1024).start(|| {
    ///     let buffer = [0u8; 16 * 1024];
    ///     std::hint::black_box(&buffer);
    /// })?;
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Builds the thread, unstarted.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("later").target(|| {});
    /// assert!(!t.is_alive(), "built, not started");
    /// t.start()?;
    /// t.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn target<R: Runnable>(self, target: R) -> Thread {
        let name = match self.name {
            Some(name) if !name.is_empty() => name,
            _ => {
                let n = registry::next_thread_number();
                match R::target_name() {
                    Some(function) => format!("Thread-{n} ({function})"),
                    None => format!("Thread-{n}"),
                }
            }
        };
        let daemon = self.daemon.unwrap_or_else(|| crate::current_thread().daemon());
        let target: Target = Box::new(move || target.run());
        Thread::from_parts(Kind::Started, name, daemon, INITIAL, Some(target), self.stack_size)
    }

    /// Builds and starts the thread.
    ///
    /// # Errors
    /// As [`Thread::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let t = threading::Thread::builder().name("now").start(|| {})?;
    /// t.join()?;
    /// assert!(!t.is_alive());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn start<R: Runnable>(self, target: R) -> Result<Thread, Error> {
        let thread = self.target(target);
        thread.start()?;
        Ok(thread)
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn function_names_are_shortened_like_cpython_dunder_name() {
        assert_eq!(function_name("app::counter"), Some("counter"));
        assert_eq!(function_name("app::work<u8>"), Some("work"));
        assert_eq!(function_name("app::main::{{closure}}"), None);
        assert_eq!(function_name("fn()"), None);
    }
}
