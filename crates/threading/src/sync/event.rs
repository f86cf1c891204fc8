//! `Event`: Python's `threading.Event`, a flag that threads wait for.
//!
//! One futex word: bit 0 is the flag, the other bits count how many times `set` raised
//! it (a generation). A waiter that saw the flag down sleeps until the word changes; when
//! it wakes it returns true if the generation moved — so a waiter woken by `set()` reports
//! true even if `clear()` ran before it was scheduled, as in CPython.

use std::fmt;
use std::time::{Duration, Instant};

use crate::primitive::Ordering;
use crate::wait_word::{WaitWord, deadline_after};

const FLAG: u32 = 1;
const GENERATION: u32 = 2;

/// A flag that threads can wait for: `set` raises it and wakes every waiter, `clear`
/// lowers it.
///
/// Python: `threading.Event`.
///
/// # Differences from CPython
/// - `wait(timeout)` is [`wait`](Event::wait) and [`wait_timeout`](Event::wait_timeout)
///   (which returns the flag, as CPython's). A waiter woken by `set()` returns true even if
///   `clear()` ran before it was scheduled, as in CPython.
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
    word: WaitWord,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Event {
        Event { word: WaitWord::new(0) }
    }

    /// Whether the flag is set. Python: `event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.word.load() & FLAG != 0
    }

    /// Sets the flag and wakes every waiter. Python: `event.set()`.
    pub fn set(&self) {
        let word = self.word.atomic();
        let mut state = word.load(Ordering::Relaxed);
        loop {
            if state & FLAG != 0 {
                return;
            }
            let next = (state.wrapping_add(GENERATION)) | FLAG;
            match word.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => state = seen,
            }
        }
        self.word.wake_all();
    }

    /// Lowers the flag. Python: `event.clear()`.
    pub fn clear(&self) {
        self.word.atomic().fetch_and(!FLAG, Ordering::Relaxed);
    }

    /// Waits until the flag is set. Python: `event.wait()`.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; returns true if it was set (also when it was
    /// cleared again before this thread woke up), false on timeout.
    ///
    /// Python: `event.wait(timeout)`. A zero timeout only checks.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match deadline_after(timeout) {
            Some(deadline) => self.wait_until(Some(deadline)),
            None => self.wait_until(None),
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let start = self.word.load();
        if start & FLAG != 0 {
            return true;
        }
        loop {
            let in_time = self.word.wait(start, deadline);
            let now = self.word.load();
            if now & !FLAG != start & !FLAG {
                return true; // set() ran since we began (generation moved)
            }
            if !in_time {
                return now & FLAG != 0;
            }
        }
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
