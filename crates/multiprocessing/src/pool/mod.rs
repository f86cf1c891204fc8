//! Pools: CPython's `multiprocessing.pool` — [`Pool`], whose workers are processes, and
//! [`ThreadPool`], whose workers are threads — one front end ([`PoolOf`]) over the two
//! kinds of workers, as CPython's `ThreadPool` is a subclass of its `Pool`.
//!
//! What the two share: every submission method and its checks, [`AsyncResult`],
//! [`IMapIterator`], [`Callbacks`], the states (`RUN`, `CLOSE`, `TERMINATE`) and their
//! messages, the chunk sizes, [`PoolStats`]. What differs is how a task reaches a worker
//! ([`Runs`]): serialized over a channel to a process (`process_pool.rs`), or moved to a
//! thread (`thread_pool.rs`).
//!
//! The process pool:
//! - Every submission method takes any `Fn(T) -> R` with serde arguments and results, and
//!   one task abstraction (`Task::of`) decides how it travels: a function, or a closure
//!   that captures nothing, as a code offset (workers run this same binary), on every
//!   start method — CPython pickles functions by name the same way; a closure that
//!   captures values through the closure registry, on a pool of forked workers only (the
//!   first task of each closure re-forks the idle workers, see `closure.rs`).
//! - A task that panics fails with the panic's message and place
//!   ([`Error::RemoteTraceback`]); the worker lives on, as with a CPython exception.
//! - **A worker that dies** (killed, aborted, exited) fails the task it was running with
//!   [`Error::WorkerDied`] at once, the tasks it held but had not started go to other
//!   workers, and a new worker takes its place. CPython's pool waits forever there
//!   (python/cpython#96062).
//! - An initializer that panics breaks the pool: every task fails with that panic
//!   (CPython starts new workers forever). `terminate()` fails the pending tasks (CPython
//!   leaves them pending forever).
//!
//! Internals: `process_pool.rs` (the process pool's state, submission and builder),
//! `handler.rs` (the thread that feeds worker processes and collects results),
//! `closure.rs` (closures for forked workers), `worker.rs` (the worker process),
//! `task.rs` (the wire format), `encoder.rs` (postcard's format for items and results,
//! written in place), `thread_pool.rs` (the thread pool), `batch.rs` (a
//! thread pool's items and `map` results, handed out and written in place), `result.rs`
//! (`AsyncResult`, `IMapIterator`).

mod batch;
pub(crate) mod closure;
mod encoder;
mod handler;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
mod process_pool;
mod result;
mod star;
mod task;
mod thread_pool;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use process_pool::PoolBuilder;
pub use result::{AsyncResult, Callbacks, IMapIterator};
pub use star::StarFn;
pub use thread_pool::ThreadPoolBuilder;

use process_pool::{Chunk, Items, Part, Piece, Shared, StartWorker, StartedWorker, Submission};

use crate::Error;
use crate::error::CHUNKSIZE;

/// How long `terminate` waits at exit for a pool's workers at most.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// CPython's pool states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Run,
    Close,
    Terminate,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Run => "RUN",
            Status::Close => "CLOSE",
            Status::Terminate => "TERMINATE",
        }
    }
}

/// The pool's live counters, in items.
#[derive(Default)]
#[repr(align(128))] // a cache line (pair) of its own: workers update it often
pub(crate) struct Counters {
    submitted: AtomicU64,
    running: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> PoolStats {
        PoolStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// CPython's default chunk size for `map`: about four chunks per worker.
fn default_chunksize(items: usize, workers: usize) -> usize {
    let (q, r) = (items / (workers * 4), items % (workers * 4));
    (q + usize::from(r != 0)).max(1)
}

fn check_chunksize(chunksize: usize) -> Result<(), Error> {
    if chunksize == 0 {
        return Err(Error::value(CHUNKSIZE));
    }
    Ok(())
}

/// What a pool's progress counters say, in items (a task of `apply` is one item).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Items handed to the pool.
    pub submitted: u64,
    /// Items a worker holds now (running or next in its queue).
    pub running: u64,
    /// Items finished with a result.
    pub done: u64,
    /// Items finished with an error.
    pub failed: u64,
}

/// The kinds of workers a pool can have: [`Processes`] ([`Pool`]) or [`Threads`]
/// ([`ThreadPool`]). Sealed: the pool modules implement it.
pub trait Workers: engine::Sealed + Sized + 'static {
    /// The running pool: its workers, queue and state.
    type Core: engine::Engine;
}

/// How a kind of workers runs functions from `T` to `R` — which items and results it can
/// carry: serde types for processes, any `Send` type for threads. Sealed; the pool's
/// methods call it.
#[diagnostic::on_unimplemented(
    message = "this pool cannot carry `{T}` to its workers or `{R}` back",
    note = "a `Pool` (processes) needs `Serialize + DeserializeOwned + Send + 'static` items \
            and results; a `ThreadPool` takes any `Send + 'static` ones"
)]
pub trait Runs<T, R>: Workers {
    /// Submits one call; its result (or why it failed) arrives in the `AsyncResult`.
    /// `caller`: whether the submitting thread waits for it (then in `Engine::wait_for`).
    fn apply<F>(
        core: &Self::Core,
        function: F,
        argument: T,
        callbacks: Callbacks<R>,
        caller: Caller,
    ) -> AsyncResult<R>
    where
        F: Fn(T) -> R + Send + Sync + 'static;

    /// Submits `items` in chunks of `chunksize` (`None`: CPython's default), for a caller
    /// that waits for them or goes on.
    fn map<F, I>(
        core: &Self::Core,
        function: F,
        items: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        caller: Caller,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>;

    /// The lazy iterator over `items` in chunks of `chunksize` (checked to be at least 1).
    ///
    /// # Errors
    /// `Pool not running`, or the function cannot run on these workers.
    fn imap<F, I>(
        core: &Self::Core,
        function: F,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIterator<T, R, I>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>;
}

/// What both kinds of running pool do alike (unnameable outside this crate).
mod engine {
    use pyconc_core::logging;

    use super::{AsyncResult, PoolStats, Status};
    use crate::Error;
    use crate::error::POOL_RUNNING;

    /// Seals [`Workers`](super::Workers).
    pub trait Sealed {}

    /// Whether the thread that submits work waits for its result (`apply`, `map`) or
    /// goes on (`apply_async`, `map_async`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Caller {
        /// It waits, in [`Engine::wait_for`].
        Waits,
        /// It goes on; the result comes later.
        GoesOn,
    }

    /// A running pool, as its front end sees it.
    pub trait Engine: Send + Sync {
        /// CPython's class name: `Pool` or `ThreadPool`.
        const CLASS: &'static str;
        /// The number of workers.
        fn size(&self) -> usize;
        /// What the live counters say.
        fn stats(&self) -> PoolStats;
        /// RUN, CLOSE or TERMINATE.
        fn status(&self) -> Status;
        /// Whether this process made the pool (`Pool used from another process` if not:
        /// a forked child may not run its parent's pool).
        fn check_owner(&self) -> Result<(), Error>;
        /// Stops taking work; what was submitted runs to the end (`close`'s effect).
        fn stop_accepting(&self);
        /// Stops the workers now, failing what has not run (`terminate`'s effect).
        fn stop_now(&self);
        /// Waits until the workers are gone (`join`'s effect, once the pool is not running).
        fn wait_finished(&self);

        /// Waits for the result of work submitted with [`Caller::Waits`], and returns it.
        fn wait_for<R>(&self, result: AsyncResult<R>) -> Result<R, Error> {
            result.get()
        }

        /// `close()`, as CPython's: logged, and only by the process that made the pool.
        fn close(&self) {
            logging::debug(|| "closing pool".to_owned());
            if self.check_owner().is_ok() {
                self.stop_accepting();
            }
        }

        /// `terminate()`, likewise.
        fn terminate(&self) {
            if self.check_owner().is_ok() {
                logging::debug(|| "terminating pool".to_owned());
                self.stop_now();
            }
        }

        /// `join()`: CPython's `Pool is still running` before `close` or `terminate`.
        fn join(&self) -> Result<(), Error> {
            logging::debug(|| "joining pool".to_owned());
            self.check_owner()?;
            if self.status() == Status::Run {
                return Err(Error::value(POOL_RUNNING));
            }
            self.wait_finished();
            Ok(())
        }
    }
}

use engine::{Caller, Engine};

/// Worker processes: a [`Pool`].
#[derive(Debug)]
pub enum Processes {}

/// Worker threads: a [`ThreadPool`].
#[derive(Debug)]
pub enum Threads {}

/// A pool of worker processes: [`PoolOf`] over [`Processes`].
///
/// Python: `multiprocessing.pool.Pool`. `Send + Sync`: any thread may submit work.
/// `starmap` is [`map`](Pool::map) over tuples (`fn((A, B)) -> R`). Dropping the pool
/// terminates it, as leaving CPython's `with Pool() as pool:` block does; call
/// [`close`](Pool::close) and [`join`](Pool::join) to let the work finish first.
///
/// # Tasks: functions and closures
///
/// Every submission method takes any `Fn(T) -> R + Send + Sync + 'static`; items and
/// results travel serialized (serde). How the function reaches the workers depends on
/// what it is:
/// - a function (`square`, or a `fn(T) -> R` pointer) or a closure that captures nothing
///   (`|x: u64| x * 2`): by reference to this program's code, on workers of every start
///   method, as CPython pickles a function by name;
/// - a closure that captures values (`move |x| x + offset`): only on a pool of forked
///   workers, which CPython cannot do at all. The pool's workers were forked before the
///   closure existed, so the first task of each such closure replaces the idle workers
///   with newly forked ones (about a millisecond per worker): use functions in hot loops.
///   Any other start method refuses it with
///   `a closure task needs a pool with the fork start method`.
///
/// # Differences from CPython
/// - Tasks are Rust functions and closures with serde arguments and results (CPython
///   pickles them); see above for closures, which CPython cannot send.
/// - A worker that dies while it holds a task (killed, aborted) fails that task with
///   [`Error::WorkerDied`](crate::Error::WorkerDied) and is replaced; CPython's pool hangs
///   there (python/cpython#96062).
/// - `chunksize` is a separate method ([`map_chunked`](Pool::map_chunked),
///   [`imap_chunked`](Pool::imap_chunked)); `starmap` is `map` over tuples.
/// - Dropping the pool terminates it (`with Pool() as pool:`); CPython's `__del__` only
///   warns. [`stats`](Pool::stats) and the MPI pool (`PoolBuilder::mpi`) are beyond
///   CPython.
///
/// # Examples
///
/// ```
/// use multiprocessing::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(Some(2))?;
/// assert_eq!(pool.map(square, 0..5)?, vec![0, 1, 4, 9, 16]);
/// let total: u64 = pool.imap_unordered(square, 0..100)?.map(Result::unwrap).sum();
/// assert_eq!(total, 328_350);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub type Pool = PoolOf<Processes>;

/// A pool of worker threads: [`PoolOf`] over [`Threads`].
///
/// Python: `multiprocessing.pool.ThreadPool` (and `multiprocessing.dummy.Pool`). The
/// methods are [`Pool`]'s, over threads of this process: tasks are any
/// `Fn(T) -> R + Send + Sync + 'static`, closures that capture included, and items and
/// results any `Send + 'static` types, moved, never serialized. A task that panics fails
/// alone ([`Error::RemoteTraceback`] naming the worker thread); the worker goes on.
/// Workers are daemon threads named `Thread-N (worker)`, as CPython's.
///
/// # Differences from CPython
/// - `terminate()` cannot stop a task that is running (threads cannot be killed, in
///   CPython neither): it fails every task no worker has started and waits for the
///   running ones. CPython leaves the pending ones pending forever.
/// - An initializer that panics breaks the pool: every task fails with that panic
///   (CPython starts new workers forever).
/// - `map` writes the results in place and hands items out by an atomic counter, so a
///   chunk costs no allocation and no lock.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use multiprocessing::ThreadPool;
///
/// let words = Arc::new(vec!["pool", "of", "threads"]);
/// let pool = ThreadPool::new(Some(2))?;
/// let shared = Arc::clone(&words);
/// let lengths = pool.map(move |i: usize| shared[i].len(), 0..3)?;
/// assert_eq!(lengths, [4, 2, 7]);
/// // Any Send type travels, serializable or not.
/// let cell = pool.apply(|v: Vec<std::cell::Cell<u8>>| v.len(), vec![std::cell::Cell::new(1)])?;
/// assert_eq!(cell, 1);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub type ThreadPool = PoolOf<Threads>;

/// A pool of workers of kind `W`: the methods [`Pool`] and [`ThreadPool`] share.
///
/// Python: `multiprocessing.pool.Pool`, of which `ThreadPool` is a subclass. `Send +
/// Sync`: any thread may submit work. Dropping the pool terminates it, as leaving
/// CPython's `with Pool() as pool:` block does; call [`close`](PoolOf::close) and
/// [`join`](PoolOf::join) to let the work finish first. The examples use [`Pool`]; a
/// [`ThreadPool`] is used the same way.
pub struct PoolOf<W: Workers> {
    core: W::Core,
}

impl<W: Workers> PoolOf<W> {
    /// The number of workers. Python: `pool._processes`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::Pool::new(Some(3))?.processes(), 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.core.size()
    }

    /// The live progress counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// pool.map(|x: u32| x, 0..10)?;
    /// let stats = pool.stats();
    /// assert_eq!((stats.submitted, stats.done, stats.failed), (10, 10, 0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.core.stats()
    }

    /// `function(argument)` in a worker, returning its result.
    ///
    /// Python: `Pool.apply(f, (a,))`.
    ///
    /// # Errors
    /// `Pool not running` after `close`/`terminate`; the task's failure (see
    /// [`AsyncResult::get`]).
    ///
    /// # Examples
    ///
    /// ```
    /// fn word_count(text: String) -> usize {
    ///     text.split_whitespace().count()
    /// }
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// assert_eq!(pool.apply(word_count, "three little words".to_owned())?, 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn apply<F, A, R>(&self, function: F, argument: A) -> Result<R, Error>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        W: Runs<A, R>,
    {
        self.core.wait_for(W::apply(
            &self.core,
            function,
            argument,
            Callbacks::new(),
            Caller::Waits,
        ))
    }

    /// Starts `function(argument)` in a worker; the result comes later.
    ///
    /// Python: `Pool.apply_async(f, (a,))`. A pool that is not running gives a result
    /// that is already the `Pool not running` error.
    ///
    /// # Examples
    ///
    /// ```
    /// fn slow_double(x: u64) -> u64 {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    ///     x * 2
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let result = pool.apply_async(slow_double, 21);
    /// // ... other work here ...
    /// assert_eq!(result.get()?, 42);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn apply_async<F, A, R>(&self, function: F, argument: A) -> AsyncResult<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        W: Runs<A, R>,
    {
        self.apply_async_with(function, argument, Callbacks::new())
    }

    /// [`apply_async`](Pool::apply_async) with a callback and an error callback.
    ///
    /// Python: `Pool.apply_async(f, (a,), callback=, error_callback=)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let (tx, rx) = mpsc::channel();
    /// let callbacks = multiprocessing::Callbacks::new().on_success(move |n: &u64| tx.send(*n).unwrap());
    /// let result = pool.apply_async_with(|x: u64| x * 3, 14, callbacks);
    /// assert_eq!(result.get()?, 42);
    /// assert_eq!(rx.recv().unwrap(), 42, "the callback ran in this process");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn apply_async_with<F, A, R>(
        &self,
        function: F,
        argument: A,
        callbacks: Callbacks<R>,
    ) -> AsyncResult<R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        W: Runs<A, R>,
    {
        W::apply(&self.core, function, argument, callbacks, Caller::GoesOn)
    }

    /// `function` over every item, in the items' order, with CPython's default chunk
    /// size (about four chunks per worker).
    ///
    /// Python: `Pool.map(f, items)`; `starmap` is this over tuples.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// assert_eq!(pool.map(square, 1..=4)?, [1, 4, 9, 16]);
    /// // A closure that captures nothing works with every start method.
    /// assert_eq!(pool.map(|x: u64| x + 1, [1, 2])?, [2, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Pool not running`; otherwise, once every item is done, the failure of the first
    /// failed item (CPython: after all chunks, too — test_map_no_failfast).
    pub fn map<F, T, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = T>,
    ) -> Result<Vec<R>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
    {
        self.core.wait_for(self.submit_map(function, items, None, Callbacks::new(), Caller::Waits))
    }

    /// [`map`](Pool::map) in chunks of `chunksize` items.
    ///
    /// Python: `Pool.map(f, items, chunksize)`.
    ///
    /// # Errors
    /// As [`map`](Pool::map); `Chunksize must be 1+, not 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let squares = pool.map_chunked(|x: u64| x * x, 0..1000, 100)?; // 10 tasks of 100 items
    /// assert_eq!(squares[999], 998_001);
    /// assert_eq!(pool.map_chunked(|x: u8| x, [1], 0).unwrap_err().to_string(), "Chunksize must be 1+, not 0");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn map_chunked<F, T, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = T>,
        chunksize: usize,
    ) -> Result<Vec<R>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
    {
        let mapped =
            self.submit_map(function, items, Some(chunksize), Callbacks::new(), Caller::Waits);
        self.core.wait_for(mapped)
    }

    /// [`map`](Pool::map), returning at once; the list comes later.
    ///
    /// Python: `Pool.map_async(f, items)`. A pool that is not running gives a result that
    /// is already the `Pool not running` error.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let pending = pool.map_async(|s: String| s.len(), ["a".to_owned(), "bcd".to_owned()]);
    /// // ... other work meanwhile ...
    /// assert_eq!(pending.get()?, [1, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn map_async<F, T, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = T>,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
    {
        self.map_async_with(function, items, None, Callbacks::new())
    }

    /// `function(a, b, …)` for every tuple `(a, b, …)` of `items`, in the items' order:
    /// [`map`](Pool::map) for a function of several arguments.
    ///
    /// Python: `Pool.starmap(f, items)`. A function item or a closure that captures nothing
    /// works with every start method; one that captures data, or a function pointer, needs
    /// a fork pool (it travels through the closure registry).
    ///
    /// # Errors
    /// As [`map`](Pool::map).
    ///
    /// # Examples
    ///
    /// ```
    /// fn power(base: u64, exponent: u32) -> u64 {
    ///     base.pow(exponent)
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// assert_eq!(pool.starmap(power, [(2, 10), (3, 2)])?, [1024, 9]);
    /// assert_eq!(pool.starmap(|a: i32, b: i32, c: i32| a + b + c, [(1, 2, 3)])?, [6]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn starmap<F, Args, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<Vec<R>, Error>
    where
        F: StarFn<Args, R>,
        Args: Send + 'static,
        R: Send + 'static,
        W: Runs<Args, R>,
    {
        self.map(move |args: Args| function.call_with(args), items)
    }

    /// [`starmap`](Pool::starmap), returning at once; the list comes later.
    ///
    /// Python: `Pool.starmap_async(f, items)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let pending = pool.starmap_async(|a: u8, b: u8| a.max(b), [(1, 2), (5, 3)]);
    /// assert_eq!(pending.get()?, [2, 5]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn starmap_async<F, Args, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = Args>,
    ) -> AsyncResult<Vec<R>>
    where
        F: StarFn<Args, R>,
        Args: Send + 'static,
        R: Send + 'static,
        W: Runs<Args, R>,
    {
        self.map_async(move |args: Args| function.call_with(args), items)
    }

    /// [`map_async`](Pool::map_async) with a chunk size (`None`: the default) and
    /// callbacks (the callback gets the whole list).
    ///
    /// Python: `Pool.map_async(f, items, chunksize, callback, error_callback)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::Callbacks;
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let callbacks = Callbacks::new().on_error(|e| eprintln!("map failed: {e}"));
    /// let sums = pool.map_async_with(|v: Vec<u32>| v.iter().sum::<u32>(), [vec![1, 2], vec![3]], Some(1), callbacks);
    /// assert_eq!(sums.get()?, [3, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn map_async_with<F, T, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = T>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
    {
        self.submit_map(function, items, chunksize, callbacks, Caller::GoesOn)
    }

    /// Submits a `map` for a caller that waits for it or goes on.
    fn submit_map<F, T, R>(
        &self,
        function: F,
        items: impl IntoIterator<Item = T>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        caller: Caller,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
    {
        match chunksize.map_or(Ok(()), check_chunksize) {
            Ok(()) => W::map(&self.core, function, items.into_iter(), chunksize, callbacks, caller),
            Err(error) => AsyncResult::failed(error),
        }
    }

    /// A lazy iterator of `function(item)` results in the items' order, one item per
    /// task.
    ///
    /// Python: `Pool.imap(f, items)`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let squares: Result<Vec<u64>, _> = pool.imap(square, 0..5)?.collect();
    /// assert_eq!(squares?, [0, 1, 4, 9, 16]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Pool not running`.
    pub fn imap<F, T, R, I>(
        &self,
        function: F,
        items: I,
    ) -> Result<IMapIterator<T, R, I::IntoIter>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
        I: IntoIterator<Item = T>,
    {
        self.imap_chunked(function, items, 1)
    }

    /// [`imap`](Pool::imap) with `chunksize` items per task.
    ///
    /// Python: `Pool.imap(f, items, chunksize)`.
    ///
    /// # Errors
    /// `Pool not running`; `Chunksize must be 1+, not 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let doubled: Vec<u64> = pool.imap_chunked(|x: u64| 2 * x, 0..100, 10)?.collect::<Result<_, _>>()?;
    /// assert_eq!(doubled[..3], [0, 2, 4], "in the items' order");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn imap_chunked<F, T, R, I>(
        &self,
        function: F,
        items: I,
        chunksize: usize,
    ) -> Result<IMapIterator<T, R, I::IntoIter>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
        I: IntoIterator<Item = T>,
    {
        check_chunksize(chunksize)?;
        W::imap(&self.core, function, items.into_iter(), chunksize, true)
    }

    /// A lazy iterator of `function(item)` results in the order they finish.
    ///
    /// Python: `Pool.imap_unordered(f, items)`.
    ///
    /// # Errors
    /// `Pool not running`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let mut results: Vec<u32> = pool.imap_unordered(|x: u32| x + 1, [3, 1, 2])?.collect::<Result<_, _>>()?;
    /// results.sort_unstable(); // they come in the order they finish
    /// assert_eq!(results, [2, 3, 4]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn imap_unordered<F, T, R, I>(
        &self,
        function: F,
        items: I,
    ) -> Result<IMapIterator<T, R, I::IntoIter>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
        I: IntoIterator<Item = T>,
    {
        self.imap_unordered_chunked(function, items, 1)
    }

    /// [`imap_unordered`](Pool::imap_unordered) with `chunksize` items per task.
    ///
    /// # Errors
    /// `Pool not running`; `Chunksize must be 1+, not 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let total: u64 = pool
    ///     .imap_unordered_chunked(|x: u64| x, 1..=100, 25)?
    ///     .map(|r| r.unwrap())
    ///     .sum();
    /// assert_eq!(total, 5050);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn imap_unordered_chunked<F, T, R, I>(
        &self,
        function: F,
        items: I,
        chunksize: usize,
    ) -> Result<IMapIterator<T, R, I::IntoIter>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Send + 'static,
        R: Send + 'static,
        W: Runs<T, R>,
        I: IntoIterator<Item = T>,
    {
        check_chunksize(chunksize)?;
        W::imap(&self.core, function, items.into_iter(), chunksize, false)
    }

    /// No more work: the workers exit once what was submitted is done.
    ///
    /// Python: `Pool.close()`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let pending = pool.map_async(square, 0..10);
    /// pool.close(); // no more work; what was submitted still runs
    /// pool.join()?;
    /// assert_eq!(pending.get()?.len(), 10);
    /// assert_eq!(pool.map(square, [1]).unwrap_err().to_string(), "Pool not running");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) {
        self.core.close();
    }

    /// Stops the workers now (SIGTERM); pending tasks fail with
    /// `the pool was terminated before this task finished` (CPython leaves them pending
    /// forever). Returns once the workers are reaped.
    ///
    /// Python: `Pool.terminate()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let slow = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 60_000);
    /// pool.terminate(); // stops the workers now
    /// pool.join()?;
    /// assert!(slow.get().is_err(), "the task did not finish");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.core.terminate();
    }

    /// Waits until the workers have exited: after [`close`](Pool::close), once all the
    /// work is done.
    ///
    /// Python: `Pool.join()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Pool is still running` before `close`/`terminate`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?;
    /// let result = pool.apply_async(|x: u8| x, 1);
    /// pool.close();
    /// pool.join()?; // the workers have exited
    /// assert_eq!(result.get()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        self.core.join()
    }
}

impl<W: Workers> fmt::Debug for PoolOf<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<multiprocessing.pool.{} state={} pool_size={}>",
            <W::Core as Engine>::CLASS,
            self.core.status().name(),
            self.core.size()
        )
    }
}
