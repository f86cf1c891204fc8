//! What happens to a panic in a started thread: Python's `threading.excepthook`.
//!
//! The target runs under `catch_unwind`. While it (and the hook) runs, this crate's panic
//! hook records the panic's location and, when `RUST_BACKTRACE` asks for one, a backtrace,
//! instead of printing Rust's usual `thread '…' panicked at` message — so a panic is
//! reported exactly once, by the thread exception hook. Panics in other threads go to the
//! panic hook that was installed before (Rust's default one, usually).
//!
//! The thread then ends normally: `join` returns `Ok`, and the process goes on.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::Thread;

/// Where a panic happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The source file.
    pub file: String,
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

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
    pub fn new(thread: Option<Thread>, message: impl Into<String>) -> ExceptHookArgs {
        ExceptHookArgs { thread, message: message.into(), location: None, backtrace: None }
    }

    /// Adds the panic's location.
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
pub fn excepthook(args: &ExceptHookArgs) {
    let name = match &args.thread {
        Some(thread) => thread.name(),
        None => crate::get_ident().to_string(),
    };
    let mut text = format!("Exception in thread {name}:\n");
    text.push_str(&describe_panic(
        &args.message,
        args.location.as_ref(),
        args.backtrace.as_deref(),
    ));
    write_stderr(&text);
}

fn describe_panic(message: &str, location: Option<&Location>, backtrace: Option<&str>) -> String {
    let mut text = match location {
        Some(location) => format!("panicked at {location}:\n{message}\n"),
        None => format!("panicked:\n{message}\n"),
    };
    if let Some(backtrace) = backtrace {
        text.push_str("stack backtrace:\n");
        text.push_str(backtrace);
        if !backtrace.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

struct Recorded {
    location: Option<Location>,
    backtrace: Option<String>,
}

thread_local! {
    /// True while this thread runs a target or the exception hook.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static RECORDED: RefCell<Option<Recorded>> = const { RefCell::new(None) };
}

static PANIC_HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK_LOCK: Mutex<()> = Mutex::new(());

/// Chains this crate's panic hook in front of the current one, once.
pub(crate) fn install_panic_hook() {
    if PANIC_HOOK_INSTALLED.load(Ordering::Acquire) || std::thread::panicking() {
        return;
    }
    let _serial = PANIC_HOOK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if PANIC_HOOK_INSTALLED.load(Ordering::Acquire) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CAPTURING.try_with(Cell::get).unwrap_or(false) {
            record(info);
        } else {
            previous(info);
        }
    }));
    PANIC_HOOK_INSTALLED.store(true, Ordering::Release);
}

fn record(info: &PanicHookInfo<'_>) {
    let location = info.location().map(|l| Location {
        file: l.file().to_owned(),
        line: l.line(),
        column: l.column(),
    });
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
        .then(|| backtrace.to_string());
    let _ = RECORDED.try_with(|r| *r.borrow_mut() = Some(Recorded { location, backtrace }));
}

fn take_recorded() -> Recorded {
    RECORDED
        .try_with(|r| r.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or(Recorded { location: None, backtrace: None })
}

/// The text of a panic payload, as Rust's default hook prints it.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Runs a started thread's target; a panic goes to the thread exception hook.
pub(crate) fn run_target(thread: &Thread, target: impl FnOnce()) {
    let _ = CAPTURING.try_with(|c| c.set(true));
    if let Err(payload) = catch_unwind(AssertUnwindSafe(target)) {
        report(thread, payload);
    }
    let _ = CAPTURING.try_with(|c| c.set(false));
}

fn report(thread: &Thread, payload: Box<dyn Any + Send>) {
    let recorded = take_recorded();
    let args = ExceptHookArgs {
        thread: Some(thread.clone()),
        message: payload_message(&*payload),
        location: recorded.location,
        backtrace: recorded.backtrace,
    };
    drop_payload(payload);
    let hook = HOOK.read().unwrap_or_else(PoisonError::into_inner).clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| match hook {
        Some(hook) => hook(&args),
        None => excepthook(&args),
    }));
    if let Err(hook_payload) = outcome {
        let recorded = take_recorded();
        let mut text = String::from("Exception in threading.excepthook:\n");
        text.push_str(&describe_panic(
            &payload_message(&*hook_payload),
            recorded.location.as_ref(),
            recorded.backtrace.as_deref(),
        ));
        drop_payload(hook_payload);
        write_stderr(&text);
    }
}

/// A panic caught by [`_catch_panic`], not printed: its message, its place and (when
/// `RUST_BACKTRACE` asks for one) its backtrace.
#[doc(hidden)]
#[derive(Debug)]
pub struct _CaughtPanic {
    /// The panic message.
    pub message: String,
    /// Where it happened, when known.
    pub location: Option<Location>,
    /// The backtrace, when `RUST_BACKTRACE` asks for one.
    pub backtrace: Option<String>,
}

/// Runs `body` the way a started thread runs its target, but hands a panic back to the
/// caller instead of calling the exception hook; Rust's own panic message is not
/// printed. For `multiprocessing`'s pool workers, which send a task's panic back to the
/// caller as CPython sends a task's exception.
#[doc(hidden)]
pub fn _catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, _CaughtPanic> {
    install_panic_hook();
    let was_capturing = CAPTURING.try_with(|c| c.replace(true)).unwrap_or(false);
    let outcome = catch_unwind(AssertUnwindSafe(body));
    let _ = CAPTURING.try_with(|c| c.set(was_capturing));
    outcome.map_err(|payload| {
        let recorded = take_recorded();
        let message = payload_message(&*payload);
        drop_payload(payload);
        _CaughtPanic { message, location: recorded.location, backtrace: recorded.backtrace }
    })
}

/// [`_catch_panic`] with the panic as its report text (`panicked at FILE:LINE:COL:` and
/// the message, plus the backtrace when `RUST_BACKTRACE` asks for one). For
/// `multiprocessing`, whose children print `Process NAME:` and this text, as CPython's
/// `_bootstrap` prints the traceback.
#[doc(hidden)]
pub fn _run_reporting_panic(body: impl FnOnce()) -> Result<(), String> {
    _catch_panic(body).map_err(|caught| {
        describe_panic(&caught.message, caught.location.as_ref(), caught.backtrace.as_deref())
    })
}

/// Installs this crate's panic hook now, if it is not yet. `multiprocessing` calls it
/// before `fork()`: the child must not have to take the process's hook lock, which
/// another thread of the parent may hold at the moment of the fork.
#[doc(hidden)]
pub fn _install_panic_hook() {
    install_panic_hook();
}

fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(inner);
    }
}
