//! A 32-bit word that threads can sleep on until it changes: a thin layer over the Linux
//! futex (through the `linux-futex` crate) with deadlines.
//!
//! Thread lifecycles, timers and every synchronisation primitive are built on it rather
//! than on `Mutex` + `Condvar`, because it holds no user-space lock: after `fork()` the
//! child can read and reset it whatever the other (vanished) threads were doing, and the
//! same state machines can later run on a word in shared memory, across processes.
//!
//! Under `--cfg loom` the word is emulated with loom's mutex and condition variable (the
//! value is checked under the mutex before sleeping, wakers notify under it), which gives
//! the futex's "sleep only if the value is still X" guarantee to the model checker.

use std::time::Instant;

#[cfg(not(loom))]
use linux_futex::{Futex, Private};

use crate::primitive::{AtomicU32, Ordering};

/// The loom emulation's futex queue: tickets `woken_below..next_ticket` sleep.
#[cfg(loom)]
#[derive(Default)]
struct Queue {
    next_ticket: u64,
    woken_below: u64,
}

/// A futex word with deadline-aware waiting.
pub(crate) struct WaitWord {
    #[cfg(not(loom))]
    futex: Futex<Private>,
    #[cfg(loom)]
    value: AtomicU32,
    /// The emulated futex queue, and the condition variable its sleepers wait on.
    #[cfg(loom)]
    sleepers: (loom::sync::Mutex<Queue>, loom::sync::Condvar),
}

impl WaitWord {
    #[cfg(not(loom))]
    pub(crate) const fn new(value: u32) -> WaitWord {
        WaitWord { futex: Futex::new(value) }
    }

    #[cfg(loom)]
    pub(crate) fn new(value: u32) -> WaitWord {
        WaitWord {
            value: AtomicU32::new(value),
            sleepers: (loom::sync::Mutex::new(Queue::default()), loom::sync::Condvar::new()),
        }
    }

    /// The atomic value itself.
    pub(crate) fn atomic(&self) -> &AtomicU32 {
        #[cfg(not(loom))]
        {
            &self.futex.value
        }
        #[cfg(loom)]
        {
            &self.value
        }
    }

    pub(crate) fn load(&self) -> u32 {
        self.atomic().load(Ordering::Acquire)
    }

    /// Sleeps while the word equals `expected`, until woken, a spurious wake-up or
    /// `deadline` (`None`: no deadline). Returns `false` only when the deadline has passed.
    /// Callers loop, re-checking their condition.
    pub(crate) fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool {
        #[cfg(not(loom))]
        match deadline {
            None => {
                let _ = self.futex.wait(expected);
                true
            }
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                let _ = self.futex.wait_for(expected, deadline - now);
                true
            }
        }
        #[cfg(loom)]
        {
            // The model has no clock: a deadline never passes (models use untimed waits).
            let _ = deadline;
            let mut queue = self.sleepers.0.lock().unwrap();
            // A read-modify-write reads the latest value, as the kernel's check does.
            if self.value.fetch_or(0, Ordering::SeqCst) == expected {
                // Tickets make the queue FIFO and immune to spurious condvar wake-ups:
                // a sleeper returns only once a `wake` counted its ticket in.
                let ticket = queue.next_ticket;
                queue.next_ticket += 1;
                while queue.woken_below <= ticket {
                    queue = self.sleepers.1.wait(queue).unwrap();
                }
            }
            true
        }
    }

    /// Wakes up to `n` threads sleeping on the word; returns how many were woken.
    pub(crate) fn wake(&self, n: u32) -> u32 {
        #[cfg(not(loom))]
        {
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            u32::try_from(self.futex.wake(n)).unwrap_or(0)
        }
        #[cfg(loom)]
        {
            let mut queue = self.sleepers.0.lock().unwrap();
            let sleeping = queue.next_ticket - queue.woken_below;
            let woken = u64::from(n).min(sleeping);
            queue.woken_below += woken;
            if woken > 0 {
                self.sleepers.1.notify_all();
            }
            woken as u32
        }
    }

    /// Wakes every thread sleeping on the word.
    pub(crate) fn wake_all(&self) {
        self.wake(u32::MAX);
    }
}

/// Turns a relative timeout into a deadline; `None` when it is too far away to represent,
/// which callers treat as "no deadline" (CPython clamps such timeouts to `TIMEOUT_MAX`).
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    let timeout = timeout.min(crate::TIMEOUT_MAX);
    Instant::now().checked_add(timeout)
}
