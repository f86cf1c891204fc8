//! The state machine of `threading.Event` and `multiprocessing.Event`, written once over a
//! [`Futex`].
//!
//! One word: bit 0 is the flag, bit 1 says that a waiter may be asleep on the word, the
//! other bits count how many times `set` raised the flag (a generation). A waiter that saw
//! the flag down first watches the word for a few microseconds (an event is often set
//! soon: a reply, a hand-off), then marks the word and sleeps until it changes; when it
//! wakes it returns true if the generation moved — so a waiter woken by `set()` reports
//! true even if `clear()` ran before it was scheduled, as in CPython. `set` makes the
//! wake-up system call only when the mark says someone may sleep.

use std::time::Instant;

use super::futex::Futex;
use super::primitive::Ordering;

/// The flag bit.
const FLAG: u32 = 1;
/// A waiter may be asleep on the word: `set` must wake it.
const SLEEPING: u32 = 2;
/// One generation.
const GENERATION: u32 = 4;

/// How long a waiter watches the word before it sleeps. A round trip through the
/// scheduler (a futex wake-up and a context switch) costs 5–20 µs on the machines this was
/// measured on; a peer that answers within this window is seen without either. Off under
/// loom (a model must not spin) and on one CPU (the peer cannot run while this spins).
#[cfg(not(loom))]
const WATCH: std::time::Duration = std::time::Duration::from_micros(20);

/// The generation of a word.
#[inline]
fn generation(word: u32) -> u32 {
    word & !(FLAG | SLEEPING)
}

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
            let next = (state.wrapping_add(GENERATION) & !SLEEPING) | FLAG;
            match word.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => state = seen,
            }
        }
        if state & SLEEPING != 0 {
            self.word.wake_all();
        }
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
        if self.watch(start, deadline) {
            return true;
        }
        loop {
            // Mark the word before sleeping on it, so that `set` wakes this thread.
            let mut seen = self.word.load();
            if generation(seen) != generation(start) {
                return true;
            }
            if seen & SLEEPING == 0 {
                let marked = seen | SLEEPING;
                let word = self.word.atomic();
                match word.compare_exchange(seen, marked, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => seen = marked,
                    Err(_) => continue,
                }
            }
            let in_time = self.word.wait(seen, deadline);
            let now = self.word.load();
            if generation(now) != generation(start) {
                return true; // set() ran since we began (generation moved)
            }
            if !in_time {
                return now & FLAG != 0;
            }
        }
    }

    /// Watches the word for [`WATCH`] (or until `deadline`); whether the generation moved
    /// from `start`'s meanwhile.
    #[cfg(not(loom))]
    fn watch(&self, start: u32, deadline: Option<Instant>) -> bool {
        if !several_cpus() {
            return false;
        }
        let began = Instant::now();
        let until = deadline.map_or(began + WATCH, |d| d.min(began + WATCH));
        loop {
            for _ in 0..64 {
                if generation(self.word.load()) != generation(start) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until {
                return false;
            }
        }
    }

    #[cfg(loom)]
    fn watch(&self, _: u32, _: Option<Instant>) -> bool {
        false
    }
}

/// Whether this process may run on more than one CPU (read once).
#[cfg(not(loom))]
fn several_cpus() -> bool {
    static SEVERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEVERAL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}
