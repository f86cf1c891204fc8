//! `Pool`: CPython's `multiprocessing.pool.Pool` — a fixed set of worker processes that
//! run functions over items — and where it differs.
//!
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
//! Internals: `handler.rs` (the thread that feeds workers and collects results),
//! `closure.rs` (closures for forked workers),
//! `worker.rs` (the worker process), `task.rs` (the wire format), `result.rs`
//! (`AsyncResult`, `IMapIterator`).

pub(crate) mod closure;
mod handler;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
mod result;
mod star;
mod task;
mod worker;

use std::any::TypeId;
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use result::{AsyncResult, Callbacks, IMapIterator};
pub use star::StarFn;

use handler::{Handler, Worker};
use result::{MapSink, Sink, Slot, Slots, lock};
use worker::WorkerArgs;

use crate::error::{
    CLOSURE_POOL_NEEDS_FORK, MAXTASKS, POOL_FOREIGN, POOL_NOT_RUNNING, POOL_RUNNING, POOL_SIZE,
};
use crate::sys::{self, Pid};
use pyconc_core::exit::Finalize;
use pyconc_core::fork::WeakList;
use pyconc_core::logging;

use crate::error::CHUNKSIZE;
use crate::{Connection, Error, Process, StartMethod, get_start_method, pipe};

/// How long `terminate` waits at exit for a pool's handler at most.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// CPython's pool states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
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

/// What the chunks of one submission run.
#[derive(Clone)]
pub(crate) struct Task {
    /// The offset of the monomorphized chunk runner.
    pub(crate) entry: u64,
    /// The offset of the user's `fn`, or the number of a registered closure.
    pub(crate) function: u64,
    /// The least closure generation a worker needs to run it (0: any worker).
    pub(crate) needs: u64,
    /// Keeps a registered closure alive while its chunks are pending.
    _closure: Option<closure::Shared>,
}

impl Task {
    /// The task that runs `function` on workers started by `method` — the one way every
    /// submission method turns what the caller gave into what travels to the workers:
    ///
    /// | `function` | travels as | start methods |
    /// |---|---|---|
    /// | a `fn(T) -> R` pointer | its code offset | every one |
    /// | a function item (`square`) or a closure capturing nothing | the offset of an entry monomorphized for it (it has no state) | every one |
    /// | a closure with captures | a number in the closure registry; workers forked after it run it | fork |
    fn of<F, T, R>(function: F, method: StartMethod) -> Result<Task, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        if TypeId::of::<F>() == TypeId::of::<fn(T) -> R>() {
            // SAFETY: `F` is `fn(T) -> R` itself (the same `TypeId`).
            let function: fn(T) -> R = unsafe { std::mem::transmute_copy(&function) };
            return Ok(Task::of_fn(function));
        }
        if std::mem::size_of::<F>() == 0 {
            return Ok(Task {
                entry: task::entry_of_zero_sized::<F, T, R>(),
                function: 0,
                needs: 0,
                _closure: None,
            });
        }
        if method != StartMethod::Fork {
            return Err(Error::value(CLOSURE_POOL_NEEDS_FORK));
        }
        Ok(Task::of_closure(function))
    }

    fn of_fn<T, R>(function: fn(T) -> R) -> Task
    where
        T: DeserializeOwned,
        R: Serialize,
    {
        Task {
            entry: task::entry_of::<T, R>(),
            function: crate::process::start::offset(function as usize),
            needs: 0,
            _closure: None,
        }
    }

    /// Registers `function`: only workers forked from now on can run it.
    fn of_closure<F, T, R>(function: F) -> Task
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: DeserializeOwned,
        R: Serialize,
    {
        let (id, shared) = closure::register(function);
        Task {
            entry: task::entry_of_closure::<F, T, R>(),
            function: id,
            needs: id + 1,
            _closure: Some(shared),
        }
    }
}

/// Some items of one submission, serialized, and where their results go.
pub(crate) struct Chunk {
    pub(crate) task: Task,
    pub(crate) count: u32,
    pub(crate) items: Vec<u8>,
    pub(crate) slots: Slots,
    pub(crate) sink: Arc<dyn Sink>,
}

/// A pool's state that user threads and the handler share.
pub(crate) struct State {
    pub(crate) status: Status,
    /// Chunks no worker holds yet.
    pub(crate) queue: VecDeque<Chunk>,
    /// Why every task fails (an initializer panicked, no worker can be started).
    pub(crate) broken: Option<Arc<dyn Fn() -> Error + Send + Sync>>,
}

/// The pool's live counters, in items.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// Starts one worker with the builder's initializer: (start method, `maxtasksperchild`).
type BuildWorker = Arc<
    dyn Fn(StartMethod, Option<usize>) -> Result<(Process, Arc<Connection>), Error> + Send + Sync,
>;

/// Starts one worker; `Option<usize>` is `maxtasksperchild`.
pub(crate) type StartWorker =
    Arc<dyn Fn(Option<usize>) -> Result<(Process, Arc<Connection>), Error> + Send + Sync>;

pub(crate) struct Shared {
    /// The number of workers.
    pub(crate) size: usize,
    /// The workers' start method.
    method: StartMethod,
    pub(crate) state: Mutex<State>,
    /// Wakes the handler: new work, close, terminate.
    pub(crate) wake: OwnedFd,
    pub(crate) stats: Counters,
    /// The process that made the pool (a fork child's copy must not use it).
    owner: Pid,
    /// The current workers, for `terminate` from a user thread.
    workers: Mutex<Vec<Process>>,
    finished: Mutex<bool>,
    finished_changed: Condvar,
}

impl Shared {
    /// The shared state of a running pool of `size` workers started by `method`.
    fn new(size: usize, method: StartMethod) -> Result<Arc<Shared>, Error> {
        Ok(Arc::new(Shared {
            size,
            method,
            state: Mutex::new(State { status: Status::Run, queue: VecDeque::new(), broken: None }),
            wake: sys::eventfd()?,
            stats: Counters::default(),
            owner: sys::getpid(),
            workers: Mutex::new(Vec::new()),
            finished: Mutex::new(false),
            finished_changed: Condvar::new(),
        }))
    }

    pub(crate) fn set_finished(&self) {
        *lock(&self.finished) = true;
        self.finished_changed.notify_all();
    }

    /// Waits until the handler thread has finished, at most until `deadline`.
    fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        let mut finished = lock(&self.finished);
        while !*finished {
            let left = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            };
            if left.is_zero() {
                return false;
            }
            finished = pyconc_core::sync::wait_timeout(&self.finished_changed, finished, left).0;
        }
        true
    }

    pub(crate) fn add_worker(&self, process: &Process) {
        lock(&self.workers).push(process.clone());
        logging::debug(|| "added worker".to_owned());
    }

    pub(crate) fn forget_worker(&self, process: &Process) {
        lock(&self.workers).retain(|p| p.pid() != process.pid());
    }

    fn check_owner(&self) -> Result<(), Error> {
        if sys::getpid() == self.owner { Ok(()) } else { Err(Error::value(POOL_FOREIGN)) }
    }

    /// The pool takes work: this process made it, and it was not closed or terminated.
    fn check_running(&self) -> Result<(), Error> {
        self.check_owner()?;
        if lock(&self.state).status == Status::Run {
            Ok(())
        } else {
            Err(Error::value(POOL_NOT_RUNNING))
        }
    }

    /// Moves to `status` (never back from `Terminate`) and wakes the handler.
    fn set_status(&self, status: Status) {
        {
            let mut state = lock(&self.state);
            if state.status == Status::Terminate
                || (state.status == Status::Close && status == Status::Run)
            {
                return;
            }
            state.status = status;
        }
        sys::eventfd_signal(self.wake.as_fd());
    }

    /// `terminate()`: signal the workers from here (the handler may be busy sending),
    /// then wait for the handler to reap them and fail what is pending.
    fn terminate(&self, deadline: Option<Instant>) {
        self.set_status(Status::Terminate);
        for worker in lock(&self.workers).iter() {
            let _ = worker.terminate();
        }
        self.wait_finished(deadline);
    }
}

/// Serializes `items` in chunks of `chunksize` and queues them; `first` is the index of
/// the first item within its submission. An item that cannot be serialized fails alone.
///
/// # Errors
/// `Pool not running` after `close`/`terminate`; `POOL_FOREIGN` in a fork child.
pub(crate) fn submit<T: Serialize>(
    shared: &Shared,
    task: &Task,
    items: Vec<T>,
    first: usize,
    chunksize: usize,
    sink: &Arc<dyn Sink>,
) -> Result<(), Error> {
    shared.check_running()?;
    let total = items.len();
    shared.stats.submitted.fetch_add(total as u64, Ordering::Relaxed);
    let mut chunks = Vec::with_capacity(total.div_ceil(chunksize.max(1)));
    let mut items = items.into_iter().enumerate();
    // An item that did not fit the chunk before it: the first of the next one.
    let mut carried = None;
    loop {
        let mut encoded = Vec::new();
        let mut slots = Vec::new();
        let mut holes = false;
        let mut taken = 0;
        while taken < chunksize.max(1) {
            let Some((index, item)) = carried.take().or_else(|| items.next()) else { break };
            taken += 1;
            let mark = encoded.len();
            let refusal = match task::append(&item, &mut encoded) {
                Ok(()) if encoded.len() <= task::ENTRY_LIMIT => {
                    slots.push(first + index);
                    continue;
                }
                // A chunk's items travel in one message: a chunk that would outgrow it
                // ends before this item, which starts the next one.
                Ok(()) if !slots.is_empty() => {
                    encoded.truncate(mark);
                    carried = Some((index, item));
                    break;
                }
                Ok(()) => format!(
                    "a task's argument of {} bytes is over the {}-byte limit of a message to a \
                     pool worker",
                    encoded.len() - mark,
                    task::ENTRY_LIMIT
                ),
                Err(error) => format!("cannot serialize a task's argument: {error}"),
            };
            encoded.truncate(mark);
            holes = true;
            let slot = Slots::List(vec![first + index]);
            sink.fail(&slot, &|| Error::PicklingError(refusal.clone()), &shared.stats);
        }
        if taken == 0 {
            break;
        }
        if slots.is_empty() {
            continue;
        }
        let slots = match (holes, slots.first(), slots.last()) {
            (false, Some(&a), Some(&b)) => Slots::Range(a..b + 1),
            _ => Slots::List(slots),
        };
        chunks.push(Chunk {
            task: task.clone(),
            count: slots.len() as u32,
            items: encoded,
            slots,
            sink: Arc::clone(sink),
        });
    }
    let broken = {
        let mut state = lock(&shared.state);
        if state.status != Status::Run {
            shared.stats.submitted.fetch_sub(total as u64, Ordering::Relaxed);
            return Err(Error::value(POOL_NOT_RUNNING));
        }
        match &state.broken {
            Some(broken) => Some(Arc::clone(broken)),
            None => {
                state.queue.extend(chunks.drain(..));
                None
            }
        }
    };
    match broken {
        Some(error) => {
            for chunk in &chunks {
                chunk.sink.fail(&chunk.slots, &*error, &shared.stats);
            }
        }
        None => sys::eventfd_signal(shared.wake.as_fd()),
    }
    Ok(())
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

/// A pool of worker processes.
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
pub struct Pool {
    shared: Arc<Shared>,
    handler: Mutex<Option<JoinHandle<()>>>,
    /// Terminates the pool at exit if it still runs then.
    finalizer: Finalize,
}

impl Pool {
    /// A pool of `processes` workers (`None`: [`cpu_count()`](crate::cpu_count)), started
    /// with the default start method.
    ///
    /// Python: `multiprocessing.Pool(processes)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Number of processes must be at least 1`; whatever starting a
    /// worker returns (then the workers already started are terminated).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(2))?; // None: one worker per CPU
    /// assert_eq!(pool.processes(), 2);
    /// assert_eq!(pool.map(|x: i32| x - 1, [1, 2, 3])?, [0, 1, 2]);
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(processes: Option<usize>) -> Result<Pool, Error> {
        PoolBuilder::new().processes(processes).build()
    }

    /// A builder for a pool with an initializer, `maxtasksperchild` or a start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(Some(2)).maxtasksperchild(100).build()?;
    /// assert_eq!(pool.apply(|x: u8| x + 1, 1)?, 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// The number of workers. Python: `pool._processes`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::Pool::new(Some(3))?.processes(), 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.shared.size
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
        let stats = &self.shared.stats;
        PoolStats {
            submitted: stats.submitted.load(Ordering::Relaxed),
            running: stats.running.load(Ordering::Relaxed),
            done: stats.done.load(Ordering::Relaxed),
            failed: stats.failed.load(Ordering::Relaxed),
        }
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
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(function, argument).get()
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
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        match self.task(function) {
            Ok(task) => self.start_apply(&task, argument, callbacks),
            Err(error) => AsyncResult::failed(error),
        }
    }

    fn start_apply<A, R>(&self, task: &Task, argument: A, callbacks: Callbacks<R>) -> AsyncResult<R>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let slot = Slot::new(callbacks);
        let sink: Arc<dyn Sink> = slot.clone();
        if let Err(error) = submit(&self.shared, task, vec![argument], 0, 1, &sink) {
            slot.set(Err(error));
        }
        AsyncResult::new(slot)
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let task = self.task(function)?;
        self.start_map(&task, items.into_iter().collect(), None, Callbacks::new())?.get()
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        check_chunksize(chunksize)?;
        let task = self.task(function)?;
        self.start_map(&task, items.into_iter().collect(), Some(chunksize), Callbacks::new())?.get()
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        Args: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        Args: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items = items.into_iter().collect();
        chunksize
            .map_or(Ok(()), check_chunksize)
            .and_then(|()| self.task(function))
            .and_then(|task| self.start_map(&task, items, chunksize, callbacks))
            .unwrap_or_else(AsyncResult::failed)
    }

    fn start_map<T, R>(
        &self,
        task: &Task,
        items: Vec<T>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, Error>
    where
        T: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.shared.check_running()?;
        let chunksize =
            chunksize.unwrap_or_else(|| default_chunksize(items.len(), self.shared.size));
        let slot = Slot::new(callbacks);
        let sink: Arc<dyn Sink> = MapSink::new(items.len(), Arc::clone(&slot));
        if !items.is_empty() {
            submit(&self.shared, task, items, 0, chunksize, &sink)?;
        }
        Ok(AsyncResult::new(slot))
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = T>,
    {
        self.start_imap(self.task(function)?, items.into_iter(), chunksize, true)
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
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
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = T>,
    {
        self.start_imap(self.task(function)?, items.into_iter(), chunksize, false)
    }

    fn start_imap<T, R, I>(
        &self,
        task: Task,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIterator<T, R, I>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: Iterator<Item = T>,
    {
        check_chunksize(chunksize)?;
        self.shared.check_running()?;
        Ok(IMapIterator::new(self, task, items, chunksize, ordered))
    }

    /// The task of `function` for this pool's workers (see `Task::of`).
    fn task<F, T, R>(&self, function: F) -> Result<Task, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        self.shared.check_running()?;
        Task::of(function, self.shared.method)
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
        logging::debug(|| "closing pool".to_owned());
        if self.shared.check_owner().is_ok() {
            self.shared.set_status(Status::Close);
        }
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
        if self.shared.check_owner().is_err() {
            return;
        }
        logging::debug(|| "terminating pool".to_owned());
        self.shared.terminate(None);
        self.join_handler();
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
        logging::debug(|| "joining pool".to_owned());
        self.shared.check_owner()?;
        if lock(&self.shared.state).status == Status::Run {
            return Err(Error::value(POOL_RUNNING));
        }
        self.shared.wait_finished(None);
        self.join_handler();
        Ok(())
    }

    /// Runs `handler` on the pool's own thread and registers the pool to be terminated
    /// at exit; if the thread cannot start, the workers are stopped.
    fn start(
        shared: Arc<Shared>,
        name: &str,
        handler: impl FnOnce() + Send + 'static,
    ) -> Result<Pool, Error> {
        match pyconc_core::helper::spawn(name, handler) {
            Ok(thread) => {
                // CPython's `Finalize(self, self._terminate_pool, exitpriority=15)`.
                let weak = Arc::downgrade(&shared);
                let finalizer = Finalize::new(move || terminate_at_exit(&weak), Some(15));
                Ok(Pool { shared, handler: Mutex::new(Some(thread)), finalizer })
            }
            Err(error) => {
                kill_workers(&shared);
                Err(Error::OsError(error))
            }
        }
    }

    fn join_handler(&self) {
        if let Some(handler) = lock(&self.handler).take() {
            let _ = handler.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.finalizer.cancel();
        self.terminate();
    }
}

/// The pool's exit finalizer (priority 15: before the daemonic children are terminated):
/// terminates it if it still runs, in the process that made it, as CPython's does.
fn terminate_at_exit(pool: &Weak<Shared>) {
    if let Some(pool) = pool.upgrade() {
        if pool.check_owner().is_ok() {
            pool.terminate(Instant::now().checked_add(EXIT_GRACE));
        }
    }
}

impl fmt::Debug for Pool {
    /// CPython's repr: `<multiprocessing.pool.Pool state=RUN pool_size=4>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = lock(&self.shared.state).status;
        write!(
            f,
            "<multiprocessing.pool.Pool state={} pool_size={}>",
            status.name(),
            self.shared.size
        )
    }
}

/// Builds a [`Pool`]: CPython's `Pool(...)` keyword arguments.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Pool, StartMethod};
///
/// fn setup(greeting: String) { assert_eq!(greeting, "hi"); }
/// fn double(x: i32) -> i32 { 2 * x }
///
/// let pool = Pool::builder()
///     .processes(Some(2))
///     .initializer(setup, "hi".to_string())
///     .maxtasksperchild(100)
///     .start_method(StartMethod::Fork)
///     .build()?;
/// assert_eq!(pool.apply(double, 21)?, 42);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[must_use]
pub struct PoolBuilder {
    processes: Option<usize>,
    maxtasks: Option<usize>,
    start_method: Option<StartMethod>,
    has_initializer: bool,
    /// Workers are the ranks of an `mpirun` job.
    #[cfg(feature = "mpi")]
    mpi: bool,
    #[cfg(feature = "mpi")]
    deadline: Duration,
    /// Starts a worker with the initializer, given the start method.
    start_worker: BuildWorker,
}

impl Default for PoolBuilder {
    fn default() -> PoolBuilder {
        PoolBuilder::new()
    }
}

impl PoolBuilder {
    /// Every setting at its default: `cpu_count()` workers, no initializer, workers that
    /// live as long as the pool, the default start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::PoolBuilder::new().processes(Some(1)).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            maxtasks: None,
            start_method: None,
            has_initializer: false,
            #[cfg(feature = "mpi")]
            mpi: false,
            #[cfg(feature = "mpi")]
            deadline: Duration::from_secs(3600),
            start_worker: Arc::new(|method, maxtasks| start_worker::<()>(method, maxtasks, None)),
        }
    }

    /// The number of workers (`None`: [`cpu_count()`](crate::cpu_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().processes(Some(2)).build()?;
    /// assert_eq!(pool.processes(), 2);
    /// let refused = multiprocessing::Pool::builder().processes(Some(0)).build().unwrap_err();
    /// assert_eq!(refused.to_string(), "Number of processes must be at least 1");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn processes(mut self, processes: Option<usize>) -> PoolBuilder {
        self.processes = processes;
        self
    }

    /// Runs `function(argument.clone())` once in each worker before its first task.
    ///
    /// Python: `Pool(initializer=f, initargs=(a,))`. The argument may hold queues,
    /// connections and other shareable objects (their fds travel with it).
    ///
    /// # Examples
    ///
    /// ```
    /// fn setup(greeting: String) {
    ///     println!("worker {} ready: {greeting}", std::process::id());
    /// }
    /// let pool = multiprocessing::Pool::builder()
    ///     .processes(Some(2))
    ///     .initializer(setup, "hello".to_owned())
    ///     .build()?;
    /// assert_eq!(pool.map(|x: u8| x, [1, 2])?, [1, 2]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn initializer<A>(mut self, function: fn(A), argument: A) -> PoolBuilder
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let function = crate::process::start::offset(function as usize);
        self.has_initializer = true;
        self.start_worker = Arc::new(move |method, maxtasks| {
            start_worker(method, maxtasks, Some((function, argument.clone())))
        });
        self
    }

    /// Each worker exits after this many tasks and a new one takes its place.
    ///
    /// Python: `Pool(maxtasksperchild=n)`. Checked by [`build`](PoolBuilder::build):
    /// 0 → `maxtasksperchild must be a positive int or None`.
    ///
    /// # Examples
    ///
    /// ```
    /// // Each worker is replaced after 2 tasks (a leak in the task stays bounded).
    /// let pool = multiprocessing::Pool::builder().processes(Some(1)).maxtasksperchild(2).build()?;
    /// let pids = pool.map_chunked(|_: u8| std::process::id(), [0, 1, 2, 3], 1)?;
    /// assert_ne!(pids[0], pids[3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn maxtasksperchild(mut self, tasks: usize) -> PoolBuilder {
        self.maxtasks = Some(tasks);
        self
    }

    /// The start method of the workers (default: [`get_start_method()`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Pool, StartMethod};
    ///
    /// let pool = Pool::builder().processes(Some(1)).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.apply(|x: u8| x * 2, 4)?, 8);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.start_method = Some(method);
        self
    }

    /// Workers are the other ranks of the `mpirun` job this program runs in (feature
    /// `mpi`): `mpirun -n N program` gives N−1 workers; `processes`, `initializer`,
    /// `maxtasksperchild` and `start_method` do not apply. Functions only (no closures).
    /// See the `pool::mpi` module docs for its failure model.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Run as `mpirun -n 3 ./program`: rank 0 runs `main`, ranks 1 and 2 are the workers.
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// multiprocessing::init();
    /// let pool = multiprocessing::Pool::builder().mpi().build()?;
    /// assert_eq!(pool.map(square, 1..=3)?, [1, 4, 9]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    #[cfg(feature = "mpi")]
    pub fn mpi(mut self) -> PoolBuilder {
        self.mpi = true;
        self
    }

    /// With [`mpi`](PoolBuilder::mpi): a task running longer than this aborts the MPI
    /// job (a rank cannot be replaced; 1 hour by default).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// fn work(x: u64) -> u64 {
    ///     x + 1
    /// }
    /// multiprocessing::init();
    /// let pool = multiprocessing::Pool::builder().mpi().deadline(Duration::from_secs(600)).build()?;
    /// assert_eq!(pool.apply(work, 1)?, 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    #[cfg(feature = "mpi")]
    pub fn deadline(mut self, deadline: Duration) -> PoolBuilder {
        self.deadline = deadline;
        self
    }

    /// A pool over MPI ranks.
    #[cfg(feature = "mpi")]
    fn build_mpi(self) -> Result<Pool, Error> {
        if self.has_initializer || self.maxtasks.is_some() {
            return Err(Error::value(crate::error::MPI_POOL_OPTIONS));
        }
        let size = mpi::MpiHandler::workers()?;
        let shared = Shared::new(size, StartMethod::Spawn)?;
        let (for_thread, deadline) = (Arc::clone(&shared), self.deadline);
        // The communicator is made in the thread that uses it (it is not `Send`).
        Pool::start(shared, "pyconc-mpi-pool", move || {
            match mpi::MpiHandler::new(Arc::clone(&for_thread), deadline) {
                Ok(handler) => handler.run(),
                Err(_) => for_thread.set_finished(),
            }
        })
    }

    /// Starts the workers and the pool's handler thread.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Number of processes must be at least 1`,
    /// `maxtasksperchild must be a positive int or None`; whatever starting a worker
    /// returns (the workers already started are terminated first).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::builder().build()?; // one worker per CPU
    /// assert!(pool.processes() >= 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool, Error> {
        #[cfg(feature = "mpi")]
        if self.mpi {
            return self.build_mpi();
        }
        let size = self.processes.unwrap_or_else(crate::cpu_count);
        if size == 0 {
            return Err(Error::value(POOL_SIZE));
        }
        if self.maxtasks == Some(0) {
            return Err(Error::value(MAXTASKS));
        }
        let method = self.start_method.unwrap_or_else(get_start_method);
        let shared = Shared::new(size, method)?;
        let build_worker = self.start_worker;
        let start: StartWorker = Arc::new(move |maxtasks| build_worker(method, maxtasks));
        let mut workers = Vec::with_capacity(size);
        for _ in 0..size {
            match Worker::start(|| start(self.maxtasks)) {
                Ok(started) => {
                    shared.add_worker(&started.process);
                    workers.push(started);
                }
                Err(error) => {
                    // CPython's TestPoolNotLeakOnFailure: no worker outlives a failed pool.
                    kill_workers(&shared);
                    return Err(error);
                }
            }
        }
        let handler = Handler::new(Arc::clone(&shared), start, self.maxtasks, workers);
        Pool::start(shared, "pyconc-pool", move || handler.run())
    }
}

/// Terminates and reaps the workers of a pool that failed to start.
fn kill_workers(shared: &Shared) {
    let workers = lock(&shared.workers).clone();
    for worker in &workers {
        let _ = worker.terminate();
    }
    for worker in &workers {
        let _ = worker.join();
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasks)
            .field("start_method", &self.start_method)
            .finish_non_exhaustive()
    }
}

/// Starts one worker process, daemonic and named `<Method>PoolWorker-N` as CPython's.
fn start_worker<A>(
    method: StartMethod,
    maxtasks: Option<usize>,
    initializer: Option<(u64, A)>,
) -> Result<(Process, Arc<Connection>), Error>
where
    A: Serialize + DeserializeOwned + Send + 'static,
{
    let (ours, theirs) = pipe(true)?;
    let args = WorkerArgs { conn: theirs, initializer, maxtasks };
    let builder = Process::builder().start_method(method).daemon(true);
    let process = if method == StartMethod::Fork {
        // A forked worker inherits the pool ends of every other worker's channel, and of
        // its own: it lets go of them first, so that it can neither read nor write
        // another's tasks, and sees the end of its channel when the pool's end closes.
        let own_pool_end = ours.fileno()?;
        builder.target(move || {
            detach_channels_in_child();
            let _ = sys::replace_with_dev_null(own_pool_end);
            worker::main::<A>(args);
        })
    } else {
        builder.call(worker::main::<A>, args)
    };
    process.set_name(process.name().replace("Process", "PoolWorker"));
    process.start()?;
    let ours = Arc::new(ours);
    CHANNELS.add(&ours);
    Ok((process, ours))
}

/// The pool ends of the channels to every worker of this process's pools, which a
/// forked worker lets go of. Held across `fork()` (order 70) and kept in the child.
static CHANNELS: WeakList<Connection> = WeakList::new(70, |_| {});

/// In a forked worker: every pool channel inherited from the parent turns into
/// `/dev/null` and private memory (see [`Connection::detach_in_child`]).
fn detach_channels_in_child() {
    let inherited = CHANNELS.take();
    for channel in &inherited {
        channel.detach_in_child();
    }
    // Their owners (the parent's handler threads) do not exist here: leak them rather
    // than run destructors meant for the parent's state.
    std::mem::forget(inherited);
}
