//! The calling thread's and process's identities, the two libc registrations this crate
//! makes (`atexit`, `pthread_atfork`), and starting, joining and naming an OS thread with
//! the C library itself (for [`os_thread`](crate::os_thread)). The only module of this
//! crate with `unsafe` code besides the `.init_array` entry in [`start`](crate::start).
//!
//! Why by hand: std has no `gettid`, no `pthread_self` for the calling thread, no `atexit`
//! and no `pthread_atfork`; they are one libc call each. `pthread_create` is called
//! directly because `std::thread` takes a process-wide lock that a forked child may find
//! held forever ([`os_thread`](crate::os_thread) says why); no crate starts a thread
//! without std's machinery.

use std::ffi::{CString, c_void};
use std::io;

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

/// The longest thread name Linux keeps, in bytes (`TASK_COMM_LEN` − 1).
const OS_NAME_MAX: usize = 15;

/// `name` cut to what the kernel keeps: at most 15 bytes, at a character boundary, and
/// without NULs (which would end it early).
fn os_thread_name(name: &str) -> CString {
    let mut end = name.len().min(OS_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let bytes: Vec<u8> = name.as_bytes()[..end].iter().copied().filter(|&b| b != 0).collect();
    CString::new(bytes).unwrap_or_default()
}

/// Names the calling thread for the OS (`top -H`, `ps -L`, `gdb`, `perf`): `name` cut to
/// what the kernel keeps (15 bytes, at a character boundary, without NULs). Best effort:
/// a refusal changes nothing else.
pub fn set_thread_name(name: &str) {
    let name = os_thread_name(name);
    // SAFETY: names the calling thread (its own pthread_t) with a NUL-terminated string of
    // at most 15 bytes, as pthread_setname_np requires; the string outlives the call.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr()) };
}

/// What a thread started by [`RawThread::spawn`] runs.
type ThreadMain = Box<dyn FnOnce() + Send>;

/// A joinable OS thread made by `pthread_create`. Joined once by [`join`](RawThread::join),
/// or detached when dropped: so `pthread_join` and `pthread_detach` are each called at most
/// once, and never both.
#[derive(Debug)]
pub(crate) struct RawThread(libc::pthread_t);

impl RawThread {
    /// Starts a thread with a stack of `stack_size` bytes (rounded up to whole pages and
    /// to the C library's minimum) running `main`, which must not unwind: a panic that
    /// reaches the thread's first frame is stopped there, and `main`'s result is lost.
    pub(crate) fn spawn(stack_size: usize, main: ThreadMain) -> io::Result<RawThread> {
        let page = page_size();
        let size = stack_size.max(libc::PTHREAD_STACK_MIN).div_ceil(page) * page;
        // A thin pointer to hand through `void *`: the box of the boxed closure.
        let arg = Box::into_raw(Box::new(main));
        // SAFETY: `attr` is initialised before use and destroyed once. `pthread_create`
        // gets a valid attribute object, the 'static start routine below and `arg`, which
        // the new thread takes back exactly once; if no thread was made, it is taken back
        // here instead.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            let error = libc::pthread_attr_init(&mut attr);
            if error != 0 {
                drop(Box::from_raw(arg));
                return Err(io::Error::from_raw_os_error(error));
            }
            let mut error = libc::pthread_attr_setstacksize(&mut attr, size);
            let mut thread: libc::pthread_t = 0;
            if error == 0 {
                error = libc::pthread_create(&mut thread, &attr, thread_start, arg.cast());
            }
            libc::pthread_attr_destroy(&mut attr);
            if error != 0 {
                drop(Box::from_raw(arg));
                return Err(io::Error::from_raw_os_error(error));
            }
            Ok(RawThread(thread))
        }
    }

    /// The thread's `pthread_t`.
    #[allow(clippy::unnecessary_cast, reason = "pthread_t is not u64 on every target")]
    pub(crate) fn id(&self) -> u64 {
        self.0 as u64
    }

    /// Waits for the thread to end (`pthread_join`).
    pub(crate) fn join(self) {
        let thread = self.0;
        std::mem::forget(self);
        // SAFETY: `thread` is joinable: made by `spawn`, and neither joined nor detached
        // (this handle, consumed here, is the only one, and its drop is skipped).
        unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    }
}

impl Drop for RawThread {
    fn drop(&mut self) {
        // SAFETY: as in `join`: a joinable thread this handle alone owns, let go of once.
        unsafe { libc::pthread_detach(self.0) };
    }
}

/// The start routine of every [`RawThread`].
extern "C" fn thread_start(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Box<ThreadMain>` that `RawThread::spawn` leaked for this
    // thread alone; it is taken back once, here.
    let main = unsafe { Box::from_raw(arg.cast::<ThreadMain>()) };
    // Unwinding out of an `extern "C"` function aborts the process: a panic stops here.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(main));
    std::ptr::null_mut()
}

/// The size of a memory page.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::os_thread_name;

    #[test]
    fn os_names_are_cut_to_15_bytes_at_a_character_boundary() {
        assert_eq!(os_thread_name("Thread-3 (worker)").to_bytes(), b"Thread-3 (worke");
        assert_eq!(os_thread_name("short").to_bytes(), b"short");
        // 'é' is two bytes: 14 ASCII bytes and 'é' would be 16, so 'é' goes.
        assert_eq!(os_thread_name("abcdefghijklmné").to_bytes(), b"abcdefghijklmn");
        assert_eq!(os_thread_name("a\0b").to_bytes(), b"ab");
    }
}
