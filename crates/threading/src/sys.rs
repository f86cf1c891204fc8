//! Every call into libc that `threading` makes: thread identities, the process-exit hook and
//! the fork handlers. This is the crate's only module with `unsafe` code.
//!
//! Why by hand: std has no `gettid`, no `pthread_self` for the calling thread, no `atexit`
//! and no `pthread_atfork`; they are one libc call each.

/// `pthread_self()` of the calling thread, CPython's `threading.get_ident()`.
#[allow(clippy::unnecessary_cast, reason = "pthread_t is not u64 on every target")]
pub(crate) fn pthread_self() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    (unsafe { libc::pthread_self() }) as u64
}

/// The kernel thread id of the calling thread (`gettid()`), CPython's `get_native_id()`.
#[allow(clippy::unnecessary_cast, reason = "pid_t is i32; the API's ids are u64")]
pub(crate) fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u64
}

/// The process id; on Linux the main thread's kernel thread id equals it.
pub(crate) fn getpid() -> u64 {
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
    // of a multi-threaded fork; it is written to touch only state the forking thread could
    // reach (the registry, whose lock `prepare` holds across the fork) — see registry.rs.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

/// Runs at program start, on the main thread, before `main` (an ELF `.init_array` entry,
/// as the `ctor` crate does): it records the main thread's identity, so that
/// `main_thread()` describes the process's first thread even when first called from
/// another thread, and installs the exit and fork hooks.
extern "C" fn process_start() {
    crate::registry::on_process_start(pthread_self());
}

/// The `.init_array` entry that makes the loader call [`process_start`].
// SAFETY: `.init_array` holds pointers to `extern "C" fn()` that the loader calls once, on
// the main thread, before `main`; `process_start` is such a function and only stores two
// integers and calls `atexit`/`pthread_atfork`, which are allowed that early.
#[unsafe(link_section = ".init_array")]
#[used]
static PROCESS_START: extern "C" fn() = process_start;

/// Whether thread `tid` of this process sleeps in `pause()`: where Rust parks every thread
/// that calls `std::process::exit` after another thread began exiting (std's guard against
/// concurrent `exit()`), never to return. Read from `/proc/self/task/TID/syscall`, whose
/// first field is the number of the system call the thread is blocked in.
pub(crate) fn parked_in_exit(tid: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let mut fields = text.split_whitespace();
    let number = fields.next().and_then(|n| n.parse::<i64>().ok());
    #[cfg(target_arch = "x86_64")]
    {
        number == Some(libc::SYS_pause)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // No pause system call: glibc's pause() is ppoll(NULL, 0, NULL, NULL).
        number == Some(libc::SYS_ppoll) && fields.take(4).all(|arg| arg == "0x0")
    }
}
