//! How proxies reach their server: one connection per thread and server (CPython's
//! `BaseProxy._tls`), so that a call that blocks in the server (a lock, a queue `get`)
//! holds up no other thread. A connection to a server on this machine moves onto a
//! duplex `pipe()` — shared-memory rings — right after the handshake: a call is then a
//! copy each way, not a socket round trip.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

use pyconc_core::fork::ForkMutex;

use super::protocol::{Failure, Hello, Reply, Request};
use crate::connection::{Address, client, send_handle};
use crate::{Connection, Error, pipe, sys};

/// How long either side of a local connection busy-waits for the next message before it
/// sleeps: a reply, or a client's next call, is a few microseconds away, and a sleep
/// costs a wake-up on each side (tens of microseconds here).
pub(crate) const REPLY_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// A server and the key its clients must know.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Server {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Server").field("address", &self.address).finish_non_exhaustive()
    }
}

/// The keys of the servers this process knows (it started or connected to them, or was
/// given a proxy with the key): a proxy that arrives without a key uses its server's,
/// and only for a server it does not know, this process's authkey (CPython's choice).
static KNOWN_KEYS: ForkMutex<Option<HashMap<Address, Vec<u8>>>> = ForkMutex::new(None, 36, |_| {});

/// Remembers `authkey` as the key of the server at `address`.
pub(crate) fn remember_key(address: &Address, authkey: &[u8]) {
    KNOWN_KEYS.lock().get_or_insert_with(HashMap::new).insert(address.clone(), authkey.to_vec());
}

/// The key for the server at `address`: the one known for it, or this process's.
pub(crate) fn key_for(address: &Address) -> Vec<u8> {
    let known = KNOWN_KEYS.lock().as_ref().and_then(|keys| keys.get(address).cloned());
    known.unwrap_or_else(|| crate::current_process().authkey())
}

thread_local! {
    /// This thread's connections, by server, with the process they belong to (a fork
    /// child inherits the forking thread's, which are its parent's).
    static CONNECTIONS: RefCell<HashMap<Server, (sys::Pid, Rc<Connection>)>> =
        RefCell::new(HashMap::new());
}

/// Whether `address` is on this machine, where the connection can move to shared memory.
fn is_local(address: &Address) -> bool {
    match address {
        Address::Unix(_) | Address::Abstract(_) => true,
        Address::Tcp(socket) => match socket.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => ip.is_loopback(),
        },
    }
}

/// A new connection to `server`, authenticated, on rings when the server is local.
pub(crate) fn connect(server: &Server) -> Result<Connection, Error> {
    let conn = client(server.address.clone(), Some(&server.authkey))?;
    // At exit, after this thread's storage is gone (finalizers run from `exit`), the fd
    // table of `send_handle` is not there: such a late call stays on the socket.
    let late = CONNECTIONS.try_with(|_| ()).is_err();
    if late || !is_local(&server.address) {
        conn.send(&Hello::Stay)?;
        return Ok(conn);
    }
    let (ours, theirs) = pipe(true)?;
    conn.send(&Hello::Upgrade)?;
    send_handle(&conn, &theirs)?;
    ours.set_idle_spin(REPLY_SPIN);
    Ok(ours)
}

/// This thread's connection to `server`, made on first use.
fn connection(server: &Server) -> Result<Rc<Connection>, Error> {
    let me = sys::getpid();
    let cached = CONNECTIONS.try_with(|all| {
        let mut all = all.borrow_mut();
        match all.get(server) {
            Some((owner, conn)) if *owner == me => Some(Rc::clone(conn)),
            Some(_) => {
                // The parent's, inherited through fork: not ours to use, nor to close
                // (closing could disturb the parent's rings).
                if let Some((_, inherited)) = all.remove(server) {
                    std::mem::forget(inherited);
                }
                None
            }
            None => None,
        }
    });
    if let Ok(Some(conn)) = cached {
        return Ok(conn);
    }
    let conn = Rc::new(connect(server)?);
    // During thread teardown there is no cache: the connection serves this call only.
    let _ = CONNECTIONS.try_with(|all| {
        all.borrow_mut().insert(server.clone(), (me, Rc::clone(&conn)));
    });
    Ok(conn)
}

/// Sends `request` to `server` and returns its reply (a failure as `Reply::Failed`).
///
/// # Errors
/// The connection's: the server cannot be reached (gone, wrong key) or went away during
/// the call ([`Error::EOFError`]). The connection is then dropped; the next call makes a
/// new one.
pub(crate) fn request(server: &Server, request: &Request<'_>) -> Result<Reply, Error> {
    let conn = connection(server)?;
    let outcome = conn.send(request).and_then(|()| conn.recv::<Reply>());
    if outcome.is_err() {
        let _ = CONNECTIONS.try_with(|all| all.borrow_mut().remove(server));
    }
    outcome
}

/// What a failure means to the caller, for the exceptions that need no context.
pub(crate) fn failure(failure: Failure) -> Error {
    match failure {
        Failure::KeyError => Error::KeyError("<key>".into()),
        Failure::IndexError(m) => Error::IndexError(m.into()),
        Failure::AttributeError(m) => Error::AttributeError(m),
        Failure::ValueError(m) => Error::ValueError(m.into()),
        Failure::RuntimeError(m) => Error::RuntimeError(m.into()),
        Failure::AssertionError(m) => Error::AssertionError(m.into()),
        Failure::BrokenBarrierError => Error::BrokenBarrierError,
        Failure::Empty => Error::Empty,
        Failure::Full => Error::Full,
        Failure::NoSuchObject(id) => Error::RuntimeError(
            format!("the manager holds no object #{id} (its last proxy was dropped)").into(),
        ),
        Failure::BadRequest(m) => {
            Error::ValueError(format!("the manager refused the request: {m}").into())
        }
    }
}
