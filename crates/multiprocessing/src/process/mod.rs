//! `Process`: a target run in a child process, with the same API as `threading::Thread`.
//!
//! Python: `multiprocessing.Process` (`Lib/multiprocessing/process.py`) and its helpers
//! `current_process()`, `parent_process()`, `active_children()`.
//!
//! A `Process` is a cheap handle (`Clone`, `Send`, `Sync`); clones are the same process.
//! Its life, as CPython's:
//!
//! | State | `pid` | `exitcode` | `is_alive` | `sentinel` |
//! |---|---|---|---|---|
//! | initial | `None` | `None` | false | error `process not started` |
//! | started, running | `Some` | `None` | true | fd, not readable |
//! | started, ended | `Some` | `Some(code)` | false | fd, readable |
//! | closed | `None` | `None` | false | error `process object is closed` |
//!
//! Every child is reaped: by `join`, `is_alive`, `exitcode` or `active_children()` like
//! CPython, and — beyond CPython — by a background reaper once the last handle of a
//! running child is dropped, so no zombie is ever left behind. At exit the parent
//! terminates its daemonic children and waits for the others (see [`crate`] docs).
//!
//! # Examples
//!
//! ```
//! use multiprocessing::Process;
//!
//! let p = Process::new(|| std::process::exit(3));
//! p.start()?;
//! p.join()?;
//! assert_eq!(p.exitcode(), Some(3));
//! # Ok::<(), multiprocessing::Error>(())
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyconc_core::sync::lock;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod authkey;
pub(crate) mod bootstrap;
pub(crate) mod children;
pub(crate) mod start;
mod builder;

pub use builder::Builder;

use crate::Error;
use crate::error::{
    ALREADY_STARTED, BOOTSTRAPPING, CLOSE_RUNNING, CLOSED, CLOSURE_NEEDS_FORK, DAEMONIC_CHILDREN,
    JOIN_FOREIGN, JOIN_UNSTARTED, NOT_STARTED, SIGNAL_FOREIGN, START_FOREIGN, START_TWICE,
};
use crate::start_method::{StartMethod, get_start_method};
use crate::sys::{self, ExitStatus, Pid};
use start::{ChildSpec, Target, Waiter};

/// A child process running a target: Python's `multiprocessing.Process`.
///
/// Build one with [`Process::new`] (a closure; fork start method), [`Process::call`] (a
/// `fn(A)` with serde arguments; every start method) or [`Process::builder`]; then
/// [`start`](Process::start) and [`join`](Process::join) it. Clones are handles to the
/// same process; `==` compares identity. `Send + Sync`.
///
/// # Differences from CPython
/// - Misuse is always checked (CPython uses `assert`, gone under `python -O`).
/// - `pid()`/`exitcode()` of a closed process are `None` (CPython raises `ValueError`);
///   `is_alive()` of another process's child is `false` (CPython raises).
/// - `terminate()`/`kill()` before `start()` say `process not started` (CPython: a stray
///   `AttributeError`).
/// - `join_timeout` tells whether the process ended (CPython's `join` returns `None`).
/// - Beyond CPython: a child whose handles are all dropped is still reaped (no zombie), and
///   a daemonic child dies with its parent even when the parent is killed.
/// - Spawn and forkserver children run the program again, so they need
///   [`init()`](crate::init) as `main`'s first line; their targets are `fn(A)` with serde
///   arguments (CPython pickles a function reference and the arguments likewise).
///
/// # Examples
///
/// ```
/// use multiprocessing::Process;
///
/// fn greet(name: String) {
///     println!("hello, {name}");
/// }
///
/// let p = Process::call(greet, "bob".to_owned());
/// assert_eq!(p.pid(), None);
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// assert!(!p.is_alive());
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone)]
pub struct Process {
    handle: Arc<Handle>,
}

/// One user-visible handle; when the last one of a running child is dropped, the child is
/// handed to the reaper.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            children::last_handle_dropped(&self.inner);
        }
    }
}

/// Which process a `Process` object describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A child of `owner` (created with `new`/`call`/`builder`).
    Child,
    /// The calling process itself (`current_process()`).
    Current,
    /// The calling process's parent (`parent_process()`).
    Parent,
}

pub(crate) struct Inner {
    pub(crate) role: Role,
    class: &'static str,
    name: Mutex<String>,
    daemon: AtomicBool,
    pub(crate) identity: Vec<u32>,
    start_method: Option<StartMethod>,
    /// The key the child will start with (`Role::Child`) or the parent started this
    /// process with (`Role::Parent`); the current process's is [`authkey::current`].
    authkey: Mutex<Vec<u8>>,
    /// The process that created this object; only it may start, join or signal it (a
    /// `Role::Child`). For the other roles it is not read; a forked child's own records
    /// are made by its parent, before the fork (see `children::ChildRecords`).
    pub(crate) owner: Pid,
    target: Mutex<Option<Target>>,
    status: Mutex<Status>,
    handles: AtomicUsize,
}

pub(crate) enum Status {
    Initial,
    /// `start()` is creating the child. The lock is not held meanwhile: a forked child
    /// must find this object's lock free (its closure may hold a handle to it).
    Starting,
    Started {
        /// The child's or the parent's pid. Not read for the current process's own
        /// record (`Process::pid` asks the OS, as CPython's `os.getpid()`).
        pid: Pid,
        waiter: Option<Arc<Waiter>>,
        /// `parent_process()` of a fork or spawn child opens the parent's pidfd when it is
        /// first needed (most children never ask): until then `waiter` is `None` and this
        /// is `true`.
        waiter_pending: bool,
        exit: Option<ExitStatus>,
        /// The records a forked child got from this process
        /// ([`Launched::records`](start::Launched)), freed with this status.
        _records: Option<children::ChildRecords>,
    },
    Closed,
}

impl Status {
    /// The started process's waiter (`role` is the process's). A pidfd not opened yet is
    /// opened now: a forked child's (see [`start::Launched::waiter`]) or a parent's. One
    /// that cannot be — a parent that had ended by then, a child that someone else reaped
    /// — gets a sentinel that is readable already, as CPython's parent sentinel (a pipe)
    /// is once the parent has ended.
    fn waiter(&mut self, role: Role) -> Option<&Arc<Waiter>> {
        let Status::Started { pid, waiter, waiter_pending, exit, .. } = self else {
            return None;
        };
        if std::mem::take(waiter_pending) {
            let pidfd = if role == Role::Parent {
                sys::parent_pidfd(*pid)
            } else if exit.is_none() {
                sys::child_pidfd(*pid)
            } else {
                // Reaped: its pid may be another child's by now.
                None
            };
            *waiter = match pidfd {
                Some(fd) => Some(Arc::new(Waiter::Pidfd(fd))),
                None => sys::pipe().ok().map(|(read, _write)| Arc::new(Waiter::Ended(read))),
            };
        }
        waiter.as_ref()
    }
}

/// A started child's exit status if it has ended (reaping it), without blocking: through
/// its waiter, or, for a forked child whose pidfd is not open, from `waitpid` alone.
fn try_status(pid: Pid, waiter: Option<&Waiter>) -> io::Result<Option<ExitStatus>> {
    match waiter {
        Some(waiter) => waiter.try_status(pid),
        None => sys::try_wait(pid),
    }
}

impl Inner {
    pub(crate) fn new_self(
        class: &'static str,
        name: String,
        daemon: bool,
        identity: Vec<u32>,
        role: Role,
        pid: Pid,
        waiter: Option<Waiter>,
    ) -> Arc<Inner> {
        Arc::new(Inner {
            role,
            class,
            name: Mutex::new(name),
            daemon: AtomicBool::new(daemon),
            identity,
            start_method: None,
            authkey: Mutex::new(Vec::new()),
            owner: sys::getpid(),
            target: Mutex::new(None),
            status: Mutex::new(Status::Started {
                pid,
                waiter: waiter.map(Arc::new),
                waiter_pending: false,
                exit: None,
                _records: None,
            }),
            handles: AtomicUsize::new(0),
        })
    }

    /// Makes the waiter of a process without one (a parent) be opened on first use.
    pub(crate) fn defer_waiter(&self) {
        if let Status::Started { waiter: None, waiter_pending, .. } = &mut *lock(&self.status) {
            *waiter_pending = true;
        }
    }

    pub(crate) fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub(crate) fn daemon(&self) -> bool {
        self.daemon.load(Ordering::Relaxed)
    }

    /// Whether this is a started child of the calling process whose end is not yet known.
    pub(crate) fn running_child(&self) -> bool {
        self.role == Role::Child
            && self.owner == sys::getpid()
            && matches!(*lock(&self.status), Status::Started { exit: None, .. })
    }

    /// The sentinel of a started child, to wait on without holding the lock.
    pub(crate) fn waiter(&self) -> Option<Arc<Waiter>> {
        lock(&self.status).waiter(self.role).cloned()
    }

    /// CPython's `Popen.poll()`: the exit status if the child has ended (reaping it).
    pub(crate) fn poll_exit(&self) -> Result<Option<ExitStatus>, Error> {
        let mut status = lock(&self.status);
        let Status::Started { pid, waiter, exit, .. } = &mut *status else {
            return Ok(None);
        };
        if exit.is_none() && self.role == Role::Child {
            *exit = try_status(*pid, waiter.as_deref())?;
        }
        Ok(*exit)
    }

    /// Waits until the child ends or `deadline` passes; `Ok(true)` when it has ended.
    /// The sentinel is polled first and the child reaped after: a join of a running child
    /// costs a `poll` and one `waitpid`. A forked child whose pidfd is not open yet is
    /// waited for without one, when there is no deadline: `waitid` without reaping, then
    /// the same `waitpid`.
    fn wait(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        loop {
            let (starting, unopened_child) = match &*lock(&self.status) {
                Status::Started { exit: Some(_), .. } => return Ok(true),
                Status::Starting => (true, None),
                Status::Started { pid, waiter_pending: true, .. } if self.role == Role::Child => {
                    (false, Some(*pid))
                }
                _ => (false, None),
            };
            if starting {
                // Another thread is in `start()`: it takes a few hundred microseconds.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            if let (Some(pid), None) = (unopened_child, deadline) {
                // Whatever it says (ended; not our child any more, reaped meanwhile by
                // another joiner or by someone else), `poll_exit` tells what happened.
                let ended = sys::wait_ended(pid);
                if self.poll_exit()?.is_some() {
                    return Ok(true);
                }
                ended?;
                continue;
            }
            let Some(waiter) = self.waiter() else {
                // A parent whose pidfd could not be opened had ended already.
                return if self.role == Role::Parent {
                    Ok(true)
                } else {
                    Err(Error::value(CLOSED))
                };
            };
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if sys::wait_readable(waiter.sentinel(), left)?
                && (self.role == Role::Parent || self.poll_exit()?.is_some())
            {
                return Ok(true);
            }
            if left == Some(Duration::ZERO) {
                return Ok(false);
            }
        }
    }

    fn parent_alive(&self) -> bool {
        self.waiter().is_some_and(|w| {
            !sys::wait_readable(w.sentinel(), Some(Duration::ZERO)).unwrap_or(true)
        })
    }
}

impl Process {
    /// A process that runs `target` in a forked child; start it with [`start`](Process::start).
    ///
    /// Python: `multiprocessing.Process(target=f)`. A closure cannot cross `exec`, so it
    /// needs the [fork](StartMethod::Fork) start method (the default); with spawn or
    /// forkserver, `start()` fails and names [`Process::call`].
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
    /// too). One of them is std's own: `std::thread` takes a process-wide lock whenever
    /// one of its threads starts or ends, so a child forked while another thread of the
    /// parent was starting or ending a std thread cannot start a std thread. Start
    /// threads in a forked child with [`threading::Thread`], which does not take that lock
    /// (nor do the library's own threads). To avoid the hazard: start processes before
    /// starting threads, keep the child's work to data it owns, or use
    /// [`StartMethod::Spawn`]/[`StartMethod::ForkServer`] with [`Process::call`], whose
    /// child starts from a clean program.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| println!("in the child"));
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new<F: FnOnce() + Send + 'static>(target: F) -> Process {
        Builder::new().target(target)
    }

    /// A process that runs `function(args)`; works with every start method.
    ///
    /// Python: `multiprocessing.Process(target=function, args=(args,))`. For spawn and
    /// forkserver the arguments travel to the child serialized (CPython pickles them); a
    /// serialization error is returned by `start()` and nothing is started. Several
    /// arguments are one tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square_into((x, out): (u64, multiprocessing::Value<u64>)) {
    ///     out.set(x * x);
    /// }
    /// let out = multiprocessing::Value::new(0u64)?;
    /// let p = multiprocessing::Process::call(square_into, (12, out.clone()));
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(out.get(), 144);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn call<A>(function: fn(A), args: A) -> Process
    where
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        Builder::new().call(function, args)
    }

    /// A builder for a process with a name, a daemon flag or a start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::builder().name("worker-1").daemon(true).target(|| {});
    /// p.start()?;
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Process {
        inner.handles.fetch_add(1, Ordering::AcqRel);
        Process { handle: Arc::new(Handle { inner }) }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// How the parent learns that this started child ended (its sentinel).
    pub(crate) fn waiter(&self) -> Option<Arc<Waiter>> {
        self.inner().waiter()
    }

    /// Starts the child process.
    ///
    /// Python: `Process.start()`. Finished children are reaped first (CPython's
    /// `_cleanup()`); the parent's copy of the target (closure and captures) is dropped, so
    /// a pipe end moved into the closure is closed in the parent, as CPython drops
    /// `_target`. Starting with the default method fixes it (see [`get_start_method`]).
    ///
    /// The first fork start keeps `/dev/null` open in this process (close-on-exec), for
    /// every forked child to point its stdin at with one `dup2`; a child checks that the
    /// fd still names `/dev/null` first, and opens the device itself if not. A forked
    /// child's pidfd is opened when first needed (its [`sentinel`](Process::sentinel), a
    /// join with a timeout); [`join`](Process::join) needs none.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| println!("in the child"));
    /// p.start()?;
    /// assert!(p.pid().is_some());
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::AssertionError`] `cannot start a process twice`,
    ///   `can only start a process object created by current process`,
    ///   `daemonic processes are not allowed to have children`;
    /// - [`Error::ValueError`] `process object is closed`, or a closure with a start method
    ///   other than fork;
    /// - [`Error::RuntimeError`] spawn/forkserver in a program that does not call
    ///   [`init()`](crate::init), or a start during a spawned child's bootstrap;
    /// - [`Error::PicklingError`] arguments that cannot be serialized;
    /// - [`Error::OsError`] the OS refused to create the process.
    pub fn start(&self) -> Result<(), Error> {
        let inner = self.inner();
        let mut status = lock(&inner.status);
        match *status {
            Status::Closed => return Err(Error::value(CLOSED)),
            Status::Started { .. } | Status::Starting => {
                return Err(Error::assertion(START_TWICE));
            }
            Status::Initial => {}
        }
        if inner.owner != sys::getpid() {
            return Err(Error::assertion(START_FOREIGN));
        }
        // The record itself, not a `Process` handle of it (one allocation less).
        let current = children::current();
        if current.daemon() {
            return Err(Error::assertion(DAEMONIC_CHILDREN));
        }
        if start::spawn::bootstrapping() {
            return Err(Error::runtime(BOOTSTRAPPING));
        }
        children::cleanup();
        let method = inner.start_method.unwrap_or_else(get_start_method);
        let mut slot = lock(&inner.target);
        if matches!(*slot, Some(Target::Closure(_))) && method != StartMethod::Fork {
            return Err(Error::value(CLOSURE_NEEDS_FORK));
        }
        let target = slot.take().unwrap_or(Target::Nothing);
        drop(slot);
        *status = Status::Starting;
        drop(status);
        let spec = ChildSpec {
            name: inner.name(),
            daemon: inner.daemon(),
            identity: inner.identity.clone(),
            method,
            parent_pid: sys::getpid().0,
            parent_name: current.name(),
            authkey: lock(&inner.authkey).clone(),
            logging: pyconc_core::logging::config(),
            tracker: None,
        };
        children::install_exit_function();
        let launched = match start::launch(method, spec, target) {
            Ok(launched) => launched,
            Err(error) => {
                *lock(&inner.status) = Status::Initial;
                return Err(error);
            }
        };
        *lock(&inner.status) = Status::Started {
            pid: launched.pid,
            waiter_pending: launched.waiter.is_none(),
            waiter: launched.waiter.map(Arc::new),
            exit: None,
            _records: launched.records,
        };
        children::add(Arc::clone(inner));
        Ok(())
    }

    /// Runs the target in the calling process, as `Thread::run` does; afterwards the
    /// process object has no target.
    ///
    /// Python: `Process.run()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ran = multiprocessing::Value::new(0u8)?;
    /// let flag = ran.clone();
    /// let p = multiprocessing::Process::new(move || flag.set(1));
    /// p.run(); // in this process, as `Thread::run`
    /// assert_eq!(ran.get(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn run(&self) {
        let target = lock(&self.inner().target).take();
        if let Some(target) = target {
            target.run_here();
        }
    }

    /// Waits until the process ends (and reaps it).
    ///
    /// Python: `Process.join()`. Any number of threads may join the same process.
    /// `parent_process().join()` waits for the parent to end.
    ///
    /// # Errors
    /// [`Error::ValueError`] `process object is closed`; [`Error::AssertionError`]
    /// `can only join a child process` (another process's child, or
    /// `current_process()`), `can only join a started process`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| std::process::exit(3));
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(3));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        self.join_until(None).map(drop)
    }

    /// Waits at most `timeout` for the process to end; `Ok(true)` when it has ended.
    ///
    /// Python: `Process.join(timeout)` (which returns `None`; check `exitcode`).
    /// `Duration::ZERO` checks and returns at once. Event-driven: it sleeps on the
    /// process's pidfd, not in a polling loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let p = multiprocessing::Process::new(|| std::thread::sleep(Duration::from_millis(300)));
    /// p.start()?;
    /// assert!(!p.join_timeout(Duration::from_millis(10))?, "still running");
    /// assert!(p.join_timeout(Duration::from_secs(30))?);
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`join`](Process::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        let inner = self.inner();
        if matches!(*lock(&inner.status), Status::Closed) {
            return Err(Error::value(CLOSED));
        }
        match inner.role {
            Role::Current => return Err(Error::assertion(JOIN_FOREIGN)),
            Role::Parent => return inner.wait(deadline),
            Role::Child => {}
        }
        if inner.owner != sys::getpid() {
            return Err(Error::assertion(JOIN_FOREIGN));
        }
        if matches!(*lock(&inner.status), Status::Initial) {
            return Err(Error::assertion(JOIN_UNSTARTED));
        }
        let ended = inner.wait(deadline)?;
        if ended {
            children::remove(inner);
        }
        Ok(ended)
    }

    /// Whether the process is running; reaps a child that has ended.
    ///
    /// Python: `Process.is_alive()`. `false` before start and after close, and for a
    /// handle of another process's child (where CPython raises `can only test a child
    /// process`); `true` for `current_process()`; for `parent_process()`, whether the
    /// parent still runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let p = multiprocessing::Process::new(|| std::thread::sleep(Duration::from_millis(50)));
    /// assert!(!p.is_alive(), "not started");
    /// p.start()?;
    /// assert!(p.is_alive());
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        let inner = self.inner();
        match inner.role {
            Role::Current => !matches!(*lock(&inner.status), Status::Closed),
            Role::Parent => inner.parent_alive(),
            Role::Child if inner.owner != sys::getpid() => false,
            Role::Child => {
                if !matches!(*lock(&inner.status), Status::Started { .. }) {
                    return false;
                }
                match inner.poll_exit() {
                    Ok(None) => true,
                    Ok(Some(_)) => {
                        children::remove(inner);
                        false
                    }
                    Err(_) => false,
                }
            }
        }
    }

    /// The process's name: `Process-N` by default (`Process-1:2` for the second child
    /// created by the process named `Process-1`), as CPython names them.
    ///
    /// Python: `Process.name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn name(&self) -> String {
        self.inner().name()
    }

    /// Renames the process object (the child keeps the name it started with).
    ///
    /// Python: `Process.name = name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// p.set_name("renamed");
    /// assert_eq!(p.name(), "renamed");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        *lock(&self.inner().name) = name.into();
    }

    /// Whether the process is daemonic: terminated when its parent exits, and not allowed
    /// to start children. Defaults to the creating process's flag.
    ///
    /// Python: `Process.daemon`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// assert!(!p.daemon(), "inherited: the main process is not daemonic");
    /// ```
    pub fn daemon(&self) -> bool {
        self.inner().daemon()
    }

    /// Sets the daemon flag; only before `start()`.
    ///
    /// Python: `Process.daemon = daemonic`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `process has already started`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// p.set_daemon(true)?;
    /// p.start()?;
    /// assert_eq!(p.set_daemon(false).unwrap_err().to_string(), "process has already started");
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_daemon(&self, daemonic: bool) -> Result<(), Error> {
        let inner = self.inner();
        if inner.role == Role::Child && !matches!(*lock(&inner.status), Status::Initial) {
            return Err(Error::assertion(ALREADY_STARTED));
        }
        inner.daemon.store(daemonic, Ordering::Relaxed);
        Ok(())
    }

    /// The process's authentication key: 32 random bytes drawn by the main process,
    /// which every child inherits from the `Process` object that started it.
    ///
    /// Python: `Process.authkey` (`current_process().authkey` for this process's). A
    /// manager or listener that should accept only this program's processes uses it.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, Value, current_process};
    ///
    /// let mine = current_process().authkey();
    /// assert_eq!(mine.len(), 32);
    /// let p = Process::new(|| {});
    /// assert_eq!(p.authkey(), mine, "a new process object carries its creator's key");
    /// let same = Value::new(0u8)?;
    /// let flag = same.clone();
    /// let expected = mine.clone();
    /// let child = Process::new(move || flag.set(u8::from(current_process().authkey() == expected)));
    /// child.start()?;
    /// child.join()?;
    /// assert_eq!(same.get(), 1, "the child started with it");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn authkey(&self) -> Vec<u8> {
        let inner = self.inner();
        match inner.role {
            Role::Current => authkey::current(),
            _ => lock(&inner.authkey).clone(),
        }
    }

    /// Sets the key: this process's own (for the processes it creates from now on), or
    /// the one a child not yet started will start with.
    ///
    /// Python: `Process.authkey = key`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// p.set_authkey(b"shared secret");
    /// assert_eq!(p.authkey(), b"shared secret");
    /// ```
    pub fn set_authkey(&self, key: &[u8]) {
        let inner = self.inner();
        match inner.role {
            Role::Current => authkey::set_current(key),
            _ => *lock(&inner.authkey) = key.to_vec(),
        }
    }

    /// The process id once started; `None` before start and after close.
    ///
    /// Python: `Process.pid`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert!(p.pid().is_some_and(|pid| pid > 0));
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn pid(&self) -> Option<i32> {
        let inner = self.inner();
        if inner.role == Role::Current {
            // CPython: `os.getpid()` for the current process, right even after a raw fork.
            return Some(sys::getpid().0);
        }
        match *lock(&inner.status) {
            Status::Started { pid, .. } => Some(pid.0),
            _ => None,
        }
    }

    /// The same as [`pid`](Process::pid). Python: `Process.ident`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// p.start()?;
    /// assert_eq!(p.ident(), p.pid());
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn ident(&self) -> Option<i32> {
        self.pid()
    }

    /// How the child ended: `None` while it runs (or before start, after close, or for a
    /// process that is not the caller's child); `0` when the target returned; `1` after a
    /// panic; `n` after `std::process::exit(n)`; `-N` when signal N killed it.
    ///
    /// Python: `Process.exitcode`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| std::process::exit(3));
    /// assert_eq!(p.exitcode(), None, "not started");
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(3));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        let inner = self.inner();
        if inner.role != Role::Child || inner.owner != sys::getpid() {
            return None;
        }
        let exit = inner.poll_exit().ok().flatten()?;
        children::remove(inner);
        Some(exit.exitcode())
    }

    /// Sends SIGTERM to the child; nothing once it has ended.
    ///
    /// Python: `Process.terminate()`. The child's exit code becomes `-15` unless it
    /// handles the signal.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(60)));
    /// p.start()?;
    /// p.terminate()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// `process object is closed`; `process not started` (CPython: an `AttributeError`);
    /// `can only signal a child process`; [`Error::OsError`].
    pub fn terminate(&self) -> Result<(), Error> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL to the child; nothing once it has ended.
    ///
    /// Python: `Process.kill()`. The exit code becomes `-9`.
    ///
    /// # Errors
    /// As [`terminate`](Process::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let p = multiprocessing::Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    /// p.start()?;
    /// p.kill()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(-9));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn kill(&self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }

    /// Sends SIGINT to the child (Ctrl-C); nothing once it has ended.
    ///
    /// Python: `Process.interrupt()` (3.14). A CPython child raises `KeyboardInterrupt`; a
    /// Rust child has no such exception: unless it handles SIGINT itself, the signal ends
    /// it and the exit code becomes `-2`.
    ///
    /// # Errors
    /// As [`terminate`](Process::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let p = multiprocessing::Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    /// p.start()?;
    /// p.interrupt()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(-2));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn interrupt(&self) -> Result<(), Error> {
        self.signal(libc::SIGINT)
    }

    fn signal(&self, signal: i32) -> Result<(), Error> {
        let inner = self.inner();
        if inner.role != Role::Child || inner.owner != sys::getpid() {
            return match *lock(&inner.status) {
                Status::Closed => Err(Error::value(CLOSED)),
                _ => Err(Error::assertion(SIGNAL_FOREIGN)),
            };
        }
        // Reaping happens under this lock, so the pid cannot be reused while we signal it.
        let mut status = lock(&inner.status);
        match &mut *status {
            Status::Closed => Err(Error::value(CLOSED)),
            Status::Initial | Status::Starting => Err(Error::value(NOT_STARTED)),
            Status::Started { exit: Some(_), .. } => Ok(()),
            Status::Started { pid, waiter, exit, .. } => {
                *exit = try_status(*pid, waiter.as_deref())?;
                if exit.is_none() {
                    sys::kill(*pid, signal)?;
                }
                Ok(())
            }
        }
    }

    /// Releases the process object's resources (its sentinel); later uses fail with
    /// `process object is closed`, except `name`/`daemon`. Idempotent; allowed before start.
    ///
    /// Python: `Process.close()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Cannot close a process while it is still running. You should
    /// first call join() or terminate().`
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// p.start()?;
    /// p.join()?;
    /// p.close()?;
    /// assert_eq!(p.pid(), None);
    /// assert_eq!(p.join().unwrap_err().to_string(), "process object is closed");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) -> Result<(), Error> {
        let inner = self.inner();
        let running = inner.role == Role::Child
            && inner.owner == sys::getpid()
            && matches!(*lock(&inner.status), Status::Started { .. } | Status::Starting)
            && inner.poll_exit()?.is_none();
        if running {
            return Err(Error::value(CLOSE_RUNNING));
        }
        *lock(&inner.status) = Status::Closed;
        lock(&inner.target).take();
        children::remove(inner);
        Ok(())
    }

    /// An fd that becomes readable when the child ends — for `poll`/`select` over many
    /// processes, as `multiprocessing.connection.wait([p.sentinel])`. Owned by the process
    /// object: do not close it; it stays valid until [`close`](Process::close).
    ///
    /// Python: `Process.sentinel`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `process not started`, `process object is closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::new(|| {});
    /// assert_eq!(p.sentinel().unwrap_err().to_string(), "process not started");
    /// p.start()?;
    /// let fd = p.sentinel()?; // readable once the child has ended: poll it with others
    /// assert!(fd >= 0);
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn sentinel(&self) -> Result<RawFd, Error> {
        let mut status = lock(&self.inner().status);
        if matches!(*status, Status::Closed) {
            return Err(Error::value(CLOSED));
        }
        match status.waiter(self.inner().role) {
            Some(waiter) => Ok(waiter.sentinel().as_fd().as_raw_fd()),
            None => Err(Error::value(NOT_STARTED)),
        }
    }
}

impl PartialEq for Process {
    fn eq(&self, other: &Process) -> bool {
        Arc::ptr_eq(self.inner(), other.inner())
    }
}

impl Eq for Process {}

impl std::hash::Hash for Process {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(self.inner()).hash(state);
    }
}

/// CPython's `repr`: `<Process name='Process-1' pid=5553 parent=5512 stopped exitcode=0>`.
impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner();
        write!(f, "<{} name='{}'", inner.class, inner.name())?;
        let (pid, exit, closed) = match &*lock(&inner.status) {
            Status::Initial | Status::Starting => (None, None, false),
            Status::Started { pid, exit, .. } => (Some(*pid), *exit, false),
            Status::Closed => (None, None, true),
        };
        if let (Some(pid), Role::Child) = (pid, inner.role) {
            write!(f, " pid={}", pid.0)?;
        }
        match inner.role {
            Role::Child => write!(f, " parent={}", inner.owner.0)?,
            Role::Current => match parent_process() {
                Some(parent) => write!(f, " parent={}", parent.pid().unwrap_or(0))?,
                None => f.write_str(" parent=None")?,
            },
            Role::Parent => f.write_str(" parent=None")?,
        }
        // CPython checks `self is _current_process` first: the current process is
        // "started" whatever else is known about it.
        let status = if inner.role == Role::Current {
            "started"
        } else if closed {
            "closed"
        } else if inner.role == Role::Parent || inner.owner != sys::getpid() {
            "unknown"
        } else if pid.is_none() {
            "initial"
        } else if exit.is_some() {
            "stopped"
        } else {
            "started"
        };
        write!(f, " {status}")?;
        if let Some(exit) = exit {
            match exit {
                ExitStatus::Signaled(signal) => write!(f, " exitcode=-{}", signal_name(signal))?,
                ExitStatus::Exited(code) => write!(f, " exitcode={code}")?,
            }
        }
        if inner.daemon() {
            f.write_str(" daemon")?;
        }
        f.write_str(">")
    }
}

/// The name CPython's repr gives a signal (`-SIGTERM`).
fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return signal.to_string(),
    };
    name.to_owned()
}

impl crate::connection::Waitable for Process {
    /// Ready once the process has ended (its sentinel).
    fn ready_fd(&self) -> Option<RawFd> {
        self.sentinel().ok()
    }
}

impl threading::Joinable for Process {
    fn join(&self) -> Result<(), threading::Error> {
        Process::join(self).map_err(Into::into)
    }
    fn join_timeout(&self, timeout: Duration) -> Result<bool, threading::Error> {
        Process::join_timeout(self, timeout).map_err(Into::into)
    }
    fn is_alive(&self) -> bool {
        Process::is_alive(self)
    }
    fn name(&self) -> String {
        Process::name(self)
    }
}

/// The process running this code: `MainProcess` in the program's first process; in a child,
/// the child's own `Process` (its name, daemon flag and pid).
///
/// Python: `multiprocessing.current_process()`. Its `is_alive()` is `true`, `exitcode()`
/// `None`; joining it fails with `can only join a child process`.
///
/// # Examples
///
/// ```
/// let me = multiprocessing::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), Some(std::process::id() as i32));
/// assert!(me.is_alive());
/// ```
pub fn current_process() -> Process {
    Process::from_inner(children::current())
}

/// The parent of this process, in a child; `None` in the main process.
///
/// Python: `multiprocessing.parent_process()`. Its `is_alive()` tells whether the parent
/// still runs, and `join()` waits for it to end.
///
/// # Examples
///
/// ```
/// assert!(multiprocessing::parent_process().is_none(), "the main process has no parent");
/// let p = multiprocessing::Process::new(|| {
///     let parent = multiprocessing::parent_process().unwrap();
///     assert!(parent.is_alive());
/// });
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn parent_process() -> Option<Process> {
    children::parent().map(Process::from_inner)
}

/// The children of this process that are still running, after reaping those that ended.
///
/// Python: `multiprocessing.active_children()`.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, active_children};
///
/// let p = Process::new(|| std::thread::sleep(std::time::Duration::from_millis(200)));
/// p.start()?;
/// assert!(active_children().contains(&p));
/// p.join()?;
/// assert!(!active_children().contains(&p));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn active_children() -> Vec<Process> {
    children::cleanup();
    children::list().into_iter().map(Process::from_inner).collect()
}
