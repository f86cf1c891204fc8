//! `Event` across processes. The state machine is `pyconc_core::sync::Event` (shared with
//! `threading.Event`) on a process-shared futex word: word 0 of a page of shared memory.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{deadline_after, shared_serde};
use crate::heap::SharedMemory;
use pyconc_core::sync::{Event as RawEvent, SharedWord};

use crate::Error;

/// A flag that processes wait for: Python's `multiprocessing.Event`.
///
/// # Differences from CPython
/// - `wait(timeout)` is [`wait`](Event::wait) and [`wait_timeout`](Event::wait_timeout)
///   (which returns the flag, as CPython's).
/// - CPython's is a `Condition` over a lock and a semaphore in shared memory; this one is
///   one futex word, which holds no lock: a process killed inside `set`, `clear` or `wait`
///   leaves nothing held that would wedge the others (CPython's can leave its lock taken).
/// - A waiter watches the flag for up to 20 µs before it sleeps (on more than one CPU), as
///   `threading::Event`'s does.
/// - [`new`](Event::new) panics when the OS refuses shared memory, as CPython raises
///   `OSError`; [`try_new`](Event::try_new) returns the error instead.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Event, Process};
///
/// let ready = Event::new();
/// let theirs = ready.clone();
/// let p = Process::new(move || theirs.set());
/// p.start()?;
/// ready.wait();
/// assert!(ready.is_set());
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    mem: Arc<SharedMemory>,
}

shared_serde!(Event { mem });

impl Event {
    /// A cleared event.
    ///
    /// # Panics
    /// If the OS refuses shared memory; [`Event::try_new`] returns that error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = multiprocessing::Event::new();
    /// assert!(!event.is_set());
    /// ```
    pub fn new() -> Event {
        Event::try_new().unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](Event::new), returning the OS's refusal.
    ///
    /// # Errors
    /// [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let event = multiprocessing::Event::try_new()?;
    /// event.set();
    /// assert!(event.is_set());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn try_new() -> Result<Event, Error> {
        Ok(Event { mem: Arc::new(SharedMemory::new(16)?) })
    }

    fn from_shared(mem: Arc<SharedMemory>) -> Event {
        Event { mem }
    }

    fn raw(&self) -> RawEvent<&SharedWord> {
        RawEvent::on(SharedWord::from_atomic(self.mem.word(0)))
    }

    /// Whether the flag is set. Python: `Event.is_set()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = multiprocessing::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Sets the flag and wakes every waiter. Python: `Event.set()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Event, Process};
    ///
    /// let go = Event::new();
    /// let theirs = go.clone();
    /// let p = Process::new(move || theirs.wait());
    /// p.start()?;
    /// go.set(); // wakes the child
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self) {
        self.raw().set();
    }

    /// Clears the flag. Python: `Event.clear()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = multiprocessing::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.raw().clear();
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        self.raw().wait_until(deadline)
    }

    /// Waits until the flag is set. Python: `Event.wait()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = multiprocessing::Event::new();
    /// event.set();
    /// event.wait(); // returns at once: the flag is set
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; whether the flag was set. Python: `Event.wait(timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = multiprocessing::Event::new();
    /// let theirs = event.clone();
    /// let child = multiprocessing::Process::new(move || theirs.set());
    /// child.start()?;
    /// assert!(event.wait_timeout(Duration::from_secs(30)));
    /// child.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout))
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Event({})>", if self.is_set() { "set" } else { "unset" })
    }
}
