//! Python's `threading` module in Rust.
//!
//! `use threading::Thread;` is `from threading import Thread`: named threads, daemon
//! threads, idents and native ids, `join` with a timeout from any thread, a thread registry
//! (`current_thread`, `main_thread`, `active_count`, `enumerate`), `Timer`, `joinall` and
//! the thread exception hook — with CPython 3.11's behaviour and error messages.
//!
//! Like Python, a program waits for its non-daemon threads when `main` returns (or
//! `std::process::exit` is called), and does not wait for daemon threads; no call is
//! needed for that.
//!
//! | Python                                  | Rust                                          |
//! |-----------------------------------------|-----------------------------------------------|
//! | `Thread(target=f)`                      | [`Thread::new(f)`](Thread::new)               |
//! | `Thread(target=f, name="n", daemon=True)` | [`Thread::builder()`]`.name("n").daemon(true).target(f)` |
//! | `class C(Thread): def run(self)`        | `impl` [`Runnable`] `for C`                   |
//! | `t.start()`, `t.join()`, `t.join(5)`    | [`Thread::start`], [`Thread::join`], [`Thread::join_timeout`] |
//! | `t.is_alive()`, `t.name`, `t.daemon`    | [`Thread::is_alive`], [`Thread::name`], [`Thread::daemon`] |
//! | `t.ident`, `t.native_id`                | [`Thread::ident`], [`Thread::native_id`]      |
//! | `Timer(5, f)`, `.cancel()`              | [`Timer::new`], [`Timer::cancel`]             |
//! | `current_thread()`, `main_thread()`     | [`current_thread`], [`main_thread`]           |
//! | `active_count()`, `enumerate()`         | [`active_count`], [`enumerate`]               |
//! | `get_ident()`, `get_native_id()`        | [`get_ident`], [`get_native_id`]              |
//! | `stack_size(n)`, `TIMEOUT_MAX`          | [`stack_size`], [`TIMEOUT_MAX`]               |
//! | `excepthook`, `ExceptHookArgs`          | [`set_excepthook`], [`excepthook`], [`ExceptHookArgs`] |
//! | `for t in ts: t.join()`                 | [`joinall`], [`joinall_timeout`]              |
//! | `Lock()`, `RLock()`, `Condition()`      | [`Lock`], [`RLock`], [`Condition`]            |
//! | `Semaphore(n)`, `BoundedSemaphore(n)`   | [`Semaphore`], [`BoundedSemaphore`]           |
//! | `Event()`, `Barrier(n)`, `local()`      | [`Event`], [`Barrier`], [`Local`]             |
//! | `with lock:`                            | `let _held = lock.lock();`                    |
//! | `threading._shutdown()`                 | [`shutdown`]                                  |
//! | `RuntimeError`, `ValueError`            | [`Error`]                                     |
//!
//! Target: CPython 3.11 semantics and messages. Differences are listed on each item.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use threading::{Thread, current_thread};
//!
//! fn counter() {
//!     let me = current_thread();
//!     for i in 0..3 {
//!         println!("{}: counting {i}", me.name());
//!         std::thread::sleep(Duration::from_millis(1));
//!     }
//! }
//!
//! let c1 = Thread::builder().name("Count3").target(counter);
//! let c2 = Thread::new(counter);
//! c1.start()?;
//! c2.start()?;
//! threading::joinall([&c1, &c2])?;
//! # Ok::<(), threading::Error>(())
//! ```
//!
//! # Platform
//!
//! Linux (it uses `gettid`, futexes and ELF start-up hooks), like `multiprocessing`'s fork.
#![warn(missing_docs)]

// The modules from the bottom layer up: each names only those above this line's
// (checked by `crates/pyconc/tests/layers.rs`).
mod error;
mod sys;
mod sync;
mod thread;
mod timer;
mod join;
mod local;

use std::time::Duration;

pub use error::Error;
pub use join::{Joinable, joinall, joinall_timeout};
pub use local::Local;
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, FAIR_INTERVAL, Lock, LockGuard,
    RLock, RLockGuard, SEMAPHORE_VALUE_MAX, Semaphore, SemaphoreGuard,
};
pub use thread::excepthook::{ExceptHookArgs, Location, excepthook, set_excepthook};
pub use thread::registry::{active_count, current_thread, enumerate, main_thread, shutdown};
#[allow(deprecated)]
pub use thread::registry::{activeCount, currentThread};
pub use thread::{Builder, Runnable, Thread};
pub use timer::Timer;

/// The longest timeout the blocking functions accept; longer ones are clamped to it.
///
/// Python: `threading.TIMEOUT_MAX` (`9223372036.0` seconds on 64-bit Linux).
pub const TIMEOUT_MAX: Duration = pyconc_core::sync::TIMEOUT_MAX;

/// The smallest stack size [`stack_size`] accepts (CPython's `THREAD_STACK_MIN`).
pub const STACK_SIZE_MIN: usize = 32_768;

/// The calling thread's identifier (`pthread_self()`): non-zero, unique among live
/// threads, possibly reused after a thread ends.
///
/// Python: `threading.get_ident()`. Equals `current_thread().ident()`.
///
/// # Examples
///
/// ```
/// assert_eq!(Some(threading::get_ident()), threading::current_thread().ident());
/// ```
pub fn get_ident() -> u64 {
    sys::pthread_self()
}

/// The calling thread's kernel thread id (`gettid()`).
///
/// Python: `threading.get_native_id()`.
///
/// # Examples
///
/// ```
/// assert_eq!(Some(threading::get_native_id()), threading::current_thread().native_id());
/// ```
pub fn get_native_id() -> u64 {
    sys::gettid()
}

/// Sets the stack size of threads started later and returns the previous setting
/// (0 = the default, 2 MiB as for std's threads); `None` only asks.
///
/// Python: `threading.stack_size([size])`. `Some(0)` goes back to the default. A
/// [`Builder::stack_size`] overrides it for one thread.
///
/// # Examples
///
/// ```
/// assert_eq!(threading::stack_size(Some(1 << 20))?, 0);
/// assert_eq!(threading::stack_size(None)?, 1 << 20);
/// threading::stack_size(Some(0))?;
/// # Ok::<(), threading::Error>(())
/// ```
///
/// # Errors
/// [`Error::ValueError`] `size not valid: N bytes` for a size below 32 KiB other than 0;
/// the setting is then unchanged.
pub fn stack_size(size: Option<usize>) -> Result<usize, Error> {
    match size {
        None => Ok(thread::registry::default_stack_size().unwrap_or(0)),
        Some(size) if size != 0 && size < STACK_SIZE_MIN => {
            Err(Error::ValueError(error::stack_size_not_valid(size).into()))
        }
        Some(size) => Ok(thread::registry::swap_stack_size(size)),
    }
}
