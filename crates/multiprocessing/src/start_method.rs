//! Start methods: which way a child process is started, and the program-wide choice
//! (CPython's `multiprocessing.context` names and functions; its context objects are the
//! `Context` type, a layer up). The user-facing story is on [`StartMethod`].

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::error::CONTEXT_SET;

/// How a child process is started.
///
/// Python: the names `'fork'`, `'spawn'`, `'forkserver'` of `multiprocessing`'s contexts.
/// `Display` and `FromStr` use those names.
///
/// | Method | The child is | Targets | Start+join here |
/// |---|---|---|---|
/// | [`Fork`](StartMethod::Fork) (default) | a copy of the parent (`fork()`) | closures and `fn(A)` | ~0.2 ms |
/// | [`Spawn`](StartMethod::Spawn) | this program run again (`/proc/self/exe`) | `fn(A)` with serde args | ~1 ms |
/// | [`ForkServer`](StartMethod::ForkServer) | forked by a single-threaded server process | `fn(A)` with serde args | ~0.3 ms |
///
/// Spawn and forkserver need [`init()`](crate::init) as the first line of `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// `fork()`: the child is a copy of the parent and runs the target from there.
    ///
    /// # Fork safety
    ///
    /// A forked child has one thread: the one that called `start()`. A lock that another
    /// thread of the parent held at that moment stays locked in the child forever. This
    /// crate holds its own locks (and `threading`'s registry, stdout and stderr) across the
    /// fork and resets them in the child, so its API is usable there; locks of the user's
    /// and of other libraries are not. A child that takes one of them may hang — the same
    /// hazard as CPython's, which warns about it (`DeprecationWarning: This process is
    /// multi-threaded, use of fork() may lead to deadlocks in the child`, printed here
    /// too). To avoid it: start processes before starting threads, keep the child's work
    /// to data it owns, or use [`StartMethod::Spawn`]/[`StartMethod::ForkServer`] with
    /// [`Process::call`](crate::Process::call), whose child starts from a clean program.
    Fork,
    /// Run the program again (`/proc/self/exe`); `init()` runs the target.
    Spawn,
    /// Ask a fork server — a single-threaded process spawned on first use — to fork.
    ForkServer,
}

impl StartMethod {
    /// The Python name: `"fork"`, `"spawn"` or `"forkserver"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::StartMethod::Spawn.name(), "spawn");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    /// The class-name prefix of a process started through this method's context, as
    /// CPython names them (`ForkProcess-1`, `SpawnProcess-2`, `ForkServerProcess-3`).
    pub(crate) fn process_class(self) -> &'static str {
        match self {
            StartMethod::Fork => "ForkProcess",
            StartMethod::Spawn => "SpawnProcess",
            StartMethod::ForkServer => "ForkServerProcess",
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StartMethod {
    type Err = Error;

    /// Python: `multiprocessing.get_context(name)`; an unknown name gives CPython's
    /// `cannot find context for 'bogus'`.
    fn from_str(name: &str) -> Result<StartMethod, Error> {
        get_all_start_methods()
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| Error::ValueError(crate::error::no_context(name).into()))
    }
}

/// The fixed start method: 0 = not fixed yet, else `StartMethod::code`. An atomic, not a
/// lock, so that a child forked while another thread reads or sets it finds it usable.
static METHOD: AtomicU8 = AtomicU8::new(0);

fn decode(code: u8) -> Option<StartMethod> {
    get_all_start_methods().into_iter().find(|m| m.code() == code)
}

/// Fixes the start method for the whole program.
///
/// Python: `multiprocessing.set_start_method(method)`. Once a method is fixed — by this
/// call, by [`get_start_method`], or by starting a process with the default method — a
/// second call fails; [`set_start_method_force`] overrides.
///
/// # Examples
///
/// ```
/// use multiprocessing::{StartMethod, get_start_method, set_start_method};
///
/// set_start_method(StartMethod::Fork)?;
/// assert_eq!(get_start_method(), StartMethod::Fork);
/// let err = set_start_method(StartMethod::Spawn).unwrap_err();
/// assert_eq!(err.to_string(), "context has already been set");
/// # Ok::<(), multiprocessing::Error>(())
/// ```
///
/// # Errors
/// [`Error::RuntimeError`] `context has already been set`.
pub fn set_start_method(method: StartMethod) -> Result<(), Error> {
    METHOD
        .compare_exchange(0, method.code(), Ordering::AcqRel, Ordering::Acquire)
        .map(drop)
        .map_err(|_| Error::runtime(CONTEXT_SET))
}

/// Sets the start method even if one is fixed already; `None` un-fixes it.
///
/// Python: `multiprocessing.set_start_method(method, force=True)`.
///
/// # Examples
///
/// ```
/// use multiprocessing::StartMethod;
///
/// multiprocessing::set_start_method_force(StartMethod::Fork);
/// assert_eq!(multiprocessing::get_start_method_if_set(), Some(StartMethod::Fork));
/// multiprocessing::set_start_method_force(None); // un-fixed again
/// assert_eq!(multiprocessing::get_start_method_if_set(), None);
/// ```
pub fn set_start_method_force(method: impl Into<Option<StartMethod>>) {
    METHOD.store(method.into().map_or(0, StartMethod::code), Ordering::Release);
}

/// The start method, fixing the default ([`StartMethod::Fork`], as CPython 3.11 on Linux)
/// if none was set.
///
/// Python: `multiprocessing.get_start_method()`. In a child it is the method that started
/// the child.
///
/// # Examples
///
/// ```
/// let method = multiprocessing::get_start_method(); // fixes the default: fork on Linux
/// assert_eq!(method, multiprocessing::StartMethod::Fork);
/// ```
pub fn get_start_method() -> StartMethod {
    let fixed = match METHOD.compare_exchange(
        0,
        StartMethod::Fork.code(),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => StartMethod::Fork.code(),
        Err(fixed) => fixed,
    };
    decode(fixed).unwrap_or(StartMethod::Fork)
}

/// The start method if one is fixed, without fixing the default.
///
/// Python: `multiprocessing.get_start_method(allow_none=True)`.
///
/// # Examples
///
/// ```
/// assert_eq!(multiprocessing::get_start_method_if_set(), None, "nothing fixed yet");
/// ```
pub fn get_start_method_if_set() -> Option<StartMethod> {
    decode(METHOD.load(Ordering::Acquire))
}

/// Every start method this platform has, the default first.
///
/// Python: `multiprocessing.get_all_start_methods()` (Linux: fork, spawn, forkserver).
///
/// # Examples
///
/// ```
/// let names: Vec<&str> = multiprocessing::get_all_start_methods().iter().map(|m| m.name()).collect();
/// assert_eq!(names, ["fork", "spawn", "forkserver"]);
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    vec![StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer]
}
