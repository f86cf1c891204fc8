//! `send_handle`/`recv_handle`: CPython's `multiprocessing.reduction.send_handle` and
//! `recv_handle` — an object that owns file descriptors (a [`Connection`], a `Queue`, a
//! lock, shared memory, a raw fd as a [`Handle`]) sent to a process that is already
//! running.
//!
//! The object is serialized with its fds in a table, as for a spawn child's arguments
//! (`reduction.rs`); the bytes go over the connection, the fds through this process's
//! resource sharer (`resource_sharer.rs`), from which the receiver fetches them.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Connection;
use super::resource_sharer::{self, Ticket};
use crate::reduction::{self, RecvFd, SendFd};
use crate::{Error, codec};

/// What `send_handle` puts on the connection.
#[derive(Serialize, Deserialize)]
struct Sent {
    /// Where to fetch the fds (none when the object has none).
    ticket: Option<Ticket>,
    /// The object, its fds written as indices into the fetched table.
    payload: Vec<u8>,
}

/// Sends `handle` — an object that owns fds — to the process at the other end of `conn`,
/// which takes it with [`recv_handle`]. Any connection carries it (a pipe, a
/// [`Listener`](super::Listener)'s), as long as both processes run on this machine.
///
/// Python: `multiprocessing.reduction.send_handle(conn, handle, destination_pid)` (the
/// pid only matters on Windows), and a `Connection` pickled through CPython's resource
/// sharer.
///
/// # Errors
/// What [`Connection::send`] returns; [`Error::PicklingError`] for an object that
/// cannot be serialized; an OS error when its fds cannot be duplicated.
///
/// # Examples
///
/// ```
/// use multiprocessing::connection::{recv_handle, send_handle};
/// use multiprocessing::{Process, Queue, pipe};
///
/// // A running child, then a queue made afterwards, handed to it.
/// let (ours, theirs) = pipe(true)?;
/// let child = Process::new(move || {
///     let queue: Queue<String> = recv_handle(&theirs).unwrap();
///     queue.put("through a queue the child did not have".to_string()).unwrap();
/// });
/// child.start()?;
/// let queue: Queue<String> = Queue::new(0)?;
/// send_handle(&ours, &queue)?;
/// assert_eq!(queue.get()?, "through a queue the child did not have");
/// child.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn send_handle<T: Serialize + ?Sized>(conn: &Connection, handle: &T) -> Result<(), Error> {
    let (payload, fds) = reduction::collecting_fds(|| codec::encode(handle));
    let payload = payload?;
    let ticket = if fds.is_empty() { None } else { Some(resource_sharer::share(&fds)?) };
    conn.send(&Sent { ticket, payload })
}

/// Receives an object sent with [`send_handle`]: its fds are this process's own from now
/// on.
///
/// Python: `multiprocessing.reduction.recv_handle(conn)`.
///
/// # Errors
/// What [`Connection::recv`] returns; an OS error when the sender's resource sharer is
/// gone (the sending process ended) or the handle was received already;
/// [`Error::UnpicklingError`] when the bytes are not a `T`.
///
/// # Examples
///
/// ```
/// use multiprocessing::connection::{recv_handle, send_handle};
/// use multiprocessing::pipe;
///
/// // A connection sent over a connection: the receiver talks through it.
/// let (ours, theirs) = pipe(true)?;
/// let (near, far) = pipe(true)?;
/// send_handle(&ours, &far)?;
/// drop(far);
/// let far: multiprocessing::Connection = recv_handle(&theirs)?;
/// far.send(&"over the sent end")?;
/// assert_eq!(near.recv::<String>()?, "over the sent end");
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn recv_handle<T: DeserializeOwned>(conn: &Connection) -> Result<T, Error> {
    let sent: Sent = conn.recv()?;
    let fds = match &sent.ticket {
        Some(ticket) => resource_sharer::fetch(ticket)?,
        None => Vec::new(),
    };
    reduction::providing_fds(fds, || codec::decode(&sent.payload))
}

/// A raw file descriptor that travels with [`send_handle`] or in `Process::call`'s
/// arguments: a file, a socket, a pipe end.
///
/// Python: the `handle` of `send_handle(conn, handle, pid)` — an fd number there; an owned
/// fd here, so that it is closed once.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use multiprocessing::connection::{Handle, recv_handle, send_handle};
///
/// let (ours, theirs) = multiprocessing::pipe(true)?;
/// let (mut reader, writer) = std::os::unix::net::UnixStream::pair()?;
/// send_handle(&ours, &Handle::new(writer.into()))?;
/// let handle: Handle = recv_handle(&theirs)?;
/// std::fs::File::from(handle.into_fd()).write_all(b"hi")?;
/// let mut got = [0u8; 2];
/// reader.read_exact(&mut got)?;
/// assert_eq!(&got, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Handle(OwnedFd);

impl Handle {
    /// Wraps `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// let file = std::fs::File::open("/dev/null")?;
    /// let handle = multiprocessing::connection::Handle::new(file.into());
    /// # let _ = handle;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(fd: OwnedFd) -> Handle {
        Handle(fd)
    }

    /// The fd.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let file = std::fs::File::open("/dev/null")?;
    /// let raw = file.as_raw_fd();
    /// assert_eq!(multiprocessing::connection::Handle::new(file.into()).into_fd().as_raw_fd(), raw);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<OwnedFd> for Handle {
    fn from(fd: OwnedFd) -> Handle {
        Handle(fd)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handle").field(&self.0).finish()
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SendFd(self.0.as_fd(), "Handle").serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Handle, D::Error> {
        RecvFd::deserialize(deserializer).map(|RecvFd(fd)| Handle(fd))
    }
}
