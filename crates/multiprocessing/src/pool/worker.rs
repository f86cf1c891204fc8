//! A pool worker: CPython's `multiprocessing.pool.worker`.
//!
//! It runs the initializer once, then reads chunks from its connection and answers each
//! with its results, until the pool says stop, the connection ends, or it has run
//! `maxtasksperchild` chunks. The pool may send several chunks in one message (so a worker
//! never waits for the next small task); each result is sent as soon as it is ready.

use std::sync::atomic::{AtomicPtr, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::task::{self, FromWorker, WorkerName};
use crate::{Connection, sys};

/// This worker's end of its channel, for the children it forks (a task may fork) to let
/// go of ([`detach_own_channel_in_child`]): the pool reuses a fork channel's rings once
/// its worker is gone, and no process outliving the worker may reach them then.
static OWN_CHANNEL: AtomicPtr<Connection> = AtomicPtr::new(std::ptr::null_mut());

/// In a forked child of a worker: the worker's end of its channel turns into `/dev/null`
/// and private memory (see [`Connection::detach_in_child`]); a no-op elsewhere.
pub(crate) fn detach_own_channel_in_child(null: Option<&sys::DevNull>) {
    let own = OWN_CHANNEL.load(Ordering::Acquire);
    // SAFETY: set only from a leaked `Box` (`main`), never freed: valid for the process's
    // life, and a child's copy of it too.
    if let Some(own) = unsafe { own.as_ref() } {
        // (Cleared only here: a write would copy the page in every child of a non-worker.)
        OWN_CHANNEL.store(std::ptr::null_mut(), Ordering::Release);
        own.detach_in_child(null);
    }
}

/// Whether this process is a worker that has a channel to let go of in its children.
pub(crate) fn has_own_channel() -> bool {
    !OWN_CHANNEL.load(Ordering::Acquire).is_null()
}

/// What a worker process is started with.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerArgs<A> {
    pub(crate) conn: Connection,
    /// The initializer's offset and argument.
    pub(crate) initializer: Option<(u64, A)>,
    pub(crate) maxtasks: Option<usize>,
}

/// The worker's whole life; the process exits when it returns.
pub(crate) fn main<A>(args: WorkerArgs<A>)
where
    A: Serialize + DeserializeOwned + Send + 'static,
{
    let WorkerArgs { conn, initializer, maxtasks } = args;
    // Never dropped: the process ends after this returns, and its end closes the
    // connection. Dropping it would unmap its rings and close its socket first, for
    // nothing (a tenth of a forked worker's exit, in `perf`).
    let conn: &'static Connection = Box::leak(Box::new(conn));
    OWN_CHANNEL.store(std::ptr::from_ref(conn).cast_mut(), Ordering::Release);
    if let Some((function, argument)) = initializer {
        if let Err(panic) = task::run_initializer(function, argument, WorkerName::CurrentProcess) {
            let mut out = Vec::new();
            if task::append(&FromWorker::InitFailed(panic), &mut out).is_ok() {
                let _ = conn.send_bytes(&out);
            }
            return;
        }
    }
    let (mut frame, mut answer) = (Vec::new(), Vec::new());
    let mut completed = 0;
    loop {
        if conn.recv_bytes_into(&mut frame).is_err() {
            return; // the pool is gone
        }
        let go_on = task::run_frame(&frame, WorkerName::CurrentProcess, &mut answer, |answer| {
            // Sent at once, never held back: when this worker dies, every result it
            // finished has reached the pool, so the pool knows which chunk was running.
            completed += 1;
            // CPython: the worker exits after maxtasksperchild tasks.
            conn.send_bytes(answer).is_ok() && maxtasks.is_none_or(|max| completed < max)
        });
        if !go_on {
            return;
        }
    }
}
