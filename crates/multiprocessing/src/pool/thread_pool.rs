//! The thread pool: CPython's `multiprocessing.pool.ThreadPool`, the pool's front end over
//! worker threads of this process.
//!
//! A submission is one [`Job`] in a FIFO queue, whatever its number of chunks: a worker
//! takes the job at the front and claims its chunks one by one with an atomic add
//! ([`Items`]), so a chunk costs no lock, no allocation and no copy; `map` writes each
//! result in place ([`Gather`]). Workers sleep on a condition variable when the queue is
//! empty and are woken by a submission only if some sleep.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use pyconc_core::exit::Finalize;
use pyconc_core::logging;

use super::batch::{Claim, Gather, Items, Output, ToImap, ToSlot};
use super::engine::{self, Caller, Engine as _};
use super::result::{AsyncResult, Callbacks, IMapIterator, ImapSink, Slot, lock};
use super::task::{WorkerName, catch_task};
use super::{
    Counters, EXIT_GRACE, PoolOf, PoolStats, Runs, Status, ThreadPool, Threads, Workers,
    default_chunksize,
};
use crate::Error;
use crate::error::{MAXTASKS, POOL_FOREIGN, POOL_NOT_RUNNING, POOL_SIZE, POOL_TERMINATED};
use crate::sys::{self, Pid};

/// A submission, as the workers see it.
trait Job: Send + Sync {
    /// Runs chunks in the calling worker until none is left, `stop` is set, or `most`
    /// ran; returns how many ran.
    fn run(&self, worker: &str, stats: &Counters, stop: &AtomicBool, most: usize) -> usize;
    /// Whether every chunk was handed out.
    fn exhausted(&self) -> bool;
    /// Fails every chunk no worker has taken, counting them in `stats` if given (a
    /// submission the pool refused was never counted).
    fn cancel(&self, error: &dyn Fn() -> Error, stats: Option<&Counters>);
}

/// A function over some items, and where the outcomes go.
struct Batch<F, T, R, O: Output<R>> {
    function: Arc<F>,
    items: Items<T>,
    output: O,
    results: PhantomData<fn() -> R>,
}

impl<F, T, R, O> Batch<F, T, R, O>
where
    F: Fn(T) -> R,
    O: Output<R>,
{
    fn new(function: Arc<F>, items: Items<T>, output: O) -> Batch<F, T, R, O> {
        Batch { function, items, output, results: PhantomData }
    }

    /// Runs the items of `claim`, each outcome to the output (not announced yet), and
    /// counts them; returns how many there were.
    fn run_chunk(&self, mut claim: Claim<'_, T>, worker: &str, stats: &Counters) -> usize {
        let count = claim.len();
        stats.running.fetch_add(count as u64, Ordering::Relaxed);
        let mut failed = 0;
        // One capture for the whole chunk: after a panic, the items after the one that
        // panicked run under a new capture.
        let direct = self.output.direct();
        let function = &*self.function;
        while let Err(panic) = catch_task(WorkerName::Named(worker), || match direct {
            Some(places) => claim.take_each(move |index, item| {
                let value = function(item);
                // SAFETY: `direct`'s contract: `put(index, ..)` writes there, and `index`
                // is in this worker's claim, which gives it once.
                unsafe { places.as_ptr().add(index).write(value) };
            }),
            None => claim.take_each(|index, item| {
                let value = function(item);
                // SAFETY: `index` is in this worker's claim, which gives it once.
                unsafe { self.output.put(index, value) };
            }),
        }) {
            if let Some(index) = claim.last_taken() {
                failed += 1;
                self.output.fail(index..index + 1, &|| Error::RemoteTraceback(panic.clone()));
            }
        }
        stats.running.fetch_sub(count as u64, Ordering::Relaxed);
        stats.failed.fetch_add(failed, Ordering::Relaxed);
        stats.done.fetch_add(count as u64 - failed, Ordering::Relaxed);
        count
    }
}

impl<F, T, R, O> Job for Batch<F, T, R, O>
where
    F: Fn(T) -> R + Send + Sync,
    T: Send,
    R: Send,
    O: Output<R>,
{
    fn run(&self, worker: &str, stats: &Counters, stop: &AtomicBool, most: usize) -> usize {
        let (mut ran, mut unannounced) = (0, 0);
        while ran < most && !stop.load(Ordering::Relaxed) {
            let Some(claim) = self.items.claim() else { break };
            let count = self.run_chunk(claim, worker, stats);
            ran += 1;
            if O::ANNOUNCES_AT_END {
                // Nothing is visible before the last item: one update of the shared
                // count per visit, not per chunk.
                unannounced += count;
            } else {
                self.output.done(count);
            }
        }
        if unannounced > 0 {
            self.output.done(unannounced);
        }
        ran
    }

    fn exhausted(&self) -> bool {
        self.items.exhausted()
    }

    fn cancel(&self, error: &dyn Fn() -> Error, stats: Option<&Counters>) {
        self.fail_rest(error, stats);
    }
}

impl<F, T, R, O: Output<R>> Batch<F, T, R, O> {
    /// [`Job::cancel`], for every batch (its `Drop` too).
    fn fail_rest(&self, error: &dyn Fn() -> Error, stats: Option<&Counters>) {
        if let Some(claim) = self.items.claim_rest() {
            let (indices, count) = (claim.rest(), claim.len());
            drop(claim);
            if let Some(stats) = stats {
                stats.failed.fetch_add(count as u64, Ordering::Relaxed);
            }
            self.output.fail(indices, error);
            self.output.done(count);
        }
    }
}

impl<F, T, R, O: Output<R>> Drop for Batch<F, T, R, O> {
    fn drop(&mut self) {
        // Queued jobs are run or cancelled before they go; should one not be, its
        // waiters still get an answer.
        self.fail_rest(&|| Error::runtime(POOL_TERMINATED), None);
    }
}

/// What the workers and the pool's handle share.
struct Crew {
    size: usize,
    state: Mutex<State>,
    /// Idle workers wait here for a job or a new status.
    work: Condvar,
    /// `join`/`terminate` wait here for the workers to leave.
    left: Condvar,
    /// Set by `terminate`: workers stop between chunks.
    terminating: AtomicBool,
    stats: Counters,
    initializer: Option<Initializer>,
    maxtasks: Option<usize>,
    /// The process that made the pool (a fork child has none of its threads).
    owner: Pid,
}

type Initializer = Arc<dyn Fn() + Send + Sync>;
type Breakage = Arc<dyn Fn() -> Error + Send + Sync>;

struct State {
    status: Status,
    queue: VecDeque<Arc<dyn Job>>,
    /// Workers waiting for work.
    idle: usize,
    /// Workers started and not yet gone.
    live: usize,
    /// Why every task fails (an initializer panicked).
    broken: Option<Breakage>,
    /// Every worker thread started, for `join`.
    threads: Vec<threading::Thread>,
    /// The counters of the live workers, which each updates alone (no cache line
    /// bounces between workers per chunk); a worker that leaves adds its own to the
    /// pool's.
    tallies: Vec<Arc<Counters>>,
}

thread_local! {
    /// The crew the current thread works for (its address), if it is a worker.
    static CREW: Cell<usize> = const { Cell::new(0) };
}

impl Crew {
    fn check_owner(&self) -> Result<(), Error> {
        if sys::getpid() == self.owner { Ok(()) } else { Err(Error::value(POOL_FOREIGN)) }
    }

    fn check_running(&self) -> Result<(), Error> {
        self.check_owner()?;
        if lock(&self.state).status == Status::Run {
            Ok(())
        } else {
            Err(Error::value(POOL_NOT_RUNNING))
        }
    }

    /// Queues `job` of `items` items, or fails it at once (a broken pool). Refused —
    /// and failed with the refusal — in a fork child, or when the pool does not run.
    fn submit(&self, job: Arc<dyn Job>, items: usize, chunks: usize) -> Result<(), Error> {
        let refusal = if self.check_owner().is_err() {
            POOL_FOREIGN
        } else {
            let mut state = lock(&self.state);
            if state.status == Status::Run {
                self.stats.submitted.fetch_add(items as u64, Ordering::Relaxed);
                if let Some(broken) = state.broken.clone() {
                    drop(state);
                    job.cancel(&*broken, Some(&self.stats));
                    return Ok(());
                }
                state.queue.push_back(job);
                match state.idle {
                    0 => {}
                    1 => self.work.notify_one(),
                    _ if chunks == 1 => self.work.notify_one(),
                    _ => self.work.notify_all(),
                }
                return Ok(());
            }
            POOL_NOT_RUNNING
        };
        job.cancel(&|| Error::value(refusal), None);
        Err(Error::value(refusal))
    }

    /// The job a worker should work on next; `None` when it should leave.
    fn next_job(&self) -> Option<Arc<dyn Job>> {
        let mut state = lock(&self.state);
        loop {
            if state.status == Status::Terminate || state.broken.is_some() {
                return None;
            }
            while let Some(job) = state.queue.front() {
                if !job.exhausted() {
                    return Some(Arc::clone(job));
                }
                state.queue.pop_front();
            }
            if state.status == Status::Close {
                return None;
            }
            state.idle += 1;
            state = pyconc_core::sync::wait(&self.work, state);
            state.idle -= 1;
        }
    }

    /// Starts one more worker thread, named `Thread-N (worker)` as CPython's.
    fn add_worker(self: &Arc<Crew>) -> Result<(), Error> {
        let crew = Arc::clone(self);
        let thread = threading::Thread::builder().daemon(true).target(move || work(&crew));
        thread.set_name(format!("{} (worker)", thread.name()));
        lock(&self.state).live += 1;
        if let Err(error) = thread.start() {
            self.leave(None);
            return Err(error.into());
        }
        lock(&self.state).threads.push(thread);
        logging::debug(|| "added worker".to_owned());
        Ok(())
    }

    /// A worker joins the count: its own counters.
    fn tally(&self) -> Arc<Counters> {
        let tally = Arc::new(Counters::default());
        lock(&self.state).tallies.push(Arc::clone(&tally));
        tally
    }

    /// A worker is gone; its counts go to the pool's.
    fn leave(&self, tally: Option<&Arc<Counters>>) {
        let mut state = lock(&self.state);
        if let Some(tally) = tally {
            state.tallies.retain(|other| !Arc::ptr_eq(other, tally));
            let own = tally.snapshot();
            self.stats.done.fetch_add(own.done, Ordering::Relaxed);
            self.stats.failed.fetch_add(own.failed, Ordering::Relaxed);
        }
        state.live -= 1;
        drop(state);
        self.left.notify_all();
    }

    /// An initializer panicked: every queued and later task fails with that panic.
    fn break_with(&self, panic: super::task::RemotePanic) {
        let broken: Breakage = Arc::new(move || Error::RemoteTraceback(panic.clone()));
        let jobs: Vec<_> = {
            let mut state = lock(&self.state);
            if state.broken.is_some() {
                return;
            }
            state.broken = Some(Arc::clone(&broken));
            state.queue.drain(..).collect()
        };
        self.work.notify_all();
        for job in jobs {
            job.cancel(&*broken, Some(&self.stats));
        }
    }

    /// `terminate()`: no chunk starts any more; those not started fail. Waits for the
    /// running ones until `deadline`.
    fn terminate(&self, deadline: Option<Instant>) {
        let jobs: Vec<_> = {
            let mut state = lock(&self.state);
            state.status = Status::Terminate;
            self.terminating.store(true, Ordering::Relaxed);
            state.queue.drain(..).collect()
        };
        self.work.notify_all();
        for job in jobs {
            job.cancel(&|| Error::runtime(POOL_TERMINATED), Some(&self.stats));
        }
        self.wait_workers(deadline);
    }

    /// Waits until every worker but the calling one (a task may drop its own pool) has
    /// left, at most until `deadline`; whether they did.
    fn wait_workers(&self, deadline: Option<Instant>) -> bool {
        let me = usize::from(CREW.with(Cell::get) == self as *const Crew as usize);
        let mut state = lock(&self.state);
        while state.live > me {
            let left = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            };
            if left.is_zero() {
                return false;
            }
            state = pyconc_core::sync::wait_timeout(&self.left, state, left).0;
        }
        true
    }
}

/// A worker thread's life: the initializer, then chunks until the pool closes (and its
/// queue is empty) or terminates; after `maxtasksperchild` chunks, a fresh worker takes
/// its place.
fn work(crew: &Arc<Crew>) {
    CREW.with(|me| me.set(Arc::as_ptr(crew) as usize));
    let name = threading::current_thread().name();
    if let Some(initializer) = &crew.initializer {
        if let Err(panic) = catch_task(WorkerName::Named(&name), || initializer()) {
            crew.break_with(panic);
            crew.leave(None);
            return;
        }
    }
    let tally = crew.tally();
    let mut tasks = 0;
    while let Some(job) = crew.next_job() {
        let most = crew.maxtasks.map_or(usize::MAX, |most| most - tasks);
        tasks += job.run(&name, &tally, &crew.terminating, most);
        if crew.maxtasks.is_some_and(|most| tasks >= most) {
            if !crew.terminating.load(Ordering::Relaxed) {
                // CPython's `_maintain_pool`: a worker that retired is replaced.
                let _ = crew.add_worker();
            }
            break;
        }
    }
    crew.leave(Some(&tally));
}

/// A running pool of worker threads.
pub struct ThreadCore {
    crew: Arc<Crew>,
    /// Terminates the pool at exit if it still runs then.
    finalizer: Finalize,
}

impl fmt::Debug for ThreadCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadCore").field("size", &self.crew.size).finish_non_exhaustive()
    }
}

impl engine::Sealed for Threads {}

impl Workers for Threads {
    type Core = ThreadCore;
}

impl engine::Engine for ThreadCore {
    const CLASS: &'static str = "ThreadPool";

    fn size(&self) -> usize {
        self.crew.size
    }

    fn stats(&self) -> PoolStats {
        let state = lock(&self.crew.state);
        let mut stats = self.crew.stats.snapshot();
        for tally in &state.tallies {
            let own = tally.snapshot();
            stats.running += own.running;
            stats.done += own.done;
            stats.failed += own.failed;
        }
        stats
    }

    fn status(&self) -> Status {
        lock(&self.crew.state).status
    }

    fn check_owner(&self) -> Result<(), Error> {
        self.crew.check_owner()
    }

    fn stop_accepting(&self) {
        let mut state = lock(&self.crew.state);
        if state.status == Status::Run {
            state.status = Status::Close;
        }
        drop(state);
        self.crew.work.notify_all();
    }

    fn stop_now(&self) {
        self.crew.terminate(None);
    }

    fn wait_finished(&self) {
        self.crew.wait_workers(None);
        let threads = std::mem::take(&mut lock(&self.crew.state).threads);
        let me = threading::get_ident();
        for thread in threads.iter().filter(|thread| thread.ident() != Some(me)) {
            let _ = thread.join();
        }
    }
}

impl Drop for ThreadCore {
    fn drop(&mut self) {
        self.finalizer.cancel();
        self.terminate();
    }
}

/// The pool's exit finalizer (priority 15, as CPython's): terminates it if it still runs,
/// waiting a while for the tasks that are running.
fn terminate_at_exit(crew: &Weak<Crew>) {
    if let Some(crew) = crew.upgrade() {
        if crew.check_owner().is_ok() {
            crew.terminate(Instant::now().checked_add(EXIT_GRACE));
        }
    }
}

impl<T, R> Runs<T, R> for Threads
where
    T: Send + 'static,
    R: Send + 'static,
{
    fn apply<F>(
        core: &ThreadCore,
        function: F,
        argument: T,
        callbacks: Callbacks<R>,
        _: Caller,
    ) -> AsyncResult<R>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let slot = Slot::new(callbacks);
        let output = ToSlot::new(Arc::clone(&slot));
        let job = Batch::new(Arc::new(function), Items::new(vec![argument], 1), output);
        // A refused job was failed with the refusal.
        let _ = core.crew.submit(Arc::new(job), 1, 1);
        AsyncResult::new(slot)
    }

    fn map<F, I>(
        core: &ThreadCore,
        function: F,
        items: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        _: Caller,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>,
    {
        if let Err(error) = core.crew.check_running() {
            return AsyncResult::failed(error);
        }
        // The workers take the items from their `Vec`, whose buffer then holds the
        // results (see `Gather::new`).
        let items: Vec<T> = items.collect();
        let (count, slot) = (items.len(), Slot::new(callbacks));
        if count > 0 {
            let chunksize = chunksize.unwrap_or_else(|| default_chunksize(count, core.crew.size));
            let mut items = Items::new(items, chunksize);
            let output = Gather::new(&mut items, Arc::clone(&slot));
            let job = Batch::new(Arc::new(function), items, output);
            let _ = core.crew.submit(Arc::new(job), count, count.div_ceil(chunksize));
        } else {
            slot.set(Ok(Vec::new()));
        }
        AsyncResult::new(slot)
    }

    fn imap<F, I>(
        core: &ThreadCore,
        function: F,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIterator<T, R, I>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>,
    {
        core.crew.check_running()?;
        let (crew, function) = (Arc::clone(&core.crew), Arc::new(function));
        let submit = move |items: Vec<T>, first: usize, sink: &Arc<ImapSink<R>>| {
            let (count, chunks) = (items.len(), items.len().div_ceil(chunksize));
            let output = ToImap::new(Arc::clone(sink), first);
            let job = Batch::new(Arc::clone(&function), Items::new(items, chunksize), output);
            crew.submit(Arc::new(job), count, chunks)
        };
        Ok(IMapIterator::new(Box::new(submit), items, chunksize, ordered, core.crew.size))
    }
}

impl PoolOf<Threads> {
    /// A pool of `processes` worker threads (`None`: [`cpu_count()`](crate::cpu_count)).
    ///
    /// Python: `multiprocessing.pool.ThreadPool(processes)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Number of processes must be at least 1`; an OS error when a
    /// thread cannot be started (then the workers already started leave).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::ThreadPool::new(Some(4))?;
    /// assert_eq!(pool.processes(), 4);
    /// let offset = 10;
    /// assert_eq!(pool.map(move |x: i32| x + offset, [1, 2, 3])?, [11, 12, 13]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(processes: Option<usize>) -> Result<ThreadPool, Error> {
        ThreadPoolBuilder::new().processes(processes).build()
    }

    /// A builder for a thread pool with an initializer or `maxtasksperchild`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::ThreadPool::builder().processes(Some(2)).build()?;
    /// assert_eq!(pool.apply(|x: u8| x * 2, 21)?, 42);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }
}

/// Builds a [`ThreadPool`]: CPython's `ThreadPool(...)` arguments.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&started);
/// let pool = multiprocessing::ThreadPool::builder()
///     .processes(Some(3))
///     .initializer(move || {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .maxtasksperchild(100)
///     .build()?;
/// assert_eq!(pool.map(|x: u32| x + 1, 0..10)?.len(), 10);
/// pool.close();
/// pool.join()?;
/// assert_eq!(started.load(Ordering::SeqCst), 3, "each worker ran the initializer");
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[must_use]
#[derive(Default)]
pub struct ThreadPoolBuilder {
    processes: Option<usize>,
    initializer: Option<Initializer>,
    maxtasks: Option<usize>,
}

impl ThreadPoolBuilder {
    /// The defaults: one worker per CPU, no initializer, workers live for ever.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::ThreadPoolBuilder::new().build()?;
    /// assert_eq!(pool.processes(), multiprocessing::cpu_count());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The number of worker threads (`None`: [`cpu_count()`](crate::cpu_count)).
    /// Python: `processes=`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::ThreadPool::builder().processes(Some(1)).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn processes(mut self, processes: Option<usize>) -> ThreadPoolBuilder {
        self.processes = processes;
        self
    }

    /// Runs `initializer()` in each worker thread before its first task. One that panics
    /// breaks the pool: every task fails with that panic.
    /// Python: `initializer=`, `initargs=` (capture the arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// thread_local!(static GREETING: std::cell::RefCell<String> = Default::default());
    ///
    /// let pool = multiprocessing::ThreadPool::builder()
    ///     .processes(Some(2))
    ///     .initializer(|| GREETING.with(|g| *g.borrow_mut() = "hi".into()))
    ///     .build()?;
    /// assert_eq!(pool.apply(|_: ()| GREETING.with(|g| g.borrow().clone()), ())?, "hi");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn initializer(
        mut self,
        initializer: impl Fn() + Send + Sync + 'static,
    ) -> ThreadPoolBuilder {
        self.initializer = Some(Arc::new(initializer));
        self
    }

    /// How many tasks (chunks) a worker thread runs before a fresh one takes its place.
    /// Python: `maxtasksperchild=`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::ThreadPool::builder().processes(Some(1)).maxtasksperchild(1).build()?;
    /// let names = pool.map_chunked(|_: u8| threading::current_thread().name(), 0..3, 1)?;
    /// assert!(names[0] != names[1] && names[1] != names[2], "a new worker for each task");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn maxtasksperchild(mut self, tasks: usize) -> ThreadPoolBuilder {
        self.maxtasks = Some(tasks);
        self
    }

    /// Starts the pool.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Number of processes must be at least 1` or
    /// `maxtasksperchild must be a positive int or None`; an OS error when a thread
    /// cannot be started (then the workers already started leave).
    ///
    /// # Examples
    ///
    /// ```
    /// let refused = multiprocessing::ThreadPool::builder().processes(Some(0)).build();
    /// assert_eq!(refused.unwrap_err().to_string(), "Number of processes must be at least 1");
    /// ```
    pub fn build(self) -> Result<ThreadPool, Error> {
        let size = self.processes.unwrap_or_else(crate::cpu_count);
        if size == 0 {
            return Err(Error::value(POOL_SIZE));
        }
        if self.maxtasks == Some(0) {
            return Err(Error::value(MAXTASKS));
        }
        let crew = Arc::new(Crew {
            size,
            state: Mutex::new(State {
                status: Status::Run,
                queue: VecDeque::new(),
                idle: 0,
                live: 0,
                broken: None,
                threads: Vec::with_capacity(size),
                tallies: Vec::with_capacity(size),
            }),
            work: Condvar::new(),
            left: Condvar::new(),
            terminating: AtomicBool::new(false),
            stats: Counters::default(),
            initializer: self.initializer,
            maxtasks: self.maxtasks,
            owner: sys::getpid(),
        });
        for _ in 0..size {
            if let Err(error) = crew.add_worker() {
                crew.terminate(None);
                return Err(error);
            }
        }
        // CPython's `Finalize(self, self._terminate_pool, exitpriority=15)`.
        let weak = Arc::downgrade(&crew);
        let finalizer = Finalize::new(move || terminate_at_exit(&weak), Some(15));
        Ok(PoolOf { core: ThreadCore { crew, finalizer } })
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.initializer.is_some())
            .field("maxtasksperchild", &self.maxtasks)
            .finish()
    }
}
