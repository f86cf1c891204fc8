//! The layer under `threading` and `multiprocessing`: what both crates need from the
//! process they run in, kept in one place — CPython's `multiprocessing/util.py` and the
//! parts of the interpreter that run at start-up, at `fork()` and at exit.
//!
//! This crate is internal to pyconc: `threading` and `multiprocessing` build on it, and
//! `multiprocessing::util` shows its public face in CPython's terms (`Finalize`,
//! `register_after_fork`, `is_exiting`). Use those; this crate's API follows their needs.
//!
//! | Module | Owns | CPython |
//! |---|---|---|
//! | [`start`] | the process-start hook: the main thread's identity, installing the exit and fork handlers | interpreter start-up |
//! | [`exit`] | exit finalizers with priorities, the shutdown hooks that run before them, `is_exiting` | `util.Finalize`, `util._exit_function`, `threading._shutdown` |
//! | [`fork`] | one `pthread_atfork` registry: locks held across `fork()` and reset in the child | `os.register_at_fork`, `_at_fork_reinit` |
//! | [`os_thread`] | starting an OS thread that a forked child can always start (not through `std::thread`'s lock) | `_thread.start_new_thread` |
//! | [`helper`] | threads the library runs for itself, counted for the fork warning | `Queue._thread`, `Pool._handle_*` threads |
//! | [`panic`](mod@panic) | catching a panic with its location and backtrace, reported once | `traceback.print_exc` |
//! | [`sync`] | the state machines of the primitives of both crates, and the poison-ignoring lock helpers | `threading`'s and `multiprocessing.synchronize`'s primitives |
//! | [`logging`] | the `multiprocessing` logger: `log` facade records, CPython's stderr format | `util.get_logger`, `util.log_to_stderr` |
//! | [`sys`] | the calling thread's identities (`pthread_self`, `gettid`), its OS name, the raw `pthread_create` | `threading.get_ident`, `get_native_id` |
//!
//! A subsystem of either crate registers what it needs here — a finalizer, a lock to hold
//! across `fork()` — and neither the exit path nor the fork path names it: they know only
//! the registries (the layering rule of CPython's `util.py`).
//!
//! Linux only, like the crates above it.

// The modules from the bottom layer up: each names only those above this line's
// (checked by `crates/pyconc/tests/layers.rs`).
pub mod sys;
pub mod os_thread;
pub mod logging;
pub mod sync;
pub mod panic;
pub mod fork;
pub mod exit;
pub mod helper;
pub mod start;
