//! The thread registry: CPython's `_active`/`_limbo` dictionaries and what reads them —
//! `current_thread`, `main_thread`, `active_count`, `enumerate` — plus the two moments that
//! rewrite it: process exit (`shutdown`) and `fork()`.
//!
//! - Every started thread is added by `start()` before its OS thread exists (CPython's
//!   `_limbo`), and removed by its last thread-local destructor, just before it is marked
//!   ended; so `enumerate()` never lists an unstarted or a joined thread.
//! - The calling thread's handle lives in a thread-local slot. A thread not started by this
//!   crate gets a daemonic `Dummy-N` handle the first time it asks (CPython's
//!   `_DummyThread`), removed again when that thread exits (CPython 3.13's behaviour; 3.11
//!   kept them forever).
//! - The main thread is the process's first thread, whose kernel id is the process id; its
//!   `pthread_t` is recorded before `main` runs (`pyconc_core::start`).
//! - Exit: a shutdown hook of `pyconc_core::exit` joins every non-daemon thread but the
//!   caller. It runs inside `exit()`, after the exiting thread's thread-locals were
//!   destroyed, so it reads no thread-local: it identifies the caller by `pthread_self()`.
//! - Fork: the registry is a `pyconc_core::fork::ForkMutex`, taken before every `fork()`
//!   and released after it in both processes, so the child finds it consistent; the child
//!   then keeps only the forking thread, which becomes the main thread (CPython's
//!   `_after_fork`).

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyconc_core::fork::{ForkMutex, ForkMutexGuard};
use pyconc_core::{exit, start};

use crate::sys;
use crate::thread::{ENDED, Kind, RUNNING, Thread};

struct Registry {
    /// `main_thread()`; `None` until first asked for.
    main: Option<Thread>,
    /// Main, started and dummy threads, keyed by registration order.
    threads: BTreeMap<u64, Thread>,
    next_key: u64,
}

/// Held across `fork()`, after every lock of `multiprocessing` (see `pyconc_core::fork`);
/// the child keeps only the forking thread.
static REGISTRY: ForkMutex<Registry> = ForkMutex::new(
    Registry { main: None, threads: BTreeMap::new(), next_key: 1 },
    100,
    reset_after_fork,
);

/// CPython's `_counter`: numbers `Thread-N` and `Dummy-N` names, never reset.
static THREAD_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `threading.stack_size()`: 0 means the platform default.
static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Done on the registry's first use: a registry in use means threads to join at exit
/// (and a main thread to mark ended).
static SHUTDOWN: Once = Once::new();

fn registry() -> ForkMutexGuard<Registry> {
    SHUTDOWN.call_once(|| exit::register_shutdown(at_exit));
    REGISTRY.lock()
}

pub(crate) fn next_thread_number() -> u64 {
    THREAD_COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}

pub(crate) fn default_stack_size() -> Option<usize> {
    match STACK_SIZE.load(Ordering::Relaxed) {
        0 => None,
        size => Some(size),
    }
}

pub(crate) fn swap_stack_size(size: usize) -> usize {
    STACK_SIZE.swap(size, Ordering::Relaxed)
}

/// Registers a thread being started (CPython's `_limbo`).
pub(crate) fn add(thread: &Thread) {
    let mut reg = registry();
    let key = reg.next_key;
    reg.next_key += 1;
    thread.inner.key.store(key, Ordering::Relaxed);
    reg.threads.insert(key, thread.clone());
}

/// Unregisters a thread (it ended, or could not be started).
pub(crate) fn remove(thread: &Thread) {
    remove_locked(&mut registry(), thread);
}

fn remove_locked(reg: &mut Registry, thread: &Thread) {
    let key = thread.inner.key.load(Ordering::Relaxed);
    if reg.threads.get(&key) == Some(thread) {
        reg.threads.remove(&key);
    }
}

/// The slot holding the calling thread's handle. Dropped by the thread's exit: for a
/// started or dummy thread that unregisters it and marks it ended (releasing joiners).
///
/// `exit()` destroys the calling thread's thread-locals too, before the exit hook runs. A
/// started thread that calls `std::process::exit` must not count as ended then (its
/// joiners would run on while the process exits), so a started thread's slot only ends it
/// once its target has returned (`returned`).
struct CurrentSlot {
    thread: OnceCell<Thread>,
    returned: Cell<bool>,
}

impl Drop for CurrentSlot {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.kind() == Kind::Started && !self.returned.get() {
                return;
            }
            thread_exit(&thread);
        }
    }
}

thread_local! {
    static CURRENT: CurrentSlot =
        const { CurrentSlot { thread: OnceCell::new(), returned: Cell::new(false) } };
}

/// Called by a started thread when its target has returned (or panicked).
pub(crate) fn target_returned() {
    let _ = CURRENT.try_with(|slot| slot.returned.set(true));
}

/// Called by a started thread before anything else, so that its slot is the first
/// thread-local with a destructor, hence the last destroyed.
pub(crate) fn set_current(thread: &Thread) {
    CURRENT.with(|slot| {
        let _ = slot.thread.set(thread.clone());
    });
}

fn thread_exit(thread: &Thread) {
    {
        // One lock for the check and the removal: this runs at every thread's end.
        let mut reg = registry();
        if thread.kind() == Kind::Main || reg.main.as_ref() == Some(thread) {
            // The main thread's thread-locals die inside exit(), before the exit hook
            // runs; it stays listed (CPython lists it during atexit) and is marked
            // stopped there.
            return;
        }
        remove_locked(&mut reg, thread);
    }
    thread.advance(ENDED);
}

/// The calling thread's handle.
///
/// Python: `threading.current_thread()`. For a thread not started by this crate it is a
/// daemonic `Dummy-N` thread that cannot be joined, registered the first time it asks and
/// unregistered when that thread exits; for the process's first thread it is
/// [`main_thread()`].
///
/// # Examples
///
/// ```
/// let t = threading::Thread::builder().name("worker").start(|| {
///     assert_eq!(threading::current_thread().name(), "worker");
/// })?;
/// t.join()?;
/// assert_eq!(threading::current_thread(), threading::main_thread());
/// # Ok::<(), threading::Error>(())
/// ```
pub fn current_thread() -> Thread {
    CURRENT
        .try_with(|slot| slot.thread.get_or_init(adopt_calling_thread).clone())
        // Only during this thread's own thread-local destruction: answer without caching.
        .unwrap_or_else(|_| find_calling_thread())
}

/// Registers the calling thread, which this crate did not start.
fn adopt_calling_thread() -> Thread {
    if sys::gettid() == sys::getpid() {
        return main_thread();
    }
    let name = format!("Dummy-{}", next_thread_number());
    let dummy = Thread::from_parts(Kind::Dummy, name, true, RUNNING, None, None);
    dummy.set_ids(sys::pthread_self(), sys::gettid());
    add(&dummy);
    dummy
}

fn find_calling_thread() -> Thread {
    let ident = sys::pthread_self();
    let found =
        registry().threads.values().find(|t| t.is_alive() && t.ident_raw() == ident).cloned();
    found.unwrap_or_else(|| {
        let dummy = Thread::from_parts(Kind::Dummy, "Dummy".into(), true, RUNNING, None, None);
        dummy.set_ids(ident, sys::gettid());
        dummy
    })
}

/// The main thread: the thread the process started with, named `MainThread`.
///
/// Python: `threading.main_thread()`. After a `fork()` the child's main thread is the
/// thread that forked, as in CPython. It counts as alive until the process exits.
///
/// # Examples
///
/// ```
/// assert_eq!(threading::main_thread().name(), "MainThread");
/// let t = threading::Thread::new(|| {
///     assert_ne!(threading::current_thread(), threading::main_thread());
/// });
/// t.start()?;
/// t.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
pub fn main_thread() -> Thread {
    let mut reg = registry();
    main_of(&mut reg)
}

fn main_of(reg: &mut Registry) -> Thread {
    if let Some(main) = &reg.main {
        return main.clone();
    }
    let main = Thread::from_parts(Kind::Main, "MainThread".into(), false, RUNNING, None, None);
    let mut ident = start::main_thread_ident().unwrap_or(0);
    if ident == 0 && sys::gettid() == sys::getpid() {
        ident = sys::pthread_self();
    }
    main.set_ids(ident, sys::getpid());
    reg.threads.insert(0, main.clone());
    reg.main = Some(main.clone());
    main
}

/// The number of threads alive: the main thread, started threads that have not ended, and
/// dummy threads. Always `enumerate().len()`.
///
/// Python: `threading.active_count()`.
///
/// # Examples
///
/// ```
/// use threading::Event;
/// use std::sync::Arc;
///
/// let before = threading::active_count();
/// let go = Arc::new(Event::new());
/// let release = Arc::clone(&go);
/// let t = threading::Thread::new(move || release.wait());
/// t.start()?;
/// assert_eq!(threading::active_count(), before + 1);
/// go.set();
/// t.join()?;
/// assert_eq!(threading::active_count(), before);
/// # Ok::<(), threading::Error>(())
/// ```
pub fn active_count() -> usize {
    let mut reg = registry();
    main_of(&mut reg);
    reg.threads.len()
}

/// Every thread alive, in the order they were registered (the main thread first).
///
/// Python: `threading.enumerate()`. Never lists unstarted or ended threads.
///
/// # Examples
///
/// ```
/// let t = threading::Thread::builder().name("listed").target(|| {});
/// assert!(!threading::enumerate().contains(&t), "not started yet");
/// assert!(threading::enumerate().contains(&threading::main_thread()));
/// ```
pub fn enumerate() -> Vec<Thread> {
    let mut reg = registry();
    main_of(&mut reg);
    reg.threads.values().cloned().collect()
}

/// Waits for every started, non-daemon thread other than the caller to end, including
/// threads started while it waits.
///
/// Python: `threading._shutdown()`, which the interpreter calls at exit. This crate calls
/// it by itself when `main` returns or `std::process::exit` is called; call it directly to
/// wait for the same threads earlier.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let done = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&done);
/// threading::Thread::builder().daemon(false).start(move || {
///     std::thread::sleep(std::time::Duration::from_millis(20));
///     flag.store(true, Ordering::SeqCst);
/// })?;
/// threading::shutdown(); // waits for the non-daemon thread
/// assert!(done.load(Ordering::SeqCst));
/// # Ok::<(), threading::Error>(())
/// ```
pub fn shutdown() {
    join_non_daemon_threads(sys::pthread_self());
}

fn join_non_daemon_threads(caller: u64) {
    if !SHUTDOWN.is_completed() {
        // Never used: no thread was started through it. (Not touched either: a forked
        // child that exits writes no page it does not need, each a copy-on-write fault.)
        return;
    }
    // Threads that called `std::process::exit` while this one was exiting: std parks them
    // forever, so waiting for them would hang the process.
    let mut abandoned: Vec<Thread> = Vec::new();
    loop {
        let pending: Vec<Thread> = registry()
            .threads
            .values()
            .filter(|t| t.kind() == Kind::Started && !t.daemon() && t.ident_raw() != caller)
            .filter(|t| !abandoned.contains(t))
            .cloned()
            .collect();
        // A thread still in `start()` may not have its ident yet; it is not the caller
        // (the caller is running this), so waiting for it is right.
        if pending.is_empty() {
            return;
        }
        for thread in pending {
            loop {
                let deadline = Instant::now() + EXIT_PARK_CHECK;
                if thread.wait_end(Some(deadline)).unwrap_or(true) {
                    break;
                }
                if thread.native_id().is_some_and(sys::parked_in_exit) {
                    abandoned.push(thread);
                    break;
                }
            }
        }
    }
}

/// How often a waiting exit checks whether the thread it waits for is parked in `exit`.
const EXIT_PARK_CHECK: Duration = Duration::from_millis(50);

/// `pyconc_core`'s shutdown hook, run inside `exit()` in the exiting thread, whose
/// thread-locals may be gone already: marks the main thread ended (when it is the one
/// exiting) and joins every non-daemon thread. The exit finalizers run after it.
fn at_exit() {
    let caller = sys::pthread_self();
    if sys::gettid() == sys::getpid() {
        // The main thread is exiting: CPython marks it stopped, releasing its joiners.
        let main = registry().main.clone();
        if let Some(main) = main {
            main.advance(ENDED);
        }
    }
    join_non_daemon_threads(caller);
}

/// CPython's `threading._after_fork`, run in every forked child with the registry held
/// across the fork: only the forking thread survives. It becomes the main thread; every
/// other thread is marked ended (joining it returns at once).
fn reset_after_fork(reg: &mut Registry) {
    let ident = sys::pthread_self();
    let from_slot = CURRENT.try_with(|slot| slot.thread.get().cloned()).ok().flatten();
    let current = from_slot
        .or_else(|| reg.threads.values().find(|t| t.ident_raw() == ident).cloned())
        .unwrap_or_else(|| {
            Thread::from_parts(Kind::Main, "MainThread".into(), false, RUNNING, None, None)
        });
    current.set_ids(ident, sys::gettid());
    start::set_main_thread_ident(ident);
    for thread in reg.threads.values().chain(reg.main.as_ref()) {
        if *thread != current {
            thread.forget_os_thread();
            thread.advance(ENDED);
        }
    }
    reg.threads.clear();
    let key = current.inner.key.load(Ordering::Relaxed);
    reg.threads.insert(key, current.clone());
    reg.main = Some(current);
}

/// Obsolete spelling of [`current_thread`].
///
/// Python: `threading.currentThread()` (deprecated since 3.10, still in 3.11).
///
/// # Examples
///
/// ```
/// #[allow(deprecated)]
/// let me = threading::currentThread();
/// assert_eq!(me, threading::current_thread());
/// ```
#[deprecated(note = "currentThread() is deprecated, use current_thread() instead")]
#[allow(non_snake_case, reason = "CPython's name, kept for code ported from Python")]
pub fn currentThread() -> Thread {
    current_thread()
}

/// Obsolete spelling of [`active_count`].
///
/// Python: `threading.activeCount()` (deprecated since 3.10, still in 3.11).
///
/// # Examples
///
/// ```
/// #[allow(deprecated)]
/// let n = threading::activeCount();
/// assert_eq!(n, threading::active_count());
/// ```
#[deprecated(note = "activeCount() is deprecated, use active_count() instead")]
#[allow(non_snake_case, reason = "CPython's name, kept for code ported from Python")]
pub fn activeCount() -> usize {
    active_count()
}
