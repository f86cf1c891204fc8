//! A 32-bit word that threads — or processes — can sleep on until it changes: the
//! [`Futex`] trait, over the Linux futex (through the `linux-futex` crate), with
//! deadlines. Two words implement it:
//!
//! - [`WaitWord`], a private futex owned by a value: `threading`'s thread lifecycles,
//!   timers and primitives;
//! - [`SharedWord`], a process-shared futex viewed on a word of shared memory:
//!   `multiprocessing`'s primitives.
//!
//! The primitives of [`sync`](super) are written once over the trait. They are built on
//! a futex rather than `Mutex` + `Condvar` because it holds no user-space lock: after
//! `fork()` the child can read and reset it whatever the other (vanished) threads were
//! doing, and the same state machine runs on a word in shared memory, across processes.
//!
//! Under `--cfg loom` the private word is emulated with loom's mutex and condition
//! variable (the value is checked under the mutex before sleeping, wakers notify under
//! it), which gives the futex's "sleep only if the value is still X" guarantee to the
//! model checker.

use std::time::{Duration, Instant};

#[cfg(not(loom))]
use linux_futex::{Futex as LinuxFutex, Private};

use super::primitive::{AtomicU32, Ordering};

/// A word to sleep on until it changes (a futex).
pub trait Futex {
    /// The atomic value itself.
    fn atomic(&self) -> &AtomicU32;

    /// Sleeps while the word equals `expected`, until woken, a spurious wake-up or
    /// `deadline` (`None`: no deadline). Returns `false` only when the deadline has
    /// passed. Callers loop, re-checking their condition.
    fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool;

    /// Wakes up to `n` sleepers; returns how many were woken.
    fn wake(&self, n: u32) -> u32;

    /// The value (`Acquire`).
    #[inline]
    fn load(&self) -> u32 {
        self.atomic().load(Ordering::Acquire)
    }

    /// Wakes every sleeper.
    #[inline]
    fn wake_all(&self) {
        self.wake(u32::MAX);
    }
}

impl<F: Futex + ?Sized> Futex for &F {
    #[inline]
    fn atomic(&self) -> &AtomicU32 {
        (**self).atomic()
    }
    fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool {
        (**self).wait(expected, deadline)
    }
    #[inline]
    fn wake(&self, n: u32) -> u32 {
        (**self).wake(n)
    }
}

/// The loom emulation's futex queue: tickets `woken_below..next_ticket` sleep.
#[cfg(loom)]
#[derive(Default)]
struct Queue {
    next_ticket: u64,
    woken_below: u64,
}

/// A private futex word (threads of one process), with deadline-aware waiting.
pub struct WaitWord {
    #[cfg(not(loom))]
    futex: LinuxFutex<Private>,
    #[cfg(loom)]
    value: AtomicU32,
    /// The emulated futex queue, and the condition variable its sleepers wait on.
    #[cfg(loom)]
    sleepers: (loom::sync::Mutex<Queue>, loom::sync::Condvar),
}

impl WaitWord {
    /// A word holding `value`.
    #[cfg(not(loom))]
    pub const fn new(value: u32) -> WaitWord {
        WaitWord { futex: LinuxFutex::new(value) }
    }

    /// A word holding `value`.
    #[cfg(loom)]
    pub fn new(value: u32) -> WaitWord {
        WaitWord {
            value: AtomicU32::new(value),
            sleepers: (loom::sync::Mutex::new(Queue::default()), loom::sync::Condvar::new()),
        }
    }
}

impl std::fmt::Debug for WaitWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WaitWord").field(&self.load()).finish()
    }
}

impl Futex for WaitWord {
    /// The atomic value itself.
    #[inline]
    fn atomic(&self) -> &AtomicU32 {
        #[cfg(not(loom))]
        {
            &self.futex.value
        }
        #[cfg(loom)]
        {
            &self.value
        }
    }

    /// Sleeps while the word equals `expected`, until woken, a spurious wake-up or
    /// `deadline` (`None`: no deadline). Returns `false` only when the deadline has passed.
    /// Callers loop, re-checking their condition.
    fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool {
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
    #[inline]
    fn wake(&self, n: u32) -> u32 {
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
}

/// A process-shared futex word: a word of shared memory that threads of several
/// processes sleep on (`FUTEX_WAIT` without `FUTEX_PRIVATE_FLAG`).
#[cfg(not(loom))]
#[repr(transparent)]
pub struct SharedWord(LinuxFutex<linux_futex::Shared>);

#[cfg(not(loom))]
impl SharedWord {
    /// The word at `atomic`, to sleep on across processes.
    pub fn from_atomic(atomic: &std::sync::atomic::AtomicU32) -> &SharedWord {
        // SAFETY: `SharedWord` is `repr(transparent)` over `Futex<Shared>`, which is
        // `repr(transparent)` over `AtomicU32`: the same layout, and every value valid.
        unsafe { &*(atomic as *const std::sync::atomic::AtomicU32).cast::<SharedWord>() }
    }
}

#[cfg(not(loom))]
impl std::fmt::Debug for SharedWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedWord").field(&self.load()).finish()
    }
}

#[cfg(not(loom))]
impl Futex for SharedWord {
    #[inline]
    fn atomic(&self) -> &AtomicU32 {
        &self.0.value
    }

    fn wait(&self, expected: u32, deadline: Option<Instant>) -> bool {
        match deadline {
            None => {
                let _ = self.0.wait(expected);
                true
            }
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                let _ = self.0.wait_for(expected, left);
                true
            }
        }
    }

    #[inline]
    fn wake(&self, n: u32) -> u32 {
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        u32::try_from(self.0.wake(n)).unwrap_or(0)
    }
}

/// The longest timeout the blocking functions accept; longer ones are clamped to it.
///
/// Python: `threading.TIMEOUT_MAX` (`9223372036.0` seconds on 64-bit Linux).
pub const TIMEOUT_MAX: Duration = Duration::from_secs(9_223_372_036);

/// Turns a relative timeout into a deadline; `None` when it is too far away to represent,
/// which callers treat as "no deadline" (CPython clamps such timeouts to `TIMEOUT_MAX`).
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout.min(TIMEOUT_MAX))
}
