//! The pool's handler: CPython's three pool threads (worker handler, task handler,
//! result handler) in one.
//!
//! It is run by whoever drives the pool (`Shared::drive_until`): a caller that waits for
//! its own results while nothing else needs the pool — `apply`, a small `map`, `join` —
//! or, from the first time something does (work whose caller goes on, whose callbacks
//! run in that thread as CPython's do; two callers at once; workers to replace), the
//! pool's own thread ([`run_thread`]). A pool used only by callers that wait has no
//! thread: a task and its result go straight between the caller and the worker, and a
//! new pool's first task does not wait for a thread to start.
//!
//! Each worker has its own connection, and the handler knows which chunks each worker
//! holds, in order. It sleeps in `poll` on a wake-up eventfd (new work, close,
//! terminate), every worker's connection (results) and every worker's sentinel (death).
//! That is what lets it do what CPython's pool cannot: when a worker dies, the first chunk
//! it held — the one it was running — fails with [`Error::WorkerDied`], the chunks queued
//! behind it go back to the queue, and a new worker takes its place. Nothing waits forever.
//!
//! Throughput: a worker holds up to a *window* of chunks, so it never waits for the
//! handler between two small tasks. The window follows how long the submission's chunks
//! take (about [`WINDOW_WORK`] of work in hand, at most [`MAX_WINDOW`] chunks; one chunk
//! until the first comes back), so long tasks are handed out one at a time and spread
//! evenly over the workers. A worker whose results arrive gets its next chunks before
//! they are decoded, and a `map`'s large results go undecoded to a thread that waits for
//! the list, when one does (`result.rs`'s `Assist`): the handler keeps moving messages
//! meanwhile.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::result::lock;
use super::task::{self, FromWorker, RemotePanic};
use super::{Chunk, Part, Shared, StartWorker, StartedWorker, Status, Submission, closure};
use crate::error::POOL_TERMINATED;
use crate::sys;
use crate::{Connection, Error, Process};

/// How much work (in nanoseconds) a worker should hold.
const WINDOW_WORK: f64 = 200_000.0;
/// The most chunks a worker holds. Tiny tasks need many in hand: every refill is a
/// round trip through this thread, and with 64 (as before) a worker ran through its
/// window in a few microseconds, so the two sides woke each other all the time
/// (`docs/BENCHMARKS.md` has the measurements).
const MAX_WINDOW: usize = 1024;
/// How long a worker asked to stop (or terminated) may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How many times in a row the handler may find results waiting and take them without
/// `poll` — which also looks at the wake-up eventfd and the workers' sentinels — before
/// it polls anyway (without sleeping, as the fds of those results are readable).
const MAX_UNPOLLED: u32 = 16;

/// How many chunks a worker should hold, given the average time of a chunk (`None`:
/// nothing measured yet, so one).
pub(crate) fn window_for(chunk_nanos: Option<f64>) -> usize {
    match chunk_nanos {
        None => 1,
        // (Tiny tasks, timed several times a frame: no division needed.)
        Some(nanos) if nanos * MAX_WINDOW as f64 <= WINDOW_WORK => MAX_WINDOW,
        Some(nanos) => ((WINDOW_WORK / nanos.max(1.0)).ceil() as usize).clamp(1, MAX_WINDOW),
    }
}

/// The running average of chunk times, after a chunk that took `nanos` (0: a chunk
/// whose time the worker did not read, which leaves it as it was).
pub(crate) fn average_with(average: Option<f64>, nanos: u64) -> Option<f64> {
    if nanos == 0 {
        return average;
    }
    let nanos = nanos as f64;
    Some(match average {
        None => nanos,
        Some(average) => average * 0.75 + nanos * 0.25,
    })
}

/// A worker as the handler sees it.
pub(crate) struct Worker {
    pub(crate) process: Process,
    pub(crate) conn: Arc<Connection>,
    /// Its channel's rings may be reused once it is reaped (`StartedWorker`).
    rings_reusable: bool,
    /// The chunks sent to it and not delivered yet, oldest first, in parts (a chunk, or
    /// some of a run), with the job number of each part's first chunk (its chunks have
    /// the numbers that follow).
    in_flight: VecDeque<(u64, Part)>,
    /// How many chunks `in_flight` holds.
    held: usize,
    /// How many chunks at the front of `in_flight` it has answered, their results not
    /// delivered yet (only while `Handler::results` runs; 0 otherwise).
    answered: usize,
    /// How many chunks it was given (for `maxtasksperchild`).
    given: usize,
    /// Its connection ended: it is dying.
    gone: bool,
    /// Its connection's wake-up was taken out of the fd, by a read that found nothing:
    /// the fd stays quiet until the worker sends more (see `Handler::wait_and_handle`).
    settled: bool,
    /// It runs the closures numbered below this (`closure.rs`).
    generation: u64,
    /// It was asked to exit, to make way for a worker that knows a newer closure.
    retiring: bool,
}

impl Worker {
    /// Starts a worker with `start`; it will know every closure registered so far.
    pub(crate) fn start(
        start: impl FnOnce() -> Result<StartedWorker, Error>,
    ) -> Result<Worker, Error> {
        let generation = closure::generation();
        let StartedWorker { process, conn, rings_reusable } = start()?;
        Ok(Worker {
            process,
            conn,
            rings_reusable,
            in_flight: VecDeque::new(),
            held: 0,
            answered: 0,
            given: 0,
            gone: false,
            // Nothing was read from a new connection: its fd is quiet until the worker
            // sends (a fresh ring's first message writes a wake-up).
            settled: true,
            generation,
            retiring: false,
        })
    }

    /// Its process, and its channel if the channel's rings may be reused once the process
    /// is reaped ([`reuse_rings_of`]); else the channel is dropped now.
    fn into_process(self) -> (Process, Option<Arc<Connection>>) {
        (self.process, self.rings_reusable.then_some(self.conn))
    }

    /// Once its process was joined: [`reuse_rings_of`] it.
    fn reuse_rings_once_joined(self) {
        let (process, channel) = self.into_process();
        reuse_rings_of(&process, channel);
    }

    /// How many chunks it holds: sent and not answered.
    fn holding(&self) -> usize {
        self.held - self.answered
    }

    /// Whether it can take a chunk of `submission` now.
    fn can_take(&self, submission: &Submission, maxtasks: Option<usize>) -> bool {
        !self.gone
            && !self.retiring
            && self.holding() < submission.window()
            && maxtasks.is_none_or(|max| self.given < max)
            && self.generation >= submission.task.needs
    }
}

pub(crate) struct Handler {
    shared: Arc<Shared>,
    start_worker: StartWorker,
    maxtasks: Option<usize>,
    workers: Vec<Worker>,
    next_job: u64,
    /// Where the next round of hand-outs starts, so no worker is always first.
    turn: usize,
    /// The buffer for a batch of messages from a worker.
    frames: Vec<u8>,
    /// Where each message of the batch ends in `frames`.
    ends: Vec<usize>,
    /// The buffer for where the results of the chunks answered in a batch are in
    /// `frames` (empty between batches). The chunks stay at the front of their worker's
    /// `in_flight` until delivered: moved once, not twice.
    done: Vec<std::ops::Range<usize>>,
    /// The buffer for messages of several chunks to a worker.
    outgoing: Vec<u8>,
    /// How many times in a row results were taken without `poll` (`MAX_UNPOLLED`).
    unpolled: u32,
}

impl Handler {
    pub(crate) fn new(
        shared: Arc<Shared>,
        start_worker: StartWorker,
        maxtasks: Option<usize>,
        workers: Vec<Worker>,
    ) -> Handler {
        Handler {
            shared,
            start_worker,
            maxtasks,
            workers,
            next_job: 0,
            turn: 0,
            frames: Vec::new(),
            ends: Vec::new(),
            done: Vec::new(),
            outgoing: Vec::new(),
            unpolled: 0,
        }
    }

    /// One round of the handler's loop: hands out what is queued; stops the workers if
    /// the pool is terminated, or closed with nothing left to do; else sleeps until
    /// something happens, and handles it.
    pub(crate) fn round(&mut self) -> Round {
        match self.hand_out() {
            Status::Terminate => {
                self.terminate();
                return Round::Ended;
            }
            Status::Close if self.idle() => {
                self.stop_workers();
                return Round::Ended;
            }
            _ => {}
        }
        self.wait_and_handle();
        Round::Going
    }

    /// Handles what happened while nobody drove the pool (results, workers that died),
    /// without sleeping.
    pub(crate) fn take_news(&mut self) {
        // `poll`, not the results alone: it also looks at the workers' sentinels.
        self.poll_and_handle(Some(Duration::ZERO));
    }

    /// Some worker was told to exit, or will exit by itself (`maxtasksperchild`).
    pub(crate) fn workers_exiting(&self) -> bool {
        self.workers.iter().any(|w| w.retiring || self.maxtasks.is_some_and(|max| w.given >= max))
    }

    /// Gives queued chunks to workers with room — in rounds, each worker taking its
    /// share of what is queued as one run of chunks — and returns the pool's status.
    fn hand_out(&mut self) -> Status {
        // Per worker: the chunks and parts it was given in this round, and their bytes.
        let mut given = vec![Given::default(); self.workers.len()];
        // The items handed out (counted once, after the round).
        let mut running = 0;
        let (status, waiting) = {
            let mut state = lock(&self.shared.state);
            if state.status != Status::Terminate {
                let count = self.workers.len();
                let mut progress = true;
                while progress && !state.queue.is_empty() {
                    progress = false;
                    // Each worker's share of the queue, taken in one run: its results
                    // then fill one run of places.
                    let share = state.queue.len().div_ceil(count);
                    for k in 0..count {
                        let i = (self.turn + k) % count;
                        let (worker, mine) = (&mut self.workers[i], &mut given[i]);
                        let mut taken = 0;
                        while taken < share {
                            let Some(submission) = state.queue.front() else { break };
                            if !worker.can_take(submission, self.maxtasks) {
                                break;
                            }
                            let room = (submission.window() - worker.holding())
                                .min(self.maxtasks.map_or(usize::MAX, |max| max - worker.given));
                            // One message stays within the workers' frame limit.
                            let bytes = task::ENTRY_LIMIT.saturating_sub(mine.bytes);
                            let most = room.min(share - taken);
                            let Some((part, size)) =
                                state.queue.take(most, bytes, mine.chunks == 0)
                            else {
                                break;
                            };
                            let chunks = part.len();
                            let job = self.next_job;
                            self.next_job += chunks as u64;
                            running += part.items() as u64;
                            worker.given += chunks;
                            worker.held += chunks;
                            worker.in_flight.push_back((job, part));
                            *mine = Given {
                                chunks: mine.chunks + chunks,
                                parts: mine.parts + 1,
                                bytes: mine.bytes + size,
                            };
                            taken += chunks;
                            progress = true;
                        }
                    }
                }
                self.turn = self.turn.wrapping_add(1);
            }
            (state.status, state.queue.front().map(|submission| submission.task.needs))
        };
        self.shared.stats.running.fetch_add(running, Ordering::Relaxed);
        if let (Status::Run | Status::Close, Some(needs)) = (status, waiting) {
            self.retire_older_than(needs);
        }
        let frame = &mut self.outgoing;
        for (worker, mine) in self.workers.iter_mut().zip(&given) {
            // The parts given in this round are the last ones it holds.
            if mine.chunks == 0 {
                continue;
            }
            let first = worker.in_flight.len() - mine.parts;
            // Alone: straight from the chunk's buffer.
            let alone = match worker.in_flight.back_mut() {
                Some((job, Part::Chunk(chunk))) if mine.chunks == 1 => task::run_alone(*job, chunk),
                _ => None,
            };
            let sent = match alone {
                Some(message) => worker.conn.send_bytes(message),
                None => {
                    frame.clear();
                    let chunks = worker.in_flight.range(first..).flat_map(|(job, part)| {
                        (0..part.len())
                            .map(move |at| (job + at as u64, part.submission(), part.piece(at)))
                    });
                    task::append_runs(chunks, frame);
                    worker.conn.send_bytes(frame)
                }
            };
            if sent.is_err() {
                // It is dying; its sentinel will say so.
                worker.gone = true;
            }
        }
        status
    }

    /// A closure task waits for a worker forked after it was made: ask the idle workers
    /// forked before to exit (each is replaced when its sentinel fires).
    fn retire_older_than(&mut self, needs: u64) {
        let stop = task::stop_frame();
        for worker in &mut self.workers {
            if worker.generation < needs && !worker.retiring && worker.in_flight.is_empty() {
                worker.retiring = true;
                if worker.conn.send_bytes(&stop).is_err() {
                    worker.gone = true;
                }
            }
        }
    }

    /// Nothing queued and nothing held by a worker.
    fn idle(&self) -> bool {
        self.workers.iter().all(|w| w.in_flight.is_empty()) && !lock(&self.shared.state).has_work()
    }

    /// Sleeps until something happens, then handles it.
    ///
    /// Results that came while this thread was busy are taken first, without a system
    /// call: their connections keep their wake-ups (see `ring.rs`), so a worker that
    /// keeps sending makes no system call either. Only when nothing came does it take
    /// the wake-ups out of the fds, and then sleeps in `poll`; a worker's next message
    /// writes one and wakes it. (Before, every batch read took the wake-up out — a read
    /// here and a write in the worker per batch, sleeping or not.)
    fn wait_and_handle(&mut self) {
        if self.unpolled < MAX_UNPOLLED {
            self.unpolled += 1;
            if self.take_arrived(false) || self.take_arrived(true) {
                return;
            }
        }
        self.poll_and_handle(None);
    }

    /// Waits in `poll`, at most `timeout`, on the wake-up eventfd, every worker's
    /// connection and every worker's sentinel, and handles what it finds.
    fn poll_and_handle(&mut self, timeout: Option<Duration>) {
        self.unpolled = 0;
        let waiters: Vec<_> = self.workers.iter().map(|w| w.process.waiter()).collect();
        let mut fds = vec![self.shared.wake.as_fd()];
        // (worker, is its sentinel) for each fd after the first.
        let mut owners = Vec::new();
        for (i, (worker, waiter)) in self.workers.iter().zip(&waiters).enumerate() {
            if !worker.gone {
                fds.push(worker.conn.as_fd());
                owners.push((i, false));
            }
            if let Some(waiter) = waiter {
                fds.push(waiter.sentinel());
                owners.push((i, true));
            }
        }
        let ready = match sys::wait_any_readable(&fds, timeout) {
            Ok(ready) => ready,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(1));
                return;
            }
        };
        drop(fds);
        let mut died = Vec::new();
        let mut init_failed = None;
        for index in ready {
            if index == 0 {
                sys::eventfd_clear(self.shared.wake.as_fd());
                continue;
            }
            let (worker, sentinel) = owners[index - 1];
            if sentinel {
                died.push(worker);
            } else if let (_, Some(panic)) = self.read_results(worker, false) {
                init_failed = Some(panic);
            }
        }
        drop(waiters);
        if let Some(panic) = init_failed {
            self.init_failed(panic);
            return;
        }
        // Highest index first, so the others keep their places while removed.
        died.sort_unstable();
        for worker in died.into_iter().rev() {
            self.worker_died(worker);
        }
    }

    /// A worker's initializer panicked. CPython starts worker after worker forever; here
    /// the pool is broken and every task, now and later, fails with the panic.
    fn init_failed(&mut self, panic: RemotePanic) {
        self.break_pool(Arc::new(move || Error::RemoteTraceback(panic.clone())));
    }

    /// Takes the results that have arrived from every worker, without sleeping; whether
    /// there were any. Without `settle`, only connections with something in their buffer
    /// or ring are read, and their wake-ups stay. With it, every connection not settled
    /// yet is read until nothing is left, then left quiet (its wake-up out of the fd),
    /// ready for `poll`.
    fn take_arrived(&mut self, settle: bool) -> bool {
        let mut took = false;
        for index in 0..self.workers.len() {
            let worker = &self.workers[index];
            let look = if settle { !worker.settled } else { worker.conn.has_buffered() };
            if worker.gone || !look {
                continue;
            }
            let (count, init_failed) = self.read_results(index, settle);
            took |= count > 0;
            if let Some(panic) = init_failed {
                self.init_failed(panic);
                return true;
            }
        }
        took
    }

    /// Reads and delivers every whole result message a worker has sent (`settle`: as
    /// [`Connection::try_recv_all_into`]'s); returns how many there were, and the panic
    /// of its initializer if it reported one.
    fn read_results(&mut self, index: usize, settle: bool) -> (usize, Option<RemotePanic>) {
        let (mut frames, mut ends) =
            (std::mem::take(&mut self.frames), std::mem::take(&mut self.ends));
        let mut init_failed = None;
        let mut count = 0;
        loop {
            frames.clear();
            ends.clear();
            match self.workers[index].conn.try_recv_all_into(&mut frames, &mut ends, settle) {
                Ok(0) => {
                    self.workers[index].settled = settle;
                    break;
                }
                Ok(got) => {
                    count += got;
                    if let Some(panic) = self.results(index, &frames, &ends) {
                        init_failed = Some(panic);
                    }
                }
                Err(_) => {
                    self.workers[index].gone = true;
                    break;
                }
            }
        }
        (self.frames, self.ends) = (frames, ends);
        (count, init_failed)
    }

    /// Handles messages of results (`frames`, each ending at its offset in `ends`): the
    /// worker gets its next chunks first, so that it works while this thread decodes
    /// these.
    fn results(&mut self, index: usize, frames: &[u8], ends: &[usize]) -> Option<RemotePanic> {
        // Where the results of the chunks answered are in `frames`.
        let mut done = std::mem::take(&mut self.done);
        // The items of the chunks answered (counted once, before they are delivered).
        let mut finished = 0;
        // The window of the submission of the last chunk answered.
        let mut window = 1;
        // The next answer due: (a part of `in_flight`, a chunk of it). Every answer of a
        // call before was delivered, so it starts at the front.
        let mut due = (0, 0);
        let mut init_failed = None;
        let mut start = 0;
        for &end in ends {
            let mut frame = &frames[start..end];
            start = end;
            while !frame.is_empty() {
                let Ok((header, rest)) = postcard::take_from_bytes::<FromWorker>(frame) else {
                    break; // not a worker's message; its chunks fail if it dies
                };
                match header {
                    FromWorker::Done { job, nanos, len } => {
                        let Some(after) = rest.get(len as usize..) else { break };
                        // Where the results are in `frames` (`rest` ends where the message does).
                        let results = end - rest.len()..end - after.len();
                        frame = after;
                        let worker = &mut self.workers[index];
                        // The oldest chunk it holds, past those answered before.
                        let Some((first, part)) = worker.in_flight.get(due.0) else { break };
                        if first + due.1 as u64 != job {
                            break;
                        }
                        finished += u64::from(part.piece(due.1).count);
                        let submission = part.submission();
                        submission.chunk_took(nanos);
                        window = submission.window();
                        due = if due.1 + 1 == part.len() {
                            (due.0 + 1, 0)
                        } else {
                            (due.0, due.1 + 1)
                        };
                        worker.answered += 1;
                        done.push(results);
                    }
                    FromWorker::InitFailed(panic) => {
                        init_failed = Some(panic);
                        break;
                    }
                }
            }
        }
        self.shared.stats.running.fetch_sub(finished, Ordering::Relaxed);
        // Before decoding, refill the worker if it runs low (the loop in `run` hands out
        // the rest once this wake-up is handled).
        if !done.is_empty() && self.workers[index].holding() < window.div_ceil(2) {
            self.hand_out();
        }
        let worker = &mut self.workers[index];
        for results in done.drain(..) {
            let Some((job, part)) = worker.in_flight.front_mut() else { break };
            part.deliver_first(&frames[results], &self.shared.stats);
            worker.held -= 1;
            if part.drop_first() {
                worker.in_flight.pop_front();
            } else {
                *job += 1;
            }
        }
        worker.answered = 0;
        self.done = done;
        init_failed
    }

    /// Fails `chunk`'s items with `error`.
    fn fail(&self, chunk: &Chunk, error: &dyn Fn() -> Error) {
        chunk.submission.sink.fail(&chunk.slots, error, &self.shared.stats);
    }

    /// A worker's sentinel fired: collect its last results, fail the chunk it was
    /// running, requeue the ones behind it, and replace it.
    fn worker_died(&mut self, index: usize) {
        if let (_, Some(panic)) = self.read_results(index, true) {
            self.init_failed(panic);
            return;
        }
        let mut worker = self.workers.remove(index);
        self.shared.forget_worker(&worker.process);
        let _ = worker.process.join();
        let running: u64 = worker.in_flight.iter().map(|(_, part)| part.items() as u64).sum();
        self.shared.stats.running.fetch_sub(running, Ordering::Relaxed);
        let terminating = lock(&self.shared.state).status == Status::Terminate;
        // Terminating: what it held fails as terminated, below.
        let running = if terminating { None } else { worker.in_flight.pop_front() };
        if let Some((job, part)) = running {
            // The rest of its part had not started.
            let (chunk, rest) = part.take_first();
            if let Some(rest) = rest {
                worker.in_flight.push_front((job + 1, rest));
            }
            let how = match worker.process.exitcode() {
                Some(code) if code < 0 => {
                    format!("it was killed by signal {} ({})", -code, sys::signal_name(-code))
                }
                Some(code) => format!("it exited with code {code}"),
                None => "its end is unknown".to_owned(),
            };
            let message = format!(
                "the pool worker {} (pid {}) died while running this task: {how}",
                worker.process.name(),
                worker.process.pid().unwrap_or(0),
            );
            self.fail(&chunk, &|| Error::WorkerDied(message.clone()));
        }
        let replace = {
            let mut state = lock(&self.shared.state);
            // The chunks behind the one that ran had not started: they go first again.
            for (_, part) in worker.in_flight.drain(..).rev() {
                state.queue.push_front(part);
            }
            let work_left =
                state.has_work() || self.workers.iter().any(|w| !w.in_flight.is_empty());
            state.broken.is_none()
                && !pyconc_core::exit::is_exiting()
                && match state.status {
                    Status::Run => true,
                    Status::Close => work_left,
                    Status::Terminate => false,
                }
        };
        // (Its rings go first, for its replacement to reuse.)
        worker.reuse_rings_once_joined();
        if replace {
            match Worker::start(|| (self.start_worker)(self.maxtasks)) {
                Ok(started) => {
                    self.shared.add_worker(&started.process);
                    self.workers.push(started);
                }
                Err(error) if self.workers.is_empty() => {
                    let message = format!("the pool could not replace a dead worker: {error}");
                    self.break_pool(Arc::new(move || Error::WorkerDied(message.clone())));
                }
                Err(_) => {} // the others carry on; the next death tries again
            }
        }
    }

    /// No worker can run tasks: kill the workers and fail every task, now and later.
    fn break_pool(&mut self, error: Arc<dyn Fn() -> Error + Send + Sync>) {
        let queued: Vec<Chunk> = {
            let mut state = lock(&self.shared.state);
            state.broken = Some(Arc::clone(&error));
            state.queue.drain()
        };
        self.kill_workers(&*error);
        for chunk in &queued {
            self.fail(chunk, &*error);
        }
    }

    /// Terminates and reaps every worker, failing what they held with `error`.
    fn kill_workers(&mut self, error: &dyn Fn() -> Error) {
        for worker in &self.workers {
            let _ = worker.process.terminate();
        }
        for mut worker in std::mem::take(&mut self.workers) {
            reap(&worker.process);
            self.shared.forget_worker(&worker.process);
            let running: u64 = worker.in_flight.iter().map(|(_, part)| part.items() as u64).sum();
            self.shared.stats.running.fetch_sub(running, Ordering::Relaxed);
            for chunk in worker.in_flight.drain(..).flat_map(|(_, part)| part.into_chunks()) {
                self.fail(&chunk, error);
            }
            worker.reuse_rings_once_joined();
        }
    }

    /// `terminate()`: stop the workers at once; what they held and what is queued fails.
    fn terminate(&mut self) {
        self.kill_workers(&|| Error::runtime(POOL_TERMINATED));
        let queued = lock(&self.shared.state).queue.drain();
        for chunk in &queued {
            self.fail(chunk, &|| Error::runtime(POOL_TERMINATED));
        }
    }

    /// `close()` + all done: ask the workers to exit, and reap them.
    fn stop_workers(&mut self) {
        let stop = task::stop_frame();
        for worker in &self.workers {
            let _ = worker.conn.send_bytes(&stop);
        }
        // The pool's ends of the channels whose rings will not be reused go while the
        // workers exit, rather than after (their system calls — a socket closed, rings
        // unmapped — overlap the exits): a worker reads the stop from its ring whether or
        // not the pool's end is still open, and nothing comes back from a worker of an
        // idle pool. The others wait for their worker's end.
        let workers: Vec<_> =
            std::mem::take(&mut self.workers).into_iter().map(Worker::into_process).collect();
        for (process, channel) in workers {
            if !matches!(process.join_timeout(STOP_GRACE), Ok(true)) {
                let _ = process.terminate();
                reap(&process);
            }
            self.shared.forget_worker(&process);
            reuse_rings_of(&process, channel);
        }
    }
}

/// Whether the pool goes on after a [`Handler::round`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    Going,
    /// The workers are gone: the handler is done.
    Ended,
}

/// The handler thread's body: drives the pool until it ends, once no caller drives it
/// (see `Shared::drive_until`). The handler is dropped at its end, which fails whatever
/// is still pending and lets `join` return.
pub(crate) fn run_thread(shared: &Shared) {
    let mut handler = lock(&shared.handler);
    while let Some(running) = handler.as_mut() {
        if running.round() == Round::Ended {
            *handler = None;
        }
    }
}

/// What a worker was given in one round of [`Handler::hand_out`].
#[derive(Clone, Copy, Default)]
struct Given {
    chunks: usize,
    parts: usize,
    /// The bytes they take in a frame.
    bytes: usize,
}

impl Drop for Handler {
    /// The handler's end, normal or not (a panic here must not leave callers waiting):
    /// whatever is still pending fails, the workers are reaped, and `join` may return.
    fn drop(&mut self) {
        lock(&self.shared.state).status = Status::Terminate;
        self.terminate();
        self.shared.set_finished();
    }
}

/// After a worker's `process` was joined: if it was reaped, its `channel`'s rings are kept
/// for the next channel ([`Connection::reuse_rings`]).
fn reuse_rings_of(process: &Process, channel: Option<Arc<Connection>>) {
    if let Some(channel) = channel.filter(|_| process.exitcode().is_some()) {
        Connection::reuse_rings(channel);
    }
}

/// Waits for a signalled worker to end, killing it if it takes too long.
fn reap(process: &Process) {
    if !matches!(process.join_timeout(STOP_GRACE), Ok(true)) {
        let _ = process.kill();
        let _ = process.join();
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_WINDOW, WINDOW_WORK, average_with, window_for};

    #[test]
    fn a_chunk_without_a_time_leaves_the_average_as_it_was() {
        assert_eq!(average_with(None, 0), None);
        assert_eq!(average_with(Some(100.0), 0), Some(100.0));
        assert_eq!(average_with(None, 80), Some(80.0));
        assert_eq!(average_with(Some(100.0), 20), Some(80.0));
    }

    /// A worker holds about `WINDOW_WORK` of work: one chunk before anything is
    /// measured or when chunks are long, up to `MAX_WINDOW` when they are tiny.
    #[test]
    fn a_window_holds_about_the_window_work_within_its_bounds() {
        assert_eq!(window_for(None), 1);
        assert_eq!(window_for(Some(WINDOW_WORK * 10.0)), 1);
        assert_eq!(window_for(Some(WINDOW_WORK / 10.0)), 10);
        assert_eq!(window_for(Some(WINDOW_WORK / 1000.0)), 1000);
        assert_eq!(window_for(Some(WINDOW_WORK / (MAX_WINDOW - 1) as f64)), MAX_WINDOW - 1);
        assert_eq!(window_for(Some(WINDOW_WORK / MAX_WINDOW as f64)), MAX_WINDOW);
        assert_eq!(window_for(Some(1.0)), MAX_WINDOW);
        assert_eq!(window_for(Some(0.0)), MAX_WINDOW);
    }
}
