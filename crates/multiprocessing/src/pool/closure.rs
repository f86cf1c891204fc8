//! Closures as pool tasks, for pools of forked workers.
//!
//! A closure's code and captures live in the parent's memory, so only a worker forked
//! *after* the closure existed can run it. Each closure given to a pool is registered
//! here under a number; a worker remembers the registry's *generation* (the next number)
//! at its fork, and can run the closures numbered below it. When a closure task reaches
//! the front of the queue and no worker is young enough, the handler retires idle old
//! workers and forks new ones (see `handler.rs`) — about a millisecond per worker, once
//! per closure.
//!
//! The registry holds closures weakly: the chunks that use a closure keep it alive, so
//! a worker forked while any of them is pending finds it (its memory is a copy of the
//! parent's, chunks included). The registry's lock is held across every fork (order 50
//! of `pyconc_core::fork`), so a child never finds it locked, and kept as it is there.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use pyconc_core::fork::{ForkMutex, ForkMutexGuard};

/// A shareable, type-erased closure.
pub(crate) type Shared = Arc<dyn Any + Send + Sync>;

/// The registered closures.
pub(crate) struct Registry {
    next: u64,
    closures: BTreeMap<u64, Weak<dyn Any + Send + Sync>>,
}

static REGISTRY: ForkMutex<Registry> =
    ForkMutex::new(Registry { next: 0, closures: BTreeMap::new() }, 50, |_| {});

/// The registry, locked.
fn registry() -> ForkMutexGuard<Registry> {
    REGISTRY.lock()
}

/// The number the next closure will get: a worker forked now can run every closure
/// numbered below it.
pub(crate) fn generation() -> u64 {
    registry().next
}

/// Registers `closure`; returns its number and the strong reference that keeps it alive.
pub(crate) fn register<F: Any + Send + Sync>(closure: F) -> (u64, Shared) {
    let closure: Shared = Arc::new(closure);
    let mut registry = registry();
    registry.closures.retain(|_, weak| weak.strong_count() > 0);
    let id = registry.next;
    registry.next += 1;
    registry.closures.insert(id, Arc::downgrade(&closure));
    (id, closure)
}

/// The closure numbered `id`, if this process has it and it is an `F`.
pub(crate) fn lookup<F: Any + Send + Sync>(id: u64) -> Option<Arc<F>> {
    let closure = registry().closures.get(&id)?.upgrade()?;
    closure.downcast::<F>().ok()
}
