//! The synchronisation core of both crates: the state machines of the primitives written
//! once, generic over the word they sleep on ([`Futex`]: a private [`WaitWord`] for
//! `threading`, a process-shared [`SharedWord`] in shared memory for `multiprocessing`,
//! loom's stand-in under `--cfg loom`), and the poison-ignoring lock helpers.
//!
//! | state machine | serves | generic over |
//! |---|---|---|
//! | [`RawLock`] | both `Lock`s, the pipe rings' locks, the barrier's lock | the word, the [`Owner`]: [`Fair`] (`threading.Lock`), [`Anonymous`], [`Owned`] (`threading.RLock`), `multiprocessing`'s robust start-time slot |
//! | [`RawRLock`] | both `RLock`s | the same |
//! | [`Semaphore`] | both crates' `Semaphore`, and through it `BoundedSemaphore` | the word |
//! | [`Event`] | both `Event`s | the word |
//! | [`RawBarrier`] | both `Barrier`s | the word, the lock |
//!
//! `Condition` is the one primitive written twice, because CPython's two are two
//! algorithms: `threading.Condition` queues a lock per waiter (a FIFO `notify`), while
//! `multiprocessing.Condition` counts sleepers and wakers on semaphores that live in shared
//! memory (a per-waiter lock cannot be handed between processes).
//!
//! [`lock`], [`wait`] and [`wait_timeout`] are the one place that turns a poisoned `Mutex`
//! into its guard. The library's internal critical sections keep their data valid at every
//! step (a panic inside one leaves nothing half-written that the next user could trip
//! on), so poisoning carries no meaning for them; ignoring it keeps one panicking thread
//! from turning every later call of the process into a panic too.

pub mod primitive;
mod futex;
mod lock;
mod rlock;
mod barrier;
mod event;
mod semaphore;

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use barrier::{BarrierLock, Broken, RawBarrier};
pub use event::Event;
#[cfg(not(loom))]
pub use futex::SharedWord;
pub use futex::{Futex, TIMEOUT_MAX, WaitWord, deadline_after};
pub use lock::{
    Acquired, Anonymous, CONTENDED, CurrentThread, FAIR_INTERVAL, Fair, HANDOFF, HOLDER, Owned,
    Owner, RawLock,
};
pub use rlock::{NotOwned, RawRLock};
pub use semaphore::{SEMAPHORE_VALUE_MAX, Semaphore, initial_word};

/// Locks `mutex`, ignoring poisoning.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `condvar.wait(guard)`, ignoring poisoning.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// `condvar.wait_timeout(guard, timeout)`, ignoring poisoning; whether it timed out.
pub fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) =
        condvar.wait_timeout(guard, timeout).unwrap_or_else(PoisonError::into_inner);
    (guard, result.timed_out())
}
