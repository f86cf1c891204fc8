//! `Process` of `multiprocessing.dummy` (CPython's `DummyProcess`): a thread with the API
//! of a process, and `active_children`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyconc_core::sync::lock;
use threading::{Runnable, Thread};

use crate::Error;

/// A thread that looks like a process: `start`, `join`, `is_alive`, `exitcode`.
///
/// Python: `multiprocessing.dummy.Process` (`DummyProcess`, a `threading.Thread`). Only
/// the thread that made it may start it (`Parent is <…> but current_process is <…>`
/// otherwise, as CPython's); its `exitcode` is `Some(0)` once it ran and ended, `None`
/// before. Clones are handles to one process; `Send + Sync`.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use multiprocessing::dummy::Process;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let shared = Arc::clone(&seen);
/// let p = Process::new(move || shared.lock().unwrap().push("ran"));
/// assert_eq!(p.exitcode(), None);
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
/// assert_eq!(*seen.lock().unwrap(), ["ran"]);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone)]
pub struct Process {
    inner: Arc<Inner>,
}

struct Inner {
    thread: Thread,
    /// The thread that made it (CPython's `_parent`).
    parent: Thread,
    started: AtomicBool,
}

/// The started processes by the thread that started them, for [`active_children`]; the
/// ones that ended are let go on every start and every call.
static CHILDREN: Mutex<Vec<Process>> = Mutex::new(Vec::new());

impl Process {
    /// A process that will run `target`. Python: `DummyProcess(target=...)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// assert!(!p.is_alive());
    /// ```
    pub fn new<R: Runnable>(target: R) -> Process {
        Process::builder().target(target)
    }

    /// A builder for a named or daemonic process.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().name("loader").daemon(true).target(|| ());
    /// assert_eq!(p.name(), "loader");
    /// assert!(p.daemon());
    /// ```
    pub fn builder() -> Builder {
        Builder { thread: threading::Builder::new() }
    }

    /// Starts the thread. Python: `start()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `Parent is <…> but current_process is <…>` from another
    /// thread than the one that made it; `threads can only be started once`; an OS
    /// error when no thread can be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// p.start()?;
    /// assert!(p.start().is_err(), "once only");
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn start(&self) -> Result<(), Error> {
        let current = threading::current_thread();
        if current.ident() != self.inner.parent.ident() {
            return Err(Error::RuntimeError(
                format!("Parent is {:?} but current_process is {current:?}", self.inner.parent)
                    .into(),
            ));
        }
        self.inner.thread.start()?;
        self.inner.started.store(true, Ordering::Release);
        let mut children = lock(&CHILDREN);
        children.retain(Process::is_alive);
        children.push(self.clone());
        Ok(())
    }

    /// Waits until the thread ends. Python: `join()`.
    ///
    /// # Errors
    /// As `threading::Thread::join`: `cannot join thread before it is started`, `cannot
    /// join current thread`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// assert!(p.join().is_err(), "not started");
    /// p.start()?;
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        Ok(self.inner.thread.join()?)
    }

    /// Waits at most `timeout`; whether the thread ended. Python: `join(timeout)`.
    ///
    /// # Errors
    /// As [`join`](Process::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let p = multiprocessing::dummy::Process::new(|| std::thread::sleep(Duration::from_millis(200)));
    /// p.start()?;
    /// assert!(!p.join_timeout(Duration::from_millis(1))?);
    /// assert!(p.join_timeout(Duration::from_secs(30))?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        Ok(self.inner.thread.join_timeout(timeout)?)
    }

    /// Whether the thread runs. Python: `is_alive()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// assert!(!p.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.inner.thread.is_alive()
    }

    /// `Some(0)` once started and ended, else `None`. Python: `exitcode`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        (self.inner.started.load(Ordering::Acquire) && !self.is_alive()).then_some(0)
    }

    /// The name: `Thread-N (function)` unless given. Python: `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().name("w").target(|| ());
    /// assert_eq!(p.name(), "w");
    /// ```
    pub fn name(&self) -> String {
        self.inner.thread.name()
    }

    /// Renames it. Python: `name = ...`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// p.set_name("renamed");
    /// assert_eq!(p.name(), "renamed");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        self.inner.thread.set_name(name);
    }

    /// Whether it is a daemon thread. Python: `daemon`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!multiprocessing::dummy::Process::new(|| ()).daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.inner.thread.daemon()
    }

    /// Sets the daemon flag before `start`. Python: `daemon = ...`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot set daemon status of active thread`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// p.set_daemon(true)?;
    /// assert!(p.daemon());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_daemon(&self, daemonic: bool) -> Result<(), Error> {
        Ok(self.inner.thread.set_daemon(daemonic)?)
    }

    /// The thread's identifier once started. Python: `ident`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::new(|| ());
    /// assert_eq!(p.ident(), None);
    /// p.start()?;
    /// assert!(p.ident().is_some());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn ident(&self) -> Option<u64> {
        self.inner.thread.ident()
    }

    /// The `threading::Thread` it is. Python: a `DummyProcess` *is* a `threading.Thread`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().name("t").target(|| ());
    /// assert_eq!(p.thread().name(), "t");
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.inner.thread
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner.thread, f)
    }
}

/// Builds a [`Process`]: CPython's `DummyProcess(name=..., daemon=...)` keywords.
///
/// # Examples
///
/// ```
/// let p = multiprocessing::dummy::Process::builder().name("n").target(|| ());
/// p.start()?;
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct Builder {
    thread: threading::Builder,
}

impl Builder {
    /// The name (default `Thread-N (function)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().name("n").target(|| ());
    /// assert_eq!(p.name(), "n");
    /// ```
    pub fn name(self, name: impl Into<String>) -> Builder {
        Builder { thread: self.thread.name(name) }
    }

    /// The daemon flag (default: the creating thread's).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().daemon(true).target(|| ());
    /// assert!(p.daemon());
    /// ```
    pub fn daemon(self, daemonic: bool) -> Builder {
        Builder { thread: self.thread.daemon(daemonic) }
    }

    /// The process that will run `target` (not started).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::dummy::Process::builder().target(|| ());
    /// assert_eq!(p.exitcode(), None);
    /// ```
    pub fn target<R: Runnable>(self, target: R) -> Process {
        Process {
            inner: Arc::new(Inner {
                thread: self.thread.target(target),
                parent: threading::current_thread(),
                started: AtomicBool::new(false),
            }),
        }
    }
}

/// The processes the calling thread started that still run.
///
/// Python: `multiprocessing.dummy.active_children()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use multiprocessing::dummy::{Process, active_children};
///
/// let p = Process::new(|| std::thread::sleep(Duration::from_millis(200)));
/// p.start()?;
/// assert_eq!(active_children().len(), 1);
/// p.join()?;
/// assert!(active_children().is_empty());
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn active_children() -> Vec<Process> {
    let me = threading::get_ident();
    let mut children = lock(&CHILDREN);
    children.retain(Process::is_alive);
    children.iter().filter(|child| child.inner.parent.ident() == Some(me)).cloned().collect()
}

/// The calling thread, as `multiprocessing.dummy` sees it.
///
/// Python: `multiprocessing.dummy.current_process()` (`threading.current_thread`).
///
/// # Examples
///
/// ```
/// let me = multiprocessing::dummy::current_process();
/// assert_eq!(me.ident(), Some(threading::get_ident()));
/// ```
pub fn current_process() -> Thread {
    threading::current_thread()
}
