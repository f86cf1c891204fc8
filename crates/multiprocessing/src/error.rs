//! The crate's one error type, `Error`, whose `Display` is CPython 3.11's message word for
//! word.
//!
//! `multiprocessing` reports misuse with `assert` statements (`AssertionError`), closed
//! objects with `ValueError`, context misuse with `RuntimeError`, and OS failures with
//! `OSError`; each becomes a variant named after the Python exception, carrying CPython's
//! exact text. The texts are kept as constants here so that every message lives in one place.

use std::borrow::Cow;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// `start()` called a second time.
pub(crate) const START_TWICE: &str = "cannot start a process twice";
/// `start()` of an object created in another process.
pub(crate) const START_FOREIGN: &str = "can only start a process object created by current process";
/// `start()` in a daemonic process.
pub(crate) const DAEMONIC_CHILDREN: &str = "daemonic processes are not allowed to have children";
/// `join()` before `start()`.
pub(crate) const JOIN_UNSTARTED: &str = "can only join a started process";
/// `join()` of a process that is not a child of the caller.
pub(crate) const JOIN_FOREIGN: &str = "can only join a child process";
/// Setting `daemon` after `start()`.
pub(crate) const ALREADY_STARTED: &str = "process has already started";
/// Any use of a closed process object.
pub(crate) const CLOSED: &str = "process object is closed";
/// `close()` of a running process.
pub(crate) const CLOSE_RUNNING: &str = "Cannot close a process while it is still running. You should first call join() or terminate().";
/// `sentinel` (and, beyond CPython, `terminate`/`kill`) before `start()`.
pub(crate) const NOT_STARTED: &str = "process not started";
/// `terminate`/`kill` of a process that is not the caller's child (CPython has no check).
pub(crate) const SIGNAL_FOREIGN: &str = "can only signal a child process";
/// `set_start_method` once the method is fixed.
pub(crate) const CONTEXT_SET: &str = "context has already been set";
/// A closure target with a start method that runs a new program.
pub(crate) const CLOSURE_NEEDS_FORK: &str = "a closure target needs the fork start method: \
     spawn and forkserver children run a new program, which a closure cannot reach; \
     use Process::call(function, args) instead";
/// spawn/forkserver in a program whose `main` does not call `init()`.
pub(crate) const MISSING_INIT: &str = "the spawn and forkserver start methods re-run this \
     program, whose main() must call multiprocessing::init() as its first line (tests: \
     multiprocessing::init_before_main!()); it was not called in this process";
/// `start()` in a spawned child that has not reached `init()` (CPython's TestNoForkBomb).
pub(crate) const BOOTSTRAPPING: &str = "
        An attempt has been made to start a new process before the
        current process has finished its bootstrapping phase.

        This probably means that you are not using fork to start your
        child processes and you have forgotten to use the proper idiom
        in the main module:

            fn main() {
                multiprocessing::init();
                ...
            }

        A Rust program has no \"if __name__\" guard: multiprocessing::init()
        must be the first line of main, before anything that starts a
        process.";

/// Any use of a closed `Connection`.
pub(crate) const HANDLE_CLOSED: &str = "handle is closed";
/// `send` on the receiving end of a one-way pipe.
pub(crate) const READ_ONLY: &str = "connection is read-only";
/// `recv` on the sending end of a one-way pipe.
pub(crate) const WRITE_ONLY: &str = "connection is write-only";

/// A submission to a pool that was closed or terminated.
pub(crate) const POOL_NOT_RUNNING: &str = "Pool not running";
/// `Pool::join` before `close` or `terminate`.
pub(crate) const POOL_RUNNING: &str = "Pool is still running";
/// `Pool::new(Some(0))`.
pub(crate) const POOL_SIZE: &str = "Number of processes must be at least 1";
/// `maxtasksperchild(0)`.
pub(crate) const MAXTASKS: &str = "maxtasksperchild must be a positive int or None";
/// A pool used in a process other than the one that created it (a fork child's copy).
pub(crate) const POOL_FOREIGN: &str = "pool objects cannot be passed between processes or pickled";
/// A closure task for a pool whose workers are not forked.
pub(crate) const CLOSURE_POOL_NEEDS_FORK: &str = "a closure task needs a pool with the fork \
     start method: spawn and forkserver workers run a new program, which a closure cannot \
     reach; use a fn, with what it needs in its argument";
/// A task still pending when its pool was terminated (CPython leaves it pending forever).
pub(crate) const POOL_TERMINATED: &str = "the pool was terminated before this task finished";
/// A second `get` of an `AsyncResult` whose value `get_timeout` already returned.
pub(crate) const RESULT_TAKEN: &str = "the result was already taken by get_timeout()";

/// CPython's `multiprocessing` message for releasing an unlocked `Lock`.
pub(crate) const RELEASED_TOO_MANY: &str = "semaphore or lock released too many times";

pub(crate) const RLOCK_NOT_OWNED: &str = "attempt to release recursive lock not owned by thread";

pub(crate) const WAIT_NOT_OWNED: &str = "must acquire() condition before using wait()";

pub(crate) const NOTIFY_NOT_OWNED: &str = "lock is not owned";

/// The beginning of the error of an item whose result does not fit a message.
pub(crate) const RESULT_TOO_LARGE: &str = "result too large";

/// The error of `.mpi()` outside `mpirun`.
#[cfg(feature = "mpi")]
pub(crate) const NOT_UNDER_MPIRUN: &str = "the MPI pool runs under mpirun: launch the \
     program as `mpirun -n N program` (N >= 2; rank 0 runs main, ranks 1..N-1 are the \
     workers), and call multiprocessing::init() first in main";

/// `JoinableQueue.task_done()` once more than there were items (CPython's `ValueError`).
pub(crate) const TASK_DONE_TOO_MANY: &str = "task_done() called too many times";

/// A chunksize of 0 (CPython's `ValueError`).
pub(crate) const CHUNKSIZE: &str = "Chunksize must be 1+, not 0";

/// An MPI pool asked for per-worker options it cannot honour.
#[cfg(feature = "mpi")]
pub(crate) const MPI_POOL_OPTIONS: &str =
    "the MPI pool takes no initializer and no maxtasksperchild";

/// `Semaphore.release(n)` with `n == 0` (CPython's `ValueError`).
pub(crate) const N_AT_LEAST_ONE: &str = "n must be one or more";

/// `Barrier::new(0)` (CPython's `ValueError`).
pub(crate) const PARTIES: &str = "parties must be > 0";

/// An `Array` index past its end (CPython's `IndexError`).
pub(crate) const INVALID_INDEX: &str = "invalid index";

/// An `Array` whose size in bytes overflows.
pub(crate) const ARRAY_TOO_LARGE: &str = "array too large";
/// ctypes' text for a slice assignment of another length.
pub(crate) const SLICE_SIZE: &str = "Can only assign sequence of same size";

/// A message longer than one frame's 4-byte length can say.
pub(crate) const MESSAGE_TOO_LONG: &str = "message too long for one frame";

/// Shared memory of length 0 received from another process.
pub(crate) const EMPTY_SHARED_MEMORY: &str = "empty shared memory";

/// The thread that starts daemonic children for other threads ended.
pub(crate) const LAUNCHER_ENDED: &str = "the pyconc launcher thread ended unexpectedly";

/// CPython's `Queue {repr} is closed` (`ValueError`, a put or get after `close()`).
pub(crate) fn queue_closed(repr: &dyn fmt::Debug) -> String {
    format!("Queue {repr:?} is closed")
}

/// CPython's `Queue {repr} not closed` (`AssertionError`, `join_thread()` before `close()`).
pub(crate) fn queue_not_closed(repr: &dyn fmt::Debug) -> String {
    format!("Queue {repr:?} not closed")
}

/// CPython's `cannot find context for 'NAME'` (`ValueError`, an unknown start method).
pub(crate) fn no_context(name: &str) -> String {
    format!("cannot find context for '{name}'")
}

/// An error from the `multiprocessing` crate.
///
/// Python: the exceptions `multiprocessing` raises. `Display` gives CPython 3.11's message,
/// word for word, where CPython has one.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Error, Process};
///
/// let p = Process::new(|| {});
/// let err = p.join().unwrap_err();
/// assert!(matches!(err, Error::AssertionError(_)));
/// assert_eq!(err.to_string(), "can only join a started process");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Python's `AssertionError`: CPython checks API misuse with `assert` (`cannot start a
    /// process twice`, `can only join a child process`, ...). pyconc always checks.
    AssertionError(Cow<'static, str>),
    /// Python's `ValueError`: a closed object or a bad argument.
    ValueError(Cow<'static, str>),
    /// Python's `RuntimeError`: not allowed in the current state (`context has already
    /// been set`, starting a process during a spawned child's bootstrap).
    RuntimeError(Cow<'static, str>),
    /// Python's `OSError`: the operating system refused.
    OsError(io::Error),
    /// Python's `pickle.PicklingError`: a value could not be serialized.
    PicklingError(String),
    /// Python's `pickle.UnpicklingError`: bytes could not be deserialized.
    UnpicklingError(String),
    /// Python's `EOFError`: the other end of a connection was closed, so no message will
    /// come. (CPython's message is empty; this one says what happened.)
    EOFError,
    /// Python's `queue.Empty`: no item came in time (`get_nowait`, `get_timeout`).
    Empty,
    /// Python's `queue.Full`: no free place in a bounded queue came in time.
    Full,
    /// Python's `IndexError`: an index past the end of an `Array`.
    IndexError(Cow<'static, str>),
    /// Python's `threading.BrokenBarrierError`: the barrier was broken. (CPython's message
    /// is empty; this one says `broken barrier`.)
    BrokenBarrierError,
    /// Python's `multiprocessing.TimeoutError`: a pool result was not ready in time.
    /// (CPython's message is empty; this one says `timed out`.)
    TimeoutError,
    /// A pool task panicked: the panic's message and place, as the worker saw them.
    /// Python: the task's exception, re-raised with its `RemoteTraceback` as the cause.
    RemoteTraceback(RemotePanic),
    /// Python's `multiprocessing.pool.MaybeEncodingError`: a task's result could not be
    /// serialized to travel back (the worker survives).
    MaybeEncodingError(String),
    /// Python's `multiprocessing.AuthenticationError`: a `Listener`/`client` handshake
    /// failed (`digest received was wrong`, `digest sent was rejected`, ...).
    AuthenticationError(Cow<'static, str>),
    /// A pool worker died (killed, aborted, exited) while it held this task. CPython's
    /// `Pool` never reports this: it waits forever (python/cpython#96062).
    WorkerDied(String),
    /// Python's `KeyError`: a manager dict has no such key. The text is the key, shown as
    /// Python's `repr` would show it (`'missing'`).
    KeyError(String),
    /// Python's `AttributeError`: a manager namespace has no such attribute
    /// (`'Namespace' object has no attribute 'x'`).
    AttributeError(String),
}

impl Error {
    pub(crate) const fn assertion(message: &'static str) -> Error {
        Error::AssertionError(Cow::Borrowed(message))
    }

    pub(crate) const fn value(message: &'static str) -> Error {
        Error::ValueError(Cow::Borrowed(message))
    }

    pub(crate) const fn runtime(message: &'static str) -> Error {
        Error::RuntimeError(Cow::Borrowed(message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AssertionError(m)
            | Error::ValueError(m)
            | Error::RuntimeError(m)
            | Error::IndexError(m)
            | Error::AuthenticationError(m) => f.write_str(m),
            Error::OsError(e) => fmt::Display::fmt(e, f),
            Error::PicklingError(m) | Error::UnpicklingError(m) => f.write_str(m),
            Error::EOFError => f.write_str("EOF: the peer closed the connection"),
            Error::BrokenBarrierError => f.write_str("broken barrier"),
            Error::Empty => f.write_str("queue is empty"),
            Error::Full => f.write_str("queue is full"),
            Error::TimeoutError => f.write_str("timed out"),
            Error::RemoteTraceback(panic) => fmt::Display::fmt(panic, f),
            Error::MaybeEncodingError(m)
            | Error::WorkerDied(m)
            | Error::KeyError(m)
            | Error::AttributeError(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::OsError(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::OsError(error)
    }
}

impl From<threading::Error> for Error {
    /// A `threading` error met by the thread-based parts (`dummy`, `ThreadPool`): the same
    /// Python exception and text.
    fn from(error: threading::Error) -> Error {
        match error {
            threading::Error::RuntimeError(message) => Error::RuntimeError(message),
            threading::Error::ValueError(message) => Error::ValueError(message),
            threading::Error::AssertionError(message) => Error::AssertionError(message),
            threading::Error::BrokenBarrierError => Error::BrokenBarrierError,
            threading::Error::CantStartThread(error) => Error::OsError(error),
            other => Error::RuntimeError(other.to_string().into()),
        }
    }
}

impl From<Error> for threading::Error {
    /// A process error joined through [`threading::Joinable`] (`threading::joinall`).
    fn from(error: Error) -> threading::Error {
        threading::Error::Other(Box::new(error))
    }
}

/// A panic in a pool worker, as it reaches the caller: the message and where it happened.
///
/// Python: the `RemoteTraceback` CPython attaches to a task's exception. It is a plain
/// record (procspawn's `PanicInfo` is the model): `Display` reads like Rust's own panic
/// report, `ForkPoolWorker-3 panicked at src/main.rs:12:5:` and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemotePanic {
    /// The worker's process name (`ForkPoolWorker-3`).
    pub worker: String,
    /// The panic message (`panic!`'s text; `Box<dyn Any>` payloads give a placeholder).
    pub message: String,
    /// The source file of the panic, when known.
    pub file: Option<String>,
    /// The line of the panic (0 when unknown).
    pub line: u32,
    /// The column of the panic (0 when unknown).
    pub column: u32,
}

impl fmt::Display for RemotePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(
                f,
                "{} panicked at {file}:{}:{}:\n{}",
                self.worker, self.line, self.column, self.message
            ),
            None => write!(f, "{} panicked:\n{}", self.worker, self.message),
        }
    }
}

/// An OS error about a named file, with CPython's text: `[Errno 2] No such file or
/// directory: '/psm_0a1b2c3d'` (`FileNotFoundError`, `FileExistsError`, ... — the kind says
/// which).
pub(crate) fn os_error_on(error: io::Error, filename: &str) -> Error {
    let Some(errno) = error.raw_os_error() else { return Error::OsError(error) };
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.strip_suffix(&format!(" (os error {errno})")).unwrap_or(&text).to_owned();
    Error::OsError(io::Error::new(error.kind(), format!("[Errno {errno}] {text}: '{filename}'")))
}

/// CPython's text for a zero size given to `SharedMemory(create=True)`.
pub(crate) const SHM_ZERO_SIZE: &str = "'size' must be a positive number different from zero";
/// CPython's `mmap` text for an operation on a closed mapping.
pub(crate) const SHM_CLOSED: &str = "mmap closed or invalid";
/// CPython's `mmap` text for mapping an empty segment.
pub(crate) const SHM_EMPTY: &str = "cannot mmap an empty file";
/// CPython's text for a string with a NUL given as a name.
pub(crate) const EMBEDDED_NUL: &str = "embedded null character";
