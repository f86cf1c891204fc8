//! What travels between a pool and its workers, and how a worker runs a task.
//!
//! A task is a *chunk*: a function and some items. The function travels as a code offset
//! (every worker runs this binary, see [`crate::process::start::offset`]) together with the offset
//! of [`run_chunk`] monomorphized for its argument and result types; the items travel
//! serialized one after the other. The worker answers with the results in order: a
//! 4-byte little-endian count `k`, the first `k` results as plain serialized `R`s (all of
//! them when nothing failed, the common case), then one serialized `Result<R, Failure>`
//! per remaining item — so one item's panic or serde error fails that item only.
//!
//! A frame on a worker's connection holds one or more entries, each a header
//! ([`ToWorker`] / [`FromWorker`]) followed by `len` bytes of payload: the handler sends a
//! worker several chunks in one write, and a worker returns several results in one write.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use pyconc_core::panic::Capture;

use super::closure;
use super::encoder::Encoder;
use crate::error::RESULT_TOO_LARGE;
use crate::process::start;

/// The most payload bytes one entry (a chunk's items, or its results) may carry, so that
/// every message on a worker's connection fits the frame limit its reader enforces
/// ([`codec::MAX_FRAME`], with room for the entry's header). The pool splits chunks whose
/// items would not fit; a worker fails the items whose results would not fit with
/// [`RESULT_TOO_LARGE`] instead of sending a message its pool would refuse.
pub(crate) const ENTRY_LIMIT: usize = crate::codec::MAX_FRAME - 64;

/// The header of one entry from the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run a chunk: the entry's payload is `len` bytes holding `count` serialized items.
    Run { job: u64, entry: u64, function: u64, count: u32, len: u32 },
    /// Finish the results sent so far and exit (`close()` + `join()`).
    Stop,
    /// Run the chunk after the one before it in this frame: job number one more, the
    /// same function; `len` bytes holding `count` items. (A header of three small
    /// integers, where a `Run` takes about fifteen bytes to write and to read — for tiny
    /// tasks a good part of the handler's and the worker's time.)
    Next { count: u32, len: u32 },
}

/// The header of one entry from a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// A chunk is done: `len` bytes of results follow. `nanos`: how long each chunk took
    /// on average since the last that carried a time, or 0 — a worker reads its clock
    /// only every [`CLOCK_EVERY`] chunks of a frame and after its last, as a read costs
    /// about as much as running a tiny task.
    Done { job: u64, nanos: u64, len: u32 },
    /// The initializer panicked; the worker exits.
    InitFailed(RemotePanic),
}

/// Why one item of a chunk has no result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    Panicked(RemotePanic),
    /// The result could not be serialized (CPython's `MaybeEncodingError`).
    Encoding(String),
    /// The item could not be deserialized in the worker.
    Decoding(String),
}

pub(crate) use crate::error::RemotePanic;

/// Who runs a task, named in the [`RemotePanic`] it may raise: a name at hand, or the
/// current process's, looked up only when a task panics. (A forked worker that reads its
/// name at start allocates a `Process` and a copy of the name, and each page that writes
/// is a copy-on-write fault: a tenth of the worker's start.)
#[derive(Clone, Copy, Debug)]
pub(crate) enum WorkerName<'a> {
    /// A thread pool's worker or an MPI rank: its name.
    Named(&'a str),
    /// A process pool's worker: [`current_process`](crate::current_process)'s name.
    CurrentProcess,
}

impl std::fmt::Display for WorkerName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerName::Named(name) => f.write_str(name),
            WorkerName::CurrentProcess => f.write_str(&crate::current_process().name()),
        }
    }
}

/// Runs `work`, turning a panic into a [`RemotePanic`] of `worker` (`pyconc_core`'s
/// capture: the panic is not printed).
pub(crate) fn catch_task<T>(
    worker: WorkerName<'_>,
    work: impl FnOnce() -> T,
) -> Result<T, RemotePanic> {
    catch_task_in(&pyconc_core::panic::capture(), worker, work)
}

/// [`catch_task`] under a capture made once for many tasks.
fn catch_task_in<T>(
    capture: &Capture,
    worker: WorkerName<'_>,
    work: impl FnOnce() -> T,
) -> Result<T, RemotePanic> {
    capture.catch(work).map_err(|caught| {
        let (file, line, column) = match caught.location {
            Some(place) => (Some(place.file), place.line, place.column),
            None => (None, 0, 0),
        };
        RemotePanic { worker: worker.to_string(), message: caught.message, file, line, column }
    })
}

/// Appends `value` to `out` if it serializes and `out` stays within `limit` bytes; else
/// leaves `out` as it was, drops the refusal the value may have recorded, and says
/// `false` — the caller's slow path serializes it again with [`append`], which tells
/// why.
#[inline(always)]
pub(crate) fn append_within<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    limit: usize,
) -> bool {
    let mark = out.len();
    let serialized = value.serialize(&mut Encoder::new(&mut *out));
    if serialized.is_ok() && out.len() <= limit {
        return true;
    }
    out.truncate(mark);
    if serialized.is_err() {
        let _ = crate::reduction::take_refusal();
    }
    false
}

/// Appends `value` to `out`; on a serde error `out` is left as it was.
#[inline]
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    let mark = out.len();
    let outcome = value.serialize(&mut Encoder::new(&mut *out));
    match outcome {
        Ok(()) => Ok(()),
        Err(error) => {
            out.truncate(mark);
            Err(crate::reduction::take_refusal().unwrap_or_else(|| error.to_string()))
        }
    }
}

/// How a worker runs a chunk: `(function, count, items, results, worker name)`, where
/// `function` is a code offset ([`entry_of`]) or a closure's number ([`entry_of_closure`]).
pub(crate) type ChunkEntry = fn(u64, u32, &[u8], &mut Vec<u8>, WorkerName<'_>);

/// The [`ChunkEntry`] for a `fn(T) -> R`, as an offset that travels to the worker.
pub(crate) fn entry_of<T, R>() -> u64
where
    T: DeserializeOwned,
    R: Serialize,
{
    start::offset(run_chunk::<T, R> as ChunkEntry as usize)
}

/// The [`ChunkEntry`] for a registered closure `F` (see `closure.rs`).
pub(crate) fn entry_of_closure<F, T, R>() -> u64
where
    F: Fn(T) -> R + Send + Sync + 'static,
    T: DeserializeOwned,
    R: Serialize,
{
    start::offset(run_closure_chunk::<F, T, R> as ChunkEntry as usize)
}

/// Runs the items through the `fn(T) -> R` at code offset `function`.
fn run_chunk<T: DeserializeOwned, R: Serialize>(
    function: u64,
    count: u32,
    items: &[u8],
    out: &mut Vec<u8>,
    worker: WorkerName<'_>,
) {
    // SAFETY: the pool took `function` from a `fn(T) -> R` (`Task::of_fn`) together with
    // the offset of this entry monomorphized for the same `T` and `R`, in a process
    // running this executable (see `function_at`).
    let function: fn(T) -> R = unsafe { start::function_at::<fn(T) -> R>(function) };
    run_items(count, items, out, worker, function);
}

/// The [`ChunkEntry`] for a zero-sized function `F`: a function item (`square`) or a
/// closure that captures nothing. Its monomorphized entry *is* the function — there is no
/// state to send — so it runs on workers of every start method.
pub(crate) fn entry_of_zero_sized<F, T, R>() -> u64
where
    F: Fn(T) -> R + Send + Sync + 'static,
    T: DeserializeOwned,
    R: Serialize,
{
    // Instantiated for every `F` a task may be made of; only a zero-sized one gets here.
    assert_eq!(std::mem::size_of::<F>(), 0, "not a zero-sized function");
    start::offset(run_zero_sized_chunk::<F, T, R> as ChunkEntry as usize)
}

/// Runs the items through the zero-sized function `F` (see [`entry_of_zero_sized`]).
fn run_zero_sized_chunk<F, T, R>(
    _: u64,
    count: u32,
    items: &[u8],
    out: &mut Vec<u8>,
    worker: WorkerName<'_>,
) where
    F: Fn(T) -> R + Send + Sync + 'static,
    T: DeserializeOwned,
    R: Serialize,
{
    // Made only by `entry_of_zero_sized`, which checked that `F` has no bytes; checked
    // again here, where the read below depends on it.
    assert_eq!(std::mem::size_of::<F>(), 0, "not a zero-sized function");
    // SAFETY: `F` has no bytes (checked just above), so a read through a dangling,
    // aligned pointer reads nothing; and the type is inhabited, as the process that
    // submitted the task held a value of it (this entry is only made from one, in
    // `Task::of`). The value made here is this worker's copy of that stateless value —
    // what forking the submitter would have given it — and is never dropped, so no
    // destructor runs for a copy.
    let function =
        std::mem::ManuallyDrop::new(unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() });
    run_items(count, items, out, worker, |item| (*function)(item));
}

/// Runs the items through the registered closure numbered `id`.
fn run_closure_chunk<F, T, R>(
    id: u64,
    count: u32,
    items: &[u8],
    out: &mut Vec<u8>,
    worker: WorkerName<'_>,
) where
    F: Fn(T) -> R + Send + Sync + 'static,
    T: DeserializeOwned,
    R: Serialize,
{
    match closure::lookup::<F>(id) {
        Some(function) => run_items(count, items, out, worker, |item| function(item)),
        None => {
            // The handler only gives a closure to workers forked after it was made.
            let failure = Failure::Decoding(format!("{worker} has no closure number {id}"));
            let mut results = Results::start(out);
            results.fail_rest(0, count, &failure);
        }
    }
}

/// The results of one chunk as they are written: plain `R`s while every item succeeds,
/// `Result<R, Failure>`s from the first failure on (see the module's documentation).
struct Results<'a> {
    out: &'a mut Vec<u8>,
    /// Where the count of plain results is written.
    header: usize,
    /// No item failed yet: results are written plain.
    plain: bool,
}

impl<'a> Results<'a> {
    fn start(out: &'a mut Vec<u8>) -> Results<'a> {
        let header = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        Results { out, header, plain: true }
    }

    /// Item `index` failed: the results before it were plain, the rest are `Result`s.
    fn switch_at(&mut self, index: u32) {
        if self.plain {
            self.plain = false;
            self.out[self.header..self.header + 4].copy_from_slice(&index.to_le_bytes());
        }
    }

    fn fail(&mut self, index: u32, failure: &Failure) {
        self.switch_at(index);
        let outcome: Result<(), &Failure> = Err(failure);
        let _ = append(&outcome, self.out);
    }

    /// Items `from..count` fail with `failure`.
    fn fail_rest(&mut self, from: u32, count: u32, failure: &Failure) {
        for index in from..count {
            self.fail(index, failure);
        }
    }

    /// Item `index` gave `result`; one that cannot be sent fails as CPython's
    /// `MaybeEncodingError`.
    fn put<R: Serialize>(&mut self, index: u32, result: &R) {
        let mark = self.out.len();
        let written = if self.plain {
            append(result, self.out)
        } else {
            let outcome: Result<&R, Failure> = Ok(result);
            append(&outcome, self.out)
        };
        let message = match written {
            Ok(()) if self.out.len() <= ENTRY_LIMIT => return,
            Ok(()) => {
                let size = self.out.len() - mark;
                self.out.truncate(mark);
                format!(
                    "{RESULT_TOO_LARGE}: the result of '<{}>' takes {size} bytes, \
                     and the results of one chunk may take {ENTRY_LIMIT} bytes at most \
                     (return large data through shared memory, or use a smaller chunksize)",
                    std::any::type_name::<R>()
                )
            }
            Err(error) => {
                format!(
                    "Error sending result: '<{}>'. Reason: '{error}'",
                    std::any::type_name::<R>()
                )
            }
        };
        self.fail(index, &Failure::Encoding(message));
    }

    /// Every item had its result: writes how many were plain.
    fn finish(self, count: u32) {
        if self.plain {
            self.out[self.header..self.header + 4].copy_from_slice(&count.to_le_bytes());
        }
    }
}

/// Runs each of `count` items of `items` through `function`, and appends their results
/// to `out` (see the module's documentation for their form).
fn run_items<T: DeserializeOwned, R: Serialize>(
    count: u32,
    items: &[u8],
    out: &mut Vec<u8>,
    worker: WorkerName<'_>,
    function: impl Fn(T) -> R,
) {
    let mut results = Results::start(out);
    let mut items = postcard::Deserializer::from_bytes(items);
    let capture = pyconc_core::panic::capture();
    for index in 0..count {
        let item = match T::deserialize(&mut items) {
            Ok(item) => item,
            Err(error) => {
                let failure =
                    Failure::Decoding(format!("cannot deserialize a task's item: {error}"));
                results.fail_rest(index, count, &failure);
                return;
            }
        };
        match catch_task_in(&capture, worker, || function(item)) {
            Ok(result) => results.put(index, &result),
            Err(panic) => results.fail(index, &Failure::Panicked(panic)),
        }
    }
    results.finish(count);
}

/// How a worker runs its initializer: `(function, serialized args)`; the args are the
/// `A` of the builder's `initializer`, passed whole in the worker's start arguments.
pub(crate) fn run_initializer<A>(
    function: u64,
    args: A,
    worker: WorkerName<'_>,
) -> Result<(), RemotePanic> {
    // SAFETY: `Builder::initializer` took `function` from a `fn(A)` with this very `A`,
    // in a process running this executable (see `function_at`).
    let function: fn(A) = unsafe { start::function_at::<fn(A)>(function) };
    catch_task(worker, || function(args))
}

/// How many chunks of a frame a worker runs between two reads of the clock (the
/// handler sizes its windows from the times; see [`FromWorker::Done`]).
const CLOCK_EVERY: u32 = 16;

/// A frame that tells a worker to exit once the chunks sent before are done.
pub(crate) fn stop_frame() -> Vec<u8> {
    let mut frame = Vec::new();
    // A unit variant always serializes.
    let _ = append(&ToWorker::Stop, &mut frame);
    frame
}

/// The room before a chunk's serialized items for its [`ToWorker::Run`] header (a tag and
/// five varints take at most 41 bytes): a chunk sent alone goes to its worker straight
/// from its own buffer, its header written just before its items ([`run_alone`]).
pub(crate) const RUN_ROOM: usize = 48;

/// The header that runs a chunk of `submission` with `count` items in `len` bytes as job
/// `job`.
fn run_header(job: u64, submission: &super::Submission, count: u32, len: usize) -> ToWorker {
    ToWorker::Run {
        job,
        entry: submission.task.entry,
        function: submission.task.function,
        count,
        len: len as u32,
    }
}

/// Appends an entry for each of `chunks` (with its job number and submission) to
/// `frame`: a [`ToWorker::Next`] for a chunk that follows on from the one before it (the
/// next job number, the same function), else a [`ToWorker::Run`].
pub(crate) fn append_runs<'a>(
    chunks: impl Iterator<Item = (u64, &'a super::Submission, super::Piece<'a>)>,
    frame: &mut Vec<u8>,
) {
    // (job, entry, function) of the entry before.
    let mut before: Option<(u64, u64, u64)> = None;
    for (job, submission, piece) in chunks {
        let (entry, function) = (submission.task.entry, submission.task.function);
        let len = piece.payload.len();
        // Headers of plain integers always serialize.
        if before == Some((job.wrapping_sub(1), entry, function)) {
            let _ = append(&ToWorker::Next { count: piece.count, len: len as u32 }, frame);
        } else {
            let _ = append(&run_header(job, submission, piece.count, len), frame);
        }
        frame.extend_from_slice(piece.payload);
        before = Some((job, entry, function));
    }
}

/// The message that runs a large `chunk` (numbered `job`) alone: its header is written
/// into the room before its items in its own buffer, so the items are not copied into a
/// frame first. `None` for a small chunk (its items share a buffer) or if the header did
/// not fit (it always does): the caller then builds a frame.
pub(crate) fn run_alone(job: u64, chunk: &mut super::Chunk) -> Option<&[u8]> {
    let header = run_header(job, &chunk.submission, chunk.count, chunk.items.payload().len());
    let super::Items::Own(buffer) = &mut chunk.items else { return None };
    let at = header_before(&header, buffer, RUN_ROOM)?;
    Some(&buffer[at..])
}

/// The most bytes a [`FromWorker::Done`] header takes (three varints and a tag): a
/// chunk's results are written after this much room, and the header just before them.
const DONE_ROOM: usize = 32;

/// Writes `header` at the end of the first `room` bytes of `buffer` (left free for it),
/// just before the payload that follows, so that header and payload go out as one
/// message without a copy of the payload. Returns where the message starts; `None` if
/// the header does not fit the room.
fn header_before<H: Serialize>(header: &H, buffer: &mut [u8], room: usize) -> Option<usize> {
    let mut encoded = [0u8; RUN_ROOM];
    let len = postcard::to_slice(header, encoded.get_mut(..room)?).ok()?.len();
    let at = room - len;
    buffer.get_mut(at..room)?.copy_from_slice(&encoded[..len]);
    Some(at)
}

/// Runs every chunk of one frame from the pool, in order, handing each chunk's answer (a
/// [`FromWorker::Done`] entry and its results) to `send` as soon as it is ready. Returns
/// `false` when the worker should exit: the pool said stop, the frame is not a pool's,
/// or `send` returned `false`. `answer` is the worker's buffer for answers, kept from
/// frame to frame.
pub(crate) fn run_frame(
    frame: &[u8],
    worker: WorkerName<'_>,
    answer: &mut Vec<u8>,
    mut send: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut rest = frame;
    // The chunks' time is read every `CLOCK_EVERY` chunks and after the frame's last:
    // the chunks since the last read share it.
    let mut mark = std::time::Instant::now();
    let mut unmeasured = 0u32;
    // (job, entry, function) of the chunk before, for a `Next`.
    let mut before: Option<(u64, u64, u64)> = None;
    while !rest.is_empty() {
        let Ok((header, after)) = postcard::take_from_bytes::<ToWorker>(rest) else {
            return false;
        };
        let (job, entry, function, count, len) = match (header, before) {
            (ToWorker::Run { job, entry, function, count, len }, _) => {
                (job, entry, function, count, len)
            }
            (ToWorker::Next { count, len }, Some((job, entry, function))) => {
                (job.wrapping_add(1), entry, function, count, len)
            }
            // Stop, or a `Next` with nothing before it (not a pool's frame).
            _ => return false,
        };
        before = Some((job, entry, function));
        let Some(items) = after.get(..len as usize) else { return false };
        rest = &after[len as usize..];
        // SAFETY: the pool took `entry` from a `ChunkEntry` (`entry_of`/`entry_of_closure`)
        // in a process running this executable (see `function_at`).
        let entry: ChunkEntry = unsafe { start::function_at::<ChunkEntry>(entry) };
        answer.clear();
        answer.resize(DONE_ROOM, 0);
        entry(function, count, items, answer, worker);
        unmeasured += 1;
        let nanos = if unmeasured >= CLOCK_EVERY || rest.is_empty() {
            let now = std::time::Instant::now();
            // In 64 bits: a 128-bit division is a call into code that a forked worker
            // would fault in for this alone.
            let elapsed = u64::try_from((now - mark).as_nanos()).unwrap_or(u64::MAX);
            let each = elapsed / u64::from(unmeasured);
            mark = now;
            unmeasured = 0;
            each.max(1)
        } else {
            0
        };
        let len = u32::try_from(answer.len() - DONE_ROOM).unwrap_or(u32::MAX);
        let Some(at) = header_before(&FromWorker::Done { job, nanos, len }, answer, DONE_ROOM)
        else {
            return false;
        };
        if !send(&answer[at..]) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{CLOCK_EVERY, FromWorker, ToWorker, WorkerName, append, entry_of, run_frame};
    use crate::process::start;

    fn double(x: u64) -> u64 {
        x * 2
    }

    /// A frame of `chunks` one-item chunks of `double`, numbered from 0, each item its
    /// number; `next`: the chunks after the first have a [`ToWorker::Next`] header.
    fn frame_of(chunks: u64, next: bool) -> Vec<u8> {
        let mut frame = Vec::new();
        for job in 0..chunks {
            let mut items = Vec::new();
            append(&job, &mut items).unwrap();
            let len = items.len() as u32;
            let header = if next && job > 0 {
                ToWorker::Next { count: 1, len }
            } else {
                ToWorker::Run {
                    job,
                    entry: entry_of::<u64, u64>(),
                    function: start::offset(double as fn(u64) -> u64 as usize),
                    count: 1,
                    len,
                }
            };
            append(&header, &mut frame).unwrap();
            frame.extend_from_slice(&items);
        }
        frame
    }

    /// Runs `frame` as a worker does: whether it went on, and each answer's (job, time,
    /// result).
    fn run(frame: &[u8]) -> (bool, Vec<(u64, u64, u64)>) {
        let mut answer = Vec::new();
        let mut answers = Vec::new();
        let went_on = run_frame(frame, WorkerName::Named("worker"), &mut answer, |message| {
            let (header, results) = postcard::take_from_bytes::<FromWorker>(message).unwrap();
            let FromWorker::Done { job, nanos, len } = header else { panic!("{header:?}") };
            assert_eq!(len as usize, results.len());
            // A count of plain results (all of them), then the one result.
            assert_eq!(results[..4], 1u32.to_le_bytes());
            let value: u64 = postcard::from_bytes(&results[4..]).unwrap();
            answers.push((job, nanos, value));
            true
        });
        (went_on, answers)
    }

    /// A `Next` runs the chunk after the one before it in the frame, with the same
    /// function: the answers are those of the same frame written with `Run`s only. A
    /// frame that begins with a `Next` is not a pool's: the worker stops, running nothing.
    #[test]
    fn a_next_entry_runs_the_following_job_with_the_function_before_it() {
        let (went_on, with_next) = run(&frame_of(40, true));
        assert!(went_on);
        let (_, with_runs) = run(&frame_of(40, false));
        let results = |answers: &[(u64, u64, u64)]| -> Vec<(u64, u64)> {
            answers.iter().map(|&(job, _, value)| (job, value)).collect()
        };
        assert_eq!(results(&with_next), results(&with_runs));
        assert_eq!(results(&with_next), (0..40).map(|job| (job, job * 2)).collect::<Vec<_>>());
        let mut stray = Vec::new();
        append(&ToWorker::Next { count: 1, len: 1 }, &mut stray).unwrap();
        append(&7u64, &mut stray).unwrap();
        assert_eq!(run(&stray), (false, vec![]));
    }

    /// A worker answers every chunk of a frame, in order, as soon as it is done; it
    /// reads its clock only every `CLOCK_EVERY` chunks and after the frame's last, and
    /// the chunks in between say 0 ("not measured"), which the handler's average skips.
    #[test]
    fn a_worker_answers_each_chunk_and_times_every_sixteenth_and_the_last() {
        let chunks = u64::from(CLOCK_EVERY) * 2 + 5;
        let (went_on, answers) = run(&frame_of(chunks, false));
        assert!(went_on);
        assert_eq!(answers.len() as u64, chunks);
        for (position, &(job, nanos, value)) in (1u64..).zip(&answers) {
            assert_eq!((job, value), (position - 1, (position - 1) * 2));
            let timed = position % u64::from(CLOCK_EVERY) == 0 || position == chunks;
            assert_eq!(nanos > 0, timed, "chunk {position}: {nanos} ns");
        }
    }
}
