//! Futexes on words of shared memory (process-shared, unlike std's private ones).

use std::time::Instant;

#[allow(unused_imports, reason = "each area uses some of them")]
use super::*;

/// Sleeps while the shared word at `word` holds `expected`, until woken or `deadline`
/// (a process-shared futex: the word may be mapped at other addresses in other
/// processes). Returns false on timeout.
pub(crate) fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
) -> bool {
    use linux_futex::{Futex, Shared, TimedWaitError};
    // SAFETY: `Futex<Shared>` is `repr(transparent)` over `AtomicU32`.
    let futex = unsafe { &*(word as *const std::sync::atomic::AtomicU32).cast::<Futex<Shared>>() };
    match deadline {
        None => {
            let _ = futex.wait(expected);
            true
        }
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            !matches!(futex.wait_for(expected, left), Err(TimedWaitError::TimedOut))
        }
    }
}

/// Wakes up to `n` sleepers of a shared futex word.
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32, n: i32) {
    use linux_futex::{Futex, Shared};
    // SAFETY: `Futex<Shared>` is `repr(transparent)` over `AtomicU32`.
    let futex = unsafe { &*(word as *const std::sync::atomic::AtomicU32).cast::<Futex<Shared>>() };
    futex.wake(n);
}
