//! A process's feeder threads: CPython's `Queue._feed`, started only when a frame does not
//! fit the pipe now.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};

use pyconc_core::sync::lock;

use pyconc_core::exit::AtExit;
use pyconc_core::fork::{ForkMutex, ForkMutexGuard};

use super::channel::{Channel, Outgoing};
use crate::{Error, sys};

/// This process's feeder for one queue: frames waiting for room in the pipe.
pub(super) struct Feeder {
    pub(super) state: Mutex<FeederState>,
    pub(super) changed: Condvar,
    /// Frames pending or being written: while 0, `put` may write directly without
    /// taking `state` (the items of every thread before it are all written).
    pub(super) backlog: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
pub(super) struct FeederState {
    pub(super) pending: VecDeque<Vec<u8>>,
    /// Frames taken off `pending` and being written.
    pub(super) writing: usize,
    /// Holds the channel alive while frames are pending (the thread keeps only a `Weak`).
    pub(super) keep_alive: Option<Arc<Channel>>,
    pub(super) closing: bool,
    pub(super) running: bool,
}

/// Every feeder of this process, by channel address. Held across `fork()` (order 40) and
/// emptied in the child: a child has no feeder threads, and must not touch the parent's.
/// Their pending items are the parent's to write (CPython's `Queue._after_fork`); they
/// are leaked, as their locks may be held by threads that are gone.
pub(super) type Feeders = HashMap<usize, Arc<Feeder>>;
pub(super) static FEEDERS: ForkMutex<Option<Feeders>> =
    ForkMutex::new(None, 40, |feeders| std::mem::forget(feeders.take()));

/// CPython's queue finalizer of priority −5: at exit, the feeders write what is pending.
pub(super) static FLUSH_AT_EXIT: AtExit = AtExit::new(flush_feeders_at_exit, -5);

pub(super) fn feeders_slot() -> ForkMutexGuard<Option<Feeders>> {
    FEEDERS.lock()
}

pub(super) fn feeder_of(channel: &Arc<Channel>) -> Arc<Feeder> {
    let me = sys::getpid();
    if let Some((pid, feeder)) = channel.feeder.get() {
        if *pid == me {
            return Arc::clone(feeder);
        }
    }
    let feeder = registered_feeder(channel);
    let _ = channel.feeder.set((me, Arc::clone(&feeder)));
    feeder
}

pub(super) fn registered_feeder(channel: &Arc<Channel>) -> Arc<Feeder> {
    let key = Arc::as_ptr(channel) as usize;
    let mut slot = feeders_slot();
    let feeders = slot.get_or_insert_with(HashMap::new);
    Arc::clone(feeders.entry(key).or_insert_with(|| {
        Arc::new(Feeder {
            state: Mutex::new(FeederState::default()),
            changed: Condvar::new(),
            backlog: std::sync::atomic::AtomicUsize::new(0),
        })
    }))
}

/// Puts one frame: at once if the pipe takes it and nothing of this process is waiting
/// before it, else through the feeder.
/// Writes `frame` straight into the pipe when it has room and nothing of this process is
/// pending (no allocation for a small frame), else hands it to the feeder.
pub(super) fn send(channel: &Arc<Channel>, frame: Outgoing) -> Result<(), Error> {
    let feeder = feeder_of(channel);
    if feeder.backlog.load(Ordering::Acquire) == 0 && channel.try_write_frame(frame.bytes())? {
        return Ok(());
    }
    hand_to_feeder(channel, &feeder, frame.into_vec())
}

/// Queues `frame` behind this process's earlier ones, starting the feeder thread if needed.
pub(super) fn hand_to_feeder(
    channel: &Arc<Channel>,
    feeder: &Arc<Feeder>,
    frame: Vec<u8>,
) -> Result<(), Error> {
    let mut state = lock(&feeder.state);
    feeder.backlog.fetch_add(1, Ordering::AcqRel);
    state.pending.push_back(frame);
    state.keep_alive = Some(Arc::clone(channel));
    if !state.running {
        let (for_thread, weak) = (Arc::clone(feeder), Arc::downgrade(channel));
        pyconc_core::helper::spawn("pyconc-queue-feeder", move || feed(&for_thread, &weak))
            .map_err(Error::OsError)?;
        state.running = true;
        FLUSH_AT_EXIT.install();
    }
    feeder.changed.notify_all();
    Ok(())
}

/// The feeder thread: writes pending frames in order; ends when its queue is closed (or
/// gone) and nothing is pending.
pub(super) fn feed(feeder: &Feeder, channel: &Weak<Channel>) {
    loop {
        let (frame, channel) = {
            let mut state = lock(&feeder.state);
            loop {
                if let Some(frame) = state.pending.pop_front() {
                    state.writing += 1;
                    break (frame, state.keep_alive.clone().or_else(|| channel.upgrade()));
                }
                state.keep_alive = None;
                if state.closing || channel.strong_count() == 0 {
                    state.running = false;
                    feeder.changed.notify_all();
                    return;
                }
                state = pyconc_core::sync::wait(&feeder.changed, state);
            }
        };
        if let Some(channel) = &channel {
            if let Err(error) = channel.write_frame(&frame) {
                eprintln!("multiprocessing: a queue's feeder could not write an item: {error}");
            }
        }
        let mut state = lock(&feeder.state);
        state.writing -= 1;
        feeder.backlog.fetch_sub(1, Ordering::AcqRel);
        if state.pending.is_empty() && state.writing == 0 {
            state.keep_alive = None;
        }
        feeder.changed.notify_all();
    }
}

/// Waits until `feeder` has written everything (CPython's `Queue.join_thread`).
pub(super) fn flush(feeder: &Feeder) {
    let mut state = lock(&feeder.state);
    while !state.pending.is_empty() || state.writing > 0 {
        state = pyconc_core::sync::wait(&feeder.changed, state);
    }
}

/// At exit: waits for every feeder of this process whose queue did not cancel that.
pub(super) fn flush_feeders_at_exit() {
    let feeders: Vec<Arc<Feeder>> =
        feeders_slot().as_ref().map(|f| f.values().cloned().collect()).unwrap_or_default();
    for feeder in feeders {
        let cancelled = lock(&feeder.state)
            .keep_alive
            .as_ref()
            .is_some_and(|c| c.cancel_join.load(Ordering::Relaxed));
        if !cancelled {
            flush(&feeder);
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Tell an idle feeder thread that its queue is gone.
        let key = self as *const Channel as usize;
        let feeder = feeders_slot().as_mut().and_then(|f| f.remove(&key));
        if let Some(feeder) = feeder {
            lock(&feeder.state).closing = true;
            feeder.changed.notify_all();
        }
    }
}
