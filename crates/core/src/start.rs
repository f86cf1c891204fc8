//! The process-start hook: what runs before `main`, on the main thread.
//!
//! An ELF `.init_array` entry (as the `ctor` crate makes) records the main thread's
//! `pthread_t` — so that `threading::main_thread()` describes the process's first thread
//! even when first asked from another thread — and installs this crate's `atexit` handler
//! ([`exit`](crate::exit)) and `pthread_atfork` handlers ([`fork`](crate::fork)).
//!
//! The order of `.init_array` entries across crates is unspecified, so code that runs
//! before `main` itself (`multiprocessing::init_before_main!`) calls [`ensure_started`]
//! first; the work is done once, by whichever comes first.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

/// `pthread_self()` of the main thread, recorded before `main`; 0 if not recorded.
static MAIN_IDENT: AtomicU64 = AtomicU64::new(0);

static STARTED: Once = Once::new();

/// Runs the start-of-process set-up now if it has not run yet. Before `main` (or the
/// first time any registry is used) it runs on the main thread, which it records.
pub fn ensure_started() {
    STARTED.call_once(|| {
        if sys::gettid() == sys::getpid() {
            MAIN_IDENT.store(sys::pthread_self(), Ordering::Relaxed);
        }
        crate::exit::install();
        crate::fork::install();
    });
}

/// The main thread's `pthread_self()`, if it was recorded before `main`.
pub fn main_thread_ident() -> Option<u64> {
    match MAIN_IDENT.load(Ordering::Relaxed) {
        0 => None,
        ident => Some(ident),
    }
}

/// Forgets the recorded main thread in a forked child, whose main thread is the one that
/// forked (CPython's `threading._after_fork`).
pub fn set_main_thread_ident(ident: u64) {
    MAIN_IDENT.store(ident, Ordering::Relaxed);
}

extern "C" fn process_start() {
    ensure_started();
}

/// The `.init_array` entry that makes the loader call [`process_start`].
// SAFETY: `.init_array` holds pointers to `extern "C" fn()` that the loader calls once, on
// the main thread, before `main`; `process_start` only stores an integer and calls
// `atexit`/`pthread_atfork`, which are allowed that early.
#[unsafe(link_section = ".init_array")]
#[used]
static PROCESS_START: extern "C" fn() = process_start;
