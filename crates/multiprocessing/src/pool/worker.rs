//! A pool worker: CPython's `multiprocessing.pool.worker`.
//!
//! It runs the initializer once, then reads chunks from its connection and answers each
//! with its results, until the pool says stop, the connection ends, or it has run
//! `maxtasksperchild` chunks. The pool may send several chunks in one message (so a worker
//! never waits for the next small task); each result is sent as soon as it is ready.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::task::{self, FromWorker, WorkerName};
use crate::Connection;

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
    let conn = std::mem::ManuallyDrop::new(conn);
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
