//! The channel every queue type shares: the pipe with its ring or its locks, the counters,
//! the frames that carry items; and how a channel travels to a spawn or forkserver child.

use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::feeder::Feeder;
use crate::codec::{self, MAX_FRAME};
use crate::connection::ring::{self, Ring};
use crate::heap::{SendMem, SharedMemory};
use crate::reduction::{RecvFd, SendFd};
use crate::synchronize::{BoundedSemaphore, Lock};
use crate::{Error, sys};

/// The pipe's capacity, where the kernel allows it.
pub(super) const PIPE_SIZE: usize = 1 << 20;
/// Frames up to this size are written whole or not at all (`PIPE_BUF`).
pub(super) const ATOMIC_WRITE: usize = 4096;
/// Frames are whole blocks of this size: the first holds the length and the start of the
/// item, so a small item takes one `read` (a reader must not read past its frame: the
/// next one may be another consumer's).
pub(super) const BLOCK: usize = 64;

/// An item's frame: its length (4 bytes, big-endian), the item serialized, zeroes up to
/// a whole number of blocks.
pub(super) fn frame_of<T: Serialize>(item: &T) -> Result<Vec<u8>, Error> {
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
pub(super) fn small_frame_of<T: Serialize>(item: &T) -> Option<[u8; BLOCK]> {
    let mut block = [0u8; BLOCK];
    let length = postcard::to_slice(item, &mut block[4..]).ok()?.len();
    block[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Some(block)
}

/// A frame to write: small ones are framed on the stack.
pub(super) enum Outgoing {
    Small([u8; BLOCK]),
    Large(Vec<u8>),
}

impl Outgoing {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Outgoing::Small(block) => block,
            Outgoing::Large(frame) => frame,
        }
    }

    pub(super) fn into_vec(self) -> Vec<u8> {
        match self {
            Outgoing::Small(block) => block.to_vec(),
            Outgoing::Large(frame) => frame,
        }
    }
}

/// A frame read off the pipe: small ones stay in their block (no allocation).
pub(super) enum Frame {
    Small { block: [u8; BLOCK], length: usize },
    Large(Vec<u8>),
}

impl Frame {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Frame::Small { block, length } => &block[4..4 + length],
            Frame::Large(item) => item,
        }
    }
}

/// A frame's header and item (without the padding).
pub(super) fn item_of(frame: &[u8]) -> ([u8; 4], &[u8]) {
    let header = [frame[0], frame[1], frame[2], frame[3]];
    let length = u32::from_be_bytes(header) as usize;
    (header, &frame[4..4 + length])
}

/// Words of the counters page, each on its own cache line so that producers and
/// consumers do not bounce one line between CPUs: items put, items got, unfinished tasks.
pub(super) const PUTS: usize = 0;
pub(super) const GETS: usize = 16;
pub(super) const UNFINISHED: usize = 32;

/// How a queue's frames travel.
pub(super) enum Transport {
    /// Through a ring in shared memory (the pipe carries wake-ups and EOF), as a one-way
    /// `Connection`'s; the ring's own reader and writer locks keep frames whole.
    Ring(Ring),
    /// Where shared memory cannot be had: through the pipe, under a reader lock (a frame
    /// goes to one consumer whole) and a writer lock (producers' frames do not interleave).
    Pipe { rlock: Lock, wlock: Lock },
}

/// What every kind of queue shares: the pipe, its transport and counters.
pub(super) struct Channel {
    pub(super) reader: OwnedFd,
    pub(super) writer: OwnedFd,
    pub(super) transport: Transport,
    /// Free places of a bounded queue.
    pub(super) slots: Option<BoundedSemaphore>,
    /// Items put, items got (`qsize` is the difference) and unfinished tasks.
    pub(super) counters: Arc<SharedMemory>,
    pub(super) maxsize: usize,
    /// Closed in this process (`close()`); not shared.
    pub(super) closed: AtomicBool,
    /// This process does not wait for its feeder at exit.
    pub(super) cancel_join: AtomicBool,
    /// The feeder of the process that first needed one (a forked child, whose pid
    /// differs, finds its own in [`FEEDERS`]): saves the global lookup per `put`.
    pub(super) feeder: std::sync::OnceLock<(sys::Pid, Arc<Feeder>)>,
}

impl Channel {
    pub(super) fn new(maxsize: usize) -> Result<Channel, Error> {
        Channel::with_ring(maxsize, Ring::new().ok())
    }

    /// A channel whose frames go through `ring`, or through the pipe when `None`.
    pub(super) fn with_ring(maxsize: usize, ring: Option<Ring>) -> Result<Channel, Error> {
        // Both ends non-blocking from the start (one call, not an `fcntl` pair for each).
        let (reader, writer) = sys::pipe_with(libc::O_NONBLOCK)?;
        sys::set_pipe_size(writer.as_fd(), PIPE_SIZE);
        let slots = match maxsize {
            0 => None,
            n => Some(BoundedSemaphore::try_new(n)?),
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

    pub(super) fn check_open(&self, this: &dyn fmt::Debug) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::ValueError(crate::error::queue_closed(this).into()))
        } else {
            Ok(())
        }
    }

    /// Writes one whole frame (see [`frame_of`]), waiting for room: into the ring (whose
    /// own writer lock keeps frames whole), or into the pipe under the queue's writer lock.
    pub(super) fn write_frame(&self, frame: &[u8]) -> Result<(), Error> {
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
    pub(super) fn write_to_pipe(&self, frame: &[u8]) -> Result<(), Error> {
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
    pub(super) fn try_write_frame(&self, frame: &[u8]) -> Result<bool, Error> {
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
    pub(super) fn read_exact(&self, buf: &mut [u8]) -> Result<(), Error> {
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
    pub(super) fn get_item(&self, deadline: Option<Instant>) -> Result<Option<Frame>, Error> {
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

    pub(super) fn read_from_ring(
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
    pub(super) fn read_from_pipe(
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

    pub(super) fn read_frame_locked(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, Error> {
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

    pub(super) fn readable_now(&self) -> bool {
        if let Transport::Ring(ring) = &self.transport {
            return ring.available() > 0;
        }
        sys::poll_one(self.reader.as_fd(), libc::POLLIN, Some(Duration::ZERO)).unwrap_or(0) != 0
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
