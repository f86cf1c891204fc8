//! The state machine of the counting semaphores of `threading` and `multiprocessing`,
//! written once over a [`Futex`]; each crate's `BoundedSemaphore` composes it.
//!
//! One word: the count in bits 1–31 and, in bit 0, `SLEEPERS` — some thread may sleep on
//! the word. `acquire` decrements the count by compare-and-swap when it is positive, else
//! sets `SLEEPERS` and sleeps while the word is unchanged. `release` adds to the count and
//! clears `SLEEPERS` in one atomic step and, if it was set, wakes every sleeper; those
//! that find the count at zero again set the bit and sleep on. Keeping count and flag in
//! one word leaves no window between a sleeper's check and its sleep, and no counter of
//! sleepers that a process killed while it slept could leave wrong: a stale bit costs one
//! wake-up.
//!
//! The count is limited to [`SEMAPHORE_VALUE_MAX`] (2³¹ − 1, CPython's `SEM_VALUE_MAX` on
//! Linux); larger values saturate.

use std::time::Instant;

use super::futex::Futex;
use super::primitive::Ordering;

const SLEEPERS: u32 = 1;
const ONE: u32 = 2;

/// The largest count a semaphore holds (2³¹ − 1); larger values saturate.
pub const SEMAPHORE_VALUE_MAX: usize = (u32::MAX >> 1) as usize;

/// The word of a semaphore holding `value` (saturated at [`SEMAPHORE_VALUE_MAX`]).
pub const fn initial_word(value: usize) -> u32 {
    let value = if value > SEMAPHORE_VALUE_MAX { SEMAPHORE_VALUE_MAX } else { value };
    (value as u32) << 1
}

fn count_of(word: u32) -> usize {
    (word >> 1) as usize
}

/// A semaphore's state machine on the word `F`, which starts at [`initial_word`].
#[derive(Debug)]
pub struct Semaphore<F> {
    word: F,
}

impl<F: Futex> Semaphore<F> {
    /// The semaphore whose state is `word`.
    #[inline]
    pub const fn on(word: F) -> Semaphore<F> {
        Semaphore { word }
    }

    /// Takes one unit if the count is positive, without waiting.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let word = self.word.atomic();
        let mut state = word.load(Ordering::Relaxed);
        while state >= ONE {
            match word.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => state = seen,
            }
        }
        false
    }

    /// Takes one unit, waiting until `deadline` at most (`None`: no deadline); whether it
    /// took one.
    #[inline]
    pub fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        let word = self.word.atomic();
        loop {
            if self.try_acquire() {
                return true;
            }
            let state = word.fetch_or(SLEEPERS, Ordering::Acquire) | SLEEPERS;
            if state >= ONE {
                continue; // released meanwhile
            }
            if !self.word.wait(state, deadline) {
                return self.try_acquire();
            }
        }
    }

    /// Adds `n` units (saturating at [`SEMAPHORE_VALUE_MAX`]) and wakes the sleepers.
    #[inline]
    pub fn release(&self, n: usize) {
        let word = self.word.atomic();
        let add = n.min(SEMAPHORE_VALUE_MAX);
        let mut state = word.load(Ordering::Relaxed);
        loop {
            let next = if count_of(state) + add > SEMAPHORE_VALUE_MAX {
                (SEMAPHORE_VALUE_MAX as u32) << 1
            } else {
                (state & !SLEEPERS) + ((add as u32) << 1)
            };
            match word.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => state = seen,
            }
        }
        self.wake_if_sleepers(state);
    }

    /// Adds `n` units unless the count would pass `bound`; whether it did
    /// (`BoundedSemaphore`'s release).
    #[inline]
    pub fn release_bounded(&self, n: usize, bound: usize) -> bool {
        let old = self.word.atomic().fetch_update(Ordering::Release, Ordering::Relaxed, |w| {
            count_of(w).checked_add(n).filter(|&sum| sum <= bound).map(|sum| (sum as u32) << 1)
        });
        match old {
            Ok(old) => {
                self.wake_if_sleepers(old);
                true
            }
            Err(_) => false,
        }
    }

    fn wake_if_sleepers(&self, old: u32) {
        if old & SLEEPERS != 0 {
            self.word.wake_all();
        }
    }

    /// The count.
    #[inline]
    pub fn value(&self) -> usize {
        count_of(self.word.load())
    }
}
