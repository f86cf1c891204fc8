//! `multiprocessing::dummy`: CPython's `multiprocessing.dummy` — the API of
//! `multiprocessing` over threads of this process, so that code written for processes
//! runs on threads by changing one `use` line.
//!
//! | Python (`multiprocessing.dummy`) | Rust |
//! |---|---|
//! | `Pool(processes, initializer, initargs)` | [`Pool`] ([`ThreadPool`](crate::ThreadPool)) |
//! | `Process` (`DummyProcess`), `current_process()`, `active_children()` | [`Process`], [`current_process`], [`active_children`] |
//! | `Queue`, `JoinableQueue` (`queue.Queue`) | [`Queue`], [`JoinableQueue`] |
//! | `Pipe(duplex)` | [`pipe`] → two [`Connection`]s |
//! | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Condition`, `Event`, `Barrier` | `threading`'s, re-exported |
//! | `Value(typecode, value)`, `Array(typecode, sequence)` | [`Value`], [`Array`] |
//! | `freeze_support()` | [`freeze_support`] |
//!
//! Not here: `Manager()`, `Namespace`, `dict`, `list` — CPython's dummy hands back plain
//! Python objects, whose Rust counterparts are an `Arc<Mutex<HashMap>>` or `Vec`.
//!
//! # Examples
//!
//! ```
//! // use multiprocessing::{Pool, Queue}; became:
//! use multiprocessing::dummy::{Pool, Queue};
//!
//! let pool = Pool::new(Some(2))?;
//! let results = Queue::new(0);
//! let sink = results.clone();
//! pool.map(move |x: u32| sink.put(x * x).unwrap(), 1..=3)?;
//! let mut squares: Vec<u32> = (0..3).map(|_| results.get().unwrap()).collect();
//! squares.sort();
//! assert_eq!(squares, [1, 4, 9]);
//! # Ok::<(), multiprocessing::Error>(())
//! ```

mod connection;
mod process;
mod queue;
mod shared;

pub use connection::{Connection, pipe};
pub use process::{Builder, Process, active_children, current_process};
pub use queue::{JoinableQueue, Queue};
pub use shared::{Array, Value};
pub use threading::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};

/// A pool of worker threads: `multiprocessing.dummy.Pool` is `ThreadPool`.
///
/// # Examples
///
/// ```
/// let pool = multiprocessing::dummy::Pool::new(Some(2))?;
/// assert_eq!(pool.map(|x: i32| x * 2, [1, 2])?, [2, 4]);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub type Pool = crate::ThreadPool;

/// Does nothing, as CPython's (it matters only to frozen Windows executables).
///
/// # Examples
///
/// ```
/// multiprocessing::dummy::freeze_support();
/// ```
pub fn freeze_support() {}
