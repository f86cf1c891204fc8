//! `Listener` and `client`: CPython's `multiprocessing.connection.Listener` and `Client`,
//! connections between processes that did not start each other — over a Unix socket, a
//! Linux abstract socket or TCP — with CPython's frames and authentication, so that a
//! Python program can be either end.
//!
//! With an `authkey`, both sides prove they know it (CPython's `deliver_challenge` then
//! `answer_challenge`, see `auth.rs`) before the connection is handed out: a peer with a
//! wrong key never gets a message deserialized. Each accepted connection is authenticated
//! in a thread of its own, within a deadline ([`Listener::set_handshake_timeout`]), so a
//! client that never answers is dropped and cannot hold up `accept` for the others.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Connection, auth};
use crate::error::HANDLE_CLOSED;
use crate::{Error, sys};

/// How long a peer has for the whole handshake unless told otherwise.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a [`Listener`] listens and a [`client`] connects.
///
/// Python: the `address` argument: a path (`AF_UNIX`), a name starting with a NUL byte
/// (a Linux abstract socket) or a `(host, port)` tuple (`AF_INET`). Serializable, so it
/// can be handed to a child in `Process::call`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket of this name (no file; gone with its last socket).
    Abstract(Vec<u8>),
    /// A TCP socket. Port 0 binds a free port; [`Listener::address`] tells which.
    Tcp(SocketAddr),
}

impl Address {
    fn of_unix(address: &UnixAddr) -> Address {
        if let Some(name) = address.as_abstract_name() {
            Address::Abstract(name.to_vec())
        } else {
            Address::Unix(address.as_pathname().map(PathBuf::from).unwrap_or_default())
        }
    }
}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Socket {
    fn accept(&self) -> io::Result<(OwnedFd, Address)> {
        match self {
            Socket::Unix(listener) => {
                let (stream, peer) = listener.accept()?;
                Ok((OwnedFd::from(stream), Address::of_unix(&peer)))
            }
            Socket::Tcp(listener) => {
                let (stream, peer) = listener.accept()?;
                let _ = stream.set_nodelay(true);
                Ok((OwnedFd::from(stream), Address::Tcp(peer)))
            }
        }
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Socket::Unix(listener) => listener.as_raw_fd(),
            Socket::Tcp(listener) => listener.as_raw_fd(),
        }
    }
}

/// An authenticated (or failed) handshake, from its thread.
type Handshake = Result<(Connection, Address), Error>;

/// Accepts connections at an [`Address`].
///
/// Python: `multiprocessing.connection.Listener(address, authkey=...)`. `Send + Sync`.
///
/// # Examples
///
/// ```
/// use multiprocessing::connection::{Address, Listener, client};
///
/// let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), Some(b"secret"))?;
/// let address = listener.address();
/// let talker = std::thread::spawn(move || -> Result<(), multiprocessing::Error> {
///     let conn = client(address, Some(b"secret"))?;
///     conn.send_bytes(b"hello")
/// });
/// let conn = listener.accept()?;
/// assert_eq!(conn.recv_bytes()?, b"hello");
/// talker.join().unwrap()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Option<Vec<u8>>,
    last_accepted: Mutex<Option<Address>>,
    done_sender: Sender<Handshake>,
    done: Mutex<Receiver<Handshake>>,
    /// Signalled by a handshake thread when it is done.
    wake: Arc<OwnedFd>,
    handshake_timeout_ms: AtomicU64,
    closed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed_error() -> Error {
    Error::OsError(io::Error::other(HANDLE_CLOSED))
}

impl Listener {
    /// Listens at `address`; with `authkey`, every accepted peer must prove it knows it.
    ///
    /// Python: `Listener(address, authkey=authkey)`.
    ///
    /// # Errors
    /// [`Error::OsError`]: the address is in use, the path cannot be made, ...
    pub fn bind(address: Address, authkey: Option<&[u8]>) -> Result<Listener, Error> {
        let (socket, address) = match address {
            Address::Unix(path) => {
                let listener = UnixListener::bind(&path)?;
                (Socket::Unix(listener), Address::Unix(path))
            }
            Address::Abstract(name) => {
                let listener = UnixListener::bind_addr(&UnixAddr::from_abstract_name(&name)?)?;
                (Socket::Unix(listener), Address::Abstract(name))
            }
            Address::Tcp(address) => {
                let listener = TcpListener::bind(address)?;
                let bound = listener.local_addr()?;
                (Socket::Tcp(listener), Address::Tcp(bound))
            }
        };
        match &socket {
            Socket::Unix(listener) => listener.set_nonblocking(true)?,
            Socket::Tcp(listener) => listener.set_nonblocking(true)?,
        }
        let (done_sender, done) = mpsc::channel();
        Ok(Listener {
            socket,
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            last_accepted: Mutex::new(None),
            done_sender,
            done: Mutex::new(done),
            wake: Arc::new(sys::eventfd()?),
            handshake_timeout_ms: AtomicU64::new(HANDSHAKE_TIMEOUT.as_millis() as u64),
            closed: AtomicBool::new(false),
        })
    }

    /// How long an accepted peer has to complete the authentication (30 s by default);
    /// one that takes longer is dropped.
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        self.handshake_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// Waits for a peer and returns its (authenticated) connection.
    ///
    /// Python: `Listener.accept()`.
    ///
    /// # Errors
    /// [`Error::AuthenticationError`] when a peer failed the handshake (the next call
    /// accepts the next peer); `handle is closed` after [`close`](Listener::close).
    pub fn accept(&self) -> Result<Connection, Error> {
        self.accept_before(None).map(|conn| conn.expect("no deadline, so a connection"))
    }

    /// [`accept`](Listener::accept) waiting at most `timeout`; `Ok(None)` when no peer
    /// completed its handshake in time.
    ///
    /// # Errors
    /// As [`accept`](Listener::accept).
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<Connection>, Error> {
        self.accept_before(Instant::now().checked_add(timeout))
    }

    fn accept_before(&self, deadline: Option<Instant>) -> Result<Option<Connection>, Error> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(closed_error());
            }
            if let Ok(done) = lock(&self.done).try_recv() {
                let (conn, peer) = done?;
                *lock(&self.last_accepted) = Some(peer);
                return Ok(Some(conn));
            }
            let left = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            let ready =
                sys::wait_any_readable_raw(&[self.socket.raw_fd(), self.wake.as_raw_fd()], left)?;
            if ready.contains(&1) {
                sys::eventfd_clear(self.wake.as_fd());
            }
            if !ready.contains(&0) {
                continue;
            }
            let (fd, peer) = match self.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if self.closed.load(Ordering::Acquire) => {
                    drop(e);
                    return Err(closed_error());
                }
                Err(e) => return Err(e.into()),
            };
            let conn = Connection::new(fd, true, true)?;
            let Some(key) = self.authkey.clone() else {
                *lock(&self.last_accepted) = Some(peer);
                return Ok(Some(conn));
            };
            let timeout = Duration::from_millis(self.handshake_timeout_ms.load(Ordering::Relaxed));
            let (sender, wake) = (self.done_sender.clone(), Arc::clone(&self.wake));
            let handshake = move || {
                let deadline = Instant::now() + timeout;
                let outcome = auth::deliver_challenge(&conn, &key, deadline)
                    .and_then(|()| auth::answer_challenge(&conn, &key, deadline))
                    .map(|()| (conn, peer));
                let _ = sender.send(outcome);
                sys::eventfd_signal(wake.as_fd());
            };
            // A thread per handshake: a slow peer waits alone.
            let spawned =
                std::thread::Builder::new().name("pyconc-handshake".into()).spawn(handshake);
            if let Err(e) = spawned {
                return Err(e.into());
            }
        }
    }

    /// The address it listens at (for TCP port 0, the port it got).
    ///
    /// Python: `Listener.address`.
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// The address of the last accepted peer. Python: `Listener.last_accepted`.
    pub fn last_accepted(&self) -> Option<Address> {
        lock(&self.last_accepted).clone()
    }

    /// Stops listening: new peers are refused, a Unix socket's file is removed.
    ///
    /// Python: `Listener.close()`.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = sys::replace_with_dev_null(self.socket.raw_fd());
        sys::eventfd_signal(self.wake.as_fd());
        if let Address::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.raw_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Connects to a [`Listener`] (or to CPython's) at `address`; with `authkey`, both sides
/// prove they know it first.
///
/// Python: `multiprocessing.connection.Client(address, authkey=...)`.
///
/// # Errors
/// [`Error::OsError`] when nobody listens there; [`Error::AuthenticationError`]
/// (`digest sent was rejected`, `digest received was wrong`, a peer that does not answer
/// within 30 s).
pub fn client(address: Address, authkey: Option<&[u8]>) -> Result<Connection, Error> {
    let fd = match &address {
        Address::Unix(path) => OwnedFd::from(UnixStream::connect(path)?),
        Address::Abstract(name) => {
            OwnedFd::from(UnixStream::connect_addr(&UnixAddr::from_abstract_name(name)?)?)
        }
        Address::Tcp(address) => {
            let stream = TcpStream::connect(address)?;
            let _ = stream.set_nodelay(true);
            OwnedFd::from(stream)
        }
    };
    let conn = Connection::new(fd, true, true)?;
    if let Some(key) = authkey {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        auth::answer_challenge(&conn, key, deadline)?;
        auth::deliver_challenge(&conn, key, deadline)?;
    }
    Ok(conn)
}
