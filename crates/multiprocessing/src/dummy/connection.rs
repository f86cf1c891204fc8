//! `Pipe` of `multiprocessing.dummy`: two connected ends that move values between
//! threads (CPython: `multiprocessing.dummy.connection`, two `queue.Queue`s).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pyconc_core::sync::{lock, wait, wait_timeout};

use crate::Error;
use crate::error::HANDLE_CLOSED;

/// One direction of a pipe: the values on their way, and whether the sender is gone.
struct Direction<T> {
    state: Mutex<(VecDeque<T>, bool)>,
    arrived: Condvar,
}

impl<T> Direction<T> {
    fn new() -> Arc<Direction<T>> {
        Arc::new(Direction { state: Mutex::new((VecDeque::new(), true)), arrived: Condvar::new() })
    }

    /// The sender is gone: a receiver that finds nothing more gets `EOFError`.
    fn hang_up(&self) {
        lock(&self.state).1 = false;
        self.arrived.notify_all();
    }
}

/// One end of a [`pipe`].
///
/// Python: `multiprocessing.dummy.connection.Connection`. `send` moves a value to the
/// other end; `recv` takes the next one. Beyond CPython (whose dummy connection waits
/// for ever there), `recv` on an end whose other end was closed or dropped returns
/// [`Error::EOFError`] once the values sent before are taken. `Send + Sync` when
/// `T: Send`.
///
/// # Examples
///
/// ```
/// let (a, b) = multiprocessing::dummy::pipe::<String>(true);
/// a.send("ping".to_string())?;
/// assert_eq!(b.recv()?, "ping");
/// b.send("pong".to_string())?;
/// assert_eq!(a.recv()?, "pong");
/// drop(b);
/// assert!(matches!(a.recv(), Err(multiprocessing::Error::EOFError)));
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Connection<T> {
    incoming: Arc<Direction<T>>,
    outgoing: Arc<Direction<T>>,
    closed: Mutex<bool>,
}

/// Two connected ends. Python: `multiprocessing.dummy.Pipe(duplex)`, which is duplex
/// whatever `duplex` says (CPython ignores it; so do we, to run ported code alike).
///
/// # Examples
///
/// ```
/// use multiprocessing::dummy::{Process, pipe};
///
/// let (parent, child) = pipe::<Vec<u8>>(true);
/// let p = Process::new(move || {
///     let data = child.recv().unwrap();
///     child.send(data.into_iter().rev().collect()).unwrap();
/// });
/// p.start()?;
/// parent.send(vec![1, 2, 3])?;
/// assert_eq!(parent.recv()?, [3, 2, 1]);
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub fn pipe<T>(duplex: bool) -> (Connection<T>, Connection<T>) {
    let _ = duplex;
    let (a, b) = (Direction::new(), Direction::new());
    (
        Connection {
            incoming: Arc::clone(&a),
            outgoing: Arc::clone(&b),
            closed: Mutex::new(false),
        },
        Connection { incoming: b, outgoing: a, closed: Mutex::new(false) },
    )
}

impl<T> Connection<T> {
    fn check_open(&self) -> Result<(), Error> {
        if *lock(&self.closed) { Err(Error::value(HANDLE_CLOSED)) } else { Ok(()) }
    }

    /// Moves `value` to the other end. Python: `send(obj)` (and `send_bytes`).
    ///
    /// # Errors
    /// [`Error::ValueError`] `handle is closed` after [`close`](Connection::close).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiprocessing::dummy::pipe(true);
    /// a.send(7)?;
    /// assert_eq!(b.recv()?, 7);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn send(&self, value: T) -> Result<(), Error> {
        self.check_open()?;
        lock(&self.outgoing.state).0.push_back(value);
        self.outgoing.arrived.notify_one();
        Ok(())
    }

    /// Takes the next value, waiting for one. Python: `recv()` (and `recv_bytes`).
    ///
    /// # Errors
    /// [`Error::EOFError`] when nothing is left and the other end is closed or dropped;
    /// `handle is closed` after [`close`](Connection::close).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiprocessing::dummy::pipe(true);
    /// a.send("x")?;
    /// a.close();
    /// assert_eq!(b.recv()?, "x");
    /// assert!(b.recv().is_err(), "EOFError: the other end is closed");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv(&self) -> Result<T, Error> {
        self.check_open()?;
        let mut state = lock(&self.incoming.state);
        loop {
            if let Some(value) = state.0.pop_front() {
                return Ok(value);
            }
            if !state.1 {
                return Err(Error::EOFError);
            }
            state = wait(&self.incoming.arrived, state);
        }
    }

    /// Whether a value (or the end of the pipe) is there to take, waiting at most
    /// `timeout` (`None`: as long as it takes). Python: `poll(timeout)`.
    ///
    /// # Errors
    /// `handle is closed` after [`close`](Connection::close).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = multiprocessing::dummy::pipe(true);
    /// assert!(!b.poll(Some(Duration::ZERO))?);
    /// a.send(1)?;
    /// assert!(b.poll(Some(Duration::from_secs(1)))?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.check_open()?;
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut state = lock(&self.incoming.state);
        loop {
            if !state.0.is_empty() || !state.1 {
                return Ok(true);
            }
            state = match (timeout, deadline) {
                (Some(_), Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    wait_timeout(&self.incoming.arrived, state, left).0
                }
                _ => wait(&self.incoming.arrived, state),
            };
        }
    }

    /// Closes this end: the other end's `recv` gets `EOFError` once it took what was
    /// sent. Python: `close()` (a no-op in CPython's dummy connection).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = multiprocessing::dummy::pipe::<u8>(true);
    /// a.close();
    /// assert!(a.send(1).is_err());
    /// assert!(b.recv().is_err());
    /// ```
    pub fn close(&self) {
        let mut closed = lock(&self.closed);
        if !*closed {
            *closed = true;
            self.outgoing.hang_up();
        }
    }

    /// Whether [`close`](Connection::close) was called. Python: `closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = multiprocessing::dummy::pipe::<u8>(true);
    /// a.close();
    /// assert!(a.closed());
    /// ```
    pub fn closed(&self) -> bool {
        *lock(&self.closed)
    }
}

impl<T> Drop for Connection<T> {
    fn drop(&mut self) {
        self.outgoing.hang_up();
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("waiting", &lock(&self.incoming.state).0.len())
            .field("closed", &self.closed())
            .finish()
    }
}
