//! `Listener` and `client`: CPython's `multiprocessing.connection.Listener` and `Client`,
//! connections between processes that did not start each other — over a Unix socket, a
//! Linux abstract socket or TCP — with CPython's frames and authentication, so that a
//! Python program can be either end.
//!
//! With an `authkey`, both sides prove they know it (CPython's `deliver_challenge` then
//! `answer_challenge`, see `auth.rs`) before the connection is handed out: a peer with a
//! wrong key never gets a message deserialized.
//!
//! # What an unauthenticated peer can make a listener spend
//!
//! Handshakes are driven by `accept` itself, from one poll loop: no thread per peer. At
//! most [`Listener::set_max_handshakes`] of them (64 by default) are in flight, each
//! holding one fd and a few hundred bytes, each within a deadline
//! ([`Listener::set_handshake_timeout`], 30 s); the peers beyond wait in the kernel's
//! backlog. When the slots are full and more peers wait, the oldest handshake is dropped
//! to make room, so idle peers cannot hold every slot while a legitimate client waits.
//! When the process runs out of fds (`EMFILE`, `ENFILE`), `accept` drops the oldest
//! handshake or, with none, backs off for a moment; it does not fail.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyconc_core::sync::lock;

use serde::{Deserialize, Serialize};

use super::{Connection, auth};
use crate::error::HANDLE_CLOSED;
use crate::{Error, sys};

/// How long a peer has for the whole handshake unless told otherwise.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many handshakes may be in flight unless told otherwise.
const MAX_HANDSHAKES: usize = 64;
/// How long `accept` leaves the listening socket alone after the process ran out of fds.
const FD_BACKOFF: Duration = Duration::from_millis(50);

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

/// A peer whose handshake is in flight.
struct Pending {
    conn: Connection,
    peer: Address,
    handshake: auth::ServerHandshake,
    deadline: Instant,
}

/// Accepts connections at an [`Address`].
///
/// Python: `multiprocessing.connection.Listener(address, authkey=...)`. `Send + Sync`.
///
/// # Differences from CPython
/// - At most [`set_max_handshakes`](Listener::set_max_handshakes) (default 64) handshakes
///   are in flight, driven by `accept`'s own poll loop: a flood of silent peers costs no
///   threads and cannot starve honest clients (CPython handles one peer at a time).
/// - Running out of fds drops the oldest handshake or backs off instead of failing
///   `accept`.
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
    /// The handshakes in flight, oldest first; held by the thread inside `accept`.
    pending: Mutex<VecDeque<Pending>>,
    /// Signalled by `close`, to end an `accept` waiting in another thread.
    wake: OwnedFd,
    handshake_timeout_ms: AtomicU64,
    max_handshakes: AtomicUsize,
    closed: AtomicBool,
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
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener, client};
    ///
    /// let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), Some(b"secret"))?;
    /// let address = listener.address(); // port 0: the one it got
    /// let peer = std::thread::spawn(move || {
    ///     let conn = client(address, Some(b"secret")).unwrap();
    ///     conn.send(&"hello").unwrap();
    /// });
    /// let conn = listener.accept()?;
    /// assert_eq!(conn.recv::<String>()?, "hello");
    /// peer.join().unwrap();
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
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
        Ok(Listener {
            socket,
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            last_accepted: Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
            wake: sys::eventfd()?,
            handshake_timeout_ms: AtomicU64::new(HANDSHAKE_TIMEOUT.as_millis() as u64),
            max_handshakes: AtomicUsize::new(MAX_HANDSHAKES),
            closed: AtomicBool::new(false),
        })
    }

    /// How many peers may be in the middle of the authentication at once (64 by
    /// default, at least 1); the others wait in the kernel's backlog. See the module docs
    /// for what a flood of peers that never answer costs.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener};
    ///
    /// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-handshakes".to_vec()), None)?;
    /// listener.set_max_handshakes(8); // at most 8 peers authenticating at once
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_max_handshakes(&self, handshakes: usize) {
        self.max_handshakes.store(handshakes.max(1), Ordering::Relaxed);
    }

    /// How long an accepted peer has to complete the authentication (30 s by default);
    /// one that takes longer is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener};
    /// use std::time::Duration;
    ///
    /// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-timeout".to_vec()), Some(b"k"))?;
    /// listener.set_handshake_timeout(Duration::from_secs(5)); // slow peers are dropped
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener, client};
    ///
    /// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-accept".to_vec()), None)?;
    /// let address = listener.address();
    /// let peer = std::thread::spawn(move || client(address, None).unwrap().send(&42u8).unwrap());
    /// let conn = listener.accept()?;
    /// assert_eq!(conn.recv::<u8>()?, 42);
    /// peer.join().unwrap();
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn accept(&self) -> Result<Connection, Error> {
        self.accept_before(None).map(|conn| conn.expect("no deadline, so a connection"))
    }

    /// [`accept`](Listener::accept) waiting at most `timeout`; `Ok(None)` when no peer
    /// completed its handshake in time.
    ///
    /// # Errors
    /// As [`accept`](Listener::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener};
    /// use std::time::Duration;
    ///
    /// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-accept-timeout".to_vec()), None)?;
    /// assert!(listener.accept_timeout(Duration::from_millis(10))?.is_none(), "nobody came");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<Connection>, Error> {
        self.accept_before(Instant::now().checked_add(timeout))
    }

    fn accept_before(&self, deadline: Option<Instant>) -> Result<Option<Connection>, Error> {
        // One thread drives the handshakes at a time; another accepting thread waits.
        let mut pending = lock(&self.pending);
        let mut backoff_until: Option<Instant> = None;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(closed_error());
            }
            let now = Instant::now();
            // Peers that ran out of time are dropped (closing their connections), and
            // `accept` says so, as for any peer that failed its handshake.
            let before = pending.len();
            pending.retain(|p| p.deadline > now);
            if pending.len() < before {
                return Err(Error::AuthenticationError(
                    "the peer did not complete the handshake in time".into(),
                ));
            }
            if backoff_until.is_some_and(|until| until <= now) {
                backoff_until = None;
            }
            let wake_at =
                pending.iter().map(|p| p.deadline).chain(backoff_until).chain(deadline).min();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(None);
            }
            let listen = backoff_until.is_none();
            let mut fds = vec![self.wake.as_raw_fd()];
            if listen {
                fds.push(self.socket.raw_fd());
            }
            fds.extend(pending.iter().map(|p| p.conn.as_fd().as_raw_fd()));
            let left = wake_at.map(|at| at.saturating_duration_since(now));
            let ready = sys::wait_any_readable_raw(&fds, left)?;
            let first_pending = 1 + usize::from(listen);
            // Handshakes first: a peer that answered finishes before new ones start.
            for &index in ready.iter().rev().filter(|&&i| i >= first_pending) {
                let key = self.authkey.as_deref().unwrap_or_default();
                let slot = index - first_pending;
                let Pending { conn, handshake, .. } = &mut pending[slot];
                match handshake.advance(conn, key) {
                    Ok(false) => {}
                    Ok(true) => {
                        let Some(done) = pending.remove(slot) else { continue };
                        *lock(&self.last_accepted) = Some(done.peer);
                        return Ok(Some(done.conn));
                    }
                    Err(error) => {
                        pending.remove(slot);
                        return Err(error);
                    }
                }
            }
            if ready.contains(&0) {
                sys::eventfd_clear(self.wake.as_fd());
            }
            if !(listen && ready.contains(&1)) {
                continue;
            }
            // Make room: with every slot taken and a peer waiting, the oldest goes.
            if pending.len() >= self.max_handshakes.load(Ordering::Relaxed) {
                pending.pop_front();
            }
            let (fd, peer) = match self.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) if self.closed.load(Ordering::Acquire) => return Err(closed_error()),
                // Out of fds or kernel memory: free one of ours if we can, else wait a
                // moment.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    if pending.pop_front().is_none() {
                        backoff_until = Instant::now().checked_add(FD_BACKOFF);
                    }
                    continue;
                }
                // The peer left before we took it: go on with the others.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO)) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Ok(conn) = Connection::new(fd, true, true) else { continue };
            if self.authkey.is_none() {
                *lock(&self.last_accepted) = Some(peer);
                return Ok(Some(conn));
            }
            // A peer that is gone before it got its challenge is simply dropped.
            let Ok(handshake) = auth::ServerHandshake::start(&conn) else { continue };
            let timeout = Duration::from_millis(self.handshake_timeout_ms.load(Ordering::Relaxed));
            let deadline = Instant::now() + timeout;
            pending.push_back(Pending { conn, peer, handshake, deadline });
        }
    }

    /// The address it listens at (for TCP port 0, the port it got).
    ///
    /// Python: `Listener.address`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener};
    ///
    /// let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), None)?;
    /// match listener.address() {
    ///     Address::Tcp(addr) => assert_ne!(addr.port(), 0),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// The address of the last accepted peer. Python: `Listener.last_accepted`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener, client};
    ///
    /// let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), None)?;
    /// assert!(listener.last_accepted().is_none());
    /// let address = listener.address();
    /// let peer = std::thread::spawn(move || client(address, None).unwrap());
    /// let _conn = listener.accept()?;
    /// assert!(matches!(listener.last_accepted(), Some(Address::Tcp(_))));
    /// drop(peer.join().unwrap());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn last_accepted(&self) -> Option<Address> {
        lock(&self.last_accepted).clone()
    }

    /// Stops listening: new peers are refused, a Unix socket's file is removed.
    ///
    /// Python: `Listener.close()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::{Address, Listener, client};
    ///
    /// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-close".to_vec()), None)?;
    /// let address = listener.address();
    /// listener.close();
    /// assert!(client(address, None).is_err(), "nobody listens any more");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
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
///
/// # Examples
///
/// ```
/// use multiprocessing::connection::{Address, Listener, client};
///
/// let listener = Listener::bind(Address::Abstract(b"pyconc-doc-client".to_vec()), Some(b"right"))?;
/// let address = listener.address();
/// let _server = std::thread::spawn(move || {
///     let _ = listener.accept();
/// });
/// let refused = client(address, Some(b"wrong")).unwrap_err();
/// assert!(matches!(refused, multiprocessing::Error::AuthenticationError(_)));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
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
