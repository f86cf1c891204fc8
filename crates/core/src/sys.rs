//! The calling thread's and process's identities, and the two libc registrations this
//! crate makes (`atexit`, `pthread_atfork`). The only module of this crate with `unsafe`
//! code besides the `.init_array` entry in [`start`](crate::start).
//!
//! Why by hand: std has no `gettid`, no `pthread_self` for the calling thread, no `atexit`
//! and no `pthread_atfork`; they are one libc call each.

/// `pthread_self()` of the calling thread, CPython's `threading.get_ident()`.
#[allow(clippy::unnecessary_cast, reason = "pthread_t is not u64 on every target")]
#[inline]
pub fn pthread_self() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    (unsafe { libc::pthread_self() }) as u64
}

/// The kernel thread id of the calling thread (`gettid()`), CPython's `get_native_id()`.
#[allow(clippy::unnecessary_cast, reason = "pid_t is i32; the API's ids are u64")]
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u64
}

/// The process id; on Linux the main thread's kernel thread id equals it.
pub fn getpid() -> u64 {
    u64::from(std::process::id())
}

/// Registers `hook` to run inside `exit()`: after `main` returns or `std::process::exit`
/// is called. Returns false if libc refused (out of memory).
pub(crate) fn atexit(hook: extern "C" fn()) -> bool {
    // SAFETY: `hook` is a plain `extern "C" fn()` with 'static lifetime; libc calls it at
    // most once, from the exiting thread.
    unsafe { libc::atexit(hook) == 0 }
}

/// Registers the fork handlers (`pthread_atfork`). Returns false if libc refused.
pub(crate) fn atfork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> bool {
    // SAFETY: the three handlers are 'static `extern "C" fn()`s. `child` runs in the child
    // of a multi-threaded fork; it touches only state the forking thread could reach: the
    // locks `prepare` holds across the fork (see fork.rs).
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}
