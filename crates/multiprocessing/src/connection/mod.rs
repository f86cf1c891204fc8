//! `multiprocessing.connection`: `Connection` and `pipe()` (CPython's `Connection` and
//! `multiprocessing.Pipe`), `Listener` and `client` for processes that did not start each
//! other (`listener.rs`, with CPython's authentication in `auth.rs`), and `wait`.
//!
//! A connection carries *messages*: each is a frame — a 4-byte big-endian length, as
//! CPython's `send_bytes` writes it, then the bytes. `send`/`recv` put one serde value in
//! a frame (the crate's codec: `postcard`). A reader refuses a frame longer than its limit
//! ([`Connection::set_max_frame`], 64 MiB by default) before allocating, and closes the
//! connection, as CPython does for `recv_bytes(maxlength)`.
//!
//! A `pipe()` moves its frames through a ring buffer in shared memory per direction
//! (`ring.rs`); its OS pipe (one-way) or socket pair (duplex) only wakes a sleeping reader
//! and reports EOF and a vanished reader (`EPIPE`). A 64-byte message then costs ~80 ns
//! instead of a `write(2)` and a `read(2)` (~260 ns on a raw pipe, ~1.3 µs through
//! CPython's `Pipe(False)`), and a frame is published whole, so writer processes may share
//! an end, and be killed in the middle, without garbling the stream. The reading end of a
//! one-way pipe takes one whole frame at a time from the ring, so reader processes may
//! share it too; a duplex end reads ahead into its buffer, as a connection over a socket
//! (a [`Listener`]'s) does.
//!
//! Both ends of a duplex pipe may send large messages at the same time without deadlock:
//! a sender that must wait for room takes in what the peer sent meanwhile (into the
//! connection's buffer, so the peer's send can finish), where the next `recv` finds it —
//! from the peer's ring, or, over a socket, from the non-blocking fd. CPython's
//! `Connection` deadlocks there; its `Queue` needs a feeder thread for the same reason.
//!
//! # Examples
//!
//! ```
//! use multiprocessing::{Process, pipe};
//!
//! let (parent, child) = pipe(true)?;
//! let p = Process::new(move || {
//!     let n: u64 = child.recv().unwrap();
//!     child.send(&(n * n)).unwrap();
//! });
//! p.start()?;
//! parent.send(&12u64)?;
//! assert_eq!(parent.recv::<u64>()?, 144);
//! p.join()?;
//! # Ok::<(), multiprocessing::Error>(())
//! ```

use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyconc_core::sync::lock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod auth;
mod handle;
mod listener;
mod pickle;
mod resource_sharer;
pub(crate) mod ring;
mod wait;

pub use handle::{Handle, recv_handle, send_handle};
pub use listener::{Address, Listener, client};
pub use pickle::{PyHashable, PyValue};
pub use wait::{Waitable, wait};

use self::ring::Ring;
use crate::codec::{self, MAX_FRAME};
use crate::error::MESSAGE_TOO_LONG;
use crate::error::{HANDLE_CLOSED, READ_ONLY, WRITE_ONLY};
use crate::heap::SharedMemory;
use crate::reduction::{RecvFd, SendFd};
use crate::{Error, sys};

/// Frames up to this size are copied into one buffer before writing.
const SMALL_FRAME: usize = 512;
/// How much a read asks the kernel for at once.
const READ_CHUNK: usize = 64 * 1024;
/// How many times a reader that found nothing yields its CPU before it sleeps.
const YIELDS_BEFORE_SLEEP: u32 = 2;

/// One end of a pipe: sends and receives messages.
///
/// Python: `multiprocessing.connection.Connection`. `Send + Sync`: several threads may use
/// it; a message is sent and received whole (a send lock and a receive lock keep frames
/// from interleaving). Hand it to a child by moving it into a fork child's closure, or in
/// `Process::call`'s arguments (its fd travels with the arguments).
///
/// # Differences from CPython
/// - `send`/`recv` serialize with serde (postcard), not pickle: receiving can never make
///   this process run code. `send_bytes`/`recv_bytes` carry raw bytes as CPython's, in
///   the same frames.
/// - A message larger than [`max_frame`](Connection::max_frame) (default: the crate's
///   frame limit) is refused before anything is allocated for it; CPython accepts any
///   length a peer announces.
/// - A one-way [`pipe`] moves messages through a ring in shared memory (the fd carries only
///   wake-ups), several times faster than CPython's `os.pipe`.
pub struct Connection {
    fd: OwnedFd,
    readable: bool,
    writable: bool,
    closed: AtomicBool,
    max_frame: AtomicUsize,
    /// How long a reader busy-waits for the next message before it sleeps, in µs (0: the
    /// ring's default). Request-reply users (a manager's client and server) wait longer:
    /// the answer is microseconds away, and a sleep costs a wake-up on each side.
    idle_spin: AtomicU32,
    send_lock: Mutex<()>,
    received: Mutex<Received>,
    transport: Transport,
}

/// How an end's messages travel (crossbeam's channel "flavors" are the model).
enum Transport {
    /// Through the fd itself: a `Listener`'s connections, and pipes where shared memory
    /// could not be had.
    Fd,
    /// Out through a ring in shared memory (a one-way pipe's writing end); the fd carries
    /// wake-ups to the peer.
    Outgoing(Ring),
    /// In through a ring (a one-way pipe's reading end); the fd carries wake-ups from the
    /// peer and EOF.
    Incoming(Ring),
    /// Both ways through a ring each (a duplex pipe's end).
    Both { outgoing: Ring, incoming: Ring },
}

impl Transport {
    fn new(outgoing: Option<Ring>, incoming: Option<Ring>) -> Transport {
        match (outgoing, incoming) {
            (None, None) => Transport::Fd,
            (Some(outgoing), None) => Transport::Outgoing(outgoing),
            (None, Some(incoming)) => Transport::Incoming(incoming),
            (Some(outgoing), Some(incoming)) => Transport::Both { outgoing, incoming },
        }
    }

    /// The ring messages leave through, if any.
    fn outgoing(&self) -> Option<&Ring> {
        match self {
            Transport::Outgoing(ring) | Transport::Both { outgoing: ring, .. } => Some(ring),
            Transport::Fd | Transport::Incoming(_) => None,
        }
    }

    /// The ring messages arrive through, if any.
    fn incoming(&self) -> Option<&Ring> {
        match self {
            Transport::Incoming(ring) | Transport::Both { incoming: ring, .. } => Some(ring),
            Transport::Fd | Transport::Outgoing(_) => None,
        }
    }
}

/// Bytes read from the fd that no `recv` has taken yet.
#[derive(Default)]
struct Received {
    buf: Vec<u8>,
    start: usize,
}

impl Received {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the consumed bytes once nothing is pending, so the buffer does not grow.
    fn compact(&mut self) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads what has arrived into the buffer, without blocking: from the fd, or from
    /// the `incoming` ring (taking the wake-up out of the fd when `settle` and nothing
    /// came). `Ok(Some(false))` at EOF, `Ok(None)` when nothing came.
    fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        incoming: Option<&Ring>,
        settle: bool,
    ) -> Result<Option<bool>, Error> {
        self.compact();
        if let Some(ring) = incoming {
            return ring.pull(fd, &mut self.buf, READ_CHUNK, settle);
        }
        match sys::read_into_spare(fd, &mut self.buf, READ_CHUNK)? {
            None => Ok(None),
            Some(0) => Ok(Some(false)),
            Some(_) => Ok(Some(true)),
        }
    }
}

fn os_error(message: &'static str) -> Error {
    Error::OsError(io::Error::other(message))
}

/// A pair of connected [`Connection`]s.
///
/// Python: `multiprocessing.Pipe(duplex)`. Duplex: both ends send and receive; otherwise
/// the first end only receives, the second only sends. The messages go through a ring
/// buffer in shared memory per direction, beside a Unix socket pair (duplex) or an OS
/// pipe that wakes a sleeping reader and tells it when the other end is gone: a small
/// message costs a copy, not a system call. Where shared memory cannot be had, the socket
/// pair or pipe alone, as CPython's.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, pipe};
///
/// let (reader, writer) = pipe(false)?; // one-way: reader receives, writer sends
/// let child = Process::new(move || writer.send(&"from the child").unwrap());
/// child.start()?;
/// assert_eq!(reader.recv::<String>()?, "from the child");
/// child.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
///
/// # Errors
/// [`Error::OsError`] when the OS has no fds left.
pub fn pipe(duplex: bool) -> Result<(Connection, Connection), Error> {
    // Both ends map the same memory (clones of each ring).
    // The fds are made non-blocking as they are created (no `fcntl` for each end).
    if duplex {
        duplex_pipe(|| match (Ring::new(), Ring::new()) {
            (Ok(a_to_b), Ok(b_to_a)) => Some((a_to_b, b_to_a)),
            _ => None,
        })
    } else {
        let (r, w) = sys::pipe_with(libc::O_NONBLOCK)?;
        let ring = Ring::new().ok();
        Ok((
            Connection::assemble(r, true, false, None, ring.clone()),
            Connection::assemble(w, false, true, ring, None),
        ))
    }
}

/// A duplex pipe for a forked child, as [`pipe`]`(true)` makes, whose two rings are the
/// two halves of one anonymous shared mapping: one `mmap`, where [`pipe`] makes two
/// memfds, sizes and maps them (and at its end unmaps and closes them). A fork pool's
/// channel to a worker. Its ends cannot be sent to another process (the rings have no
/// fd): only a child forked after it can use them.
///
/// # Errors
/// [`Error::OsError`] when the OS has no fds left.
pub(crate) fn duplex_pipe_for_fork() -> Result<(Connection, Connection), Error> {
    duplex_pipe(|| Ring::pair_for_fork().ok())
}

/// A duplex pipe: a socket pair, then its two rings from `rings` (one each way); without
/// them, the pipe carries every message on its sockets.
fn duplex_pipe(
    rings: impl FnOnce() -> Option<(Ring, Ring)>,
) -> Result<(Connection, Connection), Error> {
    let (a, b) = sys::socketpair(libc::SOCK_STREAM | libc::SOCK_NONBLOCK)?;
    let (a_to_b, b_to_a) = rings().unzip();
    Ok((
        Connection::assemble(a, true, true, a_to_b.clone(), b_to_a.clone()),
        Connection::assemble(b, true, true, b_to_a, a_to_b),
    ))
}

impl Connection {
    fn new(fd: OwnedFd, readable: bool, writable: bool) -> Result<Connection, Error> {
        Connection::with_rings(fd, readable, writable, None, None)
    }

    fn with_rings(
        fd: OwnedFd,
        readable: bool,
        writable: bool,
        outgoing: Option<Ring>,
        incoming: Option<Ring>,
    ) -> Result<Connection, Error> {
        sys::set_nonblocking(fd.as_fd())?;
        Ok(Connection::assemble(fd, readable, writable, outgoing, incoming))
    }

    /// A connection over `fd`, which must be non-blocking already.
    fn assemble(
        fd: OwnedFd,
        readable: bool,
        writable: bool,
        outgoing: Option<Ring>,
        incoming: Option<Ring>,
    ) -> Connection {
        Connection {
            fd,
            readable,
            writable,
            closed: AtomicBool::new(false),
            max_frame: AtomicUsize::new(MAX_FRAME),
            idle_spin: AtomicU32::new(0),
            send_lock: Mutex::new(()),
            received: Mutex::new(Received::default()),
            transport: Transport::new(outgoing.filter(|_| writable), incoming.filter(|_| readable)),
        }
    }

    /// Lets a reader of this end busy-wait up to `spin` for the next message before it
    /// sleeps (see `idle_spin`).
    pub(crate) fn set_idle_spin(&self, spin: Duration) {
        let micros = u32::try_from(spin.as_micros()).unwrap_or(u32::MAX);
        self.idle_spin.store(micros, Ordering::Relaxed);
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) { Err(os_error(HANDLE_CLOSED)) } else { Ok(()) }
    }

    fn check_writable(&self) -> Result<(), Error> {
        self.check_open()?;
        if self.writable { Ok(()) } else { Err(os_error(READ_ONLY)) }
    }

    fn check_readable(&self) -> Result<(), Error> {
        self.check_open()?;
        if self.readable { Ok(()) } else { Err(os_error(WRITE_ONLY)) }
    }

    /// Sends `value` as one message.
    ///
    /// Python: `Connection.send(obj)` (which pickles; this serializes with serde).
    ///
    /// # Examples
    ///
    /// ```
    /// let (ours, theirs) = multiprocessing::pipe(true)?;
    /// ours.send(&("hello", 42u32))?;
    /// let (word, n): (String, u32) = theirs.recv()?;
    /// assert_eq!((word.as_str(), n), ("hello", 42));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// `handle is closed`, `connection is read-only`, [`Error::PicklingError`], or the
    /// OS error of a peer that is gone (`EPIPE`).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.check_writable()?;
        self.write_message(&codec::encode(value)?)
    }

    /// Receives one message and deserializes it.
    ///
    /// Python: `Connection.recv()`.
    ///
    /// # Errors
    /// [`Error::EOFError`] when the peer closed its end; `handle is closed`,
    /// `connection is write-only`, [`Error::UnpicklingError`] for bytes that are not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, pipe};
    /// use std::collections::HashMap;
    ///
    /// let (ours, theirs) = pipe(true)?;
    /// let p = Process::new(move || {
    ///     let request: HashMap<String, u32> = theirs.recv().unwrap();
    ///     theirs.send(&request.values().sum::<u32>()).unwrap();
    /// });
    /// p.start()?;
    /// ours.send(&HashMap::from([("a".to_owned(), 1u32), ("b".to_owned(), 2)]))?;
    /// assert_eq!(ours.recv::<u32>()?, 3);
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, Error> {
        codec::decode(&self.recv_bytes()?)
    }

    /// Sends `data` as one message.
    ///
    /// Python: `Connection.send_bytes(buf)`. The frame is CPython's, so a Python peer's
    /// `recv_bytes()` reads it.
    ///
    /// # Errors
    /// As [`send`](Connection::send); a message over 2 GiB is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = multiprocessing::pipe(false)?;
    /// writer.send_bytes(b"raw bytes, CPython's framing")?;
    /// assert_eq!(reader.recv_bytes()?, b"raw bytes, CPython's framing");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn send_bytes(&self, data: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        self.write_message(data)
    }

    /// Writes one frame (the end is known to be open and writable).
    fn write_message(&self, data: &[u8]) -> Result<(), Error> {
        let length = u32::try_from(data.len())
            .ok()
            .filter(|&n| n <= i32::MAX as u32)
            .ok_or_else(|| Error::value(MESSAGE_TOO_LONG))?;
        let header = length.to_be_bytes();
        if let Some(ring) = self.transport.outgoing() {
            let fd = self.fd.as_fd();
            if self.readable {
                // Take in what the peer sends while waiting for space: it may wait too.
                let mut pump = || match self.received.try_lock() {
                    Ok(mut received) => {
                        received.fill(fd, self.transport.incoming(), false).map(drop)
                    }
                    Err(_) => Ok(()), // another thread is receiving
                };
                return ring.send(fd, header, data, Some(&mut pump));
            }
            return ring.send(fd, header, data, None);
        }
        // A small message goes out as one buffer (one `write` of one segment, the cost of
        // a raw pipe write); a large one as header + data, without copying.
        let mut small = [0u8; SMALL_FRAME];
        let is_small = data.len() + header.len() <= SMALL_FRAME;
        if is_small {
            small[..4].copy_from_slice(&header);
            small[4..4 + data.len()].copy_from_slice(data);
        }
        let mut parts = if is_small {
            [IoSlice::new(&small[..4 + data.len()]), IoSlice::new(&[])]
        } else {
            [IoSlice::new(&header), IoSlice::new(data)]
        };
        let mut parts: &mut [IoSlice<'_>] = if is_small { &mut parts[..1] } else { &mut parts };
        let mut left = header.len() + data.len();
        let _sending = lock(&self.send_lock);
        while left > 0 {
            match sys::write_nonblocking(self.fd.as_fd(), parts)? {
                Some(n) => {
                    left -= n;
                    IoSlice::advance_slices(&mut parts, n);
                }
                None => self.wait_writable()?,
            }
        }
        Ok(())
    }

    /// Waits until the fd takes more bytes; meanwhile reads what the peer sends (when no
    /// other thread is receiving), so that two senders cannot block each other forever.
    fn wait_writable(&self) -> Result<(), Error> {
        loop {
            let pump = if self.readable { self.received.try_lock().ok() } else { None };
            let events = if pump.is_some() { libc::POLLOUT | libc::POLLIN } else { libc::POLLOUT };
            let revents = sys::poll_one(self.fd.as_fd(), events, None)?;
            if revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0 {
                return Ok(());
            }
            if let Some(mut received) = pump {
                if revents & libc::POLLIN != 0
                    && received.fill(self.fd.as_fd(), None, true)? == Some(false)
                {
                    return Ok(()); // the peer is gone: the write will say so
                }
            }
        }
    }

    /// Receives one message.
    ///
    /// Python: `Connection.recv_bytes()`.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv); a frame longer than [`max_frame`](Connection::max_frame)
    /// → `bad message length`, and the connection is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = multiprocessing::pipe(false)?;
    /// writer.send_bytes(&[1, 2, 3])?;
    /// drop(writer);
    /// assert_eq!(reader.recv_bytes()?, [1, 2, 3]);
    /// assert!(matches!(reader.recv_bytes(), Err(multiprocessing::Error::EOFError)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut message = Vec::new();
        self.recv_bytes_into(&mut message)?;
        Ok(message)
    }

    /// Receives one message into `buf` (replacing its contents, reusing its allocation);
    /// returns the message's length.
    ///
    /// Python: `Connection.recv_bytes_into(buffer)`.
    ///
    /// # Errors
    /// As [`recv_bytes`](Connection::recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = multiprocessing::pipe(false)?;
    /// let mut buf = Vec::with_capacity(4096); // reused across messages
    /// for message in [&b"first"[..], b"second"] {
    ///     writer.send_bytes(message)?;
    ///     let n = reader.recv_bytes_into(&mut buf)?;
    ///     assert_eq!(&buf[..n], message);
    /// }
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        self.check_readable()?;
        let max = self.max_frame.load(Ordering::Relaxed);
        if let Some(ring) = self.message_ring() {
            return match ring.recv(self.fd.as_fd(), buf, max, None)? {
                ring::Received::Message(length) => Ok(length),
                ring::Received::TooLong(length) => Err(self.refuse_frame(length, max)),
                ring::Received::TimedOut => Err(Error::TimeoutError), // (no deadline)
            };
        }
        let mut received = lock(&self.received);
        let length = loop {
            if let Some(header) = received.pending().get(..4) {
                let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                break length as usize;
            }
            self.read_more(&mut received, true)?;
        };
        if length > max {
            drop(received);
            return Err(self.refuse_frame(length, max));
        }
        received.consume(4);
        buf.clear();
        buf.reserve(length);
        while buf.len() < length {
            let pending = received.pending();
            if !pending.is_empty() {
                let take = pending.len().min(length - buf.len());
                buf.extend_from_slice(&pending[..take]);
                received.consume(take);
                continue;
            }
            if let (Some(ring), true) =
                (self.transport.incoming(), length - buf.len() >= READ_CHUNK)
            {
                // A large message: straight from the ring into its buffer.
                if !self.pull_into(ring, buf, length - buf.len(), true)? {
                    return Err(truncated());
                }
                continue;
            }
            if length - buf.len() >= READ_CHUNK {
                // A large message: read straight into its buffer, without zero-filling.
                match sys::read_into_spare(self.fd.as_fd(), buf, length - buf.len())? {
                    Some(0) => return Err(truncated()),
                    Some(_) => {}
                    None => {
                        sys::poll_one(self.fd.as_fd(), libc::POLLIN, None)?;
                    }
                }
                continue;
            }
            self.read_more(&mut received, false)?;
        }
        Ok(length)
    }

    /// Receives one message into `buf` if all of it has arrived, without waiting:
    /// `Ok(None)` when it has not (yet). For a thread that polls many connections.
    pub(crate) fn try_recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<Option<usize>, Error> {
        buf.clear();
        Ok((self.try_recv_whole(buf, 1, true, |_| {})? > 0).then_some(buf.len()))
    }

    /// Receives every whole message that has arrived, without waiting: appends each
    /// one's bytes to `buf` and the offset in `buf` where it ends to `ends`; returns how
    /// many there were. For the pool's handler, which takes its workers' results many at
    /// a time: one call and one lock of the buffer per batch rather than per message. An
    /// error (the end of the stream, a refused frame) comes once the messages before it
    /// are taken: with none taken, or at the next call.
    ///
    /// `settle`: a call that finds nothing also takes the ring's wake-up out of the fd,
    /// so that a `poll` of the fd sleeps until more comes — for a reader about to sleep.
    /// Without it the wake-up stays (and the fd readable): the writer makes no system
    /// call for its next messages — for a reader that looks again before it sleeps. The
    /// end of the stream is found only by a settling call (or once the fd says so).
    pub(crate) fn try_recv_all_into(
        &self,
        buf: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        settle: bool,
    ) -> Result<usize, Error> {
        self.try_recv_whole(buf, usize::MAX, settle, |end| ends.push(end))
    }

    /// Appends up to `most` whole messages that have arrived to `buf`, without waiting,
    /// telling `ended` where each ends in `buf`; how many there were. What stops it after
    /// some messages (the end of the stream, a frame over the limit, a failure) stops
    /// the next call as well, which reports it. `settle`: as for [`try_recv_all_into`]
    /// (a one-way pipe's ring always settles).
    ///
    /// [`try_recv_all_into`]: Connection::try_recv_all_into
    fn try_recv_whole(
        &self,
        buf: &mut Vec<u8>,
        most: usize,
        settle: bool,
        mut ended: impl FnMut(usize),
    ) -> Result<usize, Error> {
        self.check_readable()?;
        let max = self.max_frame.load(Ordering::Relaxed);
        let mut count = 0;
        if let Some(ring) = self.message_ring() {
            // A one-way pipe's ring gives a whole frame at a time, into a buffer of its
            // own: the first straight into `buf` when that is empty, the others through
            // `message`. (A message larger than the ring is waited for once it has begun.)
            let mut message = Vec::new();
            while count < most {
                let direct = buf.is_empty();
                let into = if direct { &mut *buf } else { &mut message };
                match ring.recv(self.fd.as_fd(), into, max, Some(ring::already_past())) {
                    Ok(ring::Received::Message(_)) => {
                        if !direct {
                            buf.extend_from_slice(&message);
                        }
                        ended(buf.len());
                        count += 1;
                    }
                    Ok(ring::Received::TimedOut) => break,
                    // (A frame over the limit stays in the ring until the next call.)
                    Ok(ring::Received::TooLong(_)) | Err(_) if count > 0 => break,
                    Ok(ring::Received::TooLong(length)) => {
                        return Err(self.refuse_frame(length, max));
                    }
                    Err(error) => return Err(error),
                }
            }
            return Ok(count);
        }
        let mut received = lock(&self.received);
        loop {
            let pending = received.pending();
            let mut taken = 0;
            // A frame over the limit, after the messages taken before it.
            let mut refused = None;
            while count < most {
                let Some(header) = pending.get(taken..taken + 4) else { break };
                let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                let length = length as usize;
                if length > max {
                    refused = Some(length);
                    break;
                }
                let Some(message) = pending.get(taken + 4..taken + 4 + length) else { break };
                buf.extend_from_slice(message);
                ended(buf.len());
                count += 1;
                taken += 4 + length;
            }
            received.consume(taken);
            if let Some(length) = refused {
                drop(received);
                // Refused now if it comes first, else at the next call.
                return if count > 0 { Ok(count) } else { Err(self.refuse_frame(length, max)) };
            }
            if count == most {
                return Ok(count);
            }
            // Only a settling call that found nothing takes the wake-up out of the fd
            // (`fill`'s `settle`), once: a streaming worker then need not write one per
            // batch.
            let settle = settle && count == 0;
            match received.fill(self.fd.as_fd(), self.transport.incoming(), settle) {
                Ok(None) => return Ok(count),
                Ok(Some(true)) => {}
                // The end, or a failure, after messages: they come first.
                Ok(Some(false)) | Err(_) if count > 0 => return Ok(count),
                Ok(Some(false)) if received.pending().is_empty() => return Err(Error::EOFError),
                Ok(Some(false)) => return Err(truncated()),
                Err(error) => return Err(error),
            }
        }
    }

    /// Whether the messages this end receives come through shared memory.
    pub(crate) fn has_ring(&self) -> bool {
        self.transport.incoming().is_some()
    }

    /// The incoming ring of a one-way pipe's reading end, read a whole message at a time
    /// (a duplex end reads its ring as a byte stream, into its buffer).
    fn message_ring(&self) -> Option<&Ring> {
        self.transport.incoming().filter(|_| !self.writable)
    }

    /// Whether a received message (or part of one) waits: in the buffer or the ring.
    pub(crate) fn has_buffered(&self) -> bool {
        self.transport.incoming().is_some_and(|ring| ring.available() > 0)
            || self.received.try_lock().is_ok_and(|received| !received.pending().is_empty())
    }

    /// Moves more of what the peer sent (at most `max` bytes) from the ring to `buf`,
    /// waiting for it; `Ok(false)` when the peer is gone and nothing is left. `mid_frame`:
    /// the rest of a frame is awaited, so the wait checks every 100 ms that its writer did
    /// not stop halfway (another process may hold the same end open, so no EOF would come).
    fn pull_into(
        &self,
        ring: &Ring,
        buf: &mut Vec<u8>,
        max: usize,
        mid_frame: bool,
    ) -> Result<bool, Error> {
        let fd = self.fd.as_fd();
        let mut spun = false;
        loop {
            // Leave the wake-up token alone until about to sleep (see `ring.rs`).
            match ring.pull(fd, buf, max, spun)? {
                Some(got) => return Ok(got),
                None if !spun => {
                    spun = true;
                    let idle = self.idle_spin.load(Ordering::Relaxed);
                    ring.spin_for_data(
                        mid_frame,
                        (idle > 0).then(|| Duration::from_micros(idle.into())),
                    );
                }
                None if mid_frame => {
                    if sys::poll_one(fd, libc::POLLIN, Some(ring::LIVENESS_CHECK))? == 0 {
                        ring.check_writer_mid_frame()?;
                    }
                }
                None => {
                    sys::poll_one(fd, libc::POLLIN, None)?;
                }
            }
        }
    }

    /// A frame longer than `max`: the connection is closed (its stream is out of step).
    fn refuse_frame(&self, length: usize, max: usize) -> Error {
        self.closed.store(true, Ordering::Release);
        Error::OsError(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad message length: {length} bytes, over this connection's limit of {max}"),
        ))
    }

    /// Reads more bytes into `received`, waiting for them. `at_boundary`: nothing of the
    /// next message was read yet, so EOF is the peer closing (not a truncated message).
    fn read_more(&self, received: &mut Received, at_boundary: bool) -> Result<(), Error> {
        if let Some(ring) = self.transport.incoming() {
            received.compact();
            let pending = received.pending().len();
            let mid_frame = !at_boundary || pending > 0;
            return match self.pull_into(ring, &mut received.buf, READ_CHUNK, mid_frame)? {
                true => Ok(()),
                false if at_boundary && pending == 0 => Err(Error::EOFError),
                false => Err(truncated()),
            };
        }
        let mut yields = 0;
        loop {
            match received.fill(self.fd.as_fd(), None, true)? {
                Some(true) => return Ok(()),
                Some(false) if at_boundary && received.pending().is_empty() => {
                    return Err(Error::EOFError);
                }
                Some(false) => return Err(truncated()),
                None if yields < YIELDS_BEFORE_SLEEP => {
                    // A streaming sender is usually a moment away. Give up the CPU once
                    // (to the sender, if it shares this CPU) and look again before
                    // sleeping: a sleeping reader makes every write pay a wake-up.
                    yields += 1;
                    sys::yield_now();
                }
                None => {
                    sys::poll_one(self.fd.as_fd(), libc::POLLIN, None)?;
                }
            }
        }
    }

    /// Whether a message (or EOF) can be received without waiting; waits up to `timeout`
    /// (`None`: until there is one).
    ///
    /// Python: `Connection.poll(timeout)`; `poll(Some(Duration::ZERO))` is Python's
    /// `poll()`, `poll(None)` is `poll(None)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (ours, theirs) = multiprocessing::pipe(true)?;
    /// assert!(!theirs.poll(Some(Duration::ZERO))?, "nothing yet");
    /// ours.send(&1u8)?;
    /// assert!(theirs.poll(Some(Duration::from_secs(5)))?);
    /// assert_eq!(theirs.recv::<u8>()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// `handle is closed`, `connection is write-only`.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.check_readable()?;
        if let Some(ring) = self.transport.incoming() {
            if self.writable
                && self.received.try_lock().is_ok_and(|received| !received.pending().is_empty())
            {
                return Ok(true);
            }
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            if deadline.is_none() && timeout.is_some() {
                return ring.poll(self.fd.as_fd(), None); // a timeout too long to count
            }
            return ring.poll(self.fd.as_fd(), deadline);
        }
        if let Ok(received) = self.received.try_lock() {
            if !received.pending().is_empty() {
                return Ok(true);
            }
        }
        Ok(sys::poll_one(self.fd.as_fd(), libc::POLLIN, timeout)? != 0)
    }

    /// Closes the connection: every later call fails with `handle is closed`. The fd
    /// itself is released when the `Connection` is dropped; the peer sees the end once
    /// every process holding this end has closed or dropped it.
    ///
    /// Python: `Connection.close()`.
    ///
    /// # Errors
    /// None so far; `Result` for the contract's shape.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiprocessing::pipe(true)?;
    /// a.close()?;
    /// assert!(a.closed());
    /// assert_eq!(a.send(&1).unwrap_err().to_string(), "handle is closed");
    /// drop(b);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) -> Result<(), Error> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // The peer must see EOF now, not when this object is dropped.
            let _ = sys::replace_with_dev_null(self.fd.as_raw_fd());
        }
        Ok(())
    }

    /// Whether [`close`](Connection::close) was called. Python: `Connection.closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiprocessing::pipe(true)?;
    /// assert!(!a.closed());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// In a forked child that must not reach this end (a pool worker, for its siblings'
    /// channels): its fd turns into `null` (kept as it is without one) and its rings into
    /// private memory, while the value stays valid.
    pub(crate) fn detach_in_child(&self, null: Option<&sys::DevNull>) {
        self.closed.store(true, Ordering::Release);
        if let Some(null) = null {
            let _ = null.put_over(self.fd.as_raw_fd());
        }
        match (self.transport.outgoing(), self.transport.incoming()) {
            (Some(outgoing), Some(incoming)) => {
                Ring::detach_pair_in_child(outgoing, incoming, null);
            }
            (Some(ring), None) | (None, Some(ring)) => ring.detach_in_child(null),
            (None, None) => {}
        }
    }

    /// The end of a fork pool's channel ([`duplex_pipe_for_fork`]) whose worker has been
    /// reaped, and which every other process forked meanwhile has let go of: its rings are
    /// kept for the next channel ([`Ring::reuse_pair`]) if this is the last handle of it
    /// and of them; its fd is closed.
    pub(crate) fn reuse_rings(conn: Arc<Connection>) {
        let Ok(conn) = Arc::try_unwrap(conn) else { return };
        if let Transport::Both { outgoing, incoming } = conn.transport {
            Ring::reuse_pair(outgoing, incoming);
        }
    }

    /// Whether this end receives. Python: `Connection.readable`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = multiprocessing::pipe(false)?; // one-way: reader first, as CPython
    /// assert!(reader.readable() && !reader.writable());
    /// assert!(writer.writable() && !writer.readable());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end sends. Python: `Connection.writable`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiprocessing::pipe(true)?; // duplex: both ways
    /// assert!(a.writable() && b.writable());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The fd, for `poll`/`select` with other fds; owned by the connection.
    ///
    /// Python: `Connection.fileno()`. Readiness of the fd is a hint; [`poll`](Connection::poll)
    /// and [`wait`] are exact. The reading end of a one-way pipe is readable whenever a
    /// message waits, and may stay readable after `recv` took the last one (the writer's
    /// wake-up is still there; `poll` takes it away). A duplex end reads ahead: messages
    /// it already read into its buffer do not make the fd readable.
    ///
    /// # Errors
    /// `handle is closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiprocessing::pipe(true)?;
    /// assert!(a.fileno()? >= 0); // for poll/select next to other fds
    /// a.close()?;
    /// assert!(a.fileno().is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn fileno(&self) -> Result<RawFd, Error> {
        self.check_open()?;
        Ok(self.fd.as_raw_fd())
    }

    /// The longest message this end accepts (64 MiB unless set).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiprocessing::pipe(true)?;
    /// assert_eq!(a.max_frame(), 64 << 20);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed)
    }

    /// Sets the longest message this end accepts; a longer one is refused before anything
    /// is allocated for it (CPython: `recv_bytes(maxlength)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, writer) = multiprocessing::pipe(false)?;
    /// reader.set_max_frame(16);
    /// writer.send_bytes(&[0; 1024])?;
    /// assert!(reader.recv_bytes().unwrap_err().to_string().starts_with("bad message length"));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_max_frame(&self, bytes: usize) {
        self.max_frame.store(bytes, Ordering::Relaxed);
    }
}

/// The connection's fd, for `poll` with other fds (as [`fileno`](Connection::fileno)).
impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn truncated() -> Error {
    Error::OsError(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection in the middle of a message",
    ))
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("closed", &self.closed())
            .finish()
    }
}

/// A connection in `Process::call`'s arguments travels to a spawn or forkserver child
/// with its fd (sent beside the arguments, `SCM_RIGHTS`); anywhere else it refuses with CPython's
/// `Connection objects should only be shared between processes through inheritance`.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(5)?;
        tuple.serialize_element(&SendFd(self.fd.as_fd(), "Connection"))?;
        tuple.serialize_element(&self.readable)?;
        tuple.serialize_element(&self.writable)?;
        tuple.serialize_element(&self.transport.outgoing().map(Ring::shared_mem))?;
        tuple.serialize_element(&self.transport.incoming().map(Ring::shared_mem))?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Connection, D::Error> {
        let (RecvFd(fd), readable, writable, outgoing, incoming) =
            <(RecvFd, bool, bool, Option<SharedMemory>, Option<SharedMemory>)>::deserialize(
                deserializer,
            )?;
        let ring = |mem: Option<SharedMemory>| {
            mem.map(Ring::from_shared).transpose().map_err(serde::de::Error::custom)
        };
        Connection::with_rings(fd, readable, writable, ring(outgoing)?, ring(incoming)?)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The long frame-decoder fuzz run (issue 14): `PYCONC_FUZZ_INPUTS` (10 million by
    /// default) random byte streams, each sent by a peer that then closes, and read by a
    /// `Connection` as values until it gives up. None may panic, hang or make the process
    /// allocate beyond the frame limit (the peak resident size is checked). Every `cargo
    /// test` runs the short proptest of `tests/conformance/pipe.rs`; this one runs with
    /// `cargo test --release -p pyconc-multiprocessing --lib -- --ignored frame_decoder`.
    #[test]
    #[ignore = "long: ten million inputs (about a minute in a release build)"]
    fn frame_decoder_fuzz_long_run() {
        use std::io::Write;
        fn peak_rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        let inputs: u64 = std::env::var("PYCONC_FUZZ_INPUTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000_000);
        // xorshift64*: fast, and reproducible from its seed.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let began = Instant::now();
        let baseline = peak_rss_kib();
        let (mut values, mut refused, mut ended) = (0u64, 0u64, 0u64);
        let mut stream = Vec::with_capacity(1024);
        for _ in 0..inputs {
            stream.clear();
            // Most inputs are frames with a plausible header (up to 512 bytes, sometimes
            // announcing more than follows); some are raw bytes, a wild header.
            for _ in 0..=(next() % 3) {
                if next() % 4 == 0 {
                    // A valid frame of a random value, one of its bytes often flipped.
                    let mut strings = Vec::new();
                    for i in 0..next() % 4 {
                        strings.push("x".repeat((next() % 9 + i) as usize));
                    }
                    let mut numbers = None;
                    if next() % 2 == 0 {
                        let mut list = Vec::new();
                        for _ in 0..next() % 5 {
                            list.push(next());
                        }
                        numbers = Some(list);
                    }
                    let value = (next() as u8, strings, numbers);
                    let mut body = codec::encode(&value).unwrap();
                    if next() % 2 == 0 {
                        let at = (next() as usize) % body.len();
                        body[at] ^= 1 << (next() % 8);
                    }
                    stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
                    stream.extend_from_slice(&body);
                    continue;
                }
                let len = (next() % 512) as usize;
                if next() % 8 != 0 {
                    let announced = if next() % 4 == 0 { next() as u32 } else { len as u32 };
                    stream.extend_from_slice(&announced.to_be_bytes());
                }
                stream.extend((0..len).map(|_| next() as u8));
            }
            let (ours, theirs) = sys::socketpair(libc::SOCK_STREAM).unwrap();
            let conn = Connection::new(ours, true, false).unwrap();
            conn.set_max_frame(4096);
            let mut peer = std::os::unix::net::UnixStream::from(theirs);
            peer.write_all(&stream).unwrap();
            drop(peer);
            for _ in 0..8 {
                match conn.recv::<(u8, Vec<String>, Option<Vec<u64>>)>() {
                    Ok(_) => values += 1,
                    Err(Error::UnpicklingError(_)) => refused += 1,
                    Err(_) => {
                        ended += 1; // end of stream, a truncated or an oversized frame
                        break;
                    }
                }
            }
        }
        let grown = peak_rss_kib().saturating_sub(baseline);
        eprintln!(
            "frame-decoder fuzz: {inputs} inputs in {:.1?}: {values} values, {refused} \
             refused, {ended} streams ended; peak RSS grew {grown} KiB",
            began.elapsed()
        );
        assert!(grown < 16 * 1024, "memory grew by {grown} KiB");
    }

    /// A pipe where shared memory cannot be had: a bare OS pipe or socket pair, as CPython's.
    fn bare_pipe(duplex: bool) -> (Connection, Connection) {
        if duplex {
            let (a, b) = sys::socketpair(libc::SOCK_STREAM).unwrap();
            (Connection::new(a, true, true).unwrap(), Connection::new(b, true, true).unwrap())
        } else {
            let (r, w) = sys::pipe().unwrap();
            (Connection::new(r, true, false).unwrap(), Connection::new(w, false, true).unwrap())
        }
    }

    #[test]
    fn pipes_without_shared_memory_carry_messages_then_eof() {
        for duplex in [false, true] {
            let (reader, writer) = bare_pipe(duplex);
            assert!(!reader.has_ring());
            let sizes = [0usize, 1, 64, 5000, 200_000];
            let sender = std::thread::spawn(move || {
                for (i, &size) in sizes.iter().enumerate() {
                    writer.send_bytes(&vec![i as u8; size]).unwrap();
                }
            });
            for (i, &size) in sizes.iter().enumerate() {
                assert_eq!(reader.recv_bytes().unwrap(), vec![i as u8; size]);
            }
            sender.join().unwrap();
            assert!(matches!(reader.recv_bytes(), Err(Error::EOFError)));
        }
    }

    #[test]
    fn duplex_ends_without_shared_memory_send_large_messages_to_each_other() {
        let (a, b) = bare_pipe(true);
        let other = std::thread::spawn(move || {
            b.send_bytes(&vec![2; 4 << 20]).unwrap();
            b.recv_bytes().unwrap()
        });
        a.send_bytes(&vec![1; 4 << 20]).unwrap();
        assert_eq!(a.recv_bytes().unwrap(), vec![2; 4 << 20]);
        assert_eq!(other.join().unwrap(), vec![1; 4 << 20]);
    }

    /// The ends a test of the pool's batch read takes: a duplex and a one-way pipe, each
    /// with rings and without (the handler's connections are duplex with rings).
    fn every_kind_of_pipe() -> Vec<(&'static str, Connection, Connection)> {
        let (a, b) = pipe(true).unwrap();
        let (r, w) = pipe(false).unwrap();
        let (bare_a, bare_b) = bare_pipe(true);
        let (bare_r, bare_w) = bare_pipe(false);
        vec![
            ("duplex", a, b),
            ("one-way", r, w),
            ("bare duplex", bare_a, bare_b),
            ("bare one-way", bare_r, bare_w),
        ]
    }

    /// Waits until `reader` has all `count` messages, taking them in as few batches as
    /// they arrive in; the messages and each batch's size.
    fn take_all(reader: &Connection, count: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
        let (mut buf, mut ends, mut messages, mut batches) =
            (Vec::new(), Vec::new(), vec![], vec![]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while messages.len() < count && Instant::now() < deadline {
            buf.clear();
            ends.clear();
            let got = reader.try_recv_all_into(&mut buf, &mut ends, true).unwrap();
            assert_eq!(got, ends.len());
            let mut start = 0;
            for &end in &ends {
                messages.push(buf[start..end].to_vec());
                start = end;
            }
            assert_eq!(start, buf.len(), "the messages fill the buffer exactly");
            if got > 0 {
                batches.push(got);
            }
        }
        (messages, batches)
    }

    #[test]
    fn a_batch_read_takes_every_message_that_arrived_in_order_with_its_end() {
        for (kind, reader, writer) in every_kind_of_pipe() {
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            assert_eq!(reader.try_recv_all_into(&mut buf, &mut ends, true).unwrap(), 0, "{kind}");
            let sent: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
            for message in &sent {
                writer.send_bytes(message).unwrap();
            }
            let (received, batches) = take_all(&reader, sent.len());
            assert_eq!(received, sent, "{kind}");
            // Everything was sent before the first read: one batch, unless a ring's
            // wake-up arrived late.
            assert!(batches.len() <= 2, "{kind}: {batches:?}");
            assert_eq!(reader.try_recv_all_into(&mut buf, &mut ends, true).unwrap(), 0, "{kind}");
        }
    }

    #[test]
    fn a_batch_read_gives_the_messages_before_the_end_and_then_the_end() {
        for (kind, reader, writer) in every_kind_of_pipe() {
            writer.send_bytes(b"one").unwrap();
            writer.send_bytes(b"two").unwrap();
            drop(writer);
            let (received, _) = take_all(&reader, 2);
            assert_eq!(received, [b"one".to_vec(), b"two".to_vec()], "{kind}");
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            let end = reader.try_recv_all_into(&mut buf, &mut ends, true);
            assert!(matches!(end, Err(Error::EOFError)), "{kind}: {end:?}");
            assert!(ends.is_empty(), "{kind}");
        }
    }

    /// Whether `conn`'s fd is readable now (what the pool's handler sleeps on).
    fn fd_readable(conn: &Connection) -> bool {
        sys::poll_one(conn.fd.as_fd(), libc::POLLIN, Some(Duration::ZERO)).unwrap() != 0
    }

    /// The handler's pattern on its workers' connections (duplex, with rings): batch
    /// reads that do not settle leave the wake-up in the fd, so the writer makes no
    /// system call for its next messages; a settling read that finds nothing quiets the
    /// fd, and the next message makes it readable again — a sleeper never misses one.
    #[test]
    fn a_batch_read_leaves_the_wake_up_unless_told_to_settle_and_a_settled_fd_wakes_for_the_next_message()
     {
        let (reader, writer) = pipe(true).unwrap();
        assert!(reader.has_ring());
        // One batch read: the bytes of the messages it took.
        let take = |settle: bool| {
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            reader.try_recv_all_into(&mut buf, &mut ends, settle).unwrap();
            buf
        };
        writer.send_bytes(b"one").unwrap();
        assert_eq!(take(false), b"one");
        assert_eq!(take(false), b"");
        assert!(fd_readable(&reader), "not settled: the wake-up stays");
        writer.send_bytes(b"two").unwrap();
        assert_eq!(take(false), b"two");
        assert_eq!(take(true), b"");
        assert!(!fd_readable(&reader), "settled: the fd is quiet");
        writer.send_bytes(b"three").unwrap();
        assert!(fd_readable(&reader), "the next message wakes a sleeper");
        assert_eq!(take(false), b"three");
    }

    /// A batch read that does not settle may miss the end of the stream (it makes no
    /// system call); the fd says it, and a settling read reports it.
    #[test]
    fn the_end_of_the_stream_is_reported_by_a_settling_batch_read() {
        for (kind, reader, writer) in every_kind_of_pipe() {
            if !reader.writable {
                continue; // the handler reads duplex ends; a one-way ring always settles
            }
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            writer.send_bytes(b"last").unwrap();
            drop(writer);
            let (received, _) = take_all(&reader, 1);
            assert_eq!(received, [b"last".to_vec()], "{kind}");
            let quiet = reader.try_recv_all_into(&mut buf, &mut ends, false);
            assert!(matches!(quiet, Ok(0) | Err(Error::EOFError)), "{kind}: {quiet:?}");
            assert!(fd_readable(&reader), "{kind}: the end makes the fd readable");
            let end = reader.try_recv_all_into(&mut buf, &mut ends, true);
            assert!(matches!(end, Err(Error::EOFError)), "{kind}: {end:?}");
        }
    }

    #[test]
    fn a_batch_read_gives_the_messages_before_an_oversized_frame_and_then_refuses_it() {
        for (kind, reader, writer) in every_kind_of_pipe() {
            reader.set_max_frame(16);
            writer.send_bytes(b"small").unwrap();
            writer.send_bytes(&[7; 17]).unwrap();
            let (received, _) = take_all(&reader, 1);
            assert_eq!(received, [b"small".to_vec()], "{kind}");
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            let refused = reader.try_recv_all_into(&mut buf, &mut ends, true);
            let message = match &refused {
                Err(Error::OsError(error)) => error.to_string(),
                other => panic!("{kind}: {other:?}"),
            };
            assert!(message.starts_with("bad message length: 17 bytes"), "{kind}: {message}");
        }
    }
}
