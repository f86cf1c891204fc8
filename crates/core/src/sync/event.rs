//! The state machine of `threading.Event` and `multiprocessing.Event`, written once over a
//! [`Futex`].
//!
//! One word: bit 0 is the flag, the other bits count how many times `set` raised it (a
//! generation). A waiter that saw the flag down sleeps until the word changes; when it
//! wakes it returns true if the generation moved — so a waiter woken by `set()` reports
//! true even if `clear()` ran before it was scheduled, as in CPython.

use std::time::Instant;

use super::futex::Futex;
use super::primitive::Ordering;

/// The flag bit.
const FLAG: u32 = 1;
/// One generation.
const GENERATION: u32 = 2;

/// An event's state machine on the word `F` (a [`WaitWord`](super::WaitWord) it owns, or
/// a reference to a [`SharedWord`](super::SharedWord) in shared memory). The word starts at
/// 0 (not set).
#[derive(Debug)]
pub struct Event<F> {
    word: F,
}

impl<F: Futex> Event<F> {
    /// The event whose state is `word`.
    #[inline]
    pub const fn on(word: F) -> Event<F> {
        Event { word }
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.word.load() & FLAG != 0
    }

    /// Raises the flag (a new generation) and wakes every waiter.
    #[inline]
    pub fn set(&self) {
        let word = self.word.atomic();
        let mut state = word.load(Ordering::Relaxed);
        loop {
            if state & FLAG != 0 {
                return;
            }
            let next = state.wrapping_add(GENERATION) | FLAG;
            match word.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => state = seen,
            }
        }
        self.word.wake_all();
    }

    /// Lowers the flag.
    #[inline]
    pub fn clear(&self) {
        self.word.atomic().fetch_and(!FLAG, Ordering::Relaxed);
    }

    /// Waits until the flag is set or `deadline` passes (`None`: no deadline); whether it
    /// was set (also when it was cleared again before this thread woke up).
    pub fn wait_until(&self, deadline: Option<Instant>) -> bool {
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
