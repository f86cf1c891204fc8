//! Locks, semaphores, events, conditions and barriers that work across processes:
//! CPython's `multiprocessing.synchronize`, with the methods and shapes of the `threading`
//! crate's primitives.
//!
//! Each object keeps its state in a page of [shared memory](crate::heap) — atomics that
//! threads of any process sleep on with process-shared futexes — so it works between
//! threads of one process as well as between processes. Hand one to a child by moving it
//! into a fork child's closure (or a clone: clones share the state), or in
//! `Process::call`'s arguments (its shared memory travels as an fd). Build order as
//! CPython's: Lock → RLock → Semaphore → Event → Condition → Barrier.
//!
//! # Robust locks (beyond CPython)
//!
//! A `Lock`/`RLock` word holds the holder's pid (`Lock`) or thread id (`RLock`), and the
//! page beside it the holder's start time, so that a pid or tid the kernel hands out again
//! is not mistaken for the holder. A waiter checks every 100 ms whether the holder still
//! runs; if it died holding the lock (killed, crashed), the waiter takes the lock over —
//! the POSIX `EOWNERDEAD` idea — and [`Lock::owner_died`] tells the new holder that the
//! data it protects may be half-updated. CPython's locks stay locked forever there. A
//! check that cannot tell (no `/proc`, out of fds) counts the holder as alive. A `Lock`
//! is not owned (CPython): one left held by a process that *exited normally* stays held,
//! for another process to release; only a holder that died without running its exit path
//! loses it.

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::Condition;
pub use condition::ConditionGuard;
pub use event::Event;
pub(crate) use lock::{Acquired, RobustWord};
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{
    BoundedSemaphore, SEM_VALUE_MAX, SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreGuard,
};

pub(crate) use pyconc_core::sync::deadline_after;

/// Implements `Serialize`/`Deserialize` for a type whose shared state is the `SharedMemory`
/// fields listed, all in an `Arc`: it travels to a spawn or forkserver child as fds; outside
/// a process start it refuses with CPython's
/// `NAME objects should only be shared between processes through inheritance`.
macro_rules! shared_serde {
    ($type:ident { $($field:ident),+ } $(, $extra:ident : $extra_ty:ty)*) => {
        impl $type {
            const SERDE_FIELDS: usize = [$(stringify!($field)),+ $(, stringify!($extra))*].len();
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeTuple;
                use $crate::heap::SendMem as Mem;
                let mut tuple = serializer.serialize_tuple($type::SERDE_FIELDS)?;
                $(tuple.serialize_element(&Mem(&self.$field, stringify!($type)))?;)+
                $(tuple.serialize_element(&self.$extra)?;)*
                tuple.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(stringify!($type))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<$type, A::Error> {
                        let missing = || serde::de::Error::custom(concat!("a truncated ", stringify!($type)));
                        $(let $field: $crate::heap::SharedMemory = seq.next_element()?.ok_or_else(missing)?;)+
                        $(let $extra: $extra_ty = seq.next_element()?.ok_or_else(missing)?;)*
                        Ok($type::from_shared($(std::sync::Arc::new($field)),+ $(, $extra)*))
                    }
                }
                deserializer.deserialize_tuple($type::SERDE_FIELDS, Visitor)
            }
        }
    };
}
pub(crate) use shared_serde;
