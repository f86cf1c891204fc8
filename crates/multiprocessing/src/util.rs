//! The lifecycle of a process, in CPython's terms: `multiprocessing.util`'s finalizers,
//! after-fork hooks and `is_exiting`.
//!
//! - [`Finalize`]: a callback that runs once — when called, when the object it belongs to
//!   goes away, or at exit by priority. The library's own clean-up is registered the same
//!   way: pools are terminated at priority 15, daemonic children terminated and every
//!   child joined at 0, queue feeders flushed at −5.
//! - [`register_after_fork`]: a function to run in every child this crate forks, for an
//!   object still alive then.
//! - [`is_exiting`]: whether the process has begun its exit clean-up.
//! - [`get_logger`] and [`log_to_stderr`]: the `multiprocessing` logger. The library logs
//!   at CPython's points (`child process calling self.run()`, `process exiting with
//!   exitcode N`, `process shutting down`, the pool's `added worker`, `closing pool`,
//!   `terminating pool`, `joining pool`) through the `log` facade (target
//!   `multiprocessing`), and after `log_to_stderr` also to stderr as
//!   `[LEVEL/ProcessName] message`.
//!
//! # Examples
//!
//! ```
//! use multiprocessing::util::{Finalize, is_exiting};
//!
//! // A temporary directory removed when its handle drops, or at exit at the latest.
//! let dir = std::env::temp_dir().join(format!("pyconc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let remove = {
//!     let dir = dir.clone();
//!     Finalize::new(move || drop(std::fs::remove_dir_all(&dir)), Some(0))
//! };
//! assert!(remove.still_active());
//! drop(remove);
//! assert!(!dir.exists());
//! assert!(!is_exiting());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::sync::{Arc, Weak};

pub use pyconc_core::exit::{Finalize, is_exiting};
pub use pyconc_core::logging::{Level, LevelFilter, Logger, get_logger, log_to_stderr};

/// CPython's `util.SUBDEBUG` (5): the most detailed level, `log`'s `Trace`.
pub const SUBDEBUG: LevelFilter = LevelFilter::Trace;
/// CPython's `logging.DEBUG`.
pub const DEBUG: LevelFilter = LevelFilter::Debug;
/// CPython's `logging.INFO`.
pub const INFO: LevelFilter = LevelFilter::Info;
/// CPython's `logging.WARNING`.
pub const WARNING: LevelFilter = LevelFilter::Warn;
/// CPython's `logging.ERROR`.
pub const ERROR: LevelFilter = LevelFilter::Error;
use pyconc_core::fork::ForkMutex;

type AfterFork = Box<dyn Fn() -> bool + Send>;

/// CPython's `_afterfork_registry`: hooks in registration order. A hook returns false
/// once its object is gone, and is dropped then. Held across `fork()` (order 80), so a
/// child finds it whole.
static AFTER_FORK: ForkMutex<Vec<AfterFork>> = ForkMutex::new(Vec::new(), 80, |_| {});

/// Runs `func(obj)` in every child this crate forks later (the fork start method, pool
/// workers), as long as `obj` is still alive; the registry holds it weakly.
///
/// Python: `multiprocessing.util.register_after_fork(obj, func)`. Hooks run in the child
/// after the library's own state was reset, in registration order, before the target. A
/// hook that panics is reported and the others still run (CPython logs the exception).
/// Children started by spawn or forkserver do not run them: they are new programs.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// use multiprocessing::{Process, util};
///
/// let generation = Arc::new(AtomicU32::new(1));
/// util::register_after_fork(&generation, |g| {
///     g.fetch_add(1, Ordering::Relaxed);
/// });
/// let seen = Arc::clone(&generation);
/// let p = Process::new(move || assert_eq!(seen.load(Ordering::Relaxed), 2));
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// assert_eq!(generation.load(Ordering::Relaxed), 1, "the parent's is untouched");
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn register_after_fork<T: Send + Sync + 'static>(obj: &Arc<T>, func: fn(&T)) {
    let weak: Weak<T> = Arc::downgrade(obj);
    let hook: AfterFork = Box::new(move || match weak.upgrade() {
        Some(obj) => {
            func(&obj);
            true
        }
        None => false,
    });
    AFTER_FORK.lock().push(hook);
}

/// Registers the hook registry's own fork hook in a parent about to fork a child that
/// will run [`run_after_forkers`]: the child then finds it registered (see
/// `ForkMutex::register`).
pub(crate) fn before_fork() {
    AFTER_FORK.register();
}

/// CPython's `util._run_after_forkers`, in a child the fork start method made.
///
/// The hooks run outside the registry's lock, as the exit finalizers do, so that a hook
/// may register another (it runs in later children, after the ones registered before).
pub(crate) fn run_after_forkers() {
    let mut hooks = std::mem::take(&mut *AFTER_FORK.lock());
    if hooks.is_empty() {
        // Nothing registered: nothing to run or to put back (and no more code to fault
        // in).
        return;
    }
    hooks.retain(|hook| match pyconc_core::panic::catch_panic(hook) {
        Ok(alive) => alive,
        Err(caught) => {
            pyconc_core::panic::write_stderr(&format!(
                "pyconc: an after-fork hook panicked:\n{}",
                caught.describe()
            ));
            true
        }
    });
    let mut registry = AFTER_FORK.lock();
    let added = std::mem::replace(&mut *registry, hooks);
    registry.extend(added);
}
