//! `Event` across processes. The word is `generation << 1 | flag`: `set` starts a new
//! generation, so a waiter woken by it returns `true` even if `clear` came first.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{deadline_after, shared_serde};
use crate::heap::SharedMemory;
use crate::{Error, sys};

/// A flag that processes wait for: Python's `multiprocessing.Event`.
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
    pub fn new() -> Event {
        Event::try_new().unwrap_or_else(|e| panic!("cannot create shared memory: {e}"))
    }

    /// As [`new`](Event::new), returning the OS's refusal.
    ///
    /// # Errors
    /// [`Error::OsError`].
    pub fn try_new() -> Result<Event, Error> {
        Ok(Event { mem: Arc::new(SharedMemory::new(16)?) })
    }

    fn from_shared(mem: Arc<SharedMemory>) -> Event {
        Event { mem }
    }

    fn word(&self) -> &AtomicU32 {
        self.mem.word(0)
    }

    /// Whether the flag is set. Python: `Event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.word().load(Ordering::Acquire) & 1 != 0
    }

    /// Sets the flag and wakes every waiter. Python: `Event.set()`.
    pub fn set(&self) {
        let word = self.word();
        let mut current = word.load(Ordering::Relaxed);
        loop {
            if current & 1 != 0 {
                return;
            }
            let next = (current | 1).wrapping_add(2);
            match word.compare_exchange_weak(current, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        sys::futex_wake(word, i32::MAX);
    }

    /// Clears the flag. Python: `Event.clear()`.
    pub fn clear(&self) {
        self.word().fetch_and(!1, Ordering::Relaxed);
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let word = self.word();
        let seen = word.load(Ordering::Acquire);
        if seen & 1 != 0 {
            return true;
        }
        loop {
            sys::futex_wait(word, seen, deadline);
            let now = word.load(Ordering::Acquire);
            if now != seen && (now & 1 != 0 || now >> 1 != seen >> 1) {
                return true; // set (perhaps cleared again since: a new generation)
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
    }

    /// Waits until the flag is set. Python: `Event.wait()`.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; whether the flag was set. Python: `Event.wait(timeout)`.
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
