//! What happens to a panic in a started thread: Python's `threading.excepthook`.
//!
//! The target runs under `pyconc_core::panic::catch_panic`: while it (and the hook) runs,
//! the panic hook records the panic's location and, when `RUST_BACKTRACE` asks for one, a
//! backtrace, instead of printing Rust's usual `thread '…' panicked at` message — so a
//! panic is reported exactly once, by the thread exception hook. Panics in other threads
//! go to the panic hook that was installed before (Rust's default one, usually).
//!
//! The thread then ends normally: `join` returns `Ok`, and the process goes on.

use std::sync::{Arc, PoisonError, RwLock};

use pyconc_core::panic::{self, CaughtPanic};

use crate::Thread;

pub use pyconc_core::panic::Location;

/// What the thread exception hook is told about a panic.
///
/// Python: `threading.ExceptHookArgs` (`exc_type`, `exc_value`, `exc_traceback`, `thread`);
/// a Rust panic has a message, a location and maybe a backtrace instead.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExceptHookArgs {
    /// The thread that panicked; `None` where CPython passes `thread=None`.
    pub thread: Option<Thread>,
    /// The panic message (`"Box<dyn Any>"` when the payload is not a string).
    pub message: String,
    /// Where the panic happened, when known.
    pub location: Option<Location>,
    /// The backtrace, when `RUST_BACKTRACE` asked for one.
    pub backtrace: Option<String>,
}

impl ExceptHookArgs {
    /// Arguments for a hook call, for hooks that call other hooks and for tests.
    ///
    /// # Examples
    ///
    /// ```
    /// let args = threading::ExceptHookArgs::new(None, "boom");
    /// assert_eq!(args.message, "boom");
    /// threading::excepthook(&args); // prints "Exception in thread None:" and the message
    /// ```
    pub fn new(thread: Option<Thread>, message: impl Into<String>) -> ExceptHookArgs {
        ExceptHookArgs { thread, message: message.into(), location: None, backtrace: None }
    }

    /// Adds the panic's location.
    ///
    /// # Examples
    ///
    /// ```
    /// let location = threading::Location { file: "src/main.rs".into(), line: 12, column: 5 };
    /// let args = threading::ExceptHookArgs::new(None, "boom").with_location(location);
    /// assert!(args.location.is_some());
    /// ```
    pub fn with_location(mut self, location: Location) -> ExceptHookArgs {
        self.location = Some(location);
        self
    }
}

type Hook = Arc<dyn Fn(&ExceptHookArgs) + Send + Sync + 'static>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Replaces the thread exception hook; it is called in the panicking thread.
///
/// Python: `threading.excepthook = hook`. Like CPython's, the hook is looked up when the
/// panic happens, so it also applies to threads already running. If the hook itself
/// panics, `Exception in threading.excepthook:` and that panic are printed to stderr and
/// the thread ends.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// threading::set_excepthook(move |args| {
///     let name = args.thread.as_ref().map(|t| t.name()).unwrap_or_default();
///     log.lock().unwrap().push(format!("{name}: {}", args.message));
/// });
/// let t = threading::Thread::builder().name("boom").start(|| panic!("run failed"))?;
/// t.join()?; // the panic does not reach the joiner
/// assert_eq!(*seen.lock().unwrap(), ["boom: run failed"]);
/// threading::set_excepthook(threading::excepthook); // back to the default
/// # Ok::<(), threading::Error>(())
/// ```
pub fn set_excepthook(hook: impl Fn(&ExceptHookArgs) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
}

/// The default thread exception hook: prints `Exception in thread NAME:`, then where the
/// thread panicked and the message (and the backtrace, if captured) to stderr.
///
/// Python: `threading.excepthook` / `threading.__excepthook__`. NAME is the thread's name,
/// or `get_ident()` when `args.thread` is `None`, as in CPython.
///
/// # Examples
///
/// ```
/// // What a custom hook does to keep the default output: call it.
/// let args = threading::ExceptHookArgs::new(Some(threading::current_thread()), "it broke");
/// threading::excepthook(&args); // stderr: "Exception in thread ...:" and "it broke"
/// ```
pub fn excepthook(args: &ExceptHookArgs) {
    let name = match &args.thread {
        Some(thread) => thread.name(),
        None => crate::sys::pthread_self().to_string(),
    };
    let mut text = format!("Exception in thread {name}:\n");
    text.push_str(&panic::describe(
        &args.message,
        args.location.as_ref(),
        args.backtrace.as_deref(),
    ));
    panic::write_stderr(&text);
}

/// Runs a started thread's target; a panic goes to the thread exception hook.
pub(crate) fn run_target(thread: &Thread, target: impl FnOnce()) {
    if let Err(caught) = panic::catch_panic(target) {
        report(thread, caught);
    }
}

fn report(thread: &Thread, caught: CaughtPanic) {
    let args = ExceptHookArgs {
        thread: Some(thread.clone()),
        message: caught.message,
        location: caught.location,
        backtrace: caught.backtrace,
    };
    let hook = HOOK.read().unwrap_or_else(PoisonError::into_inner).clone();
    let outcome = panic::catch_panic(|| match hook {
        Some(hook) => hook(&args),
        None => excepthook(&args),
    });
    if let Err(hook_panic) = outcome {
        let mut text = String::from("Exception in threading.excepthook:\n");
        text.push_str(&hook_panic.describe());
        panic::write_stderr(&text);
    }
}
