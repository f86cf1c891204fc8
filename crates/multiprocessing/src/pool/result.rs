//! Where a pool's results go: [`AsyncResult`] (CPython's `ApplyResult`/`MapResult`) and
//! [`IMapIterator`] (CPython's `IMapIterator`/`IMapUnorderedIterator`), and the [`Sink`]s
//! through which the pool's handler fills them (see `handler.rs`: the pool's thread, or a
//! caller that waits for results of its own without callbacks).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub(crate) use pyconc_core::sync::lock;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Counters;
use super::task::Failure;
use crate::Error;
use crate::error::RESULT_TAKEN;

/// Waits on `condvar` until `done(state)` or `deadline`; returns the guard.
fn wait_until<'a, T>(
    condvar: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    done: impl Fn(&T) -> bool,
) -> MutexGuard<'a, T> {
    while !done(&guard) {
        match deadline {
            None => guard = pyconc_core::sync::wait(condvar, guard),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                guard = pyconc_core::sync::wait_timeout(condvar, guard, left).0;
            }
        }
    }
    guard
}

/// Which items of a submission a chunk holds.
#[derive(Debug, Clone)]
pub(crate) enum Slots {
    Range(Range<usize>),
    /// Some items of the range could not be serialized and were failed at once.
    List(Vec<usize>),
}

impl Slots {
    pub(crate) fn len(&self) -> usize {
        match self {
            Slots::Range(range) => range.len(),
            Slots::List(list) => list.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (range, list) = match self {
            Slots::Range(range) => (range.clone(), &[][..]),
            Slots::List(list) => (0..0, list.as_slice()),
        };
        range.chain(list.iter().copied())
    }
}

/// Receives the outcome of chunks; implemented per result type, so the handler thread
/// needs no types.
pub(crate) trait Sink: Send + Sync {
    /// The worker's results for the items at `slots`, one serialized `Result<R, Failure>`
    /// each. Counts them in `stats` before any waiter can see them.
    fn deliver(&self, slots: &Slots, results: &[u8], stats: &Counters);
    /// The items at `slots` failed without results (counted in `stats` first).
    fn fail(&self, slots: &Slots, error: &dyn Fn() -> Error, stats: &Counters);
    /// The submission holds `total` items: said before its last chunk is queued, so
    /// that the result is completed by the handler thread (where callbacks run, as in
    /// CPython), unless there are no items at all.
    fn total(&self, _total: usize) {}
}

/// Decodes the results of one chunk, in order (their form is described in `task.rs`);
/// bytes that do not decode fail the item and every later one.
fn decode<R: DeserializeOwned>(
    slots: &Slots,
    results: &[u8],
    stats: &Counters,
    mut each: impl FnMut(usize, Result<R, Error>),
) {
    let (plain, results) = split_plain(results).unwrap_or((0, &[]));
    let mut results = postcard::Deserializer::from_bytes(results);
    let mut broken: Option<String> = None;
    let (mut done, mut failed) = (0, 0);
    let count = slots.len();
    for (position, slot) in slots.iter().enumerate() {
        let outcome = match &broken {
            Some(message) => Err(Error::UnpicklingError(message.clone())),
            None => {
                let decoded = if position < plain {
                    R::deserialize(&mut results).map(Ok)
                } else {
                    Result::<R, Failure>::deserialize(&mut results)
                };
                match decoded {
                    Ok(outcome) => outcome.map_err(|failure| match failure {
                        Failure::Panicked(panic) => Error::RemoteTraceback(panic),
                        Failure::Encoding(message) => Error::MaybeEncodingError(message),
                        Failure::Decoding(message) => Error::UnpicklingError(message),
                    }),
                    Err(error) => {
                        let message = undecodable(error);
                        broken = Some(message.clone());
                        Err(Error::UnpicklingError(message))
                    }
                }
            }
        };
        if outcome.is_ok() {
            done += 1;
        } else {
            failed += 1;
        }
        // Counted before the last outcome is given on, which may wake a waiter.
        if position + 1 == count {
            stats.done.fetch_add(done, Ordering::Relaxed);
            stats.failed.fetch_add(failed, Ordering::Relaxed);
        }
        each(slot, outcome);
    }
}

/// The common case of [`decode`], in a loop of its own: a chunk whose `count` results all
/// travel plain, each given to `each` in order. `None` when some do not (an item failed:
/// [`decode`] does it all then); `Some(Err((position, message)))` when the result at
/// `position` does not decode (those before it were given; it and those after it fail).
fn decode_plain<R: DeserializeOwned>(
    results: &[u8],
    count: usize,
    mut each: impl FnMut(R),
) -> Option<Result<(), (usize, String)>> {
    let (plain, results) = split_plain(results)?;
    if plain != count {
        return None;
    }
    let mut results = postcard::Deserializer::from_bytes(results);
    for position in 0..count {
        match R::deserialize(&mut results) {
            Ok(value) => each(value),
            Err(error) => return Some(Err((position, undecodable(error)))),
        }
    }
    Some(Ok(()))
}

/// A chunk's results: how many travel plain (the 4-byte count first), and the rest.
fn split_plain(results: &[u8]) -> Option<(usize, &[u8])> {
    let (count, rest) = results.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*count) as usize, rest))
}

/// The message of a result that does not decode.
fn undecodable(error: postcard::Error) -> String {
    format!("cannot deserialize a task's result: {error}")
}

/// What runs when a result is ready, in the pool's handler thread, before waiters wake.
///
/// Python: `apply_async(..., callback=, error_callback=)`. A callback that panics is
/// reported by the panic hook and otherwise ignored; a slow one delays the pool's other
/// results, as in CPython (keep callbacks short).
#[must_use]
pub struct Callbacks<R> {
    on_success: Option<OnSuccess<R>>,
    on_error: Option<OnError>,
}

type OnSuccess<R> = Box<dyn FnOnce(&R) + Send>;
type OnError = Box<dyn FnOnce(&Error) + Send>;

impl<R> Default for Callbacks<R> {
    fn default() -> Callbacks<R> {
        Callbacks { on_success: None, on_error: None }
    }
}

impl<R> Callbacks<R> {
    /// Whether no callback was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_error.is_none()
    }

    /// No callbacks.
    ///
    /// # Examples
    ///
    /// ```
    /// let callbacks: multiprocessing::Callbacks<u8> = multiprocessing::Callbacks::new();
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// assert_eq!(pool.apply_async_with(|x: u8| x, 3, callbacks).get()?, 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> Callbacks<R> {
        Callbacks::default()
    }

    /// Runs `callback(&value)` when the task succeeds (Python: `callback`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let slot = Arc::clone(&seen);
    /// let callbacks = multiprocessing::Callbacks::new().on_success(move |v: &u8| *slot.lock().unwrap() = Some(*v));
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// pool.apply_async_with(|x: u8| x + 1, 1, callbacks).get()?;
    /// assert_eq!(*seen.lock().unwrap(), Some(2), "runs before get() returns");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn on_success(mut self, callback: impl FnOnce(&R) + Send + 'static) -> Callbacks<R> {
        self.on_success = Some(Box::new(callback));
        self
    }

    /// Runs `callback(&error)` when the task fails (Python: `error_callback`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(String::new()));
    /// let slot = Arc::clone(&seen);
    /// let callbacks =
    ///     multiprocessing::Callbacks::new().on_error(move |e| *slot.lock().unwrap() = e.to_string());
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let result = pool.apply_async_with(|_: u8| -> u8 { panic!("bad input") }, 0, callbacks);
    /// assert!(result.get().is_err());
    /// assert!(seen.lock().unwrap().contains("bad input"));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn on_error(mut self, callback: impl FnOnce(&Error) + Send + 'static) -> Callbacks<R> {
        self.on_error = Some(Box::new(callback));
        self
    }

    fn run(self, result: &Result<R, Error>) {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| match result {
            Ok(value) => {
                if let Some(callback) = self.on_success {
                    callback(value);
                }
            }
            Err(error) => {
                if let Some(callback) = self.on_error {
                    callback(error);
                }
            }
        }));
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_success", &self.on_success.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

enum SlotState<R> {
    Pending,
    Ready(Result<R, Error>),
    Taken { ok: bool },
}

/// One result to come: the core of an [`AsyncResult`].
pub(crate) struct Slot<R> {
    state: Mutex<SlotState<R>>,
    ready: Condvar,
    /// Threads asleep on `ready` (counted under `state`'s lock): `set` wakes them only if
    /// there are any — a caller that drove the pool to its own result finds it set, and a
    /// wake-up nobody waits for is still a system call.
    sleepers: AtomicUsize,
    callbacks: Mutex<Option<Callbacks<R>>>,
    /// The task awaiting the [`AsyncResult`] as a `Future`, woken when the result is set.
    waker: Mutex<Option<Waker>>,
    /// What a thread that waits for the result can do meanwhile (weak: the helper holds
    /// the slot).
    helper: Mutex<Option<Weak<dyn Assist>>>,
}

/// Work towards a result that a thread waiting for it can do itself: a `map`'s results
/// decoded by the thread that waits for the list, which is otherwise idle, instead of by
/// the pool's handler thread, which also moves every other message.
pub(crate) trait Assist: Send + Sync {
    /// Does the work handed over, until the result is set.
    fn assist(&self);
}

impl<R> Slot<R> {
    pub(crate) fn new(callbacks: Callbacks<R>) -> Arc<Slot<R>> {
        Arc::new(Slot {
            state: Mutex::new(SlotState::Pending),
            ready: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            callbacks: Mutex::new(Some(callbacks)),
            waker: Mutex::new(None),
            helper: Mutex::new(None),
        })
    }

    /// A thread that waits for the result calls `helper` first.
    pub(crate) fn set_helper(&self, helper: Weak<dyn Assist>) {
        *lock(&self.helper) = Some(helper);
    }

    fn is_set(&self) -> bool {
        !matches!(*lock(&self.state), SlotState::Pending)
    }

    /// Stores the result (once; later calls are ignored), after the callbacks ran.
    pub(crate) fn set(&self, result: Result<R, Error>) {
        if !matches!(*lock(&self.state), SlotState::Pending) {
            return;
        }
        if let Some(callbacks) = lock(&self.callbacks).take() {
            callbacks.run(&result);
        }
        let sleepers = {
            let mut state = lock(&self.state);
            *state = SlotState::Ready(result);
            self.sleepers.load(Ordering::Relaxed)
        };
        if sleepers > 0 {
            self.ready.notify_all();
        }
        // After the state: a poll that registered its waker under the state's lock saw
        // Pending, so it is woken here; a later poll finds the result.
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

impl<R: DeserializeOwned + Send> Sink for Slot<R> {
    fn deliver(&self, slots: &Slots, results: &[u8], stats: &Counters) {
        decode(slots, results, stats, |_, outcome| self.set(outcome));
    }

    fn fail(&self, slots: &Slots, error: &dyn Fn() -> Error, stats: &Counters) {
        stats.failed.fetch_add(slots.len() as u64, Ordering::Relaxed);
        self.set(Err(error()));
    }
}

/// The result of [`Pool::apply_async`](crate::PoolOf::apply_async) or [`Pool::map_async`](crate::PoolOf::map_async), to be collected later.
///
/// Python: `multiprocessing.pool.AsyncResult` (`ApplyResult`, `MapResult`). `Send + Sync`.
/// Where CPython's `get()` hands out the same object every time, Rust moves the value
/// out: `get` consumes the handle; once [`get_timeout`](AsyncResult::get_timeout) returned
/// the value, a later `get`/`get_timeout` says it was taken.
///
/// # Differences from CPython
/// - [`get`](AsyncResult::get) consumes the handle and moves the value out; CPython's may be
///   called again and returns the same object.
/// - `get(timeout)` is [`get_timeout`](AsyncResult::get_timeout), which gives
///   `Error::TimeoutError` and keeps the handle usable, as CPython's.
///
/// # Examples
///
/// ```
/// use multiprocessing::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(Some(2))?;
/// let result = pool.apply_async(square, 7);
/// assert_eq!(result.get()?, 49);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct AsyncResult<R> {
    slot: Arc<Slot<R>>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(slot: Arc<Slot<R>>) -> AsyncResult<R> {
        AsyncResult { slot }
    }

    /// A result that is already `error` (a submission that was refused).
    pub(crate) fn failed(error: Error) -> AsyncResult<R> {
        let slot = Slot::new(Callbacks::new());
        slot.set(Err(error));
        AsyncResult { slot }
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> MutexGuard<'_, SlotState<R>> {
        if deadline.is_none() {
            let helper = lock(&self.slot.helper).as_ref().and_then(Weak::upgrade);
            if let Some(helper) = helper {
                helper.assist();
            }
        }
        let state = lock(&self.slot.state);
        // (Counted under the lock: a `set` after this sees it, one before left no Pending.)
        self.slot.sleepers.fetch_add(1, Ordering::Relaxed);
        let state =
            wait_until(&self.slot.ready, state, deadline, |s| !matches!(s, SlotState::Pending));
        self.slot.sleepers.fetch_sub(1, Ordering::Relaxed);
        state
    }

    fn take(state: &mut SlotState<R>) -> Result<R, Error> {
        match std::mem::replace(state, SlotState::Taken { ok: false }) {
            SlotState::Ready(result) => {
                *state = SlotState::Taken { ok: result.is_ok() };
                result
            }
            SlotState::Pending => {
                *state = SlotState::Pending;
                Err(Error::TimeoutError)
            }
            taken @ SlotState::Taken { .. } => {
                *state = taken;
                Err(Error::runtime(RESULT_TAKEN))
            }
        }
    }

    /// Waits for the result and returns it.
    ///
    /// Python: `AsyncResult.get()`.
    ///
    /// # Errors
    /// The task's failure: [`Error::RemoteTraceback`] for a panic,
    /// [`Error::WorkerDied`], [`Error::MaybeEncodingError`], or a terminated pool's
    /// [`Error::RuntimeError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let ok = pool.apply_async(|x: i32| x.abs(), -5);
    /// assert_eq!(ok.get()?, 5);
    /// let failed = pool.apply_async(|_: i32| -> i32 { panic!("worker panicked") }, 0);
    /// assert!(failed.get().unwrap_err().to_string().contains("worker panicked"));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(self) -> Result<R, Error> {
        let mut state = self.wait_deadline(None);
        Self::take(&mut state)
    }

    /// Waits at most `timeout` for the result.
    ///
    /// Python: `AsyncResult.get(timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn slow(x: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(300));
    ///     x
    /// }
    ///
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let result = pool.apply_async(slow, 7);
    /// assert!(matches!(result.get_timeout(Duration::from_millis(1)), Err(multiprocessing::Error::TimeoutError)));
    /// assert_eq!(result.get_timeout(Duration::from_secs(30))?, 7);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TimeoutError`] when it is not ready in time; otherwise as
    /// [`get`](AsyncResult::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, Error> {
        let mut state = self.wait_deadline(Instant::now().checked_add(timeout));
        Self::take(&mut state)
    }

    /// Waits until the result is ready. Python: `AsyncResult.wait()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let result = pool.apply_async(|x: u8| x, 7);
    /// result.wait();
    /// assert!(result.ready());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) {
        drop(self.wait_deadline(None));
    }

    /// Waits at most `timeout`; returns whether the result is ready.
    /// Python: `AsyncResult.wait(timeout)` (which returns `None`; see `ready()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let slow = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 200);
    /// assert!(!slow.wait_timeout(Duration::from_millis(1)), "not ready yet");
    /// assert!(slow.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        !matches!(*self.wait_deadline(Instant::now().checked_add(timeout)), SlotState::Pending)
    }

    /// Whether the result is ready. Python: `AsyncResult.ready()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let result = pool.apply_async(|x: u8| x, 1);
    /// while !result.ready() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(result.get()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn ready(&self) -> bool {
        !matches!(*lock(&self.slot.state), SlotState::Pending)
    }

    /// Whether the task succeeded.
    ///
    /// Python: `AsyncResult.successful()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `<multiprocessing.pool.ApplyResult object at 0x…> not ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let result = pool.apply_async(|x: u8| x, 1);
    /// result.wait();
    /// assert!(result.successful()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn successful(&self) -> Result<bool, Error> {
        match &*lock(&self.slot.state) {
            SlotState::Pending => Err(Error::ValueError(
                format!(
                    "<multiprocessing.pool.ApplyResult object at {:p}> not ready",
                    Arc::as_ptr(&self.slot)
                )
                .into(),
            )),
            SlotState::Ready(result) => Ok(result.is_ok()),
            SlotState::Taken { ok } => Ok(*ok),
        }
    }
}

/// `pool.apply_async(f, x).await`: the result, without blocking the executor's thread.
/// Runtime-agnostic (std's `Future`): the pool's handler thread wakes the awaiting task
/// when the result arrives. Python: awaiting has no CPython equivalent (its results
/// only block).
///
/// # Examples
///
/// ```
/// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
/// #     // A minimal executor for the example; any runtime (tokio, async-std, smol) works.
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut future = std::pin::pin!(future);
/// #     loop {
/// #         if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
/// #             return out;
/// #         }
/// #         std::thread::park();
/// #     }
/// # }
/// let pool = multiprocessing::Pool::new(Some(2))?;
/// let squared = block_on(async { pool.apply_async(|x: u64| x * x, 9).await })?;
/// assert_eq!(squared, 81);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
impl<R> Future for AsyncResult<R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R, Error>> {
        let mut state = lock(&self.slot.state);
        if matches!(*state, SlotState::Pending) {
            // Under the state's lock: `set` stores the result under it first, then wakes.
            *lock(&self.slot.waker) = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Self::take(&mut state))
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

/// The parts of a `map` as they come back.
struct MapState<R> {
    /// The results, each written in its place as its chunk comes back.
    values: Placed<R>,
    /// The failure of the lowest-numbered failed item; once an item failed, results are
    /// no longer kept (the map returns the failure).
    error: Option<(usize, Error)>,
    /// How many items have an outcome.
    received: usize,
    /// How many items the submission had, once it has queued them all.
    total: Option<usize>,
}

/// Collects a `map`'s items and completes its [`Slot`] when the last one is in.
pub(crate) struct MapSink<R> {
    state: Mutex<MapState<R>>,
    slot: Arc<Slot<Vec<R>>>,
    /// Results handed over undecoded to the threads waiting for the list.
    handoff: Mutex<Handoff>,
    /// Results were handed over, or the list is complete.
    handed: Condvar,
    /// The pool's counters, for the results a waiting thread decodes.
    stats: Arc<Counters>,
}

/// The smallest results (in bytes) of one chunk that the handler hands over to a waiting
/// thread rather than decoding them itself.
const HANDOFF_MIN: usize = 16 * 1024;

/// Results on their way from the handler to a waiting thread that decodes them.
#[derive(Default)]
struct Handoff {
    /// Threads in [`Assist::assist`]: while there are any, results are handed over.
    assistants: usize,
    /// Of those, the ones waiting for results.
    sleeping: usize,
    pending: Vec<(Slots, Vec<u8>)>,
}

impl<R> MapSink<R> {
    /// The sink of a map of (probably) `len` items; it completes once
    /// [`Sink::total`] gave their number and all are in.
    pub(crate) fn new(
        len: usize,
        slot: Arc<Slot<Vec<R>>>,
        stats: Arc<Counters>,
    ) -> Arc<MapSink<R>> {
        // Room for the items the iterator said it holds, up to 256 MiB: an iterator whose
        // size hint is wrong (even `usize::MAX`) costs a regrowth, not an abort.
        let room = len.min((256 << 20) / std::mem::size_of::<R>().max(1));
        let state =
            MapState { values: Placed::with_capacity(room), error: None, received: 0, total: None };
        Arc::new(MapSink {
            state: Mutex::new(state),
            slot,
            handoff: Mutex::new(Handoff::default()),
            handed: Condvar::new(),
            stats,
        })
    }

    fn record_error(error: &mut Option<(usize, Error)>, index: usize, failure: Error) {
        if error.as_ref().is_none_or(|(first, _)| index < *first) {
            *error = Some((index, failure));
        }
    }

    fn finish_if_done(&self, mut state: MutexGuard<'_, MapState<R>>) {
        let Some(total) = state.total.filter(|&total| total == state.received) else { return };
        let values = std::mem::replace(&mut state.values, Placed::with_capacity(0));
        let result = match state.error.take() {
            Some((_, error)) => Err(error),
            None => values.into_vec(total).ok_or_else(|| {
                Error::UnpicklingError("a map's results did not cover its items".to_owned())
            }),
        };
        drop(state);
        self.slot.set(result);
        // Under the handoff's lock: an assisting thread checks the slot under it.
        drop(lock(&self.handoff));
        self.handed.notify_all();
    }
}

impl<R: DeserializeOwned + Send> Assist for MapSink<R> {
    fn assist(&self) {
        let mut handoff = lock(&self.handoff);
        handoff.assistants += 1;
        loop {
            if !handoff.pending.is_empty() {
                let batch = std::mem::take(&mut handoff.pending);
                drop(handoff);
                for (slots, results) in &batch {
                    self.decode(slots, results, &self.stats);
                }
                handoff = lock(&self.handoff);
            } else if self.slot.is_set() {
                break;
            } else {
                handoff.sleeping += 1;
                handoff = pyconc_core::sync::wait(&self.handed, handoff);
                handoff.sleeping -= 1;
            }
        }
        handoff.assistants -= 1;
    }
}

impl<R: DeserializeOwned + Send> Sink for MapSink<R> {
    fn total(&self, total: usize) {
        let mut state = lock(&self.state);
        state.total = Some(total);
        self.finish_if_done(state);
    }

    fn deliver(&self, slots: &Slots, results: &[u8], stats: &Counters) {
        // Small results are decoded at once: handing them over would cost more.
        if results.len() >= HANDOFF_MIN {
            let mut handoff = lock(&self.handoff);
            if handoff.assistants > 0 {
                handoff.pending.push((slots.clone(), results.to_vec()));
                let sleeping = handoff.sleeping > 0;
                drop(handoff);
                if sleeping {
                    self.handed.notify_one();
                }
                return;
            }
        }
        self.decode(slots, results, stats);
    }

    fn fail(&self, slots: &Slots, error: &dyn Fn() -> Error, stats: &Counters) {
        stats.failed.fetch_add(slots.len() as u64, Ordering::Relaxed);
        let mut state = lock(&self.state);
        state.received += slots.len();
        if let Some(first) = slots.iter().min() {
            Self::record_error(&mut state.error, first, error());
            state.values = Placed::with_capacity(0);
        }
        self.finish_if_done(state);
    }
}

impl<R: DeserializeOwned + Send> MapSink<R> {
    /// Decodes one chunk's results into their places.
    fn decode(&self, slots: &Slots, results: &[u8], stats: &Counters) {
        let mut guard = lock(&self.state);
        {
            let state = &mut *guard;
            state.received += slots.len();
            let MapState { values, error, .. } = state;
            // A list of places means an item of the chunk failed already: nothing to keep.
            let places = match slots {
                Slots::Range(range) if error.is_none() => values.writer(range.clone()),
                _ => None,
            };
            // (The writer records the places written when it drops, at the end of its arm.)
            match places {
                Some(mut places) => {
                    let first = places.start;
                    let count = slots.len();
                    match decode_plain(results, count, |value| places.push(value)) {
                        Some(Ok(())) => {
                            stats.done.fetch_add(count as u64, Ordering::Relaxed);
                        }
                        Some(Err((position, message))) => {
                            stats.done.fetch_add(position as u64, Ordering::Relaxed);
                            stats.failed.fetch_add((count - position) as u64, Ordering::Relaxed);
                            let failure = Error::UnpicklingError(message);
                            Self::record_error(error, first + position, failure);
                        }
                        None => decode(slots, results, stats, |index, outcome| match outcome {
                            Ok(value) => places.push(value),
                            Err(failure) => Self::record_error(error, index, failure),
                        }),
                    }
                }
                None => {
                    if let (Slots::Range(range), None) = (slots, &error) {
                        // Places already written: a chunk delivered twice (never expected).
                        let failure =
                            Error::UnpicklingError("a chunk's results arrived twice".to_owned());
                        Self::record_error(error, range.start, failure);
                    }
                    decode(slots, results, stats, |index, outcome: Result<R, Error>| {
                        if let Err(failure) = outcome {
                            Self::record_error(error, index, failure);
                        }
                    });
                }
            }
        }
        if guard.error.is_some() {
            // The results are not returned: free them now.
            guard.values = Placed::with_capacity(0);
        }
        self.finish_if_done(guard);
    }
}

/// Values written in place into the buffer of the `Vec` they end up in, a run of places
/// at a time, in any order; each place at most once (checked), so the buffer is handed
/// on only when every place was written.
///
/// Written by hand, with `unsafe`: a map's chunks come back in any order, and writing
/// each result straight into its place spares a second buffer and a copy of them all
/// (std's `Vec` fills only from the front; no crate offers a checked sparse fill).
struct Placed<R> {
    /// A `Vec<R>`'s buffer, with room for `capacity` values.
    buffer: NonNull<R>,
    capacity: usize,
    /// The run written last, `start..end`, kept out of `written` while the next writes
    /// extend it (results coming back in order, one item per chunk at `chunksize` 1).
    tail: Option<(usize, usize)>,
    /// The other runs of places written, `start → end`. No two runs (these and `tail`)
    /// overlap.
    written: BTreeMap<usize, usize>,
    _owns: PhantomData<R>,
}

// SAFETY: `Placed` owns the values in its buffer, as a `Vec<R>` does.
unsafe impl<R: Send> Send for Placed<R> {}

impl<R> Placed<R> {
    fn with_capacity(capacity: usize) -> Placed<R> {
        let mut buffer = ManuallyDrop::new(Vec::<R>::with_capacity(capacity));
        Placed {
            // A `Vec`'s pointer is never null (dangling, aligned when it has no room).
            buffer: NonNull::new(buffer.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            capacity: buffer.capacity(),
            tail: None,
            written: BTreeMap::new(),
            _owns: PhantomData,
        }
    }

    /// A writer for the places of `range`, or `None` if one of them was written before.
    fn writer(&mut self, range: Range<usize>) -> Option<Writer<'_, R>> {
        if self.tail.is_some_and(|(start, end)| start < range.end && range.start < end) {
            return None;
        }
        let before = self.written.range(..range.end).next_back();
        if before.is_some_and(|(_, &end)| end > range.start) {
            return None;
        }
        if range.end > self.capacity {
            self.grow(range.end);
        }
        let buffer = self.buffer;
        Some(Writer { buffer, next: range.start, end: range.end, start: range.start, placed: self })
    }

    /// Records the run `start..end`, just written.
    fn record(&mut self, start: usize, end: usize) {
        match self.tail {
            Some((tail, tail_end)) if tail_end == start => self.tail = Some((tail, end)),
            _ => {
                self.settle();
                self.tail = Some((start, end));
            }
        }
    }

    /// Moves the tail run into `written`, joined with the runs it touches.
    fn settle(&mut self) {
        let Some((mut start, mut end)) = self.tail.take() else { return };
        let written = &mut self.written;
        if let Some((&before, _)) =
            written.range(..start).next_back().filter(|(_, before_end)| **before_end == start)
        {
            start = before;
        }
        if let Some(after_end) = written.remove(&end) {
            end = after_end;
        }
        written.insert(start, end);
    }

    /// Moves the values to a buffer with room for at least `needed`.
    fn grow(&mut self, needed: usize) {
        self.settle();
        let mut larger = Placed::<R>::with_capacity(needed.max(self.capacity.saturating_mul(2)));
        for (&start, &end) in &self.written {
            // SAFETY: the places `start..end` of the old buffer hold values (recorded
            // when written) and are below `end ≤ capacity` of the new one; the buffers
            // are distinct allocations. The values move: the old runs are forgotten.
            unsafe {
                let from = self.buffer.as_ptr().add(start);
                std::ptr::copy_nonoverlapping(from, larger.buffer.as_ptr().add(start), end - start);
            }
        }
        larger.written = std::mem::take(&mut self.written);
        *self = larger;
    }

    /// The `Vec` of the values, if places `0..len` were all written; else `None` (and
    /// the values are dropped).
    fn into_vec(mut self, len: usize) -> Option<Vec<R>> {
        self.settle();
        let covered =
            self.written.iter().try_fold(0, |next, (&start, &end)| (start == next).then_some(end));
        if covered != Some(len) {
            return None;
        }
        self.written.clear();
        let placed = ManuallyDrop::new(self);
        // SAFETY: places `0..len` hold values (the runs written cover exactly them), in a
        // `Vec<R>`'s buffer of this capacity, handed on once (`self` is not dropped).
        Some(unsafe { Vec::from_raw_parts(placed.buffer.as_ptr(), len, placed.capacity) })
    }
}

impl<R> Drop for Placed<R> {
    fn drop(&mut self) {
        self.settle();
        for (&start, &end) in &self.written {
            // SAFETY: the places of each run written hold values, dropped once, here.
            unsafe {
                let run = std::ptr::slice_from_raw_parts_mut(
                    self.buffer.as_ptr().add(start),
                    end - start,
                );
                run.drop_in_place();
            }
        }
        // SAFETY: a `Vec<R>`'s buffer of this capacity, its values dropped above; freed
        // once, here.
        drop(unsafe { Vec::from_raw_parts(self.buffer.as_ptr(), 0, self.capacity) });
    }
}

/// Writes values into consecutive places of a [`Placed`] buffer; the places written
/// are recorded when it drops.
struct Writer<'a, R> {
    placed: &'a mut Placed<R>,
    /// The placed buffer (copied here, so that a hot loop keeps it in a register).
    buffer: NonNull<R>,
    start: usize,
    next: usize,
    end: usize,
}

impl<R> Writer<'_, R> {
    /// Writes `value` into the next place (a value beyond the writer's places is
    /// dropped).
    fn push(&mut self, value: R) {
        if self.next < self.end {
            // SAFETY: `next < end ≤ capacity` (`writer` grew the buffer to `end`), and
            // no run written before overlaps `start..end` (checked by `writer`); each
            // place is written once as `next` moves on.
            unsafe { self.buffer.as_ptr().add(self.next).write(value) };
            self.next += 1;
        }
    }
}

impl<R> Drop for Writer<'_, R> {
    fn drop(&mut self) {
        if self.next > self.start {
            self.placed.record(self.start, self.next);
        }
    }
}

/// Results of an `imap` that the iterator has not yielded yet.
struct ImapState<R> {
    by_index: BTreeMap<usize, Result<R, Error>>,
    in_order_of_arrival: VecDeque<Result<R, Error>>,
    /// The task polling the iterator as a `Stream` (feature `futures`), woken when
    /// results arrive.
    waker: Option<Waker>,
}

/// Holds an `imap`'s results until its iterator takes them.
pub(crate) struct ImapSink<R> {
    ordered: bool,
    state: Mutex<ImapState<R>>,
    arrived: Condvar,
}

impl<R> ImapState<R> {
    /// Takes the result the iterator yields next: item `next`'s (`ordered`), or the
    /// earliest to arrive.
    fn take_next(&mut self, ordered: bool, next: usize) -> Option<Result<R, Error>> {
        if ordered { self.by_index.remove(&next) } else { self.in_order_of_arrival.pop_front() }
    }
}

impl<R> ImapSink<R> {
    /// Tells the blocking iterator and the polling task (if any) that results arrived.
    fn announce(&self, mut state: MutexGuard<'_, ImapState<R>>) {
        let waker = state.waker.take();
        drop(state);
        self.arrived.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Stores outcomes `(index, outcome)` and tells the iterator.
    pub(crate) fn publish(&self, outcomes: Vec<(usize, Result<R, Error>)>) {
        let mut state = lock(&self.state);
        for (index, outcome) in outcomes {
            self.push(&mut state, index, outcome);
        }
        self.announce(state);
    }

    fn push(&self, state: &mut ImapState<R>, index: usize, outcome: Result<R, Error>) {
        if self.ordered {
            state.by_index.insert(index, outcome);
        } else {
            state.in_order_of_arrival.push_back(outcome);
        }
    }
}

impl<R: DeserializeOwned + Send> Sink for ImapSink<R> {
    fn deliver(&self, slots: &Slots, results: &[u8], stats: &Counters) {
        let mut state = lock(&self.state);
        decode(slots, results, stats, |index, outcome| self.push(&mut state, index, outcome));
        self.announce(state);
    }

    fn fail(&self, slots: &Slots, error: &dyn Fn() -> Error, stats: &Counters) {
        stats.failed.fetch_add(slots.len() as u64, Ordering::Relaxed);
        let mut state = lock(&self.state);
        for index in slots.iter() {
            self.push(&mut state, index, Err(error()));
        }
        self.announce(state);
    }
}

/// The lazy iterator of [`Pool::imap`](crate::PoolOf::imap) and [`Pool::imap_unordered`](crate::PoolOf::imap_unordered): yields each item's
/// result as it arrives (`imap`: in the items' order; `imap_unordered`: in the order they
/// finish).
///
/// Python: `IMapIterator` / `IMapUnorderedIterator`. Unlike CPython, which reads the whole
/// input at once, the input is read as the results are taken: at most a bounded number
/// of chunks are in the pool at a time, so an endless iterator works and memory stays
/// bounded. A failed item yields its `Err` and the iteration goes on. If the pool stops
/// running, the next item yields `Pool not running` and the iteration ends.
pub struct IMapIterator<T, R, I> {
    sink: Arc<ImapSink<R>>,
    input: Option<I>,
    /// Hands items to the pool: `(items, index of the first, where their results go)`.
    submit: Submit<T, R>,
    chunksize: usize,
    /// Items handed to the pool (or failed at once).
    submitted: usize,
    /// Items yielded.
    yielded: usize,
    /// Chunks in the pool at most.
    window: usize,
    /// A submission error to yield once.
    refused: Option<Error>,
}

/// How an [`IMapIterator`] hands items to its pool: `(items, index of the first, where
/// their results go)`.
pub(crate) type Submit<T, R> =
    Box<dyn Fn(Vec<T>, usize, &Arc<ImapSink<R>>) -> Result<(), Error> + Send + Sync>;

impl<T, R, I> IMapIterator<T, R, I>
where
    I: Iterator<Item = T>,
{
    /// The iterator over `input`, whose chunks `submit` hands to a pool of `workers`.
    pub(crate) fn new(
        submit: Submit<T, R>,
        input: I,
        chunksize: usize,
        ordered: bool,
        workers: usize,
    ) -> IMapIterator<T, R, I> {
        let sink = Arc::new(ImapSink {
            ordered,
            state: Mutex::new(ImapState {
                by_index: BTreeMap::new(),
                in_order_of_arrival: VecDeque::new(),
                waker: None,
            }),
            arrived: Condvar::new(),
        });
        let window = (64 * workers).max(1024);
        let mut iterator = IMapIterator {
            sink,
            input: Some(input),
            submit,
            chunksize,
            submitted: 0,
            yielded: 0,
            window,
            refused: None,
        };
        iterator.top_up();
        iterator
    }

    /// Hands the pool more input once fewer than half the window's chunks are out.
    fn top_up(&mut self) {
        let out = (self.submitted - self.yielded).div_ceil(self.chunksize);
        if out > self.window / 2 {
            return;
        }
        let Some(input) = self.input.as_mut() else { return };
        let mut items = Vec::new();
        let want = (self.window - out) * self.chunksize;
        items.extend(input.take(want));
        if items.len() < want {
            self.input = None;
        }
        if items.is_empty() {
            return;
        }
        let first = self.submitted;
        self.submitted += items.len();
        if let Err(error) = (self.submit)(items, first, &self.sink) {
            self.submitted = first;
            self.input = None;
            self.refused = Some(error);
        }
    }

    fn next_before(&mut self, deadline: Option<Instant>) -> Option<Result<R, Error>> {
        self.top_up();
        if self.yielded == self.submitted {
            return self.refused.take().map(Err);
        }
        let ordered = self.sink.ordered;
        let next = self.yielded;
        let state = lock(&self.sink.state);
        let mut state = wait_until(&self.sink.arrived, state, deadline, |s| {
            if ordered { s.by_index.contains_key(&next) } else { !s.in_order_of_arrival.is_empty() }
        });
        match state.take_next(ordered, next) {
            Some(outcome) => {
                self.yielded += 1;
                Some(outcome)
            }
            None => Some(Err(Error::TimeoutError)),
        }
    }

    /// The next result, waiting at most `timeout`; `None` at the end.
    ///
    /// Python: `IMapIterator.next(timeout)`.
    ///
    /// # Errors
    /// `Some(Err(Error::TimeoutError))` when no result came in time (the iteration can
    /// go on); the item's own failure otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = multiprocessing::Pool::new(Some(1))?;
    /// let mut results = pool.imap(|x: u64| x + 1, [1, 2])?;
    /// assert_eq!(results.next_timeout(Duration::from_secs(30)).unwrap()?, 2);
    /// assert_eq!(results.next_timeout(Duration::from_secs(30)).unwrap()?, 3);
    /// assert!(results.next_timeout(Duration::from_secs(30)).is_none(), "the end");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, Error>> {
        self.next_before(Instant::now().checked_add(timeout))
    }
}

impl<T, R, I> Iterator for IMapIterator<T, R, I>
where
    I: Iterator<Item = T>,
{
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        self.next_before(None)
    }
}

/// `while let Some(result) = StreamExt::next(&mut results).await` (feature `futures`; a
/// plain `.next()` would be `Iterator`'s, which blocks): the results as a
/// `futures::Stream`, without blocking the executor's thread; the pool's handler wakes the
/// polling task when results arrive. Items are handed to the pool as results are taken,
/// as the blocking iterator does.
#[cfg(feature = "futures")]
impl<T, R, I> futures_core::Stream for IMapIterator<T, R, I>
where
    I: Iterator<Item = T> + Unpin,
{
    type Item = Result<R, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<R, Error>>> {
        let this = self.get_mut();
        this.top_up();
        if this.yielded == this.submitted {
            return Poll::Ready(this.refused.take().map(Err));
        }
        let next = this.yielded;
        let mut state = lock(&this.sink.state);
        match state.take_next(this.sink.ordered, next) {
            Some(outcome) => {
                drop(state);
                this.yielded += 1;
                Poll::Ready(Some(outcome))
            }
            None => {
                // Under the results' lock: a delivery after this wakes the task.
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T, R, I> fmt::Debug for IMapIterator<T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapIterator")
            .field("ordered", &self.sink.ordered)
            .field("submitted", &self.submitted)
            .field("yielded", &self.yielded)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that counts its drops.
    struct Counted(Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn write(placed: &mut Placed<u32>, range: Range<usize>) -> bool {
        let Some(mut writer) = placed.writer(range.clone()) else { return false };
        for index in range {
            writer.push(index as u32 * 10);
        }
        true
    }

    #[test]
    fn runs_written_in_any_order_make_the_whole_vec() {
        let mut placed = Placed::with_capacity(10);
        assert!(write(&mut placed, 4..7));
        assert!(write(&mut placed, 0..2));
        assert!(write(&mut placed, 7..10));
        assert!(write(&mut placed, 2..4));
        placed.settle();
        assert_eq!(placed.written.len(), 1, "touching runs are joined: {:?}", placed.written);
        assert_eq!(placed.into_vec(10).unwrap(), (0..10).map(|i| i * 10).collect::<Vec<_>>());
    }

    #[test]
    fn a_place_is_written_once() {
        let mut placed = Placed::with_capacity(10);
        assert!(write(&mut placed, 3..6));
        for overlapping in [0..4, 5..8, 3..6, 4..5, 2..9] {
            assert!(!write(&mut placed, overlapping.clone()), "{overlapping:?}");
        }
        assert!(write(&mut placed, 0..3));
        assert!(write(&mut placed, 6..7));
    }

    #[test]
    fn a_buffer_with_a_hole_or_too_short_is_not_handed_on() {
        let mut placed = Placed::with_capacity(6);
        assert!(write(&mut placed, 0..2));
        assert!(write(&mut placed, 3..6));
        assert!(placed.into_vec(6).is_none());
        let mut placed = Placed::with_capacity(6);
        assert!(write(&mut placed, 0..6));
        assert!(placed.into_vec(7).is_none());
    }

    #[test]
    fn writing_past_the_capacity_grows_the_buffer_and_keeps_the_values() {
        let mut placed = Placed::with_capacity(2);
        assert!(write(&mut placed, 5..9));
        assert!(write(&mut placed, 0..5));
        assert!(write(&mut placed, 9..40));
        assert_eq!(placed.into_vec(40).unwrap(), (0..40).map(|i| i * 10).collect::<Vec<_>>());
    }

    #[test]
    fn values_not_handed_on_are_dropped_once() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut placed = Placed::with_capacity(4);
        {
            let mut writer = placed.writer(1..3).unwrap();
            writer.push(Counted(Arc::clone(&drops)));
            writer.push(Counted(Arc::clone(&drops)));
            // Beyond the writer's places: dropped at once.
            writer.push(Counted(Arc::clone(&drops)));
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        {
            let mut writer = placed.writer(3..10).unwrap();
            writer.push(Counted(Arc::clone(&drops)));
        }
        assert!(placed.into_vec(4).is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        let mut placed = Placed::with_capacity(2);
        placed.writer(0..2).unwrap().push(Counted(Arc::clone(&drops)));
        drop(placed);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
    }
}
