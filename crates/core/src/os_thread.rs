//! CPython's `_thread.start_new_thread`: an OS thread of the library's own, started with
//! `pthread_create` rather than `std::thread`, so that a forked child can always start one.
//!
//! # Why not `std::thread`
//!
//! std takes a process-wide lock whenever one of its threads starts or ends (the
//! bookkeeping of its stack-overflow handler). A process forked while another thread held
//! that lock — a thread of the parent that was just starting or ending, anyone's — finds
//! it held forever, with no thread left to release it: its first `std::thread::spawn`
//! never returns. A child made by the fork start method starts threads of the library's
//! (a queue's feeder, a pool's handler, a manager's server threads, every
//! `threading::Thread`), and a manager's server was seen to hang just so. Threads started
//! here take no lock of std's; so in a forked child they start whatever the parent's
//! other threads were doing, as CPython's threads do after `fork()`.
//!
//! What std's threads have and these do not: std's stack-overflow message (an overflow
//! still ends the process, by `SIGSEGV`), a name in `std::thread::current().name()` (it
//! is `None`; the OS name is set, as `/proc/thread-self/comm` shows) and the test
//! harness's capture of `println!` output. Thread-locals, `std::thread::current()`,
//! parking and panics work as in any thread.
//!
//! # Examples
//!
//! ```
//! let worker = pyconc_core::os_thread::spawn(Some("worker"), None, || 6 * 7)?;
//! assert_eq!(worker.join().expect("no panic"), 42);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use crate::sys::{self, RawThread};

/// The stack of a thread started without a size: std's default for its threads.
pub const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;

/// Where a thread leaves what its body returned, or the panic that ended it.
type Outcome<T> = Arc<Mutex<Option<std::thread::Result<T>>>>;

/// Starts an OS thread running `body`: named `name` for the OS (cut to 15 bytes) if given,
/// with a stack of `stack_size` bytes (rounded up to whole pages), by default
/// [`DEFAULT_STACK_SIZE`].
///
/// # Errors
/// The C library's refusal (`EAGAIN` when no thread can be made).
pub fn spawn<T: Send + 'static>(
    name: Option<&str>,
    stack_size: Option<usize>,
    body: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    let outcome: Outcome<T> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&outcome);
    let name = name.map(str::to_owned);
    let thread = RawThread::spawn(
        stack_size.unwrap_or(DEFAULT_STACK_SIZE),
        Box::new(move || {
            if let Some(name) = name {
                sys::set_thread_name(&name);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }),
    )?;
    Ok(JoinHandle { thread, outcome })
}

/// The owner of a thread started by [`spawn`]: [`join`](JoinHandle::join) waits for it;
/// dropping the handle detaches it (it runs on, and its resources go when it ends).
pub struct JoinHandle<T> {
    thread: RawThread,
    outcome: Outcome<T>,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to end; `Err` carries the panic that ended it, as
    /// `std::thread::JoinHandle::join`.
    pub fn join(self) -> std::thread::Result<T> {
        self.thread.join();
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner).take();
        // The body's end stored it before the thread ended, unless the thread ended
        // without returning (`pthread_exit` from the body): report that as a panic would be.
        outcome.unwrap_or_else(|| Err(Box::new("the thread ended without returning")))
    }

    /// The thread's `pthread_t` (CPython's `ident`).
    pub fn as_pthread_t(&self) -> u64 {
        self.thread.id()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("pthread_t", &self.thread.id()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_returns_its_value_and_a_panic_arrives_as_err() {
        let answer = spawn(None, None, || 42).unwrap();
        assert_ne!(answer.as_pthread_t(), sys::pthread_self());
        assert_eq!(answer.join().unwrap(), 42);
        // `resume_unwind` unwinds without the panic hook's message.
        let failed =
            spawn(None, None, || -> u8 { std::panic::resume_unwind(Box::new("boom")) }).unwrap();
        let payload = failed.join().unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    }

    #[test]
    fn a_thread_gets_its_name_and_stack_size() {
        let t = spawn(Some("pyconc-a-long-helper-name"), Some(64 * 1024), || {
            let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            // Uses most of the 64 KiB it asked for (rounded up to pages).
            let buffer = [1u8; 48 * 1024];
            (name, std::hint::black_box(&buffer).iter().map(|&b| usize::from(b)).sum::<usize>())
        })
        .unwrap();
        let (name, sum) = t.join().unwrap();
        assert_eq!(name.trim_end(), "pyconc-a-long-h");
        assert_eq!(sum, 48 * 1024);
    }

    #[test]
    fn a_dropped_handle_detaches_the_thread_which_runs_on() {
        let (tx, rx) = std::sync::mpsc::channel();
        drop(
            spawn(None, None, move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                tx.send(std::thread::current().id()).unwrap();
            })
            .unwrap(),
        );
        assert_ne!(rx.recv().unwrap(), std::thread::current().id());
    }
}
