//! `Context`: CPython's context objects (`multiprocessing.get_context("spawn")`), which make
//! processes and pools that use one start method, whatever the program's default.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::managers::{Manager, ManagerBuilder};
use crate::pool::PoolBuilder;
use crate::process::{Builder, Process};
use crate::queue::{JoinableQueue, Queue, SimpleQueue};
use crate::start_method::{StartMethod, get_start_method};
use crate::{Error, Pool};

/// A start method to make processes and pools with: Python's context objects.
///
/// Python: `ctx = multiprocessing.get_context("spawn")`, then `ctx.Process(...)`,
/// `ctx.Pool(...)`, `ctx.Queue()`. Made by [`get_context`]. The queues and primitives do not
/// depend on a start method (each works with children of any); the context has them so
/// that code written against a context reads as in Python.
///
/// # Differences from CPython
/// - `ctx.Process(target=f, args=a)` is [`ctx.process()`](Context::process), a
///   [`Builder`] with the context's start method; `ctx.Pool(n)` is
///   [`ctx.pool()`](Context::pool), a [`PoolBuilder`].
/// - `ctx.set_start_method(...)` does not exist (CPython's concrete contexts refuse it too).
///
/// # Examples
///
/// ```
/// let ctx = multiprocessing::get_context(Some("fork"))?;
/// assert_eq!(ctx.get_start_method(), multiprocessing::StartMethod::Fork);
/// let p = ctx.process().target(|| println!("started by {}", "fork"));
/// p.start()?;
/// p.join()?;
/// let pool = ctx.pool().processes(Some(1)).build()?;
/// assert_eq!(pool.map(|x: u8| x + 1, [1])?, [2]);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context {
    method: StartMethod,
}

/// The context of start method `method`, or, for `None`, of the program's start method
/// (which that fixes, as [`get_start_method`] does).
///
/// Python: `multiprocessing.get_context(method=None)`.
///
/// # Errors
/// [`Error::ValueError`] `cannot find context for 'NAME'` for a name that is not `fork`,
/// `spawn` or `forkserver`.
///
/// # Examples
///
/// ```
/// use multiprocessing::{StartMethod, get_context};
///
/// assert_eq!(get_context(Some("spawn"))?.get_start_method(), StartMethod::Spawn);
/// let refused = get_context(Some("bogus")).unwrap_err();
/// assert_eq!(refused.to_string(), "cannot find context for 'bogus'");
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn get_context(method: Option<&str>) -> Result<Context, Error> {
    let method = match method {
        None => get_start_method(),
        Some(name) => name.parse()?,
    };
    Ok(Context { method })
}

impl Context {
    /// The context's start method. Python: `ctx.get_start_method()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(Some("forkserver"))?;
    /// assert_eq!(ctx.get_start_method().name(), "forkserver");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_start_method(&self) -> StartMethod {
        self.method
    }

    /// A process builder with the context's start method. Python: `ctx.Process(...)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(Some("fork"))?;
    /// let p = ctx.process().name("worker").target(|| {});
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn process(&self) -> Builder {
        Process::builder().start_method(self.method)
    }

    /// A pool builder with the context's start method. Python: `ctx.Pool(...)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(Some("fork"))?;
    /// let pool = ctx.pool().processes(Some(2)).build()?;
    /// assert_eq!(pool.apply(|x: i32| -x, 3)?, -3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn pool(&self) -> PoolBuilder {
        Pool::builder().start_method(self.method)
    }

    /// A manager builder whose server starts with the context's start method.
    /// Python: `ctx.Manager()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(Some("fork"))?;
    /// let manager = ctx.manager().start()?;
    /// let d = manager.dict::<String, u8>()?;
    /// d.set("forked".into(), 1)?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn manager(&self) -> ManagerBuilder {
        Manager::builder().start_method(self.method)
    }

    /// A queue. Python: `ctx.Queue(maxsize)`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(None)?;
    /// let q = ctx.queue(0)?;
    /// q.put(1u8)?;
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn queue<T>(&self, maxsize: usize) -> Result<Queue<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        Queue::new(maxsize)
    }

    /// A joinable queue. Python: `ctx.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`JoinableQueue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(None)?;
    /// let q = ctx.joinable_queue(0)?;
    /// q.put(1u8)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn joinable_queue<T>(&self, maxsize: usize) -> Result<JoinableQueue<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        JoinableQueue::new(maxsize)
    }

    /// A simple queue. Python: `ctx.SimpleQueue()`.
    ///
    /// # Errors
    /// As [`SimpleQueue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = multiprocessing::get_context(None)?;
    /// let q = ctx.simple_queue()?;
    /// q.put("x".to_owned())?;
    /// assert_eq!(q.get()?, "x");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn simple_queue<T>(&self) -> Result<SimpleQueue<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        SimpleQueue::new()
    }
}

/// CPython's repr of a concrete context: `<multiprocessing.context.SpawnContext object>`.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.method {
            StartMethod::Fork => "ForkContext",
            StartMethod::Spawn => "SpawnContext",
            StartMethod::ForkServer => "ForkServerContext",
        };
        write!(f, "<multiprocessing.context.{class} object>")
    }
}
