//! Synchronisation shared by both crates.
//!
//! [`lock`], [`wait`] and [`wait_timeout`]: the one place that turns a poisoned `Mutex`
//! into its guard. The library's internal critical sections keep their data valid at every
//! step (a panic inside one leaves nothing half-written that the next user could trip
//! on), so poisoning carries no meaning for them; ignoring it keeps one panicking thread
//! from turning every later call of the process into a panic too.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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
