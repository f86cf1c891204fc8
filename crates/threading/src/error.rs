//! The crate's one error type, `Error`, whose `Display` is CPython 3.11's message word for word.
//!
//! CPython raises `RuntimeError`, `ValueError` and `AssertionError` for misuse of `threading`;
//! each becomes a variant named after the Python exception, carrying CPython's exact text.
//! The texts are kept as constants here so that every message lives in one place.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// `Thread.start()` called a second time.
pub(crate) const START_TWICE: &str = "threads can only be started once";
/// `Thread.join()` before `start()`.
pub(crate) const JOIN_BEFORE_START: &str = "cannot join thread before it is started";
/// `Thread.join()` from the thread itself.
pub(crate) const JOIN_CURRENT: &str = "cannot join current thread";
/// `join()` on a `_DummyThread` (CPython raises `AssertionError`).
pub(crate) const JOIN_DUMMY: &str = "cannot join a dummy thread";
/// Setting `daemon` after `start()`.
pub(crate) const DAEMON_ACTIVE: &str = "cannot set daemon status of active thread";
/// The OS refused to create a thread.
pub(crate) const CANT_START: &str = "can't start new thread";

/// The message of releasing an unlocked `Lock`.
pub(crate) const RELEASE_UNLOCKED: &str = "release unlocked lock";

pub(crate) const WAIT_UNACQUIRED: &str = "cannot wait on un-acquired lock";

pub(crate) const NOTIFY_UNACQUIRED: &str = "cannot notify on un-acquired lock";

/// The message of releasing an `RLock` the caller does not hold.
pub(crate) const RELEASE_UNACQUIRED: &str = "cannot release un-acquired lock";

pub(crate) const RELEASED_TOO_MANY: &str = "Semaphore released too many times";

pub(crate) const N_AT_LEAST_ONE: &str = "n must be one or more";

pub(crate) const PARTIES: &str = "parties must be > 0";

/// CPython's `size not valid: N bytes` (`ValueError`, `stack_size` below the minimum).
pub(crate) fn stack_size_not_valid(size: usize) -> String {
    format!("size not valid: {size} bytes")
}

/// An error from the `threading` crate.
///
/// Python: the `RuntimeError`, `ValueError` and `AssertionError` instances that
/// `threading` raises. `Display` gives CPython 3.11's message, word for word.
///
/// # Examples
///
/// ```
/// use threading::{Error, Thread};
///
/// let t = Thread::new(|| {});
/// let err = t.join().unwrap_err();
/// assert!(matches!(err, Error::RuntimeError(_)));
/// assert_eq!(err.to_string(), "cannot join thread before it is started");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Python's `RuntimeError` (also `threading.ThreadError`): an operation that is not
    /// allowed in the object's current state.
    RuntimeError(Cow<'static, str>),
    /// Python's `ValueError`: an argument out of range.
    ValueError(Cow<'static, str>),
    /// Python's `AssertionError`, raised by CPython for `join()` on a dummy thread.
    AssertionError(Cow<'static, str>),
    /// Python's `threading.BrokenBarrierError`: the barrier was broken (a timeout, an
    /// `abort()`, a `reset()` while waiting, or a panicking action). CPython's message is
    /// empty; this one says `broken barrier`.
    BrokenBarrierError,
    /// The OS refused to start a thread. Displays as CPython's
    /// `RuntimeError: can't start new thread`; the OS error is the `source()`.
    CantStartThread(io::Error),
    /// An error of another handle type joined through [`Joinable`](crate::Joinable), for
    /// example a `multiprocessing::Process`; its own text is displayed.
    Other(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    pub(crate) const fn runtime(message: &'static str) -> Error {
        Error::RuntimeError(Cow::Borrowed(message))
    }

    pub(crate) const fn value(message: &'static str) -> Error {
        Error::ValueError(Cow::Borrowed(message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RuntimeError(m) | Error::ValueError(m) | Error::AssertionError(m) => {
                f.write_str(m)
            }
            Error::CantStartThread(_) => f.write_str(CANT_START),
            Error::BrokenBarrierError => f.write_str("broken barrier"),
            Error::Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::CantStartThread(e) => Some(e),
            Error::Other(e) => e.source(),
            _ => None,
        }
    }
}
