//! The resource sharer: CPython's `multiprocessing.resource_sharer` — how the fds of an
//! object sent with [`send_handle`](super::send_handle) reach a process that is already
//! running.
//!
//! The sending process keeps duplicates of the fds under a random 256-bit secret and
//! serves them on a Unix socket in the abstract namespace, from one helper thread that
//! starts on first use. The message on the connection carries the socket's name, the
//! entry's number and the secret; the receiver connects, presents number and secret, and
//! gets the fds once (`SCM_RIGHTS`), after which the entry is gone. Where CPython
//! authenticates the fetcher with the process's authkey, the secret itself is the proof
//! here: only the receiver of the message knows it, so any process of the machine that
//! was sent a handle can fetch it, whoever started it.
//!
//! A fork child starts over: it closes its copies of the parent's socket and fds
//! (the fork registry, order 35).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use pyconc_core::fork::ForkMutex;

use crate::codec;
use crate::{Error, sys};

/// The names of sharers' sockets begin so; a receiver connects to no other name.
const PREFIX: &str = "pyconc-resource-sharer-";
/// How long the sharer waits for a fetcher to ask, and a fetcher for the fds.
const PATIENCE: Duration = Duration::from_secs(5);

/// Where and how to fetch the fds of one sent object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ticket {
    /// The sharer's socket, in the abstract namespace.
    name: String,
    id: u64,
    secret: [u8; 32],
    /// How many fds to expect.
    count: u32,
}

/// The sharer of this process: its socket and the fds waiting to be fetched.
struct Sharer {
    name: String,
    /// The listening socket (owned by the serving thread).
    listener: RawFd,
    next: u64,
    waiting: HashMap<u64, ([u8; 32], Vec<OwnedFd>)>,
}

static SHARER: ForkMutex<Option<Sharer>> = ForkMutex::new(None, 35, forget_in_child);

/// In a fork child: the serving thread is not there; close the copies of its socket and
/// of the waiting fds, and start over on next use.
fn forget_in_child(sharer: &mut Option<Sharer>) {
    if let Some(sharer) = sharer.take() {
        // SAFETY: the fd was the parent's serving thread's listening socket; that thread
        // (and its `UnixListener`) does not exist in the child, so nothing else owns
        // this copy, and it is closed once, here.
        drop(unsafe { sys::own_fd(sharer.listener) });
    }
}

/// Keeps duplicates of `fds` until a receiver of the returned ticket fetches them.
pub(crate) fn share(fds: &[RawFd]) -> Result<Ticket, Error> {
    let mut copies = Vec::with_capacity(fds.len());
    for &fd in fds {
        copies.push(sys::dup_cloexec(fd)?);
    }
    let mut secret = [0u8; 32];
    sys::fill_random(&mut secret)?;
    let mut slot = SHARER.lock();
    if slot.is_none() {
        *slot = Some(start()?);
    }
    let Some(sharer) = slot.as_mut() else { unreachable!("started above") };
    let id = sharer.next;
    sharer.next += 1;
    sharer.waiting.insert(id, (secret, copies));
    Ok(Ticket { name: sharer.name.clone(), id, secret, count: fds.len() as u32 })
}

/// Starts this process's sharer: a socket with a fresh name, and its serving thread.
fn start() -> Result<Sharer, Error> {
    let mut tag = [0u8; 8];
    sys::fill_random(&mut tag)?;
    let name = format!("{PREFIX}{}-{:016x}", std::process::id(), u64::from_ne_bytes(tag));
    let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name)?)?;
    let raw = listener.as_raw_fd();
    pyconc_core::helper::spawn("pyconc-resource-sharer", move || serve(&listener))
        .map_err(Error::OsError)?;
    Ok(Sharer { name, listener: raw, next: 0, waiting: HashMap::new() })
}

/// The serving thread: one fetcher at a time, each with [`PATIENCE`].
fn serve(listener: &UnixListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.set_write_timeout(Some(PATIENCE));
        let mut request = [0u8; 40];
        if stream.read_exact(&mut request).is_err() {
            continue;
        }
        let id = u64::from_be_bytes(request[..8].try_into().unwrap_or_default());
        let fds = {
            let mut slot = SHARER.lock();
            let Some(sharer) = slot.as_mut() else { return };
            match sharer.waiting.get(&id) {
                // Only the holder of the secret takes the entry (and only once).
                Some((secret, _)) if bool::from(secret.ct_eq(&request[8..])) => {
                    sharer.waiting.remove(&id).map(|(_, fds)| fds)
                }
                _ => None,
            }
        };
        // An unknown number or a wrong secret gets nothing: the connection just closes.
        if let Some(fds) = fds {
            let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            let _ = codec::send_frame_with_fds(&stream, b"", &raw);
        }
    }
}

/// Fetches the fds of `ticket` from the sharer that issued it.
pub(crate) fn fetch(ticket: &Ticket) -> Result<Vec<OwnedFd>, Error> {
    if ticket.count == 0 {
        return Ok(Vec::new());
    }
    let refused = |why: &str| Error::OsError(std::io::Error::other(format!("recv_handle: {why}")));
    if !ticket.name.starts_with(PREFIX) || ticket.name.len() > 100 {
        return Err(refused("the handle names no resource sharer"));
    }
    let address = SocketAddr::from_abstract_name(&ticket.name)?;
    let mut stream = UnixStream::connect_addr(&address)
        .map_err(|e| refused(&format!("the sending process's resource sharer is gone ({e})")))?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut request = [0u8; 40];
    request[..8].copy_from_slice(&ticket.id.to_be_bytes());
    request[8..].copy_from_slice(&ticket.secret);
    stream.write_all(&request)?;
    let (_, fds) = codec::recv_frame_with_fds(&stream, 0).map_err(|e| {
        refused(&format!("the handle was already received, or is unknown to its sender ({e})"))
    })?;
    if fds.len() != ticket.count as usize {
        return Err(refused("the sender sent another number of file descriptors"));
    }
    Ok(fds)
}
