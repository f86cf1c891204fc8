//! A 32-bit word that threads can sleep on until it changes: a thin layer over the Linux
//! futex (through the `linux-futex` crate) with deadlines.
//!
//! Thread lifecycles and timers are built on it rather than on `Mutex` + `Condvar` because
//! it holds no user-space lock: after `fork()` the child can read and reset it whatever the
//! other (vanished) threads were doing, which a mutex does not allow.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use linux_futex::{Futex, Private};

/// A futex word with deadline-aware waiting.
pub(crate) struct WaitWord(Futex<Private>);

impl WaitWord {
    pub(crate) const fn new(value: u32) -> WaitWord {
        WaitWord(Futex::new(value))
    }

    /// The atomic value itself.
    pub(crate) fn atomic(&self) -> &AtomicU32 {
        &self.0.value
    }

    pub(crate) fn load(&self) -> u32 {
        self.0.value.load(Ordering::Acquire)
    }

    /// Sleeps while the word equals `expected`, until woken, a spurious wake-up or
    /// `deadline` (`None`: no deadline). Returns `false` only when the deadline has passed.
    /// Callers loop, re-checking their condition.
    pub(crate) fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool {
        match deadline {
            None => {
                let _ = self.0.wait(expected);
                true
            }
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                let _ = self.0.wait_for(expected, deadline - now);
                true
            }
        }
    }

    /// Wakes every thread sleeping on the word.
    pub(crate) fn wake_all(&self) {
        self.0.wake(i32::MAX);
    }
}

/// Turns a relative timeout into a deadline; `None` when it is too far away to represent,
/// which callers treat as "no deadline" (CPython clamps such timeouts to `TIMEOUT_MAX`).
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    let timeout = timeout.min(crate::TIMEOUT_MAX);
    Instant::now().checked_add(timeout)
}
