//! The process pool: its shared state, how work is submitted to it, and its builder.

use pyconc_core::os_thread::JoinHandle;
use std::any::TypeId;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::engine::{Caller, Engine as _};
use super::handler::{self, Handler, Worker};
use super::result::{
    Assist, AsyncResult, Callbacks, IMapIterator, ImapSink, MapSink, Sink, Slot, Slots, lock,
};
use super::worker::WorkerArgs;
use super::{
    Counters, EXIT_GRACE, Pool, PoolOf, PoolStats, Processes, Runs, Status, Workers, closure,
    default_chunksize, engine, task, worker,
};

use crate::error::{
    CLOSURE_POOL_NEEDS_FORK, MAXTASKS, POOL_FOREIGN, POOL_NOT_RUNNING, POOL_SIZE, POOL_TERMINATED,
};
use crate::sys::{self, Pid};
use pyconc_core::exit::Finalize;
use pyconc_core::fork::WeakList;
use pyconc_core::logging;

use crate::{Connection, Error, Process, StartMethod, get_start_method, pipe};

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

/// What the chunks of one submission share: what runs them, where their results go, and
/// how long they take.
pub(crate) struct Submission {
    pub(crate) task: Task,
    pub(crate) sink: Arc<dyn Sink>,
    /// The average time of its chunks so far, in nanoseconds (the bits of an `f64`;
    /// [`NOT_TIMED`]: none came back yet). Written by the handler only.
    nanos: AtomicU64,
    /// How many of its chunks a worker should hold, from `nanos`
    /// ([`window_for`](super::handler::window_for)): sized by this submission's own
    /// tasks, not another's, which may have been a thousand times shorter. Kept here, as
    /// the handler asks for it for every chunk it hands out and `nanos` changes only
    /// with a timed chunk.
    window: AtomicUsize,
}

/// [`Submission::nanos`] before any chunk came back.
const NOT_TIMED: u64 = u64::MAX;

impl Submission {
    fn new(task: Task, sink: Arc<dyn Sink>) -> Submission {
        let window = AtomicUsize::new(super::handler::window_for(None));
        Submission { task, sink, nanos: AtomicU64::new(NOT_TIMED), window }
    }

    /// How many of its chunks a worker should hold now.
    pub(crate) fn window(&self) -> usize {
        self.window.load(Ordering::Relaxed)
    }

    /// Records a chunk's time (see [`average_with`](super::handler::average_with)).
    pub(crate) fn chunk_took(&self, nanos: u64) {
        let bits = self.nanos.load(Ordering::Relaxed);
        let before = (bits != NOT_TIMED).then(|| f64::from_bits(bits));
        if let Some(average) = super::handler::average_with(before, nanos) {
            self.nanos.store(average.to_bits(), Ordering::Relaxed);
            self.window.store(super::handler::window_for(Some(average)), Ordering::Relaxed);
        }
    }
}

/// Some items of one submission, serialized, and their places. Kept small (64 bytes, a
/// cache line): the queue and the workers' lists move chunks as a whole (the small
/// chunks of a batch travel as a [`Run`] instead).
pub(crate) struct Chunk {
    pub(crate) submission: Arc<Submission>,
    pub(crate) count: u32,
    pub(crate) items: Items,
    pub(crate) slots: Slots,
}

impl Chunk {
    /// Its count and items, as the handler sends them.
    pub(crate) fn piece(&self) -> Piece<'_> {
        Piece { count: self.count, payload: self.items.payload() }
    }
}

/// A chunk's serialized items.
pub(crate) enum Items {
    /// A buffer of the chunk's own: [`task::RUN_ROOM`] bytes of room for a header, then
    /// the items — a large chunk, which goes to its worker straight from here.
    Own(Vec<u8>),
    /// Bytes of a buffer shared by the small chunks that a submission queued together:
    /// one allocation for them all rather than one each (allocated by the submitting
    /// thread and freed by the handler, a buffer per chunk cost more than the rest of a
    /// chunksize-1 task's way through the parent).
    Shared(Arc<Vec<u8>>, Range<u32>),
}

impl Items {
    /// The serialized items.
    pub(crate) fn payload(&self) -> &[u8] {
        match self {
            Items::Own(buffer) => &buffer[task::RUN_ROOM..],
            Items::Shared(buffer, range) => &buffer[range.start as usize..range.end as usize],
        }
    }
}

/// The largest items (in bytes) of a chunk that shares its submission's buffer; a
/// larger chunk has a buffer of its own, and goes out without a copy.
const SHARED_ITEMS_MAX: usize = 4096;

/// Chunks of one submission, as the pool's queue and a worker's list hold them: one
/// chunk, or a *run* of small ones.
///
/// The small chunks that a submission gathers in one batch are queued as one run: their
/// items one after another in the batch's shared buffer, their places one after another,
/// and per chunk only where its items and places start (16 bytes). A worker is given a
/// part of a run — which shares the run's buffers — and the handler reads each chunk's
/// items and places from it as it sends and delivers them. With a part per chunk, a map
/// at chunksize 1 had the submitting thread make a chunk per item (64 bytes, and an
/// `Arc` clone of the submission and of the buffer), which the handler read from the
/// other CPU's cache, moved to a worker's list, and dropped: a cache miss and four atomic
/// operations per item on the pool's busiest thread (`docs/BENCHMARKS.md`).
pub(crate) enum Part {
    Chunk(Chunk),
    /// Never empty.
    Run(Run),
}

/// Consecutive small chunks of one submission (see [`Part`]).
pub(crate) struct Run {
    submission: Arc<Submission>,
    items: Arc<Vec<u8>>,
    /// Where each chunk's items start in `items` and its places start (counted from
    /// `first_place`), and after them where the last one's end: chunk `k` is
    /// `bounds[k]..bounds[k + 1]`. Shared by the parts of one run.
    bounds: Arc<[(u32, usize)]>,
    first_place: usize,
    /// The chunks of `bounds` that this part holds.
    chunks: Range<usize>,
}

/// One chunk of a [`Part`], as the handler reads it.
pub(crate) struct Piece<'a> {
    /// How many items it has.
    pub(crate) count: u32,
    /// Its serialized items.
    pub(crate) payload: &'a [u8],
}

impl Run {
    /// Its `at`-th chunk's items (a range of `items`) and places.
    fn bounds_of(&self, at: usize) -> (Range<usize>, Range<usize>) {
        let k = self.chunks.start + at;
        let ((start, place), (end, place_end)) = (self.bounds[k], self.bounds[k + 1]);
        (start as usize..end as usize, self.first_place + place..self.first_place + place_end)
    }

    fn piece(&self, at: usize) -> Piece<'_> {
        let (items, places) = self.bounds_of(at);
        Piece { count: places.len() as u32, payload: &self.items[items] }
    }

    /// Its first `count` chunks, as a part of their own (the rest stay here).
    fn split_front(&mut self, count: usize) -> Run {
        let front = self.chunks.start..self.chunks.start + count;
        self.chunks.start = front.end;
        Run {
            submission: Arc::clone(&self.submission),
            items: Arc::clone(&self.items),
            bounds: Arc::clone(&self.bounds),
            first_place: self.first_place,
            chunks: front,
        }
    }

    /// Its first chunk, made into a [`Chunk`] and taken out.
    fn take(&mut self) -> Option<Chunk> {
        if self.chunks.is_empty() {
            return None;
        }
        let (items, places) = self.bounds_of(0);
        self.chunks.start += 1;
        Some(Chunk {
            submission: Arc::clone(&self.submission),
            count: places.len() as u32,
            items: Items::Shared(Arc::clone(&self.items), items.start as u32..items.end as u32),
            slots: Slots::Range(places),
        })
    }
}

impl Part {
    /// How many chunks it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Part::Chunk(_) => 1,
            Part::Run(run) => run.chunks.len(),
        }
    }

    /// How many items its chunks hold.
    pub(crate) fn items(&self) -> usize {
        match self {
            Part::Chunk(chunk) => chunk.slots.len(),
            Part::Run(run) => run.bounds[run.chunks.end].1 - run.bounds[run.chunks.start].1,
        }
    }

    pub(crate) fn submission(&self) -> &Submission {
        match self {
            Part::Chunk(chunk) => &chunk.submission,
            Part::Run(run) => &run.submission,
        }
    }

    /// Its `at`-th chunk.
    pub(crate) fn piece(&self, at: usize) -> Piece<'_> {
        match self {
            Part::Chunk(chunk) => chunk.piece(),
            Part::Run(run) => run.piece(at),
        }
    }

    /// The most bytes its `at`-th chunk takes in a frame to a worker: its items, and
    /// room for its header.
    fn frame_len(&self, at: usize) -> usize {
        task::RUN_ROOM + self.piece(at).payload.len()
    }

    /// Hands the results of its first chunk to the submission's sink.
    pub(crate) fn deliver_first(&self, results: &[u8], stats: &Counters) {
        match self {
            Part::Chunk(chunk) => chunk.submission.sink.deliver(&chunk.slots, results, stats),
            Part::Run(run) => {
                let slots = Slots::Range(run.bounds_of(0).1);
                run.submission.sink.deliver(&slots, results, stats);
            }
        }
    }

    /// Drops its first chunk; whether that was its last.
    pub(crate) fn drop_first(&mut self) -> bool {
        match self {
            Part::Chunk(_) => true,
            Part::Run(run) => {
                run.chunks.start += 1;
                run.chunks.is_empty()
            }
        }
    }

    /// Takes its first chunk out, as a [`Chunk`]: the rest, if any, stays.
    pub(crate) fn take_first(self) -> (Chunk, Option<Part>) {
        match self {
            Part::Chunk(chunk) => (chunk, None),
            Part::Run(mut run) => {
                let chunk = run.take().expect("a run is never empty");
                (chunk, (!run.chunks.is_empty()).then_some(Part::Run(run)))
            }
        }
    }

    /// Its chunks, each made into a [`Chunk`] (to be failed, or sent to MPI ranks).
    pub(crate) fn into_chunks(self) -> Vec<Chunk> {
        match self {
            Part::Chunk(chunk) => vec![chunk],
            Part::Run(mut run) => std::iter::from_fn(|| run.take()).collect(),
        }
    }
}

/// The chunks no worker holds yet, oldest first: CPython's `Pool._taskqueue`, of
/// [`Part`]s.
#[derive(Default)]
pub(crate) struct TaskQueue {
    parts: VecDeque<Part>,
    /// How many chunks the parts hold.
    chunks: usize,
}

impl TaskQueue {
    /// How many chunks are queued.
    pub(crate) fn len(&self) -> usize {
        self.chunks
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks == 0
    }

    /// The submission of the next chunk.
    pub(crate) fn front(&self) -> Option<&Submission> {
        self.parts.front().map(Part::submission)
    }

    /// Takes the next chunks: at most `most` of them, of one submission, that fit
    /// `bytes` of a frame — one at least if `one_anyway` — as one part; the part, and
    /// the bytes it takes in a frame.
    pub(crate) fn take(
        &mut self,
        most: usize,
        bytes: usize,
        one_anyway: bool,
    ) -> Option<(Part, usize)> {
        let front = self.parts.front_mut()?;
        let mut taken = (0, 0);
        while taken.0 < most.min(front.len()) {
            let more = front.frame_len(taken.0);
            if taken.1 + more > bytes && !(one_anyway && taken.0 == 0) {
                break;
            }
            taken = (taken.0 + 1, taken.1 + more);
        }
        let (count, size) = taken;
        if count == 0 {
            return None;
        }
        let part = match front {
            Part::Run(run) if count < run.chunks.len() => Part::Run(run.split_front(count)),
            _ => self.parts.pop_front()?,
        };
        self.chunks -= count;
        Some((part, size))
    }

    /// Takes the next chunk.
    #[cfg(any(test, feature = "mpi"))]
    pub(crate) fn pop_front(&mut self) -> Option<Chunk> {
        let (chunk, rest) = self.parts.pop_front()?.take_first();
        if let Some(rest) = rest {
            self.parts.push_front(rest);
        }
        self.chunks -= 1;
        Some(chunk)
    }

    /// Puts `part` first (a dead worker's chunks go back in front of the rest).
    pub(crate) fn push_front(&mut self, part: Part) {
        self.chunks += part.len();
        self.parts.push_front(part);
    }

    /// Queues the parts of `batch`, emptying it.
    fn append(&mut self, batch: &mut Vec<Part>) {
        for part in batch.drain(..) {
            self.chunks += part.len();
            self.parts.push_back(part);
        }
    }

    /// Takes every chunk out, in order.
    pub(crate) fn drain(&mut self) -> Vec<Chunk> {
        self.chunks = 0;
        self.parts.drain(..).flat_map(Part::into_chunks).collect()
    }
}

/// A pool's state that user threads and the handler share.
pub(crate) struct State {
    pub(crate) status: Status,
    /// Chunks no worker holds yet.
    pub(crate) queue: TaskQueue,
    /// Why every task fails (an initializer panicked, no worker can be started).
    pub(crate) broken: Option<Arc<dyn Fn() -> Error + Send + Sync>>,
    /// Submissions still queueing chunks: a closed pool's handler waits for them.
    pub(crate) feeding: usize,
    /// The handler thread runs (or was started): it drives the pool from now on, and no
    /// caller does (see [`Shared::drive_until`]).
    pub(crate) threaded: bool,
    /// A caller that waits for its results drives the pool (holds [`Shared::handler`]).
    pub(crate) caller_driving: bool,
    /// Threads waiting on [`Shared::driving_ended`] for that caller to step aside.
    awaiting_driver: usize,
}

impl State {
    /// Chunks are queued, or on their way.
    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.feeding > 0
    }

    /// Something drives the pool now, which may sleep until the wake-up eventfd is
    /// written. (When nothing does, the next to drive hands out the queue first.)
    fn driven(&self) -> bool {
        self.threaded || self.caller_driving
    }
}

/// Starts one worker with the builder's initializer: (start method, `maxtasksperchild`).
type BuildWorker =
    Arc<dyn Fn(StartMethod, Option<usize>) -> Result<StartedWorker, Error> + Send + Sync>;

/// Starts one worker; `Option<usize>` is `maxtasksperchild`.
pub(crate) type StartWorker =
    Arc<dyn Fn(Option<usize>) -> Result<StartedWorker, Error> + Send + Sync>;

pub(crate) struct Shared {
    /// The number of workers.
    pub(crate) size: usize,
    /// The workers' start method.
    method: StartMethod,
    pub(crate) state: Mutex<State>,
    /// A caller that drives the pool stepped aside (`State::caller_driving` went false).
    driving_ended: Condvar,
    /// The handler: whoever holds this lock drives the pool — the handler thread, or a
    /// caller waiting for its results while there is none. `None` once the pool has
    /// ended, and for an MPI pool (its handler lives in its thread).
    pub(crate) handler: Mutex<Option<Handler>>,
    /// The handler thread, once started, and the name it gets.
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_name: &'static str,
    /// Wakes whoever drives the pool: new work, close, terminate.
    pub(crate) wake: OwnedFd,
    pub(crate) stats: Arc<Counters>,
    /// The process that made the pool (a fork child's copy must not use it).
    owner: Pid,
    /// The current workers, for `terminate` from a user thread.
    workers: Mutex<Vec<Process>>,
    finished: Mutex<bool>,
    finished_changed: Condvar,
}

impl Shared {
    /// The shared state of a running pool of `size` workers started by `method`.
    fn new(
        size: usize,
        method: StartMethod,
        thread_name: &'static str,
    ) -> Result<Arc<Shared>, Error> {
        Ok(Arc::new(Shared {
            size,
            method,
            state: Mutex::new(State {
                status: Status::Run,
                queue: TaskQueue::default(),
                broken: None,
                feeding: 0,
                threaded: false,
                caller_driving: false,
                awaiting_driver: 0,
            }),
            driving_ended: Condvar::new(),
            handler: Mutex::new(None),
            thread: Mutex::new(None),
            thread_name,
            wake: sys::eventfd()?,
            stats: Arc::default(),
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

    /// Waits until the pool's handler has finished, at most until `deadline` (driving it
    /// to its end from this thread when nothing else drives it: then without a deadline,
    /// as the handler's own waits for the workers are bounded).
    fn wait_finished(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if self.drive_until(&|| *lock(&self.finished)) {
            return true;
        }
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
        let wake = {
            let mut state = lock(&self.state);
            if state.status == Status::Terminate
                || (state.status == Status::Close && status == Status::Run)
            {
                return;
            }
            state.status = status;
            state.driven()
        };
        if wake {
            sys::eventfd_signal(self.wake.as_fd());
        }
    }

    /// `terminate()`: signal the workers from here (the handler may be busy sending),
    /// then wait for the handler to reap them and fail what is pending.
    fn terminate(self: &Arc<Self>, deadline: Option<Instant>) {
        self.set_status(Status::Terminate);
        for worker in lock(&self.workers).iter() {
            let _ = worker.terminate();
        }
        self.wait_finished(deadline);
    }

    /// Drives the pool from this thread until `done()`, if no handler thread runs and no
    /// other caller drives it; returns whether it did (else `done()` may still be false,
    /// and another thread brings it about).
    ///
    /// CPython's pool moves every task and result through its handler threads: two
    /// wake-ups of a thread each way, and a new pool's first task waits for its thread to
    /// start. Here a caller that waits for its results (`apply`, a small `map`, `join`)
    /// hands out the chunks and reads the results itself while nothing else needs the
    /// pool's handler: the same handler, run in this thread. The handler thread is started
    /// when something does ([`Shared::go_threaded`]): work whose caller goes on (its
    /// callbacks run in that thread, as CPython's), two callers at once, workers that
    /// exit and need replacing. From then on it drives the pool, as before.
    ///
    /// Invariant: while a caller drives, no work of a caller that went on is queued or
    /// held by a worker (`go_threaded` waits for the driving caller to step aside before
    /// such work is queued, and `threaded` stays set): a driving caller delivers only
    /// results that no callback waits for.
    pub(crate) fn drive_until(self: &Arc<Self>, done: &dyn Fn() -> bool) -> bool {
        if self.check_owner().is_err() {
            return false; // a fork child's copy: the parent's workers are not its own
        }
        loop {
            if lock(&self.state).threaded {
                return false;
            }
            let guard = match self.handler.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    // Another caller drives: the handler thread takes over when it is done.
                    if self.go_threaded().is_ok() {
                        return false;
                    }
                    // No thread could be started: this caller drives once the other one
                    // has stepped aside.
                    let mut state = lock(&self.state);
                    while state.caller_driving && !state.threaded {
                        state = self.await_driver(state);
                    }
                    continue;
                }
            };
            return self.drive_with(guard, done);
        }
    }

    /// [`drive_until`](Shared::drive_until) with the handler's lock taken.
    fn drive_with(
        self: &Arc<Self>,
        guard: MutexGuard<'_, Option<Handler>>,
        done: &dyn Fn() -> bool,
    ) -> bool {
        {
            let mut state = lock(&self.state);
            if state.threaded {
                return false;
            }
            state.caller_driving = true;
        }
        let mut driving = Driving { shared: self, guard };
        let mut needs_thread = false;
        if let Some(handler) = driving.guard.as_mut() {
            // A worker that died while nobody watched is replaced before it is given work
            // (which would fail as if it had died running it).
            handler.take_news();
            loop {
                if done() {
                    needs_thread = handler.workers_exiting();
                    break;
                }
                if lock(&self.state).threaded {
                    return false; // the handler thread takes over
                }
                if handler.round() == handler::Round::Ended {
                    *driving.guard = None; // the handler's end: what is pending fails
                    break;
                }
            }
        }
        drop(driving);
        if needs_thread {
            // Workers that reached `maxtasksperchild` exit: the thread reaps and replaces
            // them now, not at the pool's next use.
            let _ = self.go_threaded();
        }
        true
    }

    /// From now on the handler thread drives the pool: starts it (once), and waits until
    /// no caller drives (telling the one that does to step aside).
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn go_threaded(self: &Arc<Self>) -> Result<(), Error> {
        let mut state = lock(&self.state);
        if !state.threaded {
            let shared = Arc::clone(self);
            self.start_thread(&mut state, move || handler::run_thread(&shared))?;
        }
        while state.caller_driving {
            sys::eventfd_signal(self.wake.as_fd());
            state = self.await_driver(state);
        }
        Ok(())
    }

    /// Starts the pool's thread (named `thread_name`) running `body`, which drives the
    /// pool from now on.
    ///
    /// # Errors
    /// The thread could not be started.
    fn start_thread(
        &self,
        state: &mut State,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        let thread = pyconc_core::helper::spawn(self.thread_name, body).map_err(Error::OsError)?;
        *lock(&self.thread) = Some(thread);
        state.threaded = true;
        Ok(())
    }

    /// Sleeps until the caller that drives the pool steps aside (or a spurious wake-up).
    fn await_driver<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.awaiting_driver += 1;
        let mut state = pyconc_core::sync::wait(&self.driving_ended, state);
        state.awaiting_driver -= 1;
        state
    }

    /// Waits for the handler thread to end, if one was started.
    fn join_thread(&self) {
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// A caller driving the pool (holding its handler's lock); it steps aside when dropped.
/// If it unwinds, the handler ends with it: what is pending fails, and nobody waits for
/// a handler that is gone.
struct Driving<'a> {
    shared: &'a Shared,
    guard: MutexGuard<'a, Option<Handler>>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            *self.guard = None;
        }
        let awaited = {
            let mut state = lock(&self.shared.state);
            state.caller_driving = false;
            state.awaiting_driver > 0
        };
        if awaited {
            self.shared.driving_ended.notify_all();
        }
    }
}

/// How many bytes, or chunks, of serialized items a submission gathers before it queues
/// them (its first chunk goes at once, so the workers start while the rest is
/// serialized): one lock of the queue per batch, and batches small enough that the
/// workers never wait long for the next one.
const FEED_BYTES: usize = 32 * 1024;
const FEED_CHUNKS: usize = 64;

/// Serializes `items` in chunks of `chunksize` and queues them as it goes, so that the
/// workers run the first chunks while the later ones are serialized; `first` is the index
/// of the first item within its submission. An item that cannot be serialized fails alone.
///
/// As in CPython, whether the pool runs is checked once, at the start: a `close()` from
/// another thread meanwhile lets the submission finish (the handler waits for it), a
/// `terminate()` fails the chunks not queued yet.
///
/// # Errors
/// `Pool not running` after `close`/`terminate`; `POOL_FOREIGN` in a fork child.
pub(crate) fn submit<T: Serialize>(
    shared: &Shared,
    task: &Task,
    items: impl Iterator<Item = T>,
    first: usize,
    chunksize: usize,
    sink: &Arc<dyn Sink>,
) -> Result<usize, Error> {
    shared.check_owner()?;
    {
        let mut state = lock(&shared.state);
        if state.status != Status::Run {
            return Err(Error::value(POOL_NOT_RUNNING));
        }
        state.feeding += 1;
    }
    let mut feed = Feed {
        shared,
        submission: Arc::new(Submission::new(task.clone(), Arc::clone(sink))),
        ready: Vec::new(),
        shared_items: Vec::new(),
        batch: Vec::new(),
        bytes: 0,
        queued_any: false,
        counted: 0,
        taken: 0,
    };
    let chunksize = chunksize.max(1);
    let mut items = items;
    let mut told = false;
    // The size of the last chunk's items: the next one's likely size.
    let mut expected = 0;
    // How many items were taken from the iterator.
    let mut count = 0;
    // An item taken but not in a chunk yet: the one looked at past a full chunk (so that
    // the sink learns the total before the last chunk is queued), or one that did not
    // fit the chunk before it, or failed in the fast loop below (it is serialized again
    // on the general path, which tells why).
    let mut carried: Option<(usize, T)> = None;
    let limit = task::RUN_ROOM + task::ENTRY_LIMIT;
    // The chunk being serialized: [`task::RUN_ROOM`] bytes of room, then its items. A
    // small chunk's items are copied to the feed's shared buffer, and this one is used
    // again for the next chunk.
    let mut encoded = Vec::new();
    loop {
        // (With room for one more varint than expected: the encoder reserves a varint's
        // most before it writes one, and a chunk of one small item must not regrow.)
        encoded.clear();
        encoded.reserve(task::RUN_ROOM + expected + expected / 8 + 16);
        encoded.resize(task::RUN_ROOM, 0);
        // The chunk's places: `start..end`, unless an item failed (then listed).
        let (mut start, mut end) = (None, 0);
        let mut listed: Option<Vec<usize>> = None;
        let mut taken = 0;
        while taken < chunksize {
            let (index, item) = match carried.take() {
                Some(carried) => carried,
                None => match items.next() {
                    Some(item) => {
                        count += 1;
                        (count - 1, item)
                    }
                    None => break,
                },
            };
            taken += 1;
            let place = first + index;
            let mark = encoded.len();
            let appended = task::append(&item, &mut encoded);
            // The common case first: the item joins the chunk's run of places.
            let fits = encoded.len() <= limit;
            if appended.is_ok() && fits && listed.is_none() {
                if start.is_none() {
                    start = Some(place);
                }
                end = place + 1;
                // ... and the items after it, in a loop of their own, straight from the
                // iterator, while they serialize and fit (their places follow on).
                while taken < chunksize {
                    let Some(item) = items.next() else { break };
                    count += 1;
                    if task::append_within(&item, &mut encoded, limit) {
                        taken += 1;
                        end += 1;
                    } else {
                        carried = Some((count - 1, item));
                        break;
                    }
                }
                continue;
            }
            let refusal = match appended {
                // (Here `listed` is a list: an item before failed.)
                Ok(()) if fits => {
                    listed.get_or_insert_with(Vec::new).push(place);
                    continue;
                }
                // A chunk's items travel in one message: a chunk that would outgrow it
                // ends before this item, which starts the next one.
                Ok(()) if start.is_some() || listed.as_ref().is_some_and(|l| !l.is_empty()) => {
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
            if listed.is_none() {
                listed = Some(start.map_or(Vec::new(), |start| (start..end).collect()));
            }
            let slot = Slots::List(vec![place]);
            feed.count(count);
            sink.fail(&slot, &|| Error::PicklingError(refusal.clone()), &shared.stats);
        }
        if taken == 0 {
            break;
        }
        if carried.is_none() {
            match items.next() {
                Some(item) => {
                    count += 1;
                    carried = Some((count - 1, item));
                }
                None => {
                    told = true;
                    sink.total(count);
                }
            }
        }
        expected = encoded.len() - task::RUN_ROOM;
        let slots = match (listed, start) {
            (Some(list), _) => Slots::List(list),
            (None, Some(start)) => Slots::Range(start..end),
            (None, None) => continue,
        };
        if slots.len() == 0 {
            continue;
        }
        let len = slots.len() as u32;
        // (An item carried to the next chunk is not submitted yet.)
        feed.taken = count - usize::from(carried.is_some());
        feed.push(len, &mut encoded, slots);
    }
    if !told {
        sink.total(count);
    }
    drop(feed);
    Ok(count)
}

/// The chunks of a submission on their way to the pool's queue (see [`submit`]); when
/// it drops, the rest is queued and the submission no longer holds the handler back.
struct Feed<'a> {
    shared: &'a Shared,
    submission: Arc<Submission>,
    /// The chunks gathered and not queued yet.
    ready: Vec<Gathered>,
    /// The items of the small chunks of `ready`, one chunk's after another's: they
    /// share this buffer once queued ([`Items::Shared`]).
    shared_items: Vec<u8>,
    /// The queue's parts made of `ready` when it is queued (a buffer kept from batch to
    /// batch).
    batch: Vec<Part>,
    /// The bytes of items gathered.
    bytes: usize,
    queued_any: bool,
    /// Items counted as submitted.
    counted: usize,
    /// Items taken into chunks gathered so far: counted as submitted when those are
    /// queued (one update of the pool's counters per batch: the handler updates the
    /// same cache line for every chunk it delivers).
    taken: usize,
}

/// A chunk gathered by a [`Feed`]: how many items, where they are, and their places.
struct Gathered {
    count: u32,
    /// A large chunk's own buffer ([`Items::Own`]); `None`: its items are `range` of the
    /// feed's shared buffer.
    own: Option<Vec<u8>>,
    range: Range<u32>,
    slots: Slots,
}

impl Feed<'_> {
    /// `total` items were taken so far: counted as submitted before any of them can be
    /// counted as done or failed.
    fn count(&mut self, total: usize) {
        if total > self.counted {
            self.shared.stats.submitted.fetch_add((total - self.counted) as u64, Ordering::Relaxed);
            self.counted = total;
        }
    }

    /// Gathers a chunk of `count` items, serialized in `encoded` after
    /// [`task::RUN_ROOM`] bytes of room, for the places `slots`. A small chunk's items
    /// are copied out (`encoded` is left to be used again); a large one takes `encoded`.
    fn push(&mut self, count: u32, encoded: &mut Vec<u8>, slots: Slots) {
        let items = &encoded[task::RUN_ROOM..];
        self.bytes += items.len();
        let (own, range) = if items.len() > SHARED_ITEMS_MAX {
            (Some(std::mem::take(encoded)), 0..0)
        } else {
            // (At most `FEED_BYTES` and one chunk's bytes: the shared buffer is queued
            // once it holds `FEED_BYTES`.)
            let start = self.shared_items.len() as u32;
            self.shared_items.extend_from_slice(items);
            (None, start..self.shared_items.len() as u32)
        };
        self.ready.push(Gathered { count, own, range, slots });
        if !self.queued_any || self.bytes >= FEED_BYTES || self.ready.len() >= FEED_CHUNKS {
            self.queue(false);
        }
    }

    /// Queues the chunks gathered so far (failing them if the pool can no longer run
    /// them), and wakes the handler if it may be asleep; `last`: the submission ends.
    fn queue(&mut self, last: bool) {
        self.count(self.taken);
        self.queued_any = true;
        self.bytes = 0;
        // The shared buffer, made by the batch's first chunk that has its items there.
        let mut shared_items: Option<Arc<Vec<u8>>> = None;
        // The run being made: its first place, and where its chunks' items and places
        // start, then where the last one's end.
        let mut run: Option<(usize, Vec<(u32, usize)>)> = None;
        let mut ready = std::mem::take(&mut self.ready);
        for gathered in ready.drain(..) {
            let Gathered { count, own, range, slots } = gathered;
            if let Some(own) = own {
                self.end_run(&mut run, shared_items.as_ref());
                let submission = Arc::clone(&self.submission);
                let chunk = Chunk { submission, count, items: Items::Own(own), slots };
                self.batch.push(Part::Chunk(chunk));
                continue;
            }
            let shared = shared_items.get_or_insert_with(|| {
                let next = Vec::with_capacity(self.shared_items.len());
                Arc::new(std::mem::replace(&mut self.shared_items, next))
            });
            let places = match &slots {
                Slots::Range(places) if places.len() == count as usize => places.clone(),
                // Some of its items failed: a chunk of its own.
                _ => {
                    self.end_run(&mut run, Some(shared));
                    let items = Items::Shared(Arc::clone(shared), range);
                    let submission = Arc::clone(&self.submission);
                    self.batch.push(Part::Chunk(Chunk { submission, count, items, slots }));
                    continue;
                }
            };
            match &mut run {
                // It follows on from the run's last chunk.
                Some((first, bounds))
                    if bounds.last().copied()
                        == places.start.checked_sub(*first).map(|place| (range.start, place)) =>
                {
                    bounds.push((range.end, places.end - *first));
                }
                _ => {
                    self.end_run(&mut run, Some(shared));
                    run = Some((places.start, vec![(range.start, 0), (range.end, places.len())]));
                }
            }
        }
        self.end_run(&mut run, shared_items.as_ref());
        self.ready = ready;
        let (refused, wake) = {
            let mut state = lock(&self.shared.state);
            if last {
                state.feeding -= 1;
            }
            let refused = match (&state.broken, state.status) {
                (Some(broken), _) => Some(Arc::clone(broken)),
                (None, Status::Terminate) => {
                    Some(Arc::new(|| Error::runtime(POOL_TERMINATED)) as Arc<_>)
                }
                (None, _) => None,
            };
            // A queue that held chunks already has the handler's attention.
            let wake = (last || state.queue.is_empty()) && state.driven();
            if refused.is_none() {
                state.queue.append(&mut self.batch);
            }
            (refused, wake)
        };
        if let Some(error) = refused {
            for chunk in self.batch.drain(..).flat_map(Part::into_chunks) {
                chunk.submission.sink.fail(&chunk.slots, &*error, &self.shared.stats);
            }
        }
        if wake {
            sys::eventfd_signal(self.shared.wake.as_fd());
        }
    }

    /// Adds the run being made, if any, to the batch: its items are in `items`.
    fn end_run(
        &mut self,
        run: &mut Option<(usize, Vec<(u32, usize)>)>,
        items: Option<&Arc<Vec<u8>>>,
    ) {
        let (Some((first_place, bounds)), Some(items)) = (run.take(), items) else { return };
        let chunks = 0..bounds.len() - 1;
        self.batch.push(Part::Run(Run {
            submission: Arc::clone(&self.submission),
            items: Arc::clone(items),
            bounds: bounds.into(),
            first_place,
            chunks,
        }));
    }
}

impl Drop for Feed<'_> {
    fn drop(&mut self) {
        self.queue(true);
    }
}

/// A running pool of worker processes.
pub struct ProcessCore {
    shared: Arc<Shared>,
    /// Terminates the pool at exit if it still runs then.
    finalizer: Finalize,
}

impl fmt::Debug for ProcessCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCore").field("size", &self.shared.size).finish_non_exhaustive()
    }
}

impl ProcessCore {
    fn start_apply<A, R>(
        &self,
        task: &Task,
        argument: A,
        callbacks: Callbacks<R>,
        caller: Caller,
    ) -> AsyncResult<R>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        if let Err(error) = self.prepare(caller, 1) {
            return AsyncResult::failed(error);
        }
        let slot = Slot::new(callbacks);
        let sink: Arc<dyn Sink> = slot.clone();
        if let Err(error) = submit(&self.shared, task, std::iter::once(argument), 0, 1, &sink) {
            slot.set(Err(error));
        }
        AsyncResult::new(slot)
    }

    /// Before a submission of `items` items: unless its caller waits for it and it is
    /// small enough for that caller to drive the pool itself, the handler thread drives
    /// the pool from now on (see [`Shared::drive_until`]). A large `map` is better served
    /// by the thread, which moves messages while its caller decodes results.
    fn prepare(&self, caller: Caller, items: usize) -> Result<(), Error> {
        if caller == Caller::Waits && items <= CALLER_DRIVES_ITEMS {
            Ok(())
        } else {
            // (No thread for a pool that takes no more work, nor in a fork child.)
            self.shared.check_running()?;
            self.shared.go_threaded()
        }
    }

    fn start_map<T, R>(
        &self,
        task: &Task,
        items: impl Iterator<Item = T>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        caller: Caller,
    ) -> Result<AsyncResult<Vec<R>>, Error>
    where
        T: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.shared.check_running()?;
        // The items are serialized straight from the iterator when it knows how many it
        // holds (a range, a `Vec`): no copy of them all is made first. Else they are
        // collected, as CPython's `map` makes a list of an iterable without a length.
        match items.size_hint() {
            (lower, Some(upper)) if lower == upper => {
                self.stream_map(task, items, lower, chunksize, callbacks, caller)
            }
            _ => {
                let items: Vec<T> = items.collect();
                let len = items.len();
                self.stream_map(task, items.into_iter(), len, chunksize, callbacks, caller)
            }
        }
    }

    /// `start_map` of `items`, which says it holds `len` items (an iterator that holds
    /// another number still has all of its items mapped).
    fn stream_map<T, R>(
        &self,
        task: &Task,
        items: impl Iterator<Item = T>,
        len: usize,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        caller: Caller,
    ) -> Result<AsyncResult<Vec<R>>, Error>
    where
        T: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.prepare(caller, len)?;
        let chunksize = chunksize.unwrap_or_else(|| default_chunksize(len, self.shared.size));
        let assisted = callbacks.is_empty();
        let slot = Slot::new(callbacks);
        let sink = MapSink::new(len, Arc::clone(&slot), Arc::clone(&self.shared.stats));
        if assisted {
            // A thread that waits for the list decodes results meanwhile (callbacks, when
            // given, run in the handler thread, as CPython's: no help then).
            let helper: Arc<dyn Assist> = sink.clone();
            slot.set_helper(Arc::downgrade(&helper));
        }
        let results: Arc<dyn Sink> = sink;
        submit(&self.shared, task, items, 0, chunksize, &results)?;
        Ok(AsyncResult::new(slot))
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
        self.prepare(Caller::GoesOn, 0)?; // (which checks that the pool runs)
        let shared = Arc::clone(&self.shared);
        let submit = move |items: Vec<T>, first: usize, sink: &Arc<ImapSink<R>>| {
            let sink: Arc<dyn Sink> = sink.clone();
            submit(&shared, &task, items.into_iter(), first, chunksize, &sink).map(|_| ())
        };
        Ok(IMapIterator::new(Box::new(submit), items, chunksize, ordered, self.shared.size))
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

    /// The pool of `shared`, registered to be terminated at exit (CPython's
    /// `Finalize(self, self._terminate_pool, exitpriority=15)`).
    fn pool_of(shared: Arc<Shared>) -> Pool {
        let weak = Arc::downgrade(&shared);
        let finalizer = Finalize::new(move || terminate_at_exit(&weak), Some(15));
        PoolOf { core: ProcessCore { shared, finalizer } }
    }

    /// Runs `handler` on the pool's own thread (named as `shared` says) from the start:
    /// an MPI pool's. If the thread cannot start, the workers are stopped.
    #[cfg(feature = "mpi")]
    fn start(shared: Arc<Shared>, handler: impl FnOnce() + Send + 'static) -> Result<Pool, Error> {
        let started = shared.start_thread(&mut lock(&shared.state), handler);
        match started {
            Ok(()) => Ok(ProcessCore::pool_of(shared)),
            Err(error) => {
                kill_workers(&shared);
                Err(error)
            }
        }
    }
}

/// The most items a submission may have for its caller, if it waits, to drive the pool
/// itself ([`ProcessCore::prepare`]). A larger `map` is mostly messages to move and
/// results to decode: the pool's thread moves them while the waiting caller decodes
/// (`result.rs`'s `Assist`), two threads at it instead of one.
const CALLER_DRIVES_ITEMS: usize = 1024;

impl engine::Sealed for Processes {}

impl Workers for Processes {
    type Core = ProcessCore;
}

impl engine::Engine for ProcessCore {
    const CLASS: &'static str = "Pool";

    fn size(&self) -> usize {
        self.shared.size
    }

    fn stats(&self) -> PoolStats {
        self.shared.stats.snapshot()
    }

    fn status(&self) -> Status {
        lock(&self.shared.state).status
    }

    fn check_owner(&self) -> Result<(), Error> {
        self.shared.check_owner()
    }

    fn stop_accepting(&self) {
        self.shared.set_status(Status::Close);
    }

    fn stop_now(&self) {
        self.shared.terminate(None);
        self.shared.join_thread();
    }

    fn wait_finished(&self) {
        self.shared.wait_finished(None);
        self.shared.join_thread();
    }

    fn wait_for<R>(&self, result: AsyncResult<R>) -> Result<R, Error> {
        self.shared.drive_until(&|| result.ready());
        result.get()
    }
}

impl<T, R> Runs<T, R> for Processes
where
    T: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn apply<F>(
        core: &ProcessCore,
        function: F,
        argument: T,
        callbacks: Callbacks<R>,
        caller: Caller,
    ) -> AsyncResult<R>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        match core.task(function) {
            Ok(task) => core.start_apply(&task, argument, callbacks, caller),
            Err(error) => AsyncResult::failed(error),
        }
    }

    fn map<F, I>(
        core: &ProcessCore,
        function: F,
        items: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        caller: Caller,
    ) -> AsyncResult<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>,
    {
        core.task(function)
            .and_then(|task| core.start_map(&task, items, chunksize, callbacks, caller))
            .unwrap_or_else(AsyncResult::failed)
    }

    fn imap<F, I>(
        core: &ProcessCore,
        function: F,
        items: I,
        chunksize: usize,
        ordered: bool,
    ) -> Result<IMapIterator<T, R, I>, Error>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: Iterator<Item = T>,
    {
        core.start_imap(core.task(function)?, items, chunksize, ordered)
    }
}

impl PoolOf<Processes> {
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
}

impl Drop for ProcessCore {
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
        let size = super::mpi::MpiHandler::workers()?;
        let shared = Shared::new(size, StartMethod::Spawn, "pyconc-mpi-pool")?;
        let (for_thread, deadline) = (Arc::clone(&shared), self.deadline);
        // The communicator is made in the thread that uses it (it is not `Send`).
        ProcessCore::start(shared, move || {
            match super::mpi::MpiHandler::new(Arc::clone(&for_thread), deadline) {
                Ok(handler) => handler.run(),
                Err(_) => for_thread.set_finished(),
            }
        })
    }

    /// Starts the workers (the pool's handler thread starts when something needs it).
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
        let shared = Shared::new(size, method, "pyconc-pool")?;
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
        // No thread yet: the first caller that waits for its results drives the pool, or
        // the handler thread once something needs it (`Shared::drive_until`).
        *lock(&shared.handler) =
            Some(Handler::new(Arc::clone(&shared), start, self.maxtasks, workers));
        Ok(ProcessCore::pool_of(shared))
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
) -> Result<StartedWorker, Error>
where
    A: Serialize + DeserializeOwned + Send + 'static,
{
    // Every child forked from now on lets go of the pool channels (a first worker's
    // children too: the hook must be registered before the first fork).
    CHANNELS.register();
    let forks_before = pyconc_core::fork::forks();
    // A forked worker's channel maps its two rings with one `mmap`, or reuses a spare.
    let (ours, theirs) = match method {
        StartMethod::Fork => crate::connection::duplex_pipe_for_fork()?,
        _ => pipe(true)?,
    };
    let args = WorkerArgs { conn: theirs, initializer, maxtasks };
    let builder = Process::builder().start_method(method).daemon(true);
    let process = if method == StartMethod::Fork {
        // A forked worker inherits the pool end of its own channel: it lets go of it, so
        // that it sees the end of its channel when the pool's end closes. (The other
        // channels, `CHANNELS`' fork hook let go of.)
        let own_pool_end = ours.fileno()?;
        builder.target(move || {
            if let Ok(null) = sys::DevNull::open() {
                let _ = null.put_over(own_pool_end);
            }
            worker::main::<A>(args);
        })
    } else {
        builder.call(worker::main::<A>, args)
    };
    process.set_name(process.name().replace("Process", "PoolWorker"));
    process.start()?;
    let conn = Arc::new(ours);
    CHANNELS.add(&conn);
    // Only the worker's fork since the count was read (see `pyconc_core::fork::forks`:
    // `duplex_pipe_for_fork` took a fork-held lock after it): no child of another
    // thread's fork got the rings before `CHANNELS` listed them.
    let alone = pyconc_core::fork::forks() == forks_before + 1;
    Ok(StartedWorker { process, conn, rings_reusable: method == StartMethod::Fork && alone })
}

/// A worker that [`start_worker`] started.
pub(crate) struct StartedWorker {
    pub(crate) process: Process,
    /// The pool's end of its channel.
    pub(crate) conn: Arc<Connection>,
    /// Its channel's rings may be reused once it has been reaped
    /// ([`Connection::reuse_rings`]): a fork channel that only processes which let go of
    /// it have inherited, besides the worker.
    pub(crate) rings_reusable: bool,
}

/// The pool ends of the channels to every worker of this process's pools, which every
/// forked child lets go of (`detach_channels_in_child`). Held across `fork()` (order 70).
static CHANNELS: WeakList<Connection> = WeakList::new(70, detach_channels_in_child);

/// In every forked child — a pool worker, a user's forked process, a child of a worker:
/// every pool channel of the parent, and a worker's own
/// ([`worker::detach_own_channel_in_child`]), turns into `/dev/null` and private memory
/// (see [`Connection::detach_in_child`]), one `open` of it for them all. (If it cannot be
/// opened, the fds stay as they are; the rings still turn private.) A child can then
/// neither read nor write a worker's tasks, and the pool may reuse a channel's rings once
/// its worker is gone. The list is emptied, nothing freed (see
/// `WeakList::drain_in_child`).
fn detach_channels_in_child(channels: &mut Vec<Weak<Connection>>) {
    if channels.is_empty() && !worker::has_own_channel() {
        return;
    }
    let null = sys::DevNull::open().ok();
    pyconc_core::fork::drain_in_child(channels, |channel| channel.detach_in_child(null.as_ref()));
    worker::detach_own_channel_in_child(null.as_ref());
}

#[cfg(test)]
mod tests {
    use super::{
        Chunk, Counters, Error, Feed, Items, Part, Run, Shared, Sink, Slots, StartMethod,
        Submission, Task, TaskQueue, lock, task,
    };
    use std::sync::Arc;

    /// A sink that keeps nothing: these tests look at the queue only.
    struct Nowhere;

    impl Sink for Nowhere {
        fn deliver(&self, _: &Slots, _: &[u8], _: &Counters) {}
        fn fail(&self, _: &Slots, _: &dyn Fn() -> Error, _: &Counters) {}
    }

    fn submission() -> Arc<Submission> {
        let task = Task { entry: 1, function: 2, needs: 0, _closure: None };
        Arc::new(Submission::new(task, Arc::new(Nowhere)))
    }

    /// A chunk's items and places, as the handler gets them.
    fn seen(chunk: &Chunk) -> (Vec<u8>, Vec<usize>, u32) {
        let places = match &chunk.slots {
            Slots::Range(range) => range.clone().collect(),
            Slots::List(list) => list.clone(),
        };
        (chunk.items.payload().to_vec(), places, chunk.count)
    }

    /// A run of three chunks: item "a" at place 10, items "bc" at 11 and 12, item "def"
    /// at 13 (its buffer starts with a byte of another run).
    fn three_chunks() -> Part {
        Part::Run(Run {
            submission: submission(),
            items: Arc::new(b"xabcdef".to_vec()),
            bounds: vec![(1, 0), (2, 1), (4, 3), (7, 4)].into(),
            first_place: 10,
            chunks: 0..3,
        })
    }

    #[test]
    fn a_run_gives_its_chunks_in_order_with_their_items_and_places() {
        let mut queue = TaskQueue::default();
        queue.append(&mut vec![three_chunks()]);
        assert_eq!(queue.len(), 3);
        let got: Vec<_> = queue.drain().iter().map(seen).collect();
        assert_eq!(
            got,
            [
                (b"a".to_vec(), vec![10], 1),
                (b"bc".to_vec(), vec![11, 12], 2),
                (b"def".to_vec(), vec![13], 1)
            ]
        );
        assert!(queue.is_empty() && queue.pop_front().is_none());
    }

    #[test]
    fn taking_splits_a_run_by_count_and_by_frame_bytes() {
        let mut queue = TaskQueue::default();
        queue.append(&mut vec![three_chunks()]);
        let room = task::RUN_ROOM;
        // Two chunks at most: "a" and "bc".
        let (part, bytes) = queue.take(2, usize::MAX, false).expect("two chunks");
        assert_eq!((part.len(), part.items(), bytes), (2, 3, 2 * room + 3));
        assert_eq!(part.piece(1).payload, b"bc");
        // "def" does not fit 3 bytes less than it takes, unless a frame needs one anyway.
        assert!(queue.take(9, room + 2, false).is_none());
        let (part, bytes) = queue.take(9, room + 2, true).expect("one anyway");
        assert_eq!((part.len(), bytes, part.piece(0).payload), (1, room + 3, &b"def"[..]));
        assert!(queue.is_empty() && queue.take(9, usize::MAX, true).is_none());
    }

    #[test]
    fn a_part_delivers_and_drops_its_chunks_from_the_front() {
        let mut part = three_chunks();
        assert!(!part.drop_first());
        assert_eq!((part.len(), part.items(), part.piece(0).payload), (2, 3, &b"bc"[..]));
        let (first, rest) = part.take_first();
        assert_eq!(seen(&first), (b"bc".to_vec(), vec![11, 12], 2));
        let mut rest = rest.expect("one chunk left");
        assert!(rest.drop_first());
    }

    #[test]
    fn a_requeued_part_goes_before_the_rest_of_its_run() {
        let mut queue = TaskQueue::default();
        queue.append(&mut vec![three_chunks()]);
        let (first, _) = queue.take(1, usize::MAX, true).expect("the first chunk");
        queue.push_front(first);
        assert_eq!(queue.len(), 3);
        let order: Vec<Vec<u8>> =
            queue.drain().iter().map(|c| c.items.payload().to_vec()).collect();
        assert_eq!(order, [b"a".to_vec(), b"bc".to_vec(), b"def".to_vec()]);
    }

    /// Gathers a chunk of `items` (one byte each) for `slots` into `feed`.
    fn gather(feed: &mut Feed<'_>, items: &[u8], slots: Slots) {
        let mut encoded = vec![0; task::RUN_ROOM];
        encoded.extend_from_slice(items);
        feed.push(slots.len() as u32, &mut encoded, slots);
    }

    #[test]
    fn a_feed_queues_small_chunks_as_runs_split_where_the_places_or_buffers_break() {
        let shared = Shared::new(2, StartMethod::Fork, "test").expect("pool state");
        lock(&shared.state).feeding += 1;
        let large = vec![7u8; super::SHARED_ITEMS_MAX + 1];
        {
            let mut feed = Feed {
                shared: &shared,
                submission: submission(),
                ready: Vec::new(),
                shared_items: Vec::new(),
                batch: Vec::new(),
                bytes: 0,
                queued_any: true, // (else the first chunk is queued alone, at once)
                counted: 0,
                taken: 0,
            };
            gather(&mut feed, b"a", Slots::Range(0..1));
            gather(&mut feed, b"bc", Slots::Range(1..3));
            gather(&mut feed, &large, Slots::Range(3..3 + large.len()));
            gather(&mut feed, b"d", Slots::Range(5000..5001));
            gather(&mut feed, b"e", Slots::List(vec![5002]));
            gather(&mut feed, b"f", Slots::Range(5003..5004));
            gather(&mut feed, b"g", Slots::Range(5004..5005));
            gather(&mut feed, b"h", Slots::Range(6000..6001));
        }
        let mut state = lock(&shared.state);
        let kinds: Vec<usize> = state
            .queue
            .parts
            .iter()
            .map(|part| match part {
                Part::Chunk(_) => 0,
                Part::Run(run) => run.chunks.len(),
            })
            .collect();
        // Runs of 2, the large chunk, a run of 1, the chunk with a failed item, a run of 2
        // and one of 1 (its places do not follow on).
        assert_eq!(kinds, [2, 0, 1, 0, 2, 1]);
        assert!(matches!(&state.queue.parts[1], Part::Chunk(Chunk { items: Items::Own(_), .. })));
        let got: Vec<_> = state.queue.drain().iter().map(seen).collect();
        let want = [
            (b"a".to_vec(), vec![0], 1),
            (b"bc".to_vec(), vec![1, 2], 2),
            (large.clone(), (3..3 + large.len()).collect(), large.len() as u32),
            (b"d".to_vec(), vec![5000], 1),
            (b"e".to_vec(), vec![5002], 1),
            (b"f".to_vec(), vec![5003], 1),
            (b"g".to_vec(), vec![5004], 1),
            (b"h".to_vec(), vec![6000], 1),
        ];
        assert_eq!(got, want);
    }

    /// The handler moves every chunk from the queue to a worker's list and keeps up to
    /// a thousand per worker: a chunk stays within a cache line.
    #[test]
    fn a_chunk_fits_a_cache_line() {
        assert!(std::mem::size_of::<Chunk>() <= 64, "{} bytes", std::mem::size_of::<Chunk>());
    }

    /// Every forked child — here one forked by hand, as a user's — lets go of the pool
    /// channels: the pool's end turns into `/dev/null`, and the rings into private memory,
    /// so the child cannot read what the pool sent, which the parent still can.
    #[test]
    fn a_forked_child_cannot_reach_the_pool_channels() {
        let (ours, theirs) = crate::connection::duplex_pipe_for_fork().unwrap();
        let ours = Arc::new(ours);
        super::CHANNELS.add(&ours);
        ours.send_bytes(b"task").unwrap();
        crate::sys::assert_in_forked_child(|| {
            let mut buf = Vec::new();
            match theirs.try_recv_bytes_into(&mut buf) {
                Ok(Some(_)) => 1, // the task reached the child
                _ if !ours.closed() => 2,
                _ => 0,
            }
        });
        assert_eq!(theirs.recv_bytes().unwrap(), b"task");
    }

    /// A task that forks, and answers 0 if its child no longer held the worker's channel.
    fn fork_and_report_the_childs_channel(_: u32) -> i32 {
        if !super::worker::has_own_channel() {
            return 1;
        }
        // SAFETY: the child looks at a static and `_exit`s.
        match unsafe { crate::sys::fork() } {
            Ok(crate::sys::Fork::Child) => {
                crate::sys::exit_now(i32::from(super::worker::has_own_channel()) * 2)
            }
            Ok(crate::sys::Fork::Parent(pid)) => match crate::sys::wait(pid) {
                Ok(crate::sys::ExitStatus::Exited(code)) => code,
                _ => 3,
            },
            Err(_) => 4,
        }
    }

    /// A worker's child (a task that forks) lets go of the worker's channel, which the
    /// pool reuses once the worker is gone.
    #[test]
    fn a_pool_workers_forked_child_lets_go_of_the_workers_channel() {
        let pool = super::Pool::builder()
            .processes(Some(1))
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        assert_eq!(pool.map(fork_and_report_the_childs_channel, [0]).unwrap(), [0]);
        pool.close();
        pool.join().unwrap();
    }

    /// In a forked child (no other thread there takes from its spare list): a fork
    /// pool's channels are kept once its workers are reaped, and the next pool takes
    /// them. (The first pool is a warm-up: a process's first start may fork a helper,
    /// the resource tracker, and a channel that another fork may have reached is not
    /// reused.)
    #[test]
    fn pools_one_after_another_reuse_the_rings_of_their_channels() {
        crate::sys::assert_in_forked_child(|| {
            use crate::connection::ring::Ring;
            let lifetime = || {
                let pool = super::Pool::builder()
                    .processes(Some(2))
                    .start_method(StartMethod::Fork)
                    .build()?;
                let left = Ring::spare_pairs();
                let results = pool.map(|x: u32| x + 1, 0..2)?;
                pool.close();
                pool.join()?;
                Ok::<_, Error>((left, results))
            };
            let _ = lifetime();
            let _ = lifetime();
            match (Ring::spare_pairs(), lifetime(), Ring::spare_pairs()) {
                (2, Ok((0, results)), 2) if results == [1, 2] => 0,
                _ => 1,
            }
        });
    }
}
