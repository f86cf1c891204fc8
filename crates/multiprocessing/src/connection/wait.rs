//! `wait`: CPython's `multiprocessing.connection.wait` — the objects among several that
//! are ready: connections with a message (or EOF), listeners with a peer, ended processes.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::{Connection, Listener};
use crate::{Error, sys};

/// Something [`wait`] can wait for.
///
/// Python: a connection, a listener's socket or a process's `sentinel`.
pub trait Waitable {
    /// The fd that becomes readable when the object is ready (`None`: never).
    fn ready_fd(&self) -> Option<RawFd>;
    /// Whether it is ready already, without looking at the fd (a connection that holds
    /// a received message).
    fn ready_now(&self) -> bool {
        false
    }
    /// After its fd was readable: whether the object really is ready. A one-way pipe's
    /// reading end may be readable with nothing to receive (a wake-up left behind by the
    /// reader that took the message); this takes such a wake-up away and says no.
    fn confirm_ready(&self) -> bool {
        true
    }
}

impl Waitable for Connection {
    fn ready_fd(&self) -> Option<RawFd> {
        (!self.closed()).then(|| self.as_fd().as_raw_fd())
    }

    fn ready_now(&self) -> bool {
        self.has_buffered()
    }

    fn confirm_ready(&self) -> bool {
        !self.has_ring() || self.poll(Some(Duration::ZERO)).unwrap_or(true)
    }
}

impl Waitable for Listener {
    fn ready_fd(&self) -> Option<RawFd> {
        Some(self.raw_fd())
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: no
/// limit); returns the indices of the ready ones (empty on timeout).
///
/// Python: `multiprocessing.connection.wait(object_list, timeout)`, which returns the
/// objects themselves; here their indices in `objects`.
///
/// # Errors
/// [`Error::OsError`] from `poll`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use multiprocessing::connection::wait;
/// use multiprocessing::pipe;
///
/// let (a, b) = pipe(true)?;
/// let (c, _d) = pipe(true)?;
/// b.send_bytes(b"ping")?;
/// assert_eq!(wait(&[&c, &a], Some(Duration::from_secs(5)))?, vec![1]);
/// assert!(wait(&[&c], Some(Duration::ZERO))?.is_empty());
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>, Error> {
    // `None` also for a timeout too long to count: no limit.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let ready: Vec<usize> = (0..objects.len()).filter(|&i| objects[i].ready_now()).collect();
        if !ready.is_empty() {
            return Ok(ready);
        }
        let mut indices = Vec::new();
        let mut fds = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            if let Some(fd) = object.ready_fd() {
                indices.push(i);
                fds.push(fd);
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ready: Vec<usize> = sys::wait_any_readable_raw(&fds, left)?
            .into_iter()
            .map(|k| indices[k])
            .filter(|&i| objects[i].confirm_ready())
            .collect();
        // Nothing really ready (a stale wake-up): wait again for what is left of the time.
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
    }
}
