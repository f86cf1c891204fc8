//! [`Builder`]: the keyword arguments of `multiprocessing.Process(...)`.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::start::Target;
use super::{Inner, Process, Role, Status, children, current_process};
use crate::start_method::StartMethod;
use crate::sys;

/// Configures a [`Process`] before it is created: name, daemon flag, start method.
///
/// Python: the keyword arguments of `multiprocessing.Process(...)`, and
/// `multiprocessing.get_context(method).Process` for the start method.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, StartMethod};
///
/// let p = Process::builder().name("worker").daemon(true).start_method(StartMethod::Fork).target(|| {});
/// assert_eq!(p.name(), "worker");
/// assert!(p.daemon());
/// let q = Process::builder().start_method(StartMethod::Fork).target(|| {});
/// assert!(q.name().starts_with("ForkProcess-"));
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
    start_method: Option<StartMethod>,
}

impl Builder {
    /// A builder with every setting at its default.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Builder::new().name("worker").target(|| {});
    /// assert_eq!(p.name(), "worker");
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The process's name (default `Process-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::builder().name("indexer").target(|| {});
    /// assert_eq!(p.name(), "indexer");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The daemon flag (default: the creating process's).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::builder().daemon(true).target(|| {});
    /// assert!(p.daemon(), "terminated when the parent exits");
    /// ```
    pub fn daemon(mut self, daemonic: bool) -> Builder {
        self.daemon = Some(daemonic);
        self
    }

    /// The start method for this process only, as a CPython context's `Process`; the
    /// default name then follows the context's class (`SpawnProcess-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, StartMethod};
    ///
    /// fn work(n: u32) {
    ///     assert_eq!(n, 7);
    /// }
    /// let p = Process::builder().start_method(StartMethod::Fork).call(work, 7);
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.start_method = Some(method);
        self
    }

    /// Builds an unstarted process that runs the closure `target` (fork start method).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::builder().name("closure").target(|| println!("child"));
    /// p.start()?;
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn target<F: FnOnce() + Send + 'static>(self, target: F) -> Process {
        self.with_target(Target::closure(target))
    }

    /// Builds an unstarted process that runs `function(args)` (every start method).
    ///
    /// # Examples
    ///
    /// ```
    /// fn greet((name, times): (String, u32)) {
    ///     for _ in 0..times {
    ///         println!("hello, {name}");
    ///     }
    /// }
    /// let p = multiprocessing::Process::builder().name("greeter").call(greet, ("world".into(), 2));
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn call<A>(self, function: fn(A), args: A) -> Process
    where
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        self.with_target(Target::call(function, args))
    }

    /// Builds an unstarted process without a target: its child exits with code 0.
    ///
    /// Python: `multiprocessing.Process()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = multiprocessing::Process::builder().name("does-nothing").build();
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0), "no target: the child just exits");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn build(self) -> Process {
        self.with_target(Target::Nothing)
    }

    fn with_target(self, target: Target) -> Process {
        let identity = children::next_identity();
        let class = self.start_method.map_or("Process", StartMethod::process_class);
        let numbers: Vec<String> = identity.iter().map(u32::to_string).collect();
        let name = self.name.unwrap_or_else(|| format!("{class}-{}", numbers.join(":")));
        let daemon = self.daemon.unwrap_or_else(|| current_process().daemon());
        Process::from_inner(Arc::new(Inner {
            role: Role::Child,
            class,
            name: Mutex::new(name),
            daemon: AtomicBool::new(daemon),
            identity,
            start_method: self.start_method,
            authkey: Mutex::new(super::authkey::current()),
            owner: sys::getpid(),
            target: Mutex::new(Some(target)),
            status: Mutex::new(Status::Initial),
            handles: AtomicUsize::new(0),
        }))
    }
}
