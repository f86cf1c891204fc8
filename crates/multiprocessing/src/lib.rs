//! Python's `multiprocessing` module in Rust.
//!
//! `use multiprocessing::Process;` is `from multiprocessing import Process`: a target run in
//! a child process, with the same API as `threading::Thread` — but the child has its own
//! memory, so it runs truly in parallel and cannot corrupt the parent's data; what it
//! shares must be sent: over a [`Connection`] or a [`Queue`], or kept in shared memory
//! ([`Value`], [`Array`]) guarded by cross-process locks.
//!
//! | Python | Rust |
//! |---|---|
//! | `multiprocessing.Process(target=f)` | [`Process::new`] (closure, fork) / [`Process::call`] (`fn(A)`, every start method) |
//! | `Process(name=, daemon=)`, `get_context(m).Process` | [`Process::builder`] |
//! | `p.start()`, `p.join([timeout])`, `p.is_alive()` | [`Process::start`], [`Process::join`] / [`Process::join_timeout`], [`Process::is_alive`] |
//! | `p.pid`, `p.exitcode`, `p.sentinel` | [`Process::pid`], [`Process::exitcode`], [`Process::sentinel`] |
//! | `p.terminate()`, `p.kill()`, `p.close()` | [`Process::terminate`], [`Process::kill`], [`Process::close`] |
//! | `current_process()`, `parent_process()`, `active_children()` | [`current_process`], [`parent_process`], [`active_children`] |
//! | `cpu_count()` | [`cpu_count`] |
//! | `set_start_method`, `get_start_method`, `get_all_start_methods` | [`set_start_method`], [`get_start_method`], [`get_all_start_methods`] |
//! | `freeze_support()` | [`init`] (required first line of `main` for spawn/forkserver) |
//! | `Pipe(duplex)`, `Connection` | [`pipe`], [`Connection`] |
//! | `connection.Listener`, `connection.Client`, `connection.wait` | [`connection::Listener`], [`connection::client`], [`connection::wait`] |
//! | `Queue`, `SimpleQueue`, `JoinableQueue` | [`Queue`], [`SimpleQueue`], [`JoinableQueue`] |
//! | `Value`, `Array` (`RawValue`, `RawArray`: `lock=False`) | [`Value`], [`Array`] (`new_raw`) |
//! | `Pool`, `Pool(initializer=, maxtasksperchild=, context=)` | [`Pool::new`], [`Pool::builder`] |
//! | `pool.map`, `imap`, `imap_unordered`, `apply`, `apply_async`, `map_async` | [`Pool::map`] (`map_chunked`), [`Pool::imap`], [`Pool::imap_unordered`], [`Pool::apply`], [`Pool::apply_async`], [`Pool::map_async`] |
//! | `AsyncResult`, `IMapIterator` | [`AsyncResult`], [`IMapIterator`] |
//! | `multiprocessing.pool.ThreadPool` | [`ThreadPool`] (the `Pool` methods over threads; [`ThreadPool::builder`]) |
//! | `multiprocessing.dummy` | [`dummy`] |
//! | `multiprocessing.managers.SyncManager`, `Manager()` | [`managers::Manager`] |
//! | `shared_memory.SharedMemory`, `ShareableList`, `managers.SharedMemoryManager` | [`shared_memory::SharedMemory`], [`shared_memory::ShareableList`], [`shared_memory::SharedMemoryManager`] |
//! | `conn.send(obj)`/`conn.recv()` with a python3 peer (pickles) | [`Connection::send_pickle`], [`Connection::recv_pickle`] |
//! | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` | the same names: cross-process, robust locks |
//!
//! # Sharing objects with a child
//!
//! Connections, queues, shared values and the cross-process primitives are `Send + Sync`.
//! A fork child gets them by capture (move a clone into its closure); a spawn or forkserver
//! child gets them inside [`Process::call`]'s arguments, serialized, their fds travelling
//! beside the arguments (CPython's reduction). Serialized anywhere else, they refuse with
//! CPython's "`... objects should only be shared between processes through inheritance`".
//!
//! # Start methods
//!
//! [`StartMethod::Fork`] (the default, as CPython 3.11 on Linux) copies the parent;
//! [`StartMethod::Spawn`] runs the program again; [`StartMethod::ForkServer`] asks a
//! single-threaded server process to fork. Spawn and forkserver need
//! [`init()`] as the first line of `main` — see [`init`] for why; test binaries use
//! [`init_before_main!`].
//!
//! # At exit
//!
//! When `main` returns or `std::process::exit` is called, the program first joins its
//! non-daemon threads (the `threading` crate), then terminates its daemonic children and
//! joins the others — CPython's order. Beyond CPython, daemonic children also die when the
//! parent dies abruptly (SIGKILL, a crash): the kernel sends them SIGKILL
//! (`PR_SET_PDEATHSIG`). Every child is reaped; none is left a zombie.
//!
//! # Security
//!
//! What this crate trusts, and what it does not:
//!
//! - **`authkey = None` trusts every peer that can connect.** A [`connection::Listener`]
//!   without a key hands out the connection of anyone who reaches its address, and what
//!   they send is deserialized when you call `recv` — CPython's rule too. Give a key
//!   (CPython's HMAC handshake) to any listener others can reach, TCP above all.
//! - **Abstract sockets have no permission check**: any process in the same network
//!   namespace can connect to an [`connection::Address::Abstract`] name. Use a key, or a
//!   Unix socket path in a directory only you can enter.
//! - **Deserializing is bounded, not free.** A frame longer than
//!   [`Connection::set_max_frame`] (64 MiB by default) is refused before anything is
//!   allocated, but a deep recursive type (a tree, nested enums) received from an
//!   untrusted peer can still exhaust the stack while it is decoded. With untrusted peers,
//!   lower the frame limit and use flat message types.
//! - **Unauthenticated peers are bounded.** A listener authenticates at most
//!   [`connection::Listener::set_max_handshakes`] peers at once, from `accept`'s own poll
//!   loop (no thread per peer), each within a deadline, and backs off when the process is
//!   out of fds.
//! - **The spawn marker is checked.** A spawned child finds its role in the environment
//!   (`PYCONC_MULTIPROCESSING_FORK`) and its payload on an inherited socket. [`init`]
//!   ignores the marker in a set-user-ID or file-capability program (secure-execution
//!   mode), and unless its fd is a Unix socket made by the parent process under the same
//!   user; anything else runs `main` as a normal program — except a marker for a
//!   daemonic child whose parent is no longer the one it names, which exits at once (the
//!   parent died before the child could arm its parent-death signal).
//! - **Shared memory is read defensively.** Lengths and positions read from a ring or a
//!   lock page are clamped before any copy; a process that shares the memory can garble
//!   its messages, not make this one read or write outside the mapping.
//! - **Forked pool workers are confined.** Every forked child lets go of the fork pools'
//!   channels it did not get for itself — a worker of every other worker's, a user's
//!   forked process of them all, a worker's child of the worker's own — before any of
//!   its code runs. So a pool can reuse a channel's shared memory once its worker is
//!   gone: no other process can reach it then.
//! - **Pickles carry plain data only.** [`Connection::recv_pickle`] refuses a pickle that
//!   names a Python global or asks for a call or an object's construction before decoding
//!   it, and one whose shared references would expand it more than 8-fold: a python3
//!   peer cannot make this side run code or allocate without bound.
//! - **Shared-memory names are checked** before the resource tracker acts on them (one
//!   `/`, no other, no NUL, at most 255 bytes); a `ShareableList` read from a block is
//!   validated (item count, offsets, formats, codes) before use.
//! - **fds are close-on-exec** unless deliberately passed to a child, so programs run
//!   with `std::process::Command` inherit none of them.
//!
//! # Examples
//!
//! ```
//! use multiprocessing::Process;
//!
//! let p = Process::new(|| println!("hello from {}", multiprocessing::current_process().name()));
//! p.start()?;
//! p.join()?;
//! assert_eq!(p.exitcode(), Some(0));
//! # Ok::<(), multiprocessing::Error>(())
//! ```

// The modules from the bottom layer up: each names only those above this line's
// (checked by `crates/pyconc/tests/layers.rs`).
mod sys;
mod error;
mod reduction;
mod codec;
mod repr;
mod heap;
mod synchronize;
pub mod connection;
mod shared;
mod queue;
mod start_method;
pub mod util;
mod resource_tracker;
mod process;
mod pool;
pub mod dummy;
pub mod managers;
pub mod shared_memory;
mod context;
mod init;

pub use connection::{Connection, pipe};
pub use context::{Context, get_context};
pub use error::Error;
pub use error::RemotePanic;
pub use init::init;
pub use managers::Manager;
pub use pool::{
    AsyncResult, Callbacks, IMapIterator, Pool, PoolBuilder, PoolOf, PoolStats, Processes, Runs,
    StarFn, ThreadPool, ThreadPoolBuilder, Threads, Workers,
};
pub use process::{Builder, Process, active_children, current_process, parent_process};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
/// serde, which [`shared_type!`] proxies implement (re-exported for the macro).
pub use serde;
pub use shared::{Array, Value};
pub use start_method::{
    StartMethod, get_all_start_methods, get_start_method, get_start_method_if_set,
    set_start_method, set_start_method_force,
};
pub use synchronize::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock,
    RLockGuard, SEM_VALUE_MAX, SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreGuard,
};
pub use util::{get_logger, log_to_stderr};

/// The number of CPUs this process may use: its CPU affinity mask and cgroup quota
/// (`std::thread::available_parallelism`). At least 1.
///
/// Python: `multiprocessing.cpu_count()`. CPython returns `os.cpu_count()`, every CPU of the
/// system; a pool sized by it oversubscribes a process pinned to fewer CPUs (`taskset`,
/// containers), so this counts the usable ones, like Python 3.13's `os.process_cpu_count()`.
///
/// # Examples
///
/// ```
/// assert!(multiprocessing::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    /// The contract's Send/Sync promises (API.md).
    #[test]
    fn public_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
        send_sync::<crate::Process>();
        send_sync::<crate::Builder>();
        send_sync::<crate::StartMethod>();
        fn send_sync_error<T: Send + Sync + std::error::Error>() {}
        send_sync_error::<crate::Error>();
    }
}
