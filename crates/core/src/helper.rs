//! Threads the library runs for itself — a queue's feeder, a pool's handlers, the reaper,
//! the launcher — counted, so that the fork start method's warning ("This process is
//! multi-threaded, use of fork() may lead to deadlocks in the child") counts only the
//! user's threads, as CPython's counts only `threading`'s.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fork::{self, AtFork};
use crate::os_thread::{self, JoinHandle};

/// Helper threads running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Decrements the count when a helper thread's body ends, however it ends.
struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts a helper thread named `name` running `body` (an [`os_thread`], so that a
/// forked child can start it whatever its parent's other threads were doing).
///
/// # Errors
/// The C library's refusal (the thread could not be created).
pub fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    register_fork_hook();
    RUNNING.fetch_add(1, Ordering::Relaxed);
    os_thread::spawn(Some(name), None, move || {
        let _counted = Counted;
        body()
    })
    .inspect_err(|_| {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    })
}

/// The number of helper threads running.
pub fn count() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

/// No thread but the forking one survives a fork: a child has no helper threads.
struct ForgetInChild;

impl AtFork for ForgetInChild {
    fn prepare(&'static self) {}
    fn parent(&'static self) {}
    fn child(&'static self) {
        RUNNING.store(0, Ordering::Relaxed);
    }
}

fn register_fork_hook() {
    static REGISTRATION: fork::Registration = fork::Registration::new();
    REGISTRATION.ensure(0, &ForgetInChild);
}
