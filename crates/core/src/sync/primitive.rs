//! The atomics and locks the synchronisation primitives are built from: `std`'s in normal
//! builds, `loom`'s under `--cfg loom`, so that loom can explore every interleaving of the
//! primitives' state machines (`threading`'s `tests/loom.rs`).

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Mutex, MutexGuard};

/// Locks a primitive's internal mutex; its critical sections never panic, so poisoning
/// carries no meaning here.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        super::lock(mutex)
    }
    #[cfg(loom)]
    {
        mutex.lock().unwrap()
    }
}
