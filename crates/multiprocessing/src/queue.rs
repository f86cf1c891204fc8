//! `Queue`, `SimpleQueue` and `JoinableQueue`: CPython's `multiprocessing.queues`.
//!
//! As CPython's: a pipe carries one frame per item (its 4-byte length, then the item
//! serialized); a reader lock makes each frame go to one consumer whole, a writer lock
//! keeps producers' frames from interleaving; a bounded queue counts free places with a
//! semaphore. Beyond CPython, the frames travel through a ring buffer in shared memory
//! beside the pipe, as a one-way `Connection`'s do (see `connection/ring.rs`): the pipe
//! only wakes a consumer that went to sleep and reports EOF, so a small item costs copies
//! and atomics, not a `write(2)` and a `read(2)`; the ring's own reader and writer locks
//! take the place of the queue's (which remain for a pipe without a ring). Every lock is
//! a robust cross-process lock: a consumer killed while it waited (holding the reader
//! lock) does not wedge the others, and — the frame it waited for being still unread — no
//! item is lost.
//!
//! `Queue::put` never blocks on the pipe: a frame that fits the ring now is written at
//! once; otherwise (the ring is full, or the frame is large) it goes to this process's
//! *feeder* thread, which writes it when the pipe has room — CPython's feeder, but only
//! when needed. Items of one producer arrive in the order they were put. At exit (and at
//! the end of every child) a process waits until its feeders have written everything,
//! unless [`Queue::cancel_join_thread`] was called, as in CPython.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use pyconc_core::sync::lock;

use pyconc_core::exit::AtExit;
use pyconc_core::fork::{ForkMutex, ForkMutexGuard};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, MAX_FRAME};
use crate::connection::ring::{self, Ring};
use crate::heap::{SendMem, SharedMemory};
use crate::reduction::{RecvFd, SendFd};
use crate::synchronize::{BoundedSemaphore, Lock, deadline_after};
use crate::{Error, sys};

/// The pipe's capacity, where the kernel allows it.
const PIPE_SIZE: usize = 1 << 20;
/// Frames up to this size are written whole or not at all (`PIPE_BUF`).
const ATOMIC_WRITE: usize = 4096;
/// Frames are whole blocks of this size: the first holds the length and the start of the
/// item, so a small item takes one `read` (a reader must not read past its frame: the
/// next one may be another consumer's).
const BLOCK: usize = 64;

/// An item's frame: its length (4 bytes, big-endian), the item serialized, zeroes up to
/// a whole number of blocks.
fn frame_of<T: Serialize>(item: &T) -> Result<Vec<u8>, Error> {
    let mut buffer = Vec::with_capacity(BLOCK);
    buffer.extend_from_slice(&[0; 4]);
    let mut frame = codec::encode_into(item, buffer)?;
    let length = frame.len() - 4;
    if length > MAX_FRAME {
        return Err(Error::PicklingError(format!(
            "an item of {length} bytes is over the {MAX_FRAME}-byte limit"
        )));
    }
    frame[..4].copy_from_slice(&(length as u32).to_be_bytes());
    frame.resize((length + 4).next_multiple_of(BLOCK), 0);
    Ok(frame)
}

/// An item whose frame fits in one block, framed on the stack (no allocation): `None`
/// when it does not fit (or does not serialize; [`frame_of`] then says why).
fn small_frame_of<T: Serialize>(item: &T) -> Option<[u8; BLOCK]> {
    let mut block = [0u8; BLOCK];
    let length = postcard::to_slice(item, &mut block[4..]).ok()?.len();
    block[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Some(block)
}

/// A frame to write: small ones are framed on the stack.
enum Outgoing {
    Small([u8; BLOCK]),
    Large(Vec<u8>),
}

impl Outgoing {
    fn bytes(&self) -> &[u8] {
        match self {
            Outgoing::Small(block) => block,
            Outgoing::Large(frame) => frame,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Outgoing::Small(block) => block.to_vec(),
            Outgoing::Large(frame) => frame,
        }
    }
}

/// A frame read off the pipe: small ones stay in their block (no allocation).
pub(crate) enum Frame {
    Small { block: [u8; BLOCK], length: usize },
    Large(Vec<u8>),
}

impl Frame {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Frame::Small { block, length } => &block[4..4 + length],
            Frame::Large(item) => item,
        }
    }
}

/// A frame's header and item (without the padding).
fn item_of(frame: &[u8]) -> ([u8; 4], &[u8]) {
    let header = [frame[0], frame[1], frame[2], frame[3]];
    let length = u32::from_be_bytes(header) as usize;
    (header, &frame[4..4 + length])
}

/// Words of the counters page, each on its own cache line so that producers and
/// consumers do not bounce one line between CPUs: items put, items got, unfinished tasks.
const PUTS: usize = 0;
const GETS: usize = 16;
const UNFINISHED: usize = 32;

/// How a queue's frames travel.
enum Transport {
    /// Through a ring in shared memory (the pipe carries wake-ups and EOF), as a one-way
    /// `Connection`'s; the ring's own reader and writer locks keep frames whole.
    Ring(Ring),
    /// Where shared memory cannot be had: through the pipe, under a reader lock (a frame
    /// goes to one consumer whole) and a writer lock (producers' frames do not interleave).
    Pipe { rlock: Lock, wlock: Lock },
}

/// What every kind of queue shares: the pipe, its transport and counters.
pub(crate) struct Channel {
    reader: OwnedFd,
    writer: OwnedFd,
    transport: Transport,
    /// Free places of a bounded queue.
    slots: Option<BoundedSemaphore>,
    /// Items put, items got (`qsize` is the difference) and unfinished tasks.
    counters: Arc<SharedMemory>,
    maxsize: usize,
    /// Closed in this process (`close()`); not shared.
    closed: AtomicBool,
    /// This process does not wait for its feeder at exit.
    cancel_join: AtomicBool,
    /// The feeder of the process that first needed one (a forked child, whose pid
    /// differs, finds its own in [`FEEDERS`]): saves the global lookup per `put`.
    feeder: std::sync::OnceLock<(sys::Pid, Arc<Feeder>)>,
}

impl Channel {
    fn new(maxsize: usize) -> Result<Channel, Error> {
        Channel::with_ring(maxsize, Ring::new().ok())
    }

    /// A channel whose frames go through `ring`, or through the pipe when `None`.
    fn with_ring(maxsize: usize, ring: Option<Ring>) -> Result<Channel, Error> {
        let (reader, writer) = sys::pipe()?;
        sys::set_pipe_size(writer.as_fd(), PIPE_SIZE);
        sys::set_nonblocking(reader.as_fd())?;
        sys::set_nonblocking(writer.as_fd())?;
        let slots = match maxsize {
            0 => None,
            n => Some(BoundedSemaphore::try_new(n.min(crate::SEM_VALUE_MAX))?),
        };
        Ok(Channel {
            reader,
            writer,
            transport: match ring {
                Some(ring) => Transport::Ring(ring),
                None => Transport::Pipe { rlock: Lock::internal()?, wlock: Lock::internal()? },
            },
            slots,
            counters: Arc::new(SharedMemory::new(256)?),
            maxsize,
            closed: AtomicBool::new(false),
            cancel_join: AtomicBool::new(false),
            feeder: std::sync::OnceLock::new(),
        })
    }

    fn check_open(&self, this: &dyn fmt::Debug) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::ValueError(format!("Queue {this:?} is closed").into()))
        } else {
            Ok(())
        }
    }

    /// Writes one whole frame (see [`frame_of`]), waiting for room: into the ring (whose
    /// own writer lock keeps frames whole), or into the pipe under the queue's writer lock.
    fn write_frame(&self, frame: &[u8]) -> Result<(), Error> {
        match &self.transport {
            Transport::Ring(ring) => {
                let (header, item) = item_of(frame);
                ring.send(self.writer.as_fd(), header, item, None)
            }
            Transport::Pipe { wlock, .. } => {
                wlock.acquire();
                let written = self.write_to_pipe(frame);
                let _ = wlock.release();
                written
            }
        }
    }

    /// Writes `frame` into the pipe, waiting for room; the writer lock is held.
    fn write_to_pipe(&self, frame: &[u8]) -> Result<(), Error> {
        let mut parts = [IoSlice::new(frame)];
        let mut parts: &mut [IoSlice<'_>] = &mut parts;
        let mut left = frame.len();
        while left > 0 {
            match sys::write_nonblocking(self.writer.as_fd(), parts)? {
                Some(n) => {
                    left -= n;
                    IoSlice::advance_slices(&mut parts, n);
                }
                None => {
                    sys::poll_one(self.writer.as_fd(), libc::POLLOUT, None)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a small frame if the pipe takes it now without waiting: `Ok(false)` if not.
    fn try_write_frame(&self, frame: &[u8]) -> Result<bool, Error> {
        let wlock = match &self.transport {
            Transport::Ring(ring) => {
                let (header, item) = item_of(frame);
                return ring.try_send(self.writer.as_fd(), header, item);
            }
            Transport::Pipe { wlock, .. } => wlock,
        };
        if frame.len() > ATOMIC_WRITE || !wlock.try_acquire() {
            return Ok(false);
        }
        let written = sys::write_nonblocking(self.writer.as_fd(), &[IoSlice::new(frame)]);
        let _ = wlock.release();
        // A pipe write of at most PIPE_BUF bytes is all or nothing.
        Ok(written?.is_some())
    }

    /// Reads exactly `buf.len()` bytes, waiting for them; the reader lock is held.
    fn read_exact(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < buf.len() {
            match sys::read_nonblocking(self.reader.as_fd(), &mut buf[done..])? {
                Some(0) => return Err(Error::EOFError),
                Some(n) => done += n,
                None => {
                    sys::poll_one(self.reader.as_fd(), libc::POLLIN, None)?;
                }
            }
        }
        Ok(())
    }

    /// Takes one frame, waiting until `deadline`; `Ok(None)` when none came in time.
    fn get_item(&self, deadline: Option<Instant>) -> Result<Option<Frame>, Error> {
        let frame = match &self.transport {
            Transport::Ring(ring) => self.read_from_ring(ring, deadline),
            Transport::Pipe { rlock, .. } => self.read_from_pipe(rlock, deadline),
        }?;
        if frame.is_some() {
            self.counters.word(GETS).fetch_add(1, Ordering::Relaxed);
            if let Some(slots) = &self.slots {
                let _ = slots.release();
            }
        }
        Ok(frame)
    }

    fn read_from_ring(
        &self,
        ring: &Ring,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, Error> {
        let mut item = Vec::new();
        match ring.recv(self.reader.as_fd(), &mut item, MAX_FRAME, deadline)? {
            ring::Received::Message(_) => Ok(Some(Frame::Large(item))),
            ring::Received::TimedOut => Ok(None),
            ring::Received::TooLong(length) => Err(Error::OsError(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad message length: {length} bytes"),
            ))),
        }
    }

    /// Takes one frame off the pipe under the reader lock, waiting until `deadline`.
    fn read_from_pipe(
        &self,
        rlock: &Lock,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, Error> {
        let locked = match deadline {
            None => {
                rlock.acquire();
                true
            }
            Some(deadline) => {
                rlock.acquire_timeout(deadline.saturating_duration_since(Instant::now()))
            }
        };
        if !locked {
            return Ok(None);
        }
        let frame = self.read_frame_locked(deadline);
        let _ = rlock.release();
        frame
    }

    fn read_frame_locked(&self, deadline: Option<Instant>) -> Result<Option<Frame>, Error> {
        let mut first = [0u8; BLOCK];
        // Try first; wait only when the pipe stays empty (after yielding the CPU once or
        // twice, as `Connection` does: a sleeping reader makes every put pay a wake-up).
        let mut yields = 0;
        let got = loop {
            match sys::read_nonblocking(self.reader.as_fd(), &mut first)? {
                Some(0) => return Err(Error::EOFError),
                Some(n) => break n,
                None if yields < 2 && deadline.is_none_or(|d| Instant::now() < d) => {
                    yields += 1;
                    sys::yield_now();
                }
                None => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if sys::poll_one(self.reader.as_fd(), libc::POLLIN, left)? == 0 {
                        return Ok(None);
                    }
                }
            }
        };
        if got < BLOCK {
            self.read_exact(&mut first[got..])?;
        }
        let length = u32::from_be_bytes([first[0], first[1], first[2], first[3]]) as usize;
        if length > MAX_FRAME {
            return Err(Error::OsError(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad message length: {length} bytes"),
            )));
        }
        if length <= BLOCK - 4 {
            return Ok(Some(Frame::Small { block: first, length }));
        }
        let in_first = length.min(BLOCK - 4);
        let mut item = Vec::with_capacity(length);
        item.extend_from_slice(&first[4..4 + in_first]);
        if length > in_first {
            let rest = (length + 4).next_multiple_of(BLOCK) - BLOCK;
            item.resize(in_first + rest, 0);
            self.read_exact(&mut item[in_first..])?;
            item.truncate(length);
        }
        Ok(Some(Frame::Large(item)))
    }

    fn readable_now(&self) -> bool {
        if let Transport::Ring(ring) = &self.transport {
            return ring.available() > 0;
        }
        sys::poll_one(self.reader.as_fd(), libc::POLLIN, Some(Duration::ZERO)).unwrap_or(0) != 0
    }
}

/// This process's feeder for one queue: frames waiting for room in the pipe.
pub(crate) struct Feeder {
    state: Mutex<FeederState>,
    changed: Condvar,
    /// Frames pending or being written: while 0, `put` may write directly without
    /// taking `state` (the items of every thread before it are all written).
    backlog: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct FeederState {
    pending: VecDeque<Vec<u8>>,
    /// Frames taken off `pending` and being written.
    writing: usize,
    /// Holds the channel alive while frames are pending (the thread keeps only a `Weak`).
    keep_alive: Option<Arc<Channel>>,
    closing: bool,
    running: bool,
}

/// Every feeder of this process, by channel address. Held across `fork()` (order 40) and
/// emptied in the child: a child has no feeder threads, and must not touch the parent's.
/// Their pending items are the parent's to write (CPython's `Queue._after_fork`); they
/// are leaked, as their locks may be held by threads that are gone.
type Feeders = HashMap<usize, Arc<Feeder>>;
static FEEDERS: ForkMutex<Option<Feeders>> =
    ForkMutex::new(None, 40, |feeders| std::mem::forget(feeders.take()));

/// CPython's queue finalizer of priority −5: at exit, the feeders write what is pending.
static FLUSH_AT_EXIT: AtExit = AtExit::new(flush_feeders_at_exit, -5);

fn feeders_slot() -> ForkMutexGuard<Option<Feeders>> {
    FEEDERS.lock()
}

fn feeder_of(channel: &Arc<Channel>) -> Arc<Feeder> {
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

fn registered_feeder(channel: &Arc<Channel>) -> Arc<Feeder> {
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
fn send(channel: &Arc<Channel>, frame: Outgoing) -> Result<(), Error> {
    let feeder = feeder_of(channel);
    if feeder.backlog.load(Ordering::Acquire) == 0 && channel.try_write_frame(frame.bytes())? {
        return Ok(());
    }
    hand_to_feeder(channel, &feeder, frame.into_vec())
}

/// Queues `frame` behind this process's earlier ones, starting the feeder thread if needed.
fn hand_to_feeder(
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
fn feed(feeder: &Feeder, channel: &Weak<Channel>) {
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
fn flush(feeder: &Feeder) {
    let mut state = lock(&feeder.state);
    while !state.pending.is_empty() || state.writing > 0 {
        state = pyconc_core::sync::wait(&feeder.changed, state);
    }
}

/// At exit: waits for every feeder of this process whose queue did not cancel that.
fn flush_feeders_at_exit() {
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

/// A multi-producer, multi-consumer FIFO queue across processes: Python's
/// `multiprocessing.Queue`.
///
/// `T` travels serialized (serde). Clones share the queue; hand it to a child by moving a
/// clone into a fork child's closure, or in `Process::call`'s arguments.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, Queue};
///
/// let q = Queue::<String>::new(0)?;
/// let producer = q.clone();
/// let p = Process::new(move || {
///     for word in ["hello", "world"] {
///         producer.put(word.to_owned()).unwrap();
///     }
/// });
/// p.start()?;
/// assert_eq!(q.get()?, "hello");
/// assert_eq!(q.get()?, "world");
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Queue<T> {
    channel: Arc<Channel>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue { channel: Arc::clone(&self.channel), _items: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Queue<T> {
    /// A queue that holds at most `maxsize` items; 0: unbounded.
    /// Python: `multiprocessing.Queue(maxsize)`.
    ///
    /// # Errors
    /// [`Error::OsError`] when the OS refuses the pipe or shared memory.
    pub fn new(maxsize: usize) -> Result<Queue<T>, Error> {
        Ok(Queue { channel: Arc::new(Channel::new(maxsize)?), _items: PhantomData })
    }

    fn put_until(&self, item: &T, deadline: Option<Instant>, block: bool) -> Result<(), Error> {
        self.channel.check_open(self)?;
        let frame = match small_frame_of(item) {
            Some(block) => Outgoing::Small(block),
            None => Outgoing::Large(frame_of(item)?),
        };
        if let Some(slots) = &self.channel.slots {
            let free = if block { slots.acquire_until(deadline) } else { slots.try_acquire() };
            if !free {
                return Err(Error::Full);
            }
        }
        self.channel.counters.word(PUTS).fetch_add(1, Ordering::Relaxed);
        let sent = send(&self.channel, frame);
        if sent.is_err() {
            // Nothing was queued: give the place and the count back.
            self.channel.counters.word(PUTS).fetch_sub(1, Ordering::Relaxed);
            if let Some(slots) = &self.channel.slots {
                let _ = slots.release();
            }
        }
        sent
    }

    /// Puts `item`, waiting for a free place in a full bounded queue.
    /// Python: `Queue.put(obj)`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::PicklingError`] (only this item fails).
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.put_until(&item, None, true)
    }

    /// Puts `item`, waiting at most `timeout` for a free place.
    /// Python: `Queue.put(obj, timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Full`] if no place freed in time; as [`put`](Queue::put).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.put_until(&item, deadline_after(timeout), true)
    }

    /// Puts `item` if there is a free place now. Python: `Queue.put_nowait(obj)`.
    ///
    /// # Errors
    /// [`Error::Full`]; as [`put`](Queue::put).
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.put_until(&item, None, false)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, Error> {
        self.channel.check_open(self)?;
        match self.channel.get_item(deadline)? {
            Some(frame) => codec::decode(frame.bytes()),
            None => Err(Error::Empty),
        }
    }

    /// Takes the next item, waiting for one. Python: `Queue.get()`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::UnpicklingError`].
    pub fn get(&self) -> Result<T, Error> {
        self.get_until(None)
    }

    /// Takes the next item, waiting at most `timeout`. Python: `Queue.get(timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Empty`] if none came in time; as [`get`](Queue::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.get_until(
            deadline_after(timeout).or(Some(Instant::now() + Duration::from_secs(u32::MAX as u64))),
        )
    }

    /// Takes the next item if one is there now. Python: `Queue.get_nowait()`.
    ///
    /// # Errors
    /// [`Error::Empty`]; as [`get`](Queue::get).
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.get_until(Some(Instant::now()))
    }

    /// The approximate number of items in the queue. Python: `Queue.qsize()`.
    pub fn qsize(&self) -> usize {
        let counters = &self.channel.counters;
        let (puts, gets) = (
            counters.word(PUTS).load(Ordering::Relaxed),
            counters.word(GETS).load(Ordering::Relaxed),
        );
        // Approximate, as CPython's: a get may be counted before its put.
        puts.wrapping_sub(gets).min(i32::MAX as u32) as usize
    }

    /// Whether no item can be read now (approximate, as CPython's). Python: `Queue.empty()`.
    pub fn empty(&self) -> bool {
        !self.channel.readable_now()
    }

    /// Whether a bounded queue has no free place (approximate). Python: `Queue.full()`.
    pub fn full(&self) -> bool {
        self.channel.slots.as_ref().is_some_and(|s| s.value() == 0)
    }

    /// The bound given to [`new`](Queue::new) (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.channel.maxsize
    }

    /// This process will put no more items; its feeder ends once it has written what is
    /// pending. Python: `Queue.close()`.
    pub fn close(&self) {
        self.channel.closed.store(true, Ordering::Release);
        let feeder = feeder_of(&self.channel);
        lock(&feeder.state).closing = true;
        feeder.changed.notify_all();
    }

    /// Waits until the feeder has written every pending item; only after
    /// [`close`](Queue::close). Python: `Queue.join_thread()`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `Queue <...> not closed`.
    pub fn join_thread(&self) -> Result<(), Error> {
        if !self.channel.closed.load(Ordering::Acquire) {
            return Err(Error::AssertionError(format!("Queue {self:?} not closed").into()));
        }
        flush(&feeder_of(&self.channel));
        Ok(())
    }

    /// Lets this process exit without waiting for the feeder (pending items may be lost).
    /// Python: `Queue.cancel_join_thread()`.
    pub fn cancel_join_thread(&self) {
        self.channel.cancel_join.store(true, Ordering::Relaxed);
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Queue object at {:p}>", Arc::as_ptr(&self.channel))
    }
}

/// A [`Queue`] that counts unfinished tasks: Python's `multiprocessing.JoinableQueue`.
///
/// Every `put` adds a task; a consumer calls [`task_done`](JoinableQueue::task_done) per
/// item it has finished; [`join`](JoinableQueue::join) waits until no task is unfinished.
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> JoinableQueue<T> {
        JoinableQueue { queue: self.queue.clone() }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> JoinableQueue<T> {
    /// As [`Queue::new`]. Python: `multiprocessing.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn new(maxsize: usize) -> Result<JoinableQueue<T>, Error> {
        Ok(JoinableQueue { queue: Queue::new(maxsize)? })
    }

    fn unfinished(&self) -> &std::sync::atomic::AtomicU32 {
        self.queue.channel.counters.word(UNFINISHED)
    }

    fn counted(&self, outcome: Result<(), Error>) -> Result<(), Error> {
        if outcome.is_err() {
            self.task_done_quietly();
        }
        outcome
    }

    fn task_done_quietly(&self) {
        let _ = self
            .unfinished()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// As [`Queue::put`], adding a task. Python: `JoinableQueue.put(obj)`.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put(item))
    }

    /// As [`Queue::put_timeout`].
    ///
    /// # Errors
    /// As [`Queue::put_timeout`].
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put_timeout(item, timeout))
    }

    /// As [`Queue::put_nowait`].
    ///
    /// # Errors
    /// As [`Queue::put_nowait`].
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put_nowait(item))
    }

    /// As [`Queue::get`].
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T, Error> {
        self.queue.get()
    }

    /// As [`Queue::get_timeout`].
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.queue.get_timeout(timeout)
    }

    /// As [`Queue::get_nowait`].
    ///
    /// # Errors
    /// As [`Queue::get_nowait`].
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.queue.get_nowait()
    }

    /// Marks one task finished. Python: `JoinableQueue.task_done()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `task_done() called too many times`.
    pub fn task_done(&self) -> Result<(), Error> {
        let word = self.unfinished();
        match word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
            Err(_) => Err(Error::value("task_done() called too many times")),
            Ok(1) => {
                sys::futex_wake(word, i32::MAX);
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Waits until every task put is done. Python: `JoinableQueue.join()`.
    ///
    /// # Errors
    /// None so far; `Result` for the contract's shape.
    pub fn join(&self) -> Result<(), Error> {
        let word = self.unfinished();
        loop {
            let n = word.load(Ordering::Acquire);
            if n == 0 {
                return Ok(());
            }
            sys::futex_wait(word, n, None);
        }
    }

    /// As [`Queue::qsize`].
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// As [`Queue::empty`].
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// As [`Queue::full`].
    pub fn full(&self) -> bool {
        self.queue.full()
    }

    /// As [`Queue::close`].
    pub fn close(&self) {
        self.queue.close()
    }

    /// As [`Queue::join_thread`].
    ///
    /// # Errors
    /// As [`Queue::join_thread`].
    pub fn join_thread(&self) -> Result<(), Error> {
        self.queue.join_thread()
    }

    /// As [`Queue::cancel_join_thread`].
    pub fn cancel_join_thread(&self) {
        self.queue.cancel_join_thread()
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<JoinableQueue object at {:p}>", Arc::as_ptr(&self.queue.channel))
    }
}

/// A simple queue across processes: Python's `multiprocessing.SimpleQueue`.
///
/// No feeder thread and no size: `put` writes the item itself, and waits while the pipe
/// (1 MiB here) is full.
pub struct SimpleQueue<T> {
    channel: Arc<Channel>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> SimpleQueue<T> {
        SimpleQueue { channel: Arc::clone(&self.channel), _items: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SimpleQueue<T> {
    /// An empty queue. Python: `multiprocessing.SimpleQueue()`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn new() -> Result<SimpleQueue<T>, Error> {
        Ok(SimpleQueue { channel: Arc::new(Channel::new(0)?), _items: PhantomData })
    }

    /// Puts `item`. Python: `SimpleQueue.put(obj)`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::PicklingError`]; [`Error::OsError`].
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.channel.check_open(self)?;
        let frame = frame_of(&item)?;
        let written = self.channel.write_frame(&frame);
        self.channel.counters.word(PUTS).fetch_add(1, Ordering::Relaxed);
        written
    }

    /// Takes the next item, waiting for one. Python: `SimpleQueue.get()`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::UnpicklingError`].
    pub fn get(&self) -> Result<T, Error> {
        self.channel.check_open(self)?;
        match self.channel.get_item(None)? {
            Some(frame) => codec::decode(frame.bytes()),
            None => Err(Error::Empty),
        }
    }

    /// Whether no item can be read now. Python: `SimpleQueue.empty()`.
    pub fn empty(&self) -> bool {
        !self.channel.readable_now()
    }

    /// Closes the queue in this process. Python: `SimpleQueue.close()`.
    pub fn close(&self) {
        self.channel.closed.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<SimpleQueue object at {:p}>", Arc::as_ptr(&self.channel))
    }
}

// ---- sending queues to spawn and forkserver children ----

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            SendFd(self.reader.as_fd(), "Queue"),
            SendFd(self.writer.as_fd(), "Queue"),
            match &self.transport {
                Transport::Ring(ring) => (Some(SendMem(ring.shared_mem(), "Queue")), None),
                Transport::Pipe { rlock, wlock } => (None, Some((rlock, wlock))),
            },
            &self.slots,
            SendMem(&self.counters, "Queue"),
            self.maxsize as u64,
        )
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Channel, D::Error> {
        let (reader, writer, transport, slots, counters, maxsize) =
            <(
                RecvFd,
                RecvFd,
                (Option<SharedMemory>, Option<(Lock, Lock)>),
                Option<BoundedSemaphore>,
                SharedMemory,
                u64,
            )>::deserialize(deserializer)?;
        let transport = match transport {
            (Some(ring), _) => {
                Transport::Ring(Ring::from_shared(ring).map_err(serde::de::Error::custom)?)
            }
            (None, Some((rlock, wlock))) => Transport::Pipe { rlock, wlock },
            (None, None) => return Err(serde::de::Error::custom("a queue without a transport")),
        };
        Ok(Channel {
            reader: reader.0,
            writer: writer.0,
            transport,
            slots,
            counters: Arc::new(counters),
            maxsize: maxsize as usize,
            closed: AtomicBool::new(false),
            cancel_join: AtomicBool::new(false),
            feeder: std::sync::OnceLock::new(),
        })
    }
}

macro_rules! queue_serde {
    ($($queue:ident),*) => {$(
        impl<T> Serialize for $queue<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                queue_channel(self).serialize(serializer)
            }
        }
    )*};
}

fn queue_channel<Q: HasChannel>(queue: &Q) -> &Channel {
    queue.channel()
}

trait HasChannel {
    fn channel(&self) -> &Channel;
}

impl<T> HasChannel for Queue<T> {
    fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl<T> HasChannel for SimpleQueue<T> {
    fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl<T> HasChannel for JoinableQueue<T> {
    fn channel(&self) -> &Channel {
        &self.queue.channel
    }
}

queue_serde!(Queue, SimpleQueue, JoinableQueue);

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Queue<T>, D::Error> {
        Ok(Queue { channel: Arc::new(Channel::deserialize(deserializer)?), _items: PhantomData })
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SimpleQueue<T>, D::Error> {
        Ok(SimpleQueue {
            channel: Arc::new(Channel::deserialize(deserializer)?),
            _items: PhantomData,
        })
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JoinableQueue<T>, D::Error> {
        Ok(JoinableQueue { queue: Queue::deserialize(deserializer)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transport where shared memory cannot be had: the bare pipe, as CPython's.
    fn queue_over_the_pipe<T>(maxsize: usize) -> Queue<T> {
        let channel = Channel::with_ring(maxsize, None).unwrap();
        assert!(matches!(channel.transport, Transport::Pipe { .. }));
        Queue { channel: Arc::new(channel), _items: PhantomData }
    }

    #[test]
    fn a_queue_without_shared_memory_carries_small_and_large_items_in_order() {
        let queue = queue_over_the_pipe::<Vec<u32>>(0);
        assert!(queue.empty());
        let items: Vec<Vec<u32>> = (0..200).map(|i| vec![i; (i as usize * 97) % 5000]).collect();
        for item in &items {
            queue.put(item.clone()).unwrap();
        }
        for item in &items {
            assert_eq!(&queue.get().unwrap(), item);
        }
        assert!(matches!(queue.get_timeout(Duration::from_millis(20)), Err(Error::Empty)));
    }

    #[test]
    fn a_bounded_queue_without_shared_memory_counts_its_places() {
        let queue = queue_over_the_pipe::<u8>(2);
        queue.put(1).unwrap();
        queue.put(2).unwrap();
        assert!(matches!(queue.put_nowait(3), Err(Error::Full)));
        assert_eq!(queue.get_nowait().unwrap(), 1);
        queue.put_nowait(3).unwrap();
        assert_eq!((queue.get().unwrap(), queue.get().unwrap()), (2, 3));
    }
}
