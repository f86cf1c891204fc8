//! A pool worker: CPython's `multiprocessing.pool.worker`.
//!
//! It runs the initializer once, then reads chunks from its connection and answers each
//! with its results, until the pool says stop, the connection ends, or it has run
//! `maxtasksperchild` chunks. The pool may send several chunks in one message (so a worker
//! never waits for the next small task); each result is sent as soon as it is ready.

use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::task::{self, ChunkEntry, FromWorker, ToWorker};
use crate::{Connection, current_process, start};

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
    let name = current_process().name();
    if let Some((function, argument)) = initializer {
        if let Err(panic) = task::run_initializer(function, argument, &name) {
            let mut out = Vec::new();
            if task::append(&FromWorker::InitFailed(panic), &mut out).is_ok() {
                let _ = conn.send_bytes(&out);
            }
            return;
        }
    }
    let mut frame = Vec::new();
    let mut out = Vec::new();
    let mut results = Vec::new();
    let mut completed = 0;
    loop {
        if conn.recv_bytes_into(&mut frame).is_err() {
            return; // the pool is gone
        }
        let mut rest = frame.as_slice();
        while !rest.is_empty() {
            let Ok((header, after)) = postcard::take_from_bytes::<ToWorker>(rest) else {
                return; // not a pool's frame: nothing sensible to do
            };
            let (job, entry, function, count, len) = match header {
                ToWorker::Run { job, entry, function, count, len } => {
                    (job, entry, function, count, len as usize)
                }
                ToWorker::Stop => return,
            };
            let Some(items) = after.get(..len) else { return };
            rest = &after[len..];
            // SAFETY: `entry` is the offset of a `ChunkEntry` of this binary, taken by the
            // pool from `task::entry_of` in a process running the same binary.
            let entry: ChunkEntry =
                unsafe { std::mem::transmute::<usize, ChunkEntry>(start::address(entry)) };
            let started = Instant::now();
            results.clear();
            entry(function, count, items, &mut results, &name);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let len = u32::try_from(results.len()).unwrap_or(u32::MAX);
            out.clear();
            if task::append(&FromWorker::Done { job, nanos, len }, &mut out).is_err() {
                return;
            }
            out.extend_from_slice(&results);
            // Sent at once, never held back: when this worker dies, every result it
            // finished has reached the pool, so the pool knows which chunk was running.
            if conn.send_bytes(&out).is_err() {
                return;
            }
            completed += 1;
            if maxtasks.is_some_and(|max| completed >= max) {
                return; // CPython: the worker exits after maxtasksperchild tasks
            }
        }
    }
}
