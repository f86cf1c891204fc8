//! `Event`: Python's `threading.Event`, a flag that threads wait for. The state machine
//! is `pyconc_core::sync::Event`, shared with `multiprocessing.Event`, on a private futex
//! word.

use std::fmt;
use std::time::{Duration, Instant};

use pyconc_core::sync::{Event as RawEvent, WaitWord, deadline_after};

/// A flag that threads can wait for: `set` raises it and wakes every waiter, `clear`
/// lowers it.
///
/// Python: `threading.Event`.
///
/// # Differences from CPython
/// - `wait(timeout)` is [`wait`](Event::wait) and [`wait_timeout`](Event::wait_timeout)
///   (which returns the flag, as CPython's). A waiter woken by `set()` returns true even if
///   `clear()` ran before it was scheduled, as in CPython.
/// - On a machine with more than one CPU a waiter watches the flag for up to 20 µs before
///   it sleeps, so a `set` that comes soon (a reply, a hand-off) is seen without a trip
///   through the scheduler: a ping-pong round trip is ~10× faster than with a sleeping
///   wait, for at most 20 µs of CPU per `wait`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use threading::{Event, Thread};
///
/// let ready = Arc::new(Event::new());
/// let waiter = {
///     let ready = Arc::clone(&ready);
///     Thread::new(move || ready.wait())
/// };
/// waiter.start()?;
/// ready.set();
/// waiter.join()?;
/// assert!(ready.is_set());
/// # Ok::<(), threading::Error>(())
/// ```
pub struct Event {
    raw: RawEvent<WaitWord>,
}

impl Event {
    /// A new event, not set.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = threading::Event::new();
    /// assert!(!event.is_set());
    /// ```
    pub fn new() -> Event {
        Event { raw: RawEvent::on(WaitWord::new(0)) }
    }

    /// Whether the flag is set. Python: `event.is_set()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = threading::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.raw.is_set()
    }

    /// Obsolete spelling of [`is_set`](Event::is_set).
    ///
    /// Python: `event.isSet()` (deprecated since 3.10, still in 3.11).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = threading::Event::new();
    /// #[allow(deprecated)]
    /// let set = event.isSet();
    /// assert!(!set);
    /// ```
    #[deprecated(note = "isSet() is deprecated, use is_set() instead")]
    #[allow(non_snake_case, reason = "CPython's name, kept for code ported from Python")]
    pub fn isSet(&self) -> bool {
        self.is_set()
    }

    /// Sets the flag and wakes every waiter. Python: `event.set()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let ready = Arc::new(threading::Event::new());
    /// let theirs = Arc::clone(&ready);
    /// let waiter = threading::Thread::builder().start(move || theirs.wait())?;
    /// ready.set(); // wakes every waiter
    /// waiter.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn set(&self) {
        self.raw.set();
    }

    /// Lowers the flag. Python: `event.clear()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = threading::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.raw.clear();
    }

    /// Waits until the flag is set. Python: `event.wait()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = threading::Event::new();
    /// event.set();
    /// event.wait(); // returns at once: the flag is set
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; returns true if it was set (also when it was
    /// cleared again before this thread woke up), false on timeout.
    ///
    /// Python: `event.wait(timeout)`. A zero timeout only checks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = threading::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(10)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::ZERO));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match deadline_after(timeout) {
            Some(deadline) => self.wait_until(Some(deadline)),
            None => self.wait_until(None),
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        self.raw.wait_until(deadline)
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

/// CPython's repr: `<threading.Event at 0x…: set>` / `unset>`.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_set() { "set" } else { "unset" };
        write!(f, "<threading.Event at {:p}: {state}>", self)
    }
}
