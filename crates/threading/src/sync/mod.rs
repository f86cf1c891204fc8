//! The synchronisation primitives of Python's `threading`, in CPython's build order:
//! [`Lock`] → [`RLock`] → [`Condition`] → [`Semaphore`]/[`BoundedSemaphore`]/[`Event`] →
//! [`Barrier`].
//!
//! # Design: state machines over a futex word
//!
//! `Lock`, `Semaphore` and `Event` are each a small state machine over atomics and one
//! futex word (`pyconc_core::sync::WaitWord`): no heap, no pointers, no user-space lock to get stuck
//! after `fork()`. `RLock` adds an owner and a count to a `Lock`; `Condition` and `Barrier`
//! are ports of CPython's Python code over them. The same state machines can run on a
//! word in shared memory, with the kernel's shared futexes — which is how the
//! `multiprocessing` crate's cross-process versions are meant to reuse them; `Condition`'s
//! waiter queue is on the heap and will need CPython's semaphore-based design there.
//!
//! Every primitive is `Send + Sync` (share it with `Arc` or a `static`), `Debug` with
//! CPython's repr, and `Default`.

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{FAIR_INTERVAL, Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreGuard};
