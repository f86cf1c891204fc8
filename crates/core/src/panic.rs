//! Catching a panic with where it happened, reported once by whoever caught it.
//!
//! While code runs under [`catch_panic`], this crate's panic hook records the panic's
//! location and, when `RUST_BACKTRACE` asks for one, a backtrace, instead of printing
//! Rust's usual `thread '…' panicked at` message; the catcher then reports it in CPython's
//! words — `threading.excepthook`'s `Exception in thread NAME:`, a child process's
//! `Process NAME:`, a pool task's exception sent back to the caller. Panics elsewhere go
//! to the panic hook that was installed before (Rust's default one, usually).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

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

/// A panic caught by [`catch_panic`].
#[derive(Debug, Clone)]
pub struct CaughtPanic {
    /// The panic message (`"Box<dyn Any>"` for a payload that is not a string).
    pub message: String,
    /// Where it happened, if the panic hook saw it.
    pub location: Option<Location>,
    /// A backtrace, if `RUST_BACKTRACE` asked for one.
    pub backtrace: Option<String>,
}

impl CaughtPanic {
    /// The report's body, as Rust's own panic message words it: `panicked at FILE:L:C:`,
    /// the message, and the backtrace if there is one.
    pub fn describe(&self) -> String {
        describe(&self.message, self.location.as_ref(), self.backtrace.as_deref())
    }
}

/// The text of a panic report (see [`CaughtPanic::describe`]).
pub fn describe(message: &str, location: Option<&Location>, backtrace: Option<&str>) -> String {
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

/// Writes `text` to stderr in one piece and flushes.
pub fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

struct Recorded {
    location: Option<Location>,
    backtrace: Option<String>,
}

thread_local! {
    /// Whether a panic of this thread is caught by [`catch_panic`] (and so only recorded).
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static RECORDED: RefCell<Option<Recorded>> = const { RefCell::new(None) };
}

static HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);
static HOOK_LOCK: Mutex<()> = Mutex::new(());

/// Installs the recording panic hook, once per process, wrapping the one installed
/// before. Call it before a fork whose child may panic: taking the hook lock there could
/// wait forever for a thread of the parent that held it.
pub fn install_hook() {
    if HOOK_INSTALLED.load(Ordering::Acquire) || std::thread::panicking() {
        return;
    }
    let _serial = HOOK_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if HOOK_INSTALLED.load(Ordering::Acquire) {
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
    HOOK_INSTALLED.store(true, Ordering::Release);
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

/// The message of a panic payload: the `&str` or `String` it carries.
fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Drops a panic payload; a payload whose destructor panics is leaked instead.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(inner);
    }
}

/// Runs `body`, catching a panic with its location and backtrace, which Rust's panic
/// hook then does not print: the caller reports it.
///
/// `body` is treated as unwind-safe: the caller reports the panic and drops (or marks
/// broken) what `body` touched, as a thread's end or a task's failure does.
pub fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, CaughtPanic> {
    capture().catch(body)
}

/// Catches the panics of many calls in a row (a pool worker's items): the hook is
/// installed and told to record once, for the life of the `Capture`, and each
/// [`catch`](Capture::catch) costs one `catch_unwind`. Belongs to the thread that made it.
#[derive(Debug)]
pub struct Capture {
    was_capturing: bool,
    /// The capture flag is this thread's.
    _thread: PhantomData<*const ()>,
}

/// Starts capturing this thread's panics (see [`Capture`]).
pub fn capture() -> Capture {
    install_hook();
    let was_capturing = CAPTURING.try_with(|c| c.replace(true)).unwrap_or(false);
    Capture { was_capturing, _thread: PhantomData }
}

impl Capture {
    /// [`catch_panic`] under this capture.
    pub fn catch<T>(&self, body: impl FnOnce() -> T) -> Result<T, CaughtPanic> {
        catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
            let recorded = take_recorded();
            let message = payload_message(&*payload);
            drop_payload(payload);
            CaughtPanic { message, location: recorded.location, backtrace: recorded.backtrace }
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = CAPTURING.try_with(|c| c.set(self.was_capturing));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_carries_its_message_and_location() {
        let caught = catch_panic(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(caught.message, "boom 7");
        let location = caught.location.clone().expect("the hook saw it");
        assert!(location.file.ends_with("panic.rs"));
        assert!(caught.describe().starts_with(&format!("panicked at {location}:\nboom 7\n")));
        assert_eq!(catch_panic(|| 5).unwrap(), 5);
    }

    #[test]
    fn one_capture_catches_many_panics_and_then_lets_them_print_again() {
        let before = CAPTURING.with(Cell::get);
        {
            let capture = capture();
            for round in 0..3 {
                let caught = capture.catch(|| panic!("round {round}")).unwrap_err();
                assert_eq!(caught.message, format!("round {round}"));
                assert!(caught.location.is_some(), "the hook recorded round {round}");
                assert_eq!(capture.catch(|| round).unwrap(), round);
            }
            // A nested capture leaves the outer one on when it ends.
            drop(super::capture());
            assert!(CAPTURING.with(Cell::get));
        }
        assert_eq!(CAPTURING.with(Cell::get), before);
    }
}
