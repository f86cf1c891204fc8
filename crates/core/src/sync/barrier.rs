//! The barrier state machine of both crates: `threading::Barrier` and
//! `multiprocessing::Barrier` (CPython, too, has one algorithm for both: its
//! `multiprocessing.Barrier` is `threading.Barrier` over shared state).
//!
//! Words, changed under a lock except where noted:
//!
//! | word | meaning |
//! |---|---|
//! | count | how many wait in the current generation |
//! | generation | the cycle number; waiters sleep on it (a [`Futex`]), and it advances when a cycle ends |
//! | broken | 1 while the barrier is broken (a timeout, `abort`, a panicking action) |
//! | outcomes | a ring of 32 bits: bit `g % 32` set when generation `g` ended by breaking rather than by filling, so that a waiter released by `reset` or `abort` knows to fail |
//!
//! A waiter reads the outcome of its generation right after it sees the generation
//! advance; the ring would mislead it only if 32 more generations ended before it ran
//! again, which needs at least 32 × `parties` arrivals from other parties meanwhile.
//!
//! CPython's `threading.Barrier` has a draining state in which new arrivals wait for the
//! previous cycle to empty; here generations keep the cycles apart instead, so a new
//! arrival never waits for a slow leaver. CPython's `BarrierTests` run on both crates'
//! barriers unchanged.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::futex::Futex;
use super::lock::{Owner, RawLock};
use super::primitive::{AtomicU32, Ordering};

/// The lock that guards a barrier's words.
pub trait BarrierLock {
    /// Takes the lock, waiting as long as it takes.
    fn acquire(&self);
    /// Lets it go.
    fn release(&self);
}

impl<F: Futex, O: Owner<Caller = ()>> BarrierLock for RawLock<F, O> {
    #[inline]
    fn acquire(&self) {
        RawLock::acquire(self, (), None);
    }

    #[inline]
    fn release(&self) {
        RawLock::release(self);
    }
}

/// The barrier is broken: Python's `BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

/// A barrier over its words (see the module docs): built on the fly over words the caller
/// keeps (in its own struct, or in shared memory).
#[derive(Debug)]
pub struct RawBarrier<'a, F, L: ?Sized> {
    /// Guards the words.
    pub lock: &'a L,
    /// How many wait in the current generation.
    pub count: &'a AtomicU32,
    /// The generation, which waiters sleep on.
    pub generation: F,
    /// 1 while broken.
    pub broken: &'a AtomicU32,
    /// Which of the last 32 generations ended broken.
    pub outcomes: &'a AtomicU32,
    /// The number of parties; at least 1 (the crates refuse 0 before they get here).
    pub parties: u32,
}

impl<F: Futex, L: BarrierLock + ?Sized> RawBarrier<'_, F, L> {
    /// Waits until `parties` parties wait, or `deadline` passes (which breaks the barrier
    /// for everyone, as in CPython); returns this party's arrival index. The last to
    /// arrive runs `action` first; a panic there breaks the barrier.
    ///
    /// # Errors
    /// [`Broken`] if the barrier is or becomes broken, or is reset while this party waits.
    pub fn wait(
        &self,
        action: Option<&dyn Fn()>,
        deadline: Option<Instant>,
    ) -> Result<u32, Broken> {
        self.lock.acquire();
        if self.broken.load(Ordering::Relaxed) != 0 {
            self.lock.release();
            return Err(Broken);
        }
        let generation = self.generation.load();
        let index = self.count.fetch_add(1, Ordering::Relaxed);
        if index + 1 >= self.parties {
            let outcome = match action {
                Some(action) => catch_unwind(AssertUnwindSafe(action)),
                None => Ok(()),
            };
            let broken = outcome.is_err();
            if broken {
                self.broken.store(1, Ordering::Relaxed);
            }
            self.end_generation(broken);
            self.lock.release();
            return if broken { Err(Broken) } else { Ok(index) };
        }
        self.lock.release();
        loop {
            self.generation.wait(generation, deadline);
            if self.generation.load() != generation {
                let bit = 1 << (generation % 32);
                let broke = self.outcomes.load(Ordering::Acquire) & bit != 0;
                return if broke { Err(Broken) } else { Ok(index) };
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // A timeout breaks the barrier for everyone, as in CPython.
                self.lock.acquire();
                if self.generation.load() == generation {
                    self.broken.store(1, Ordering::Relaxed);
                    self.end_generation(true);
                    self.lock.release();
                    return Err(Broken);
                }
                // The generation ended meanwhile: the next turn reads how.
                self.lock.release();
            }
        }
    }

    /// Ends the current generation (the lock is held): records how, wakes its waiters.
    fn end_generation(&self, broken: bool) {
        let generation = self.generation.load();
        let bit = 1 << (generation % 32);
        if broken {
            self.outcomes.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.outcomes.fetch_and(!bit, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        // A read-modify-write rather than a store, although only the lock's holder writes
        // the word: the loom model's futex stand-in reads the word with read-modify-writes,
        // and under loom 0.7 a plain store here was not seen by the storing thread's own
        // next load while another thread slept on the word (the model then deadlocked).
        self.generation.atomic().fetch_add(1, Ordering::Release);
        self.generation.wake_all();
    }

    /// Returns the barrier to its initial state; parties waiting now get [`Broken`].
    pub fn reset(&self) {
        self.lock.acquire();
        if self.count.load(Ordering::Relaxed) > 0 {
            self.end_generation(true);
        }
        self.broken.store(0, Ordering::Relaxed);
        self.lock.release();
    }

    /// Breaks the barrier: waiting and future waits fail until [`reset`](Self::reset).
    pub fn abort(&self) {
        self.lock.acquire();
        self.broken.store(1, Ordering::Relaxed);
        if self.count.load(Ordering::Relaxed) > 0 {
            self.end_generation(true);
        }
        self.lock.release();
    }

    /// How many parties wait now.
    pub fn n_waiting(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed) != 0
    }
}
