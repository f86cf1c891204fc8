//! What runs when the process exits: CPython's `util.Finalize`, `util._run_finalizers`,
//! `util._exit_function` and `util.is_exiting`, and the interpreter's call to
//! `threading._shutdown` before them.
//!
//! At exit (when `main` returns or `std::process::exit` is called), in this order:
//!
//! 1. the shutdown hooks ([`register_shutdown`]): `threading` joins every non-daemon
//!    thread (CPython's interpreter calls `threading._shutdown()` before `atexit`);
//! 2. [`exit_function`]: every finalizer with an exit priority, highest priority first,
//!    and among equal priorities the most recently created first. The priorities in use,
//!    as CPython's:
//!
//! | priority | finalizer |
//! |---|---|
//! | 15 | pools are terminated |
//! | 0 | daemonic children are terminated, then every child is joined |
//! | −5 | queue feeders write what is pending |
//! | `i32::MIN + 1` | MPI is finalized |
//! | `i32::MIN` | `Lock`s still held are marked abandoned |
//!
//! A child process started by `multiprocessing` runs [`exit_function`] itself when its
//! target returns, then joins its threads (CPython's `_bootstrap` order), and ends with
//! `_exit`. A forked child starts with no finalizers: those of the parent are the
//! parent's (CPython clears `_finalizer_registry` in `_after_fork`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fork::ForkMutex;

type Callback = Box<dyn FnOnce() + Send>;

struct Entry {
    priority: Option<i32>,
    callback: Callback,
    /// The callback's type, for the SUBDEBUG line that names it.
    name: &'static str,
}

struct Registry {
    /// By creation number (CPython's `_finalizer_counter`).
    entries: BTreeMap<u64, Entry>,
    next: u64,
    /// CPython's `util._exiting`.
    exiting: bool,
    shutdown: Vec<fn()>,
}

impl Registry {
    /// In every forked child (std's `Command` forks too): the parent's finalizers are the
    /// parent's. They are forgotten, not dropped: dropping a callback would run the
    /// destructors of what it captured (a temporary directory's removal, say) in the
    /// child.
    fn reset_in_child(&mut self) {
        std::mem::forget(std::mem::take(&mut self.entries));
        self.exiting = false;
    }
}

static REGISTRY: ForkMutex<Registry> = ForkMutex::new(
    Registry { entries: BTreeMap::new(), next: 1, exiting: false, shutdown: Vec::new() },
    1000,
    Registry::reset_in_child,
);

/// A callback registered to run once: when [`call`](Finalize::call)ed, when the handle of
/// an object's finalizer is dropped, or at exit if it has an exit priority.
///
/// Python: `multiprocessing.util.Finalize(obj, callback, exitpriority=None)`.
/// - [`Finalize::new`] is CPython's form with an object: the handle stands for the object,
///   and dropping it (the object is gone) runs the callback if it has not run yet.
/// - [`Finalize::at_exit`] is the form without an object (`obj=None`), which CPython
///   requires to have an exit priority: the callback stays registered until exit whether
///   the handle is kept or not.
///
/// At exit, finalizers with an exit priority run highest priority first; equal priorities
/// run the most recently created first. A callback that panics is reported on stderr and
/// the others still run. In a forked child a parent's finalizer never runs.
#[must_use = "dropping the handle of `Finalize::new` runs the callback at once"]
pub struct Finalize {
    key: u64,
    /// Whether dropping the handle runs the callback (the form with an object).
    on_drop: bool,
}

impl Finalize {
    /// Registers `callback` as the finalizer of an object, which the returned handle
    /// stands for: it runs when the handle drops, when [`call`](Finalize::call)ed, or — if
    /// `exitpriority` is `Some` — at exit, whichever comes first.
    pub fn new(callback: impl FnOnce() + Send + 'static, exitpriority: Option<i32>) -> Finalize {
        Finalize { key: register(callback, exitpriority), on_drop: true }
    }

    /// Registers `callback` to run at exit with `exitpriority` (or earlier through
    /// [`call`](Finalize::call)); dropping the handle leaves it registered.
    pub fn at_exit(callback: impl FnOnce() + Send + 'static, exitpriority: i32) -> Finalize {
        Finalize { key: register(callback, Some(exitpriority)), on_drop: false }
    }

    /// Runs the callback now unless it ran or was cancelled already; returns whether it
    /// ran (CPython's `Finalize.__call__`).
    pub fn call(&self) -> bool {
        run(self.key)
    }

    /// Unregisters the callback without running it (CPython's `cancel()`).
    pub fn cancel(&self) {
        let _ = REGISTRY.lock().entries.remove(&self.key);
    }

    /// Whether the callback is still waiting to run (CPython's `still_active()`).
    pub fn still_active(&self) -> bool {
        REGISTRY.lock().entries.contains_key(&self.key)
    }
}

impl Drop for Finalize {
    fn drop(&mut self) {
        if self.on_drop {
            run(self.key);
        }
    }
}

impl fmt::Debug for Finalize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let priority = REGISTRY.lock().entries.get(&self.key).map(|e| e.priority);
        let mut d = f.debug_struct("Finalize");
        match priority {
            None => d.field("state", &"dead"),
            Some(priority) => d.field("exitpriority", &priority),
        }
        .finish()
    }
}

fn register<F: FnOnce() + Send + 'static>(callback: F, priority: Option<i32>) -> u64 {
    install();
    let name = std::any::type_name::<F>();
    let mut registry = REGISTRY.lock();
    let key = registry.next;
    registry.next += 1;
    registry.entries.insert(key, Entry { priority, callback: Box::new(callback), name });
    key
}

/// A finalizer without an object that a subsystem registers once per process: the first
/// [`install`](AtExit::install) in each process registers it (a forked child starts with
/// no finalizers, so its first use registers it again there).
///
/// ```
/// use pyconc_core::exit::AtExit;
///
/// fn flush_everything() {}
/// static FLUSH: AtExit = AtExit::new(flush_everything, -5);
/// FLUSH.install();
/// FLUSH.install(); // registered once
/// ```
#[derive(Debug)]
pub struct AtExit {
    callback: fn(),
    priority: i32,
    /// The process in which it was registered last.
    pid: AtomicU64,
}

impl AtExit {
    /// `callback`, to run at exit with `priority`.
    pub const fn new(callback: fn(), priority: i32) -> AtExit {
        AtExit { callback, priority, pid: AtomicU64::new(0) }
    }

    /// Registers the finalizer unless this process did already.
    pub fn install(&self) {
        let me = crate::sys::getpid();
        let last = self.pid.load(Ordering::Relaxed);
        if last != me
            && self.pid.compare_exchange(last, me, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let _ = Finalize::at_exit(self.callback, self.priority);
        }
    }
}

/// Runs finalizer `key` if it is still registered; outside the registry's lock, so that
/// a callback may register or run others.
fn run(key: u64) -> bool {
    let entry = REGISTRY.lock().entries.remove(&key);
    match entry {
        Some(entry) => {
            // CPython: `finalizer calling <callback> with args () and kwargs {}`.
            crate::logging::sub_debug(|| {
                format!("finalizer calling {} with args () and kwargs {{}}", entry.name)
            });
            invoke(entry.callback);
            true
        }
        None => false,
    }
}

fn invoke(callback: Callback) {
    if let Err(caught) = crate::panic::catch_panic(callback) {
        let mut text = String::from("pyconc: a finalizer panicked:\n");
        text.push_str(&caught.describe());
        crate::panic::write_stderr(&text);
    }
}

/// Runs every finalizer whose exit priority is at least `minpriority` (`None`: every one
/// with an exit priority), highest first, equal priorities newest first.
///
/// Python: `multiprocessing.util._run_finalizers(minpriority=None)`. Finalizers
/// registered while it runs wait for the next call.
pub fn run_finalizers(minpriority: Option<i32>) {
    let mut keys: Vec<(i32, u64)> = REGISTRY
        .lock()
        .entries
        .iter()
        .filter_map(|(&key, e)| e.priority.map(|p| (p, key)))
        .filter(|&(p, _)| minpriority.is_none_or(|min| p >= min))
        .collect();
    keys.sort_unstable_by(|a, b| b.cmp(a));
    for (_, key) in keys {
        run(key);
    }
}

/// Runs the exit finalizers once per process: CPython's `util._exit_function` (which runs
/// `_run_finalizers(0)`, then the children's clean-up — here a finalizer of priority 0 —
/// then the rest). Later calls do nothing.
pub fn exit_function() {
    {
        let mut registry = REGISTRY.lock();
        if registry.exiting {
            return;
        }
        registry.exiting = true;
    }
    crate::logging::info(|| "process shutting down".to_owned());
    crate::logging::debug(|| "running all \"atexit\" finalizers with priority >= 0".to_owned());
    run_finalizers(Some(0));
    crate::logging::debug(|| "running the remaining \"atexit\" finalizers".to_owned());
    run_finalizers(None);
}

/// Whether the process is shutting down: [`exit_function`] has begun.
///
/// Python: `multiprocessing.util.is_exiting()`.
pub fn is_exiting() -> bool {
    REGISTRY.lock().exiting
}

/// Registers `hook` to run at process exit before the finalizers, in every process
/// (forked children included); hooks run in registration order. `threading` joins its
/// non-daemon threads here.
pub fn register_shutdown(hook: fn()) {
    install();
    let mut registry = REGISTRY.lock();
    if !registry.shutdown.contains(&hook) {
        registry.shutdown.push(hook);
    }
}

/// Installs the `atexit` handler, once per process ([`start`](crate::start) does it before
/// `main`; the first registration does it otherwise).
pub fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        crate::sys::atexit(at_exit);
    });
}

/// The `atexit` handler: runs inside `exit()`, in the exiting thread, whose thread-locals
/// may be gone already.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let hooks = REGISTRY.lock().shutdown.clone();
        for hook in hooks {
            let _ = std::panic::catch_unwind(hook);
        }
        exit_function();
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn finalizers_run_by_priority_then_newest_first_and_only_once() {
        // Python: test_multiprocessing's `_TestFinalize.test_finalize` (the order part).
        let log = Arc::new(Mutex::new(Vec::new()));
        let add = |name: &'static str| {
            let log = Arc::clone(&log);
            move || log.lock().unwrap().push(name)
        };
        let a = Finalize::at_exit(add("a"), 10_000);
        let b = Finalize::at_exit(add("b"), 10_000);
        let c = Finalize::at_exit(add("c"), 10_100);
        let d = Finalize::new(add("d"), None);
        let e = Finalize::at_exit(add("e"), 9_999);
        e.cancel();
        assert!(!e.still_active());
        run_finalizers(Some(10_000));
        assert_eq!(*log.lock().unwrap(), ["c", "b", "a"]);
        assert!(!a.call(), "a finalizer runs once");
        assert!(d.still_active(), "no exit priority: not run at exit");
        drop(d);
        assert_eq!(*log.lock().unwrap(), ["c", "b", "a", "d"]);
        drop((b, c));
    }

    #[test]
    fn finalizers_are_thread_safe() {
        // Python: `_TestFinalize.test_thread_safety` (bpo-24484): finalizers created and
        // dropped by several threads while another runs them at exit priority.
        let stop = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (stop, ran) = (Arc::clone(&stop), Arc::clone(&ran));
                std::thread::spawn(move || {
                    for i in 0..2_000u32 {
                        let ran = Arc::clone(&ran);
                        let priority = 20_000 + ((i * 7 + t) % 100) as i32;
                        let f = Finalize::new(
                            move || {
                                ran.fetch_add(1, Ordering::Relaxed);
                            },
                            Some(priority),
                        );
                        if i % 3 == 0 {
                            drop(f);
                        } else {
                            std::mem::forget(f);
                        }
                    }
                    stop.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        while stop.load(Ordering::Relaxed) < 4 {
            run_finalizers(Some(20_000));
        }
        for worker in workers {
            worker.join().unwrap();
        }
        run_finalizers(Some(20_000));
        assert_eq!(ran.load(Ordering::Relaxed), 4 * 2_000, "each ran exactly once");
        assert!(REGISTRY.lock().entries.values().all(|e| e.priority < Some(20_000)));
    }

    #[test]
    fn a_panicking_finalizer_does_not_stop_the_call() {
        let f = Finalize::new(|| panic!("boom"), None);
        assert!(f.call());
        assert!(!f.still_active());
    }
}
