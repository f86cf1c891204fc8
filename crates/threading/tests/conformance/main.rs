//! Conformance tests ported from CPython 3.11's `Lib/test/test_threading.py` (and
//! `test_thread.py`), one module per Python feature. Each test names its source test.
//!
//! These run on libtest's worker threads, which are foreign to `threading` (so they are
//! `Dummy-N` threads and create daemonic threads by default). Tests of the main thread,
//! exact thread counts and fork are in `tests/main_thread.rs`; exit behaviour in
//! `tests/exit.rs`.

mod barrier;
mod barrier_tests;
mod condition;
mod errors;
mod event;
mod excepthook;
mod joinall;
mod local;
mod lock;
mod lock_tests;
mod registry;
mod semaphore;
mod semaphore_event_tests;
mod thread;
mod timer;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Serialises tests that change process-wide settings (excepthook, stack size).
static GLOBAL_SETTINGS: Mutex<()> = Mutex::new(());

fn global_settings() -> MutexGuard<'static, ()> {
    GLOBAL_SETTINGS.lock().unwrap_or_else(PoisonError::into_inner)
}
