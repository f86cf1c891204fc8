//! The shared-memory channel of one direction of a `pipe()`: messages go through a ring
//! buffer in a [`SharedMemory`] mapping; the OS pipe (one-way) or socket pair (duplex)
//! beside it carries wake-up bytes and end-of-file.
//!
//! CPython's `Pipe` is an OS pipe or a socket pair: every `send_bytes` is a `write(2)` and
//! every `recv_bytes` a `read(2)` or two. A small message through a ring costs a copy and
//! a few atomics instead; a system call is needed only when the reader has nothing left
//! and goes to sleep. A one-way pipe's reading end takes whole frames ([`Ring::recv`]); a
//! duplex end pulls whatever bytes are there into its connection's buffer
//! ([`Ring::pull`]), and while it waits for room to send it pulls too (the `pump` of
//! [`Ring::send`]), so two ends sending large messages to each other never deadlock. Hand-written because no crate offers a multi-process, robust ring
//! whose readiness can be polled as an fd (`shared_memory`/`ipc-channel` rings have
//! neither EOF nor a pollable fd).
//!
//! # The wake-up protocol
//!
//! The writer publishes a frame by swapping `WSTATE` (write position `<< 1` | *token*) to
//! the new position with the token bit set. If the bit was clear, it writes one byte to the
//! pipe. So the pipe holds a byte exactly while the token bit is set (each side does the
//! system call that matches the transition it made), and *a non-empty ring always has
//! the token set*: an fd poller never misses a message.
//!
//! A reader that finds too little in the ring spins a moment (a streaming writer is
//! usually a few hundred nanoseconds away), then clears the token — only while the ring
//! is still empty, in one compare-and-swap on `WSTATE` — and reads that byte; with the
//! token clear and the pipe empty it sleeps in `poll(2)` until the next byte. A reader
//! that finishes a message leaves the token set, so a streaming writer makes no system
//! call at all. The price: the fd may be readable while the ring is empty (the last
//! reader left the token); [`Connection::poll`](super::Connection::poll) and
//! [`wait`](super::wait) look behind the fd and tell the two apart.
//!
//! A writer that finds the ring full sleeps on the `SPACE` futex; a reader that frees
//! space wakes it if it announced itself in `WRITER_WAITING`. While it waits, it checks
//! every 100 ms that the pipe still has a reader (`POLLERR`; `POLLHUP` on a socket), and
//! fails with `EPIPE` if not; a duplex end looks every 1 ms, to pump.
//!
//! # Robustness
//!
//! Writers are serialized by a robust lock word (the holder's pid; a dead holder's lock is
//! taken over, see [`synchronize`](crate::synchronize)), as are readers. A frame that fits
//! the ring is published, and consumed, in one step, so a process killed in the middle of
//! a `send` or `recv` leaves the stream whole. A frame larger than the ring moves in pieces;
//! a process that dies (or fails) halfway through one sets `*_PARTIAL`, and the next user
//! of that end gets an error instead of a garbled stream. The number of wake-up bytes a
//! reader cleared but has not read yet (`OWED`) lives in shared memory under the read lock,
//! so a reader that dies between the two leaves no stray byte behind.
//!
//! # Reuse
//!
//! A fork pool's channel is two rings in one anonymous mapping ([`Ring::pair_for_fork`]).
//! Once its worker has been reaped, and when no process but this one can reach the
//! mapping, the pair is kept ([`Ring::reuse_pair`]: zeroed where written, as a new
//! mapping) and the next channel takes it, instead of a new `mmap`, a page fault per page
//! touched in each process, and an `munmap` that frees the pages at the end. Every forked
//! child lets go of the channels it did not get for itself (`pool/process_pool.rs`'s
//! `CHANNELS`) and unmaps the spare pairs, so that no process outlives a worker with its
//! channel's pages; one that cannot says so in the ring (`SHARED_ELSEWHERE`), and the pair
//! is never reused.

use std::cell::Cell;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::truncated;
use pyconc_core::fork::ForkMutex;
use pyconc_core::sync::{Futex, SharedWord};

use crate::heap::SharedMemory;
use crate::synchronize::{Acquired, RobustWord};
use crate::{Error, sys};

/// The ring's data capacity. A message larger than the ring moves in pieces, each side
/// waiting for the other, so it holds a pool's chunks of results whole (a `map` of
/// 200 000 integers sends ~75 KB at a time: 1.4× faster than through a 64 KiB ring). It
/// is 1 MiB rather than about a socket's 208 KiB send buffer because of how bytes move
/// between CPUs: a writer up to a MiB ahead of its reader has let its lines leave its own
/// cache by the time the reader gets to them, where a 256 KiB ring stays in both CPUs'
/// caches and the reader fetches every line from the writer's (1 MiB messages with plain
/// copies: 32–52 µs a MiB against 105–123 µs). With the streamed copies of
/// [`copy_to_ring`] it still helps where the two CPUs share no cache (53 µs against 70);
/// `docs/BENCHMARKS.md` ("Pipe 1 MiB, and where the machine runs its two CPUs") has the
/// measurements. The price: each ring maps 1 MiB of shared memory, whose pages are
/// touched (and then kept) as messages pass through it.
const CAPACITY: usize = 1024 * 1024;
const CAP: u64 = CAPACITY as u64;
/// The control words before the data (the last, [`SHARED_ELSEWHERE`], is at bytes
/// 644..648). The
/// data starts in the same page: a short message and the words that announce it are one
/// page, and each page of shared memory costs a fault in each process that touches it
/// first (2.4 µs here, against 1.6 µs for a copy-on-write one).
const HEADER: usize = 1024;
/// The ring's mapping: the header and the data, in whole pages.
const MAPPING: usize = (HEADER + CAPACITY).next_multiple_of(4096);

// 64-bit words (index × 8 bytes): writer and reader fields on separate cache lines.
const WSTATE: usize = 0;
const READ_POS: usize = 16;
// 32-bit words (index × 4 bytes).
const WRITER_WAITING: usize = 64;
const SPACE: usize = 65;
const WRITE_LOCK: usize = 96;
/// The writers' lock holder's start time (64-bit word: bytes 392..400, beside the lock).
const WRITE_LOCK_START: usize = 49;
const WRITE_PARTIAL: usize = 97;
const READ_LOCK: usize = 128;
/// The readers' lock holder's start time (64-bit word: bytes 528..536).
const READ_LOCK_START: usize = 66;
const READ_PARTIAL: usize = 129;
const OWED: usize = 130;
const BROKEN: usize = 160;
/// Set by a forked process that could not let go of the ring ([`Ring::detach_in_child`]):
/// the ring is never reused ([`Ring::reuse_pair`]).
const SHARED_ELSEWHERE: usize = 161;
const _: () =
    assert!((SHARED_ELSEWHERE + 1) * 4 <= HEADER, "the control words fit before the data");

const TOKEN: u64 = 1;

/// The spare ring pairs of fork pools' channels ([`Ring::reuse_pair`]). A forked child
/// unmaps its copies: the parent will reuse them for channels the child must not reach.
static SPARE_PAIRS: ForkMutex<Vec<(Ring, Ring)>> =
    ForkMutex::new(Vec::new(), 71, unmap_spares_in_child);
/// The most spare pairs kept: a program that starts pools one after another needs as
/// many as a pool has workers.
const MOST_SPARE_PAIRS: usize = 8;
/// The most bytes written to a ring that is reused (then zeroed): a few pages.
const REUSE_LIMIT: u64 = 64 * 1024;

/// `SPARE_PAIRS` in a forked child: each mapping unmapped, the list forgotten (its values
/// dangle; nothing is freed: see `WeakList::drain_in_child`). A mapping that cannot be
/// unmapped is marked, still mapped, so that the parent does not reuse it.
fn unmap_spares_in_child(spares: &mut Vec<(Ring, Ring)>) {
    for (a, b) in spares.iter() {
        // SAFETY: the list is forgotten right after, so nothing in the child reaches or
        // drops these rings (both parts of each mapping) again; on failure nothing was
        // unmapped.
        if unsafe { a.mem.unmap_whole_in_child() }.is_err() {
            a.mark_shared_elsewhere();
            b.mark_shared_elsewhere();
        }
    }
    std::mem::forget(std::mem::take(spares));
}

/// How often a writer waiting for space checks that the pipe still has a reader (and a
/// reader in the middle of a frame that its writer still writes).
pub(super) const LIVENESS_CHECK: Duration = Duration::from_millis(100);
/// How often a duplex end waiting for space takes in what its peer sent.
const PUMP_INTERVAL: Duration = Duration::from_millis(1);

/// How long a reader waiting for the next message busy-waits before it gives up its CPU:
/// a streaming writer is usually back within a microsecond, and a reader that waits for
/// work (a pool worker) should not take CPU time from those that make it.
const SPIN_FOR_NEXT: Duration = Duration::from_micros(1);
/// How long a side busy-waits in the middle of a transfer — a writer waiting for room, a
/// reader for the rest of a frame larger than the ring — where the other side is at work
/// and a sleep and a wake-up per ring-full would cost more than the wait.
const SPIN_MID_TRANSFER: Duration = Duration::from_micros(20);
/// The most bytes a side copies of a frame larger than the ring before it publishes them
/// (the writer) or frees their room (the reader): the other side works on the piece
/// before while this one copies the next, so neither waits for a whole ring-full — a
/// wait long enough to outlast the spin, and then a sleep and a wake-up per ring-full.
const PIECE: usize = 32 * 1024;
/// `sched_yield`s after the spin, before sleeping.
const YIELDS: u32 = 2;

/// Called while a send waits for space.
pub(crate) type Pump<'a> = &'a mut dyn FnMut() -> Result<(), Error>;

/// How a wait for data ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready,
    Eof,
    TimedOut,
}

/// What [`Ring::recv`] got.
pub(crate) enum Received {
    /// A message of this many bytes, now in the caller's buffer.
    Message(usize),
    /// A frame announcing this many bytes, over the caller's limit (nothing was taken).
    TooLong(usize),
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// The shared-memory half of one direction of a pipe, held by both of its ends (clones
/// share the mapping).
#[derive(Clone)]
pub(crate) struct Ring {
    mem: Arc<SharedMemory>,
}

/// A held robust lock word, released on drop.
struct Held<'a>(RobustWord<'a>);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

fn broken() -> Error {
    Error::OsError(io::Error::new(
        io::ErrorKind::InvalidData,
        "a process stopped in the middle of a message on this pipe; its stream is broken",
    ))
}

/// Whether spinning can help: this thread may run on more than one CPU, so the other
/// side can run meanwhile (pinned to one CPU, it only delays the other side: yielding is
/// the way). The affinity is looked up again every 50 ms, per thread.
fn spinning_helps() -> bool {
    const FRESH_FOR: Duration = Duration::from_millis(50);
    thread_local! {
        static MANY_CPUS: Cell<Option<(Instant, bool)>> = const { Cell::new(None) };
    }
    MANY_CPUS.with(|cached| {
        let now = Instant::now();
        match cached.get() {
            Some((when, many)) if now.duration_since(when) < FRESH_FOR => many,
            _ => {
                let many = sys::cpus_allowed() > 1;
                cached.set(Some((now, many)));
                many
            }
        }
    })
}

/// Waits a moment, without sleeping, for `done`; whether it came true.
fn spin_until(budget: Duration, mut done: impl FnMut() -> bool) -> bool {
    if spinning_helps() {
        let until = Instant::now() + budget;
        loop {
            for _ in 0..32 {
                if done() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until {
                break;
            }
        }
    }
    for _ in 0..YIELDS {
        sys::yield_now();
        if done() {
            return true;
        }
    }
    false
}

/// A deadline already past, for a try (no wait). Read from the clock once per process,
/// not at each try: the pool's handler tries its workers' rings for every message, and a
/// clock read costs tens of nanoseconds on a virtual machine.
pub(super) fn already_past() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn left_until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Copies of at least this many bytes into the ring bypass the writer's caches.
const STREAM_FROM: usize = 32 * 1024;

/// Copies `len` bytes from `src` to `dst` in the ring. A large copy (from
/// [`STREAM_FROM`] bytes) is written with non-temporal stores on x86-64: the bytes go to
/// memory instead of staying in the writer's cache, so the reader, on another CPU, reads
/// them from memory rather than asking the writer's CPU for every line. What that saves
/// depends on where the machine runs the two CPUs: a stream of 1 MiB messages through a
/// 1 MiB ring took 59–66 µs a MiB with these against 39–65 µs with plain copies while a
/// cache line crossed between the CPUs in 80–90 ns, but 53 µs against 252 µs while it
/// took 370 ns (the host of `docs/BENCHMARKS.md` moves its two virtual CPUs about).
/// Hand-written: no crate offers a non-temporal `memcpy`, and the standard library's goes
/// through the cache.
///
/// # Safety
/// `src..src + len` is readable, `dst..dst + len` writable, and they do not overlap.
unsafe fn copy_to_ring(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= STREAM_FROM {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
        // Up to the first 16-byte boundary of `dst` with a plain copy, then 64 bytes a
        // step with streaming stores (which need an aligned destination), then the rest.
        let head = dst.align_offset(16).min(len);
        let body = (len - head) / 64 * 64;
        // SAFETY: every access lies within `src..src + len` and `dst..dst + len`, which
        // the caller vouches for: the head is `head ≤ len` bytes, each step reads and
        // writes 64 bytes below `head + body ≤ len`, the tail is the `len - head - body`
        // bytes after them; the streamed stores are 16-byte aligned (`dst + head` is, and
        // the steps are multiples of 16). SSE2, which these intrinsics need, is part of
        // every x86-64 CPU. The `sfence` orders the streamed stores before whatever
        // follows — the release store that publishes them to the reader.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst, head);
            let (src_body, dst_body) = (src.add(head), dst.add(head));
            let mut i = 0;
            while i < body {
                let from = src_body.add(i).cast::<__m128i>();
                let to = dst_body.add(i).cast::<__m128i>();
                let (a, b) = (_mm_loadu_si128(from), _mm_loadu_si128(from.add(1)));
                let (c, d) = (_mm_loadu_si128(from.add(2)), _mm_loadu_si128(from.add(3)));
                _mm_stream_si128(to, a);
                _mm_stream_si128(to.add(1), b);
                _mm_stream_si128(to.add(2), c);
                _mm_stream_si128(to.add(3), d);
                i += 64;
            }
            _mm_sfence();
            std::ptr::copy_nonoverlapping(
                src.add(head + body),
                dst.add(head + body),
                len - head - body,
            );
        }
        return;
    }
    // SAFETY: as the caller vouches.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
}

impl Ring {
    /// A new, empty ring.
    pub(crate) fn new() -> Result<Ring, Error> {
        Ok(Ring { mem: Arc::new(SharedMemory::new(MAPPING)?) })
    }

    /// Two empty rings (a duplex pipe's) in one anonymous shared mapping, which only
    /// forked children share (see [`SharedMemory::parts`]): a spare pair if there is one
    /// ([`reuse_pair`](Ring::reuse_pair)), else a new mapping.
    ///
    /// It takes the spares' lock either way, which every `fork()` holds from its count to
    /// its end (see `pyconc_core::fork::forks`): a fork counted before a caller's earlier
    /// read of the count has ended before the rings exist, and no child of it has them.
    pub(crate) fn pair_for_fork() -> Result<(Ring, Ring), Error> {
        loop {
            let Some((a, b)) = SPARE_PAIRS.lock().pop() else { break };
            // (A child that failed to let go of them after they were put aside says so.)
            if a.may_be_reused() && b.may_be_reused() {
                return Ok((a, b));
            }
        }
        let [a, b] = SharedMemory::parts::<2>(MAPPING)?;
        Ok((Ring { mem: Arc::new(a) }, Ring { mem: Arc::new(b) }))
    }

    /// Keeps the two rings of a fork pool's channel (`pair_for_fork`'s) for the next
    /// channel, once nothing but this process can reach them — the caller vouches that
    /// the worker has been reaped and that every other process forked while the rings
    /// existed has let go of them (see `process_pool.rs`, `CHANNELS`). They are kept only
    /// if this process made them, holds the only handles, both are clean (no lock held, no
    /// message broken or left halfway, no child that failed to let go) and little of each
    /// was used: the header and the bytes written are zeroed, as in a new mapping. Else,
    /// or with [`MOST_SPARE_PAIRS`] kept already, they are dropped (unmapped).
    ///
    /// A new channel costs an `mmap`, a page fault in each process for each page first
    /// touched, and an `munmap` that frees the pages at the end: about a tenth of a
    /// short-lived `Pool(2)`'s life (`docs/BENCHMARKS.md`).
    pub(crate) fn reuse_pair(a: Ring, b: Ring) {
        if !(a.may_be_reused() && b.may_be_reused() && a.is_clean() && b.is_clean()) {
            return;
        }
        a.reset();
        b.reset();
        let mut spares = SPARE_PAIRS.lock();
        if spares.len() < MOST_SPARE_PAIRS {
            spares.push((a, b));
        }
    }

    /// How many spare pairs are kept.
    #[cfg(test)]
    pub(crate) fn spare_pairs() -> usize {
        SPARE_PAIRS.lock().len()
    }

    /// Whether the ring is this process's own part of a fork channel's mapping, held by
    /// this handle alone, that no forked process reported it could not let go of.
    fn may_be_reused(&self) -> bool {
        Arc::strong_count(&self.mem) == 1
            && self.mem.is_own_part()
            && self.word(SHARED_ELSEWHERE).load(Ordering::SeqCst) == 0
    }

    /// No lock held, nothing broken or left halfway, and at most [`REUSE_LIMIT`] bytes
    /// ever written (so none beyond them: the ring never wrapped).
    fn is_clean(&self) -> bool {
        [WRITE_LOCK, READ_LOCK, WRITE_PARTIAL, READ_PARTIAL, BROKEN]
            .iter()
            .all(|&word| self.word(word).load(Ordering::Acquire) == 0)
            && self.wstate().load(Ordering::Acquire) >> 1 <= REUSE_LIMIT
    }

    /// Zeroes the header and the bytes written: the ring as new.
    fn reset(&self) {
        let written = (self.wstate().load(Ordering::Acquire) >> 1).min(REUSE_LIMIT) as usize;
        // SAFETY: `HEADER + written ≤ HEADER + REUSE_LIMIT < MAPPING`, inside the mapping;
        // only this handle reaches it (`may_be_reused`: no other handle here, and no other
        // process, as `reuse_pair`'s caller vouches), and zero is valid for its atomics.
        unsafe { std::ptr::write_bytes(self.mem.as_ptr(), 0, HEADER + written) };
    }

    /// In a forked child that must not reach this ring: see
    /// [`SharedMemory::detach_in_child`]. If the pages cannot be let go of, the ring says
    /// so ([`SHARED_ELSEWHERE`]), and is never reused.
    pub(crate) fn detach_in_child(&self, null: Option<&sys::DevNull>) {
        if self.mem.detach_in_child(null).is_err() {
            self.mark_shared_elsewhere();
        }
    }

    /// [`detach_in_child`](Self::detach_in_child) of a duplex end's two rings: one `mmap`
    /// for a fork channel's pair ([`SharedMemory::detach_both_in_child`]).
    pub(crate) fn detach_pair_in_child(a: &Ring, b: &Ring, null: Option<&sys::DevNull>) {
        if a.mem.detach_both_in_child(&b.mem, null).is_err() {
            a.mark_shared_elsewhere();
            b.mark_shared_elsewhere();
        }
    }

    /// In a forked child that could not let go of the ring: says so in it, for the
    /// parent, which then never reuses it.
    fn mark_shared_elsewhere(&self) {
        self.word(SHARED_ELSEWHERE).store(1, Ordering::SeqCst);
    }

    /// The ring of a mapping received from another process.
    pub(crate) fn from_shared(mem: SharedMemory) -> Result<Ring, Error> {
        if mem.len() != MAPPING {
            return Err(Error::UnpicklingError(format!(
                "a pipe's shared memory of {} bytes, not {}",
                mem.len(),
                MAPPING
            )));
        }
        Ok(Ring { mem: Arc::new(mem) })
    }

    /// The mapping, to send to a spawn or forkserver child.
    pub(crate) fn shared_mem(&self) -> &SharedMemory {
        &self.mem
    }

    fn wstate(&self) -> &AtomicU64 {
        self.mem.word64(WSTATE)
    }

    fn read_pos(&self) -> &AtomicU64 {
        self.mem.word64(READ_POS)
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        self.mem.word(index)
    }

    /// The writers' ([`WRITE_LOCK`]) or readers' ([`READ_LOCK`]) robust lock.
    fn robust_word(&self, lock: usize) -> RobustWord<'_> {
        let start = if lock == WRITE_LOCK { WRITE_LOCK_START } else { READ_LOCK_START };
        RobustWord { state: self.word(lock), start: self.mem.word64(start) }
    }

    /// How many bytes wait to be read (for pollers; no lock).
    pub(crate) fn available(&self) -> u64 {
        let written = self.wstate().load(Ordering::Acquire) >> 1;
        written.wrapping_sub(self.read_pos().load(Ordering::Acquire))
    }

    /// Takes the writers' or readers' lock (by `deadline`); `Ok(None)` on timeout.
    fn lock(
        &self,
        lock: usize,
        partial: usize,
        deadline: Option<Instant>,
    ) -> Result<Option<Held<'_>>, Error> {
        let word = self.robust_word(lock);
        let held = match word.acquire(sys::process_identity(), deadline) {
            Acquired::TimedOut => return Ok(None),
            Acquired::Yes | Acquired::FromDeadOwner => Held(word),
        };
        if self.word(partial).load(Ordering::Relaxed) != 0 {
            self.word(BROKEN).store(1, Ordering::Release);
        }
        if self.word(BROKEN).load(Ordering::Acquire) != 0 {
            return Err(broken());
        }
        Ok(Some(held))
    }

    /// Copies `bytes` into the ring at stream position `at`.
    fn copy_in(&self, at: u64, bytes: &[u8]) {
        let bytes = &bytes[..bytes.len().min(CAPACITY)]; // (callers never pass more)
        let offset = (at % CAP) as usize;
        let first = bytes.len().min(CAPACITY - offset);
        let data = self.mem.as_ptr().wrapping_add(HEADER);
        // SAFETY: both ranges lie in the data area (offset + first ≤ CAPACITY, the rest
        // ≤ CAPACITY as bytes.len() ≤ CAPACITY); the writer owns the free space it copies
        // to (the reader does not touch it until the write position moves past it), and
        // the source is a caller's slice, not in the ring.
        unsafe {
            copy_to_ring(bytes.as_ptr(), data.add(offset), first);
            copy_to_ring(bytes.as_ptr().add(first), data, bytes.len() - first);
        }
    }

    /// The `len` bytes of the ring from stream position `at`, in two pieces (the second
    /// is where the ring wraps around). Only for published bytes not yet consumed.
    fn peek(&self, at: u64, len: usize) -> (&[u8], &[u8]) {
        let len = len.min(CAPACITY); // (positions come from shared memory: stay in bounds)
        let offset = (at % CAP) as usize;
        let first = len.min(CAPACITY - offset);
        let data = self.mem.as_ptr().wrapping_add(HEADER);
        // SAFETY: both ranges lie in the data area (as in `copy_in`; len ≤ CAPACITY); the
        // bytes were published (the write position's acquire load came after the writer's
        // copy) and no writer reuses them until the read position moves past them, which
        // only the caller (holding the readers' lock) does, after it is done with them.
        unsafe {
            (
                std::slice::from_raw_parts(data.add(offset), first),
                std::slice::from_raw_parts(data, len - first),
            )
        }
    }

    /// Appends `len` bytes of the ring from stream position `at` to `buf`.
    fn copy_out(&self, at: u64, len: usize, buf: &mut Vec<u8>) {
        let (a, b) = self.peek(at, len);
        buf.extend_from_slice(a);
        buf.extend_from_slice(b);
    }

    /// Publishes everything up to stream position `end`; wakes a sleeping reader.
    fn publish(&self, fd: BorrowedFd<'_>, end: u64) -> Result<(), Error> {
        let previous = self.wstate().swap((end << 1) | TOKEN, Ordering::SeqCst);
        if previous & TOKEN == 0 {
            // The reader cleared the token: it may sleep on the pipe.
            match sys::write_nonblocking(fd, &[io::IoSlice::new(&[1])]) {
                // A full pipe of wake-up bytes wakes the reader as well.
                Ok(_) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Waits until `need` bytes fit after stream position `end`; returns the free space.
    /// `pump` runs now and then while it waits (see [`Ring::send`]).
    fn wait_space(
        &self,
        fd: BorrowedFd<'_>,
        end: u64,
        need: u64,
        pump: &mut Option<Pump<'_>>,
    ) -> Result<u64, Error> {
        // (Saturating: a read position from shared memory past `end` is no room at all.)
        let free = || CAP.saturating_sub(end.wrapping_sub(self.read_pos().load(Ordering::SeqCst)));
        let mut spun = false;
        loop {
            if free() >= need {
                return Ok(free());
            }
            if !spun {
                spun = true;
                if spin_until(SPIN_MID_TRANSFER, || free() >= need) {
                    continue;
                }
            }
            let space = self.word(SPACE);
            self.word(WRITER_WAITING).store(1, Ordering::SeqCst);
            let seen = space.load(Ordering::SeqCst);
            if free() >= need {
                continue;
            }
            // A duplex end pumps what the peer sends meanwhile (the peer may itself wait
            // for space), so it looks up often.
            let nap = if pump.is_some() { PUMP_INTERVAL } else { LIVENESS_CHECK };
            let woke_by = Instant::now() + nap;
            SharedWord::from_atomic(space).wait(seen, Some(woke_by));
            if Instant::now() >= woke_by
                && sys::poll_one(fd, libc::POLLOUT, Some(Duration::ZERO))?
                    & (libc::POLLERR | libc::POLLHUP)
                    != 0
            {
                return Err(io::Error::from_raw_os_error(libc::EPIPE).into());
            }
            if let Some(pump) = pump.as_mut() {
                pump()?;
            }
            if self.word(BROKEN).load(Ordering::Acquire) != 0 {
                return Err(broken());
            }
        }
    }

    /// Copies a frame that fits the free space in at stream position `start` and publishes
    /// it in one step: a reader sees all of it or none of it.
    fn put_whole(
        &self,
        fd: BorrowedFd<'_>,
        start: u64,
        header: [u8; 4],
        data: &[u8],
    ) -> Result<(), Error> {
        self.copy_in(start, &header);
        self.copy_in(start + 4, data);
        self.publish(fd, start + (header.len() + data.len()) as u64)
    }

    /// Sends one frame: `header` then `data` (the caller checked the length). `pump`: a
    /// duplex end's way to take in what its peer sends while this waits for space, so
    /// two ends sending large messages to each other cannot wait for each other forever.
    pub(crate) fn send(
        &self,
        fd: BorrowedFd<'_>,
        header: [u8; 4],
        data: &[u8],
        mut pump: Option<Pump<'_>>,
    ) -> Result<(), Error> {
        let Some(_held) = self.lock(WRITE_LOCK, WRITE_PARTIAL, None)? else {
            return Err(Error::TimeoutError); // (no deadline: cannot happen)
        };
        // Only the holder of the writers' lock moves the write position.
        let start = self.wstate().load(Ordering::Relaxed) >> 1;
        let frame = (header.len() + data.len()) as u64;
        if frame <= CAP {
            self.wait_space(fd, start, frame, &mut pump)?;
            return self.put_whole(fd, start, header, data);
        }
        let partial = self.word(WRITE_PARTIAL);
        partial.store(1, Ordering::Relaxed);
        self.wait_space(fd, start, 4, &mut pump)?;
        self.copy_in(start, &header);
        let mut end = start + 4;
        self.publish(fd, end)?;
        let mut rest = data;
        while !rest.is_empty() {
            let free = self.wait_space(fd, end, 1, &mut pump)?;
            let n = rest.len().min(free as usize).min(PIECE);
            self.copy_in(end, &rest[..n]);
            end += n as u64;
            rest = &rest[n..];
            self.publish(fd, end)?;
        }
        partial.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Sends one frame if it fits the ring now and no other writer is at it, without
    /// waiting; whether it did. (A `Queue` hands the frames that do not to its feeder.)
    pub(crate) fn try_send(
        &self,
        fd: BorrowedFd<'_>,
        header: [u8; 4],
        data: &[u8],
    ) -> Result<bool, Error> {
        let frame = (header.len() + data.len()) as u64;
        if frame > CAP {
            return Ok(false);
        }
        let Some(_held) = self.lock(WRITE_LOCK, WRITE_PARTIAL, Some(already_past()))? else {
            return Ok(false);
        };
        let start = self.wstate().load(Ordering::Relaxed) >> 1;
        let free = CAP.saturating_sub(start.wrapping_sub(self.read_pos().load(Ordering::SeqCst)));
        if free < frame {
            return Ok(false);
        }
        self.put_whole(fd, start, header, data)?;
        Ok(true)
    }

    /// Moves the read position to `to`; wakes a writer waiting for space.
    fn consume_to(&self, to: u64) {
        self.read_pos().store(to, Ordering::SeqCst);
        let waiting = self.word(WRITER_WAITING);
        if waiting.load(Ordering::SeqCst) != 0 && waiting.swap(0, Ordering::SeqCst) != 0 {
            let space = self.word(SPACE);
            space.fetch_add(1, Ordering::SeqCst);
            SharedWord::from_atomic(space).wake_all();
        }
    }

    /// Whether a writer died (or gave up) in the middle of a frame larger than the ring:
    /// then the rest of it never comes.
    fn writer_stopped_mid_frame(&self) -> bool {
        self.word(WRITE_PARTIAL).load(Ordering::Acquire) != 0
            && !self.robust_word(WRITE_LOCK).held_by_live_holder()
    }

    /// Waits (holding the readers' lock) until `need` bytes are readable from stream
    /// position `at`, the writers are all gone, or `deadline` passes. `mid_frame`: the
    /// rest of a frame larger than the ring is awaited; every 100 ms the wait checks that
    /// its writer still writes.
    fn wait_for(
        &self,
        fd: BorrowedFd<'_>,
        at: u64,
        need: u64,
        deadline: Option<Instant>,
        mid_frame: bool,
    ) -> Result<Readiness, Error> {
        let enough = |state: u64| (state >> 1).wrapping_sub(at) >= need;
        let owed = self.word(OWED);
        // (Whether the deadline is past is asked only once the bytes are not there.)
        let mut spun = false;
        loop {
            let state = self.wstate().load(Ordering::SeqCst);
            if enough(state) {
                return Ok(Readiness::Ready);
            }
            if self.word(BROKEN).load(Ordering::Acquire) != 0 {
                return Err(broken());
            }
            if !spun {
                spun = true;
                let budget = if mid_frame { SPIN_MID_TRANSFER } else { SPIN_FOR_NEXT };
                let past = deadline.is_some_and(|d| d <= Instant::now());
                if !past && spin_until(budget, || enough(self.wstate().load(Ordering::Acquire))) {
                    continue;
                }
            }
            if state & TOKEN != 0 {
                // Going to sleep: clear the token (only if nothing came meanwhile) and
                // take its byte out of the pipe.
                if self
                    .wstate()
                    .compare_exchange(state, state & !TOKEN, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    owed.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            // Read the bytes owed (or a stray one), or sleep until a byte comes.
            let mut bytes = [0u8; 16];
            let want = (owed.load(Ordering::Relaxed) as usize).clamp(1, bytes.len());
            let read = match sys::read_nonblocking(fd, &mut bytes[..want]) {
                // A socket peer that closed with wake-ups unread resets instead: the same end.
                Err(error) if error.raw_os_error() == Some(libc::ECONNRESET) => Ok(Some(0)),
                read => read,
            };
            match read? {
                Some(0) => {
                    // Every writer is gone; everything they sent is in the ring.
                    let state = self.wstate().load(Ordering::SeqCst);
                    return Ok(if enough(state) { Readiness::Ready } else { Readiness::Eof });
                }
                Some(n) => {
                    let left = (owed.load(Ordering::Relaxed) as usize).saturating_sub(n);
                    owed.store(left as u32, Ordering::Relaxed);
                }
                None => {
                    let left = left_until(deadline);
                    if left.is_some_and(|l| l.is_zero()) {
                        return Ok(Readiness::TimedOut);
                    }
                    if !mid_frame {
                        sys::poll_one(fd, libc::POLLIN, left)?;
                    } else if sys::poll_one(fd, libc::POLLIN, Some(LIVENESS_CHECK))? == 0
                        && !enough(self.wstate().load(Ordering::SeqCst))
                        && self.writer_stopped_mid_frame()
                    {
                        self.word(BROKEN).store(1, Ordering::Release);
                        return Err(broken());
                    }
                }
            }
        }
    }

    /// Receives one frame into `buf` (replacing its contents), waiting until `deadline`.
    ///
    /// # Errors
    /// [`Error::EOFError`] when the writers are gone and the ring is empty; a truncated
    /// frame; a broken stream.
    pub(crate) fn recv(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut Vec<u8>,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<Received, Error> {
        let Some(_held) = self.lock(READ_LOCK, READ_PARTIAL, deadline)? else {
            return Ok(Received::TimedOut);
        };
        // Only the holder of the readers' lock moves the read position.
        let start = self.read_pos().load(Ordering::Relaxed);
        match self.wait_for(fd, start, 4, deadline, false)? {
            Readiness::Ready => {}
            Readiness::TimedOut => return Ok(Received::TimedOut),
            Readiness::Eof if self.available() == 0 => return Err(Error::EOFError),
            Readiness::Eof => return Err(truncated()),
        }
        let mut header = [0u8; 4];
        let (a, b) = self.peek(start, 4);
        header[..a.len()].copy_from_slice(a);
        header[a.len()..].copy_from_slice(b);
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if length > max {
            return Ok(Received::TooLong(length));
        }
        buf.clear();
        buf.reserve(length);
        let frame = 4 + length as u64;
        if frame <= CAP {
            // Published whole: it is all there with its header.
            if self.available() < frame {
                self.word(BROKEN).store(1, Ordering::Release);
                return Err(broken());
            }
            self.copy_out(start + 4, length, buf);
            self.consume_to(start + frame);
            return Ok(Received::Message(length));
        }
        let partial = self.word(READ_PARTIAL);
        partial.store(1, Ordering::Relaxed);
        let mut at = start + 4;
        self.consume_to(at);
        while buf.len() < length {
            if self.wait_for(fd, at, 1, None, true)? != Readiness::Ready {
                return Err(truncated());
            }
            let n = (self.available() as usize).min(length - buf.len()).min(PIECE);
            self.copy_out(at, n, buf);
            at += n as u64;
            self.consume_to(at);
        }
        partial.store(0, Ordering::Relaxed);
        Ok(Received::Message(length))
    }

    /// Whether a message (or the end) can be received: waits up to `deadline`. Takes the
    /// wake-up byte of an empty ring out of the pipe, so the fd goes quiet.
    pub(crate) fn poll(
        &self,
        fd: BorrowedFd<'_>,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        if self.available() > 0 {
            return Ok(true);
        }
        let Some(_held) = self.lock(READ_LOCK, READ_PARTIAL, deadline)? else {
            return Ok(false);
        };
        let start = self.read_pos().load(Ordering::Relaxed);
        Ok(self.wait_for(fd, start, 1, deadline, false)? != Readiness::TimedOut)
    }
    /// For a duplex end waiting for the rest of a frame: an error (and the stream marked
    /// broken) if the writer stopped halfway through it — died, or gave up.
    pub(super) fn check_writer_mid_frame(&self) -> Result<(), Error> {
        if self.available() == 0 && self.writer_stopped_mid_frame() {
            self.word(BROKEN).store(1, Ordering::Release);
            return Err(broken());
        }
        Ok(())
    }

    /// Waits a moment, without sleeping, for anything to read; whether it came.
    /// `mid_frame`: the rest of a frame is awaited (the writer is at work); otherwise the
    /// next message, for `idle` (`None`: the default moment).
    pub(super) fn spin_for_data(&self, mid_frame: bool, idle: Option<Duration>) -> bool {
        let budget = if mid_frame { SPIN_MID_TRANSFER } else { idle.unwrap_or(SPIN_FOR_NEXT) };
        spin_until(budget, || self.available() > 0)
    }

    /// A duplex end's read: moves what the ring holds (at most `max` bytes, frames or parts
    /// of them) to `buf`, without waiting. `Ok(Some(false))`: the peer is gone and the
    /// ring is empty; `Ok(None)`: nothing now — and, when `settle`, the wake-up byte is
    /// out of the fd, so a `poll` of the fd sleeps until more comes (without `settle` the
    /// token stays, so a streaming peer need not write one for its next message).
    pub(super) fn pull(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut Vec<u8>,
        max: usize,
        settle: bool,
    ) -> Result<Option<bool>, Error> {
        if !settle && self.available() == 0 {
            return Ok(None);
        }
        let Some(_held) = self.lock(READ_LOCK, READ_PARTIAL, Some(already_past()))? else {
            return Ok(None); // another reader is at it
        };
        let start = self.read_pos().load(Ordering::Relaxed);
        match self.wait_for(fd, start, 1, Some(already_past()), false)? {
            Readiness::TimedOut => Ok(None),
            Readiness::Eof => Ok(Some(false)),
            Readiness::Ready => {
                let n = (self.available() as usize).min(max).min(CAPACITY);
                self.copy_out(start, n, buf);
                self.consume_to(start + n as u64);
                Ok(Some(true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;

    use super::{
        HEADER, MOST_SPARE_PAIRS, REUSE_LIMIT, Ring, SHARED_ELSEWHERE, STREAM_FROM, TOKEN,
        WRITE_LOCK, copy_to_ring,
    };
    use crate::sys;

    /// A fork channel's ring pair with `written` bytes of data sent one way (without the
    /// fds: the bytes and the write position only).
    fn used_pair(written: usize) -> (Ring, Ring) {
        let (a, b) = Ring::pair_for_fork().unwrap();
        // SAFETY: the data area holds `CAPACITY` bytes, more than any `written` here;
        // nothing else reaches this new mapping.
        unsafe { std::ptr::write_bytes(a.mem.as_ptr().add(HEADER), 0xab, written) };
        a.wstate().store((written as u64) << 1 | TOKEN, SeqCst);
        (a, b)
    }

    /// In a forked child (whose spare list starts empty, and no other thread takes from
    /// it): a used pair put aside is the next pair handed out, zeroed as a new mapping;
    /// one that is not clean, still held elsewhere, not a fork channel's, or used too much
    /// is not kept; at most `MOST_SPARE_PAIRS` are; and one that a child could not let go
    /// of after it was put aside is not handed out.
    #[test]
    fn a_fork_channels_rings_are_reused_zeroed_only_when_clean_and_held_nowhere_else() {
        sys::assert_in_forked_child(|| {
            if Ring::spare_pairs() != 0 {
                return 1; // the parent's spares are not the child's
            }
            let (a, b) = used_pair(100);
            let at = a.mem.as_ptr();
            Ring::reuse_pair(a, b);
            let (a, b) = Ring::pair_for_fork().unwrap();
            if a.mem.as_ptr() != at {
                return 2;
            }
            // SAFETY: reads the header and the bytes written, inside the mapping.
            let bytes = unsafe { std::slice::from_raw_parts(at, HEADER + 100) };
            if bytes.iter().any(|&byte| byte != 0) {
                return 3; // not zeroed
            }
            drop((a, b));
            let refused: [fn() -> (Ring, Ring); 4] = [
                || {
                    let (a, b) = used_pair(10);
                    a.word(WRITE_LOCK).store(7, SeqCst);
                    (a, b)
                },
                || used_pair(REUSE_LIMIT as usize + 1),
                || (Ring::new().unwrap(), Ring::new().unwrap()),
                || {
                    let (a, b) = used_pair(10);
                    std::mem::forget(a.clone()); // another handle
                    (a, b)
                },
            ];
            for (k, pair) in refused.iter().enumerate() {
                let (a, b) = pair();
                Ring::reuse_pair(a, b);
                if Ring::spare_pairs() != 0 {
                    return 10 + k as i32;
                }
            }
            let pairs: Vec<_> = (0..MOST_SPARE_PAIRS + 1).map(|_| used_pair(10)).collect();
            for (a, b) in pairs {
                Ring::reuse_pair(a, b);
            }
            if Ring::spare_pairs() != MOST_SPARE_PAIRS {
                return 4;
            }
            // A child reports that it could not let go of the last pair put aside.
            let (a, b) = Ring::pair_for_fork().unwrap();
            let (at, flag) = (a.mem.as_ptr(), std::ptr::from_ref(b.word(SHARED_ELSEWHERE)));
            Ring::reuse_pair(a, b);
            // SAFETY: the pair is kept (mapped) until the next `pair_for_fork`.
            unsafe { (*flag).store(1, SeqCst) };
            let (c, d) = Ring::pair_for_fork().unwrap();
            if c.mem.as_ptr() == at || Ring::spare_pairs() != MOST_SPARE_PAIRS - 2 {
                return 5; // handed out, or kept
            }
            drop((c, d));
            0
        });
    }

    /// A child forked while a pair is put aside has it unmapped: the pages that the
    /// parent will hand to its next channel are out of the child's reach.
    #[test]
    fn a_forked_child_has_no_mapping_of_the_spare_rings() {
        sys::assert_in_forked_child(|| {
            let (a, b) = used_pair(10);
            let at = a.mem.as_ptr();
            Ring::reuse_pair(a, b);
            if Ring::spare_pairs() != 1 {
                return 1;
            }
            let mapped = || {
                let mut resident = [0u8; 1];
                // SAFETY: asks about one page at a page-aligned address into a valid
                // one-byte vector; `ENOMEM` if nothing is mapped there.
                unsafe { libc::mincore(at.cast(), 4096, resident.as_mut_ptr()) == 0 }
            };
            if !mapped() {
                return 2;
            }
            // SAFETY: the grandchild only asks the kernel about an address, then `_exit`s.
            match unsafe { sys::fork() } {
                Ok(sys::Fork::Child) => sys::exit_now(if mapped() { 1 } else { 0 }),
                Ok(sys::Fork::Parent(pid)) => match sys::wait(pid) {
                    Ok(sys::ExitStatus::Exited(0)) => 0,
                    _ => 3, // the grandchild still maps the spare
                },
                Err(_) => 4,
            }
        });
    }

    /// Every length around the streaming threshold and the 64-byte steps, to every
    /// alignment of the destination: the bytes arrive, and none beside them changes.
    #[test]
    fn a_copy_into_the_ring_writes_exactly_its_bytes_at_any_length_and_alignment() {
        let source: Vec<u8> = (0..STREAM_FROM * 3).map(|i| (i * 7 + i / 251) as u8).collect();
        let lengths = [0, 1, 15, 16, 63, 64, 65, STREAM_FROM - 1, STREAM_FROM, STREAM_FROM + 1]
            .into_iter()
            .chain([STREAM_FROM + 13, STREAM_FROM * 2 + 63, STREAM_FROM * 3 - 17]);
        for len in lengths {
            for shift in 0..20 {
                let mut ring = vec![0xA5u8; len + 64];
                let src = &source[shift % 3..shift % 3 + len];
                // SAFETY: `src` has `len` bytes; `ring[shift..shift + len]` lies within the
                // `len + 64` bytes of `ring` (shift < 20); the two are distinct buffers.
                unsafe { copy_to_ring(src.as_ptr(), ring.as_mut_ptr().add(shift), len) };
                assert_eq!(&ring[shift..shift + len], src, "len {len}, shift {shift}");
                assert!(ring[..shift].iter().all(|&b| b == 0xA5), "before: len {len}");
                assert!(ring[shift + len..].iter().all(|&b| b == 0xA5), "after: len {len}");
            }
        }
    }
}
