//! The `Pool` over MPI (cargo feature `mpi`): the same `map`/`imap`/`apply_async` API,
//! with the ranks of an `mpirun` job as workers — the model of mpi4py.futures'
//! `MPIPoolExecutor` under `mpirun`.
//!
//! `mpirun -n N program` starts N copies of the program. In each, [`init()`](crate::init)
//! initializes MPI; rank 0 goes on into `main` and builds the pool with
//! `Pool::builder().mpi()`, ranks 1..N−1 never return from `init()`: they serve chunks
//! (the same wire format and chunk runners as local workers, `task.rs`: every rank runs
//! this binary, so code offsets name the same functions) until rank 0 says stop, then
//! finalize MPI and exit. That every rank runs this binary is checked, not trusted: at
//! start-up rank 0 broadcasts a SHA-256 of its executable and its layout offset, and a
//! rank that differs aborts the job with a message naming both.
//!
//! Failure model: MPI cannot go on without a rank. A rank that dies makes `mpirun` end the
//! whole job (Open MPI: within about a second); a chunk that takes longer than the pool's
//! deadline ([`PoolBuilder::deadline`](super::PoolBuilder::deadline), 1 hour by default)
//! aborts the job with a message, so a hung worker cannot hang it forever.
//!
//! Rank 0's handler thread is the only thread that calls MPI after `init()` (MPI is
//! initialized with `MPI_THREAD_SERIALIZED`). MPI has no fd to sleep on, so an idle
//! handler polls with a backoff (up to 1 ms between looks).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::environment::Universe;
use mpi::point_to_point::{Destination, Source};
use mpi::topology::{Communicator, SimpleCommunicator};
use pyconc_core::exit::AtExit;

use super::handler::{average_with, window_for};
use super::result::lock;
use super::task::{self, FromWorker};
use super::{Chunk, Shared, Status};
use crate::Error;
use crate::error::NOT_UNDER_MPIRUN;
use crate::error::POOL_TERMINATED;

/// MPI's universe, on every rank of an `mpirun` job; finalized at exit.
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

/// Whether this process was started by `mpirun` (Open MPI, or a PMI launcher).
fn under_mpirun() -> bool {
    std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() || std::env::var_os("PMI_SIZE").is_some()
}

/// Called by `init()`: under `mpirun`, initializes MPI; on ranks other than 0 serves the
/// pool and exits, never returning.
pub(crate) fn init() {
    if !under_mpirun() || lock(&UNIVERSE).is_some() {
        return;
    }
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Serialized) else {
        return;
    };
    let world = universe.world();
    let rank = world.rank();
    same_executable_everywhere(&world);
    *pyconc_core::sync::lock(&UNIVERSE) = Some(universe);
    if rank != 0 {
        serve(&world);
        finalize();
        std::process::exit(0);
    }
    // Rank 0 finalizes at exit, last: after its pools are stopped and its children
    // joined.
    static FINALIZE: AtExit = AtExit::new(finalize, i32::MIN + 1);
    FINALIZE.install();
}

/// What every rank must share for code offsets to name the same functions on all of
/// them: a SHA-256 of the executable's file and the offset of the layout anchor.
const FINGERPRINT: usize = 32 + 8;

/// This rank's fingerprint: the hash of `/proc/self/exe` (all zeros if it cannot be
/// read) and [`start::layout`](crate::process::start::layout).
fn fingerprint() -> [u8; FINGERPRINT] {
    use sha2::Digest;
    use std::io::Read;
    let mut hash = sha2::Sha256::new();
    let mut read_whole = false;
    if let Ok(mut exe) = std::fs::File::open("/proc/self/exe") {
        let mut buf = vec![0u8; 1 << 20];
        read_whole = loop {
            match exe.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => hash.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
    }
    let mut out = [0u8; FINGERPRINT];
    if read_whole {
        out[..32].copy_from_slice(&hash.finalize());
    }
    out[32..].copy_from_slice(&crate::process::start::layout().to_le_bytes());
    out
}

fn describe(fingerprint: &[u8; FINGERPRINT]) -> String {
    let hash: String = fingerprint[..32].iter().map(|b| format!("{b:02x}")).collect();
    let mut layout = [0u8; 8];
    layout.copy_from_slice(&fingerprint[32..]);
    format!("executable sha256 {hash}, layout offset {:#x}", u64::from_le_bytes(layout))
}

/// The pool sends code offsets from rank 0 to the other ranks: they are only meaningful
/// in the same executable. Rank 0 broadcasts its fingerprint; a rank whose own differs —
/// or that cannot read its executable — aborts the whole job with a message naming both,
/// before any offset is used. A check that cannot tell says no.
fn same_executable_everywhere(world: &SimpleCommunicator) {
    use mpi::collective::Root;
    let mine = fingerprint();
    let mut theirs = mine;
    world.process_at_rank(0).broadcast_into(&mut theirs[..]);
    let unreadable = mine[..32].iter().all(|&b| b == 0);
    if theirs != mine || unreadable {
        eprintln!(
            "pyconc: MPI pool: rank {} runs a different executable than rank 0, and code \
             offsets would name other functions there; every rank must run the same binary. \
             rank 0: {}; rank {}: {}. Aborting the job.",
            world.rank(),
            describe(&theirs),
            world.rank(),
            describe(&mine)
        );
        world.abort(1);
    }
}

/// Finalizes MPI (at exit, after the pools were stopped).
fn finalize() {
    drop(pyconc_core::sync::lock(&UNIVERSE).take());
}

/// The world communicator, if MPI runs here with at least 2 ranks.
fn world() -> Result<SimpleCommunicator, Error> {
    let universe = lock(&UNIVERSE);
    let world = universe.as_ref().map(Universe::world);
    world.filter(|w| w.size() >= 2).ok_or_else(|| Error::value(NOT_UNDER_MPIRUN))
}

/// A worker rank: runs chunks from rank 0 until told to stop.
fn serve(world: &SimpleCommunicator) {
    let name = format!("MPIPoolWorker-{}", world.rank());
    crate::current_process().set_name(name.clone());
    let root = world.process_at_rank(0);
    let mut answer = Vec::new();
    loop {
        let (frame, _) = root.receive_vec::<u8>();
        let go_on =
            task::run_frame(&frame, task::WorkerName::Named(&name), &mut answer, |answer| {
                root.send(answer);
                true
            });
        if !go_on {
            return;
        }
    }
}

/// A worker rank as rank 0's handler sees it.
struct Rank {
    rank: i32,
    in_flight: VecDeque<(u64, Chunk, Instant)>,
}

/// Rank 0's handler thread: hands chunks to ranks and collects their results.
pub(crate) struct MpiHandler {
    shared: Arc<Shared>,
    world: SimpleCommunicator,
    ranks: Vec<Rank>,
    deadline: Duration,
    next_job: u64,
    /// Average time of a chunk, for the window (as `handler.rs`).
    chunk_nanos: Option<f64>,
}

impl MpiHandler {
    /// The handler of a pool over every rank but 0; `Err` outside `mpirun`.
    pub(crate) fn new(shared: Arc<Shared>, deadline: Duration) -> Result<MpiHandler, Error> {
        let world = world()?;
        let ranks =
            (1..world.size()).map(|rank| Rank { rank, in_flight: VecDeque::new() }).collect();
        Ok(MpiHandler { shared, world, ranks, deadline, next_job: 0, chunk_nanos: None })
    }

    /// The number of worker ranks, if MPI runs here.
    pub(crate) fn workers() -> Result<usize, Error> {
        Ok(world()?.size() as usize - 1)
    }

    pub(crate) fn run(mut self) {
        let mut idle_looks = 0u32;
        loop {
            let status = self.hand_out();
            match status {
                Status::Terminate => {
                    self.terminate();
                    break;
                }
                Status::Close if self.idle() => {
                    self.stop();
                    break;
                }
                _ => {}
            }
            if self.collect() {
                idle_looks = 0;
                continue;
            }
            self.check_deadline();
            // Nothing arrived: look again soon, then less often (MPI has no fd to sleep on).
            idle_looks = idle_looks.saturating_add(1);
            match idle_looks {
                0..=64 => std::thread::yield_now(),
                65..=512 => std::thread::sleep(Duration::from_micros(50)),
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        self.shared.set_finished();
    }

    fn idle(&self) -> bool {
        self.ranks.iter().all(|r| r.in_flight.is_empty()) && !lock(&self.shared.state).has_work()
    }

    /// Gives queued chunks to ranks with room; returns the pool's status.
    fn hand_out(&mut self) -> Status {
        let mut frames: Vec<Vec<u8>> = vec![Vec::new(); self.ranks.len()];
        let window = window_for(self.chunk_nanos);
        let status = {
            let mut state = lock(&self.shared.state);
            if state.status != Status::Terminate {
                let mut progress = true;
                while progress && !state.queue.is_empty() {
                    progress = false;
                    for (rank, frame) in self.ranks.iter_mut().zip(frames.iter_mut()) {
                        if rank.in_flight.len() >= window {
                            continue;
                        }
                        let Some(chunk) = state.queue.pop_front() else { break };
                        let job = self.next_job;
                        self.next_job += 1;
                        let entry = (job, &*chunk.submission, chunk.piece());
                        task::append_runs(std::iter::once(entry), frame);
                        self.shared
                            .stats
                            .running
                            .fetch_add(chunk.slots.len() as u64, Ordering::Relaxed);
                        rank.in_flight.push_back((job, chunk, Instant::now()));
                        progress = true;
                    }
                }
            }
            state.status
        };
        for (rank, frame) in self.ranks.iter().zip(frames) {
            if !frame.is_empty() {
                self.world.process_at_rank(rank.rank).send(&frame[..]);
            }
        }
        status
    }

    /// Receives every result that has arrived; whether there was any.
    fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(probed) = self.world.any_process().immediate_probe() {
            any = true;
            let source = probed.source_rank();
            let (frame, _) = self.world.process_at_rank(source).receive_vec::<u8>();
            let Some(rank) = self.ranks.iter_mut().find(|r| r.rank == source) else { continue };
            let mut rest = frame.as_slice();
            while let Ok((FromWorker::Done { job, nanos, len }, after)) =
                postcard::take_from_bytes::<FromWorker>(rest)
            {
                let Some(results) = after.get(..len as usize) else { break };
                rest = &after[len as usize..];
                if rank.in_flight.front().is_none_or(|(first, _, _)| *first != job) {
                    break;
                }
                let Some((_, chunk, _)) = rank.in_flight.pop_front() else { break };
                let stats = &self.shared.stats;
                stats.running.fetch_sub(chunk.slots.len() as u64, Ordering::Relaxed);
                chunk.submission.sink.deliver(&chunk.slots, results, stats);
                self.chunk_nanos = average_with(self.chunk_nanos, nanos);
            }
        }
        any
    }

    /// A chunk past the deadline: MPI cannot take a rank back, so the job ends.
    fn check_deadline(&self) {
        for rank in &self.ranks {
            if let Some((_, _, sent)) = rank.in_flight.front() {
                if sent.elapsed() > self.deadline {
                    eprintln!(
                        "pyconc: MPI pool: rank {} held a task for more than {:?}; aborting the job",
                        rank.rank, self.deadline
                    );
                    self.world.abort(1);
                }
            }
        }
    }

    /// Tells every rank to exit once its chunks are done.
    fn stop(&self) {
        let stop = task::stop_frame();
        for rank in &self.ranks {
            self.world.process_at_rank(rank.rank).send(&stop[..]);
        }
    }

    /// `terminate()`: what is queued fails; MPI cannot stop a rank mid-task, so the
    /// chunks the ranks hold are finished (and delivered) before they exit.
    fn terminate(&mut self) {
        let queued = lock(&self.shared.state).queue.drain();
        for chunk in queued {
            chunk.submission.sink.fail(
                &chunk.slots,
                &|| Error::runtime(POOL_TERMINATED),
                &self.shared.stats,
            );
        }
        self.stop();
        while self.ranks.iter().any(|r| !r.in_flight.is_empty()) {
            if !self.collect() {
                self.check_deadline();
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}
