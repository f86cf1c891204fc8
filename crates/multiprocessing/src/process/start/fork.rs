//! The fork start method: CPython's `popen_fork.Popen`.
//!
//! The child is a copy of the parent made by `fork()`, so it can run a closure. Only the
//! forking thread exists in the child; a lock that another thread held at the fork would
//! stay locked forever there. So the forking thread holds, across `fork()`, every lock the
//! child will need: stdout and stderr (flushed first, so nothing buffered is written
//! twice), and through `pyconc_core::fork`'s `pthread_atfork` handlers every library lock
//! a child may take — the thread registry, this crate's process table, launcher,
//! fork-server slot, queue feeders, pool registries and lock registry. The child handlers
//! reset what they guard before unlocking: the forking thread becomes the main thread
//! (CPython's `threading._after_fork`), the parent's children, helper threads, finalizers
//! and fork-server connection are forgotten. Then the child sets who it is
//! ([`children::become_child`], from records its parent made before the fork) and runs
//! the hooks of `util::register_after_fork`.
//!
//! # What a child costs beyond a raw fork
//!
//! A forked child shares every page with its parent until one of them writes it; each
//! page either one writes while both live is a page fault and a copy (2–3 µs here), and
//! each page of the program's code the child runs is a fault too. So the parent does
//! before the fork what the child would otherwise do after it: it makes the child's
//! records, registers the fork hooks the child will take, and keeps a `/dev/null` open
//! for the child's stdin (`sys::keep_dev_null`); the child allocates and frees nothing
//! of its own before its target runs, and does not free the target's box. The parent
//! frees its copy of the records with the child's status, not while the child runs.
//!
//! From `fork()` to the parent-death signal the child makes only async-signal-safe system
//! calls. Then it runs ordinary code, as CPython's fork children do.
//! It always ends in `_exit` ([`bootstrap`](crate::process::bootstrap)), never by returning into
//! the parent's stack.
//!
//! # The hazard that remains
//!
//! The crate's own locks are safe in the child; the user's are not. After the reset the
//! child runs the user's closure (or `fn`), and that code may take any lock of the
//! process — a `Mutex` of the user's, the allocator's, a library's — that another thread
//! of the parent held at the moment of the fork: it then waits forever. CPython has the
//! same hazard (and 3.12 warns about it, as [`warn_if_multithreaded`] does). std has such
//! a lock too, taken whenever a std thread starts or ends: the library's threads do not
//! go through it (`pyconc_core::os_thread`), but a `std::thread::spawn` in the child
//! waits forever if another parent thread held it at the fork. The
//! `# Fork safety` section of [`Process::new`](crate::Process::new) tells users how to
//! avoid it. No memory-safety rule is broken: a lock held forever is a hang, not undefined
//! behaviour, and glibc's `fork` keeps `malloc` usable in the child.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{ChildSpec, Launched, Target};
use crate::process::bootstrap::{self, Ending};
use crate::process::children;
use crate::sys::{self, Fork};
use crate::{Error, util};

/// Forks a child that runs `target`.
pub(crate) fn launch(spec: ChildSpec, target: Target) -> Result<Launched, Error> {
    warn_if_multithreaded();
    // The child's panics and its bootstrap must find the panic hook installed: taking
    // the hook lock there could wait forever for a thread of the parent that held it.
    pyconc_core::panic::install_hook();
    children::register_parent_hook();
    util::before_fork();
    sys::keep_dev_null();
    let parent = sys::getpid();
    let daemon = spec.daemon;
    // Who the child is, made here: the child then installs it without allocating.
    let records = children::ChildRecords::new(spec);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.flush();
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.flush();
    // SAFETY: until the parent-death signal is armed the child makes only
    // async-signal-safe system calls; the library state it touches after that is guarded
    // by locks this thread held across the fork and the fork hooks reset (listed in the
    // module docs). Then it runs the user's target, which
    // may block forever on a lock another parent thread held — a hang, not undefined
    // behaviour (see "The hazard that remains" above) — and it ends in `_exit`.
    let forked = unsafe { sys::fork() };
    match forked {
        Err(error) => Err(error.into()),
        Ok(Fork::Parent(pid)) => {
            drop(stderr);
            drop(stdout);
            Ok(Launched { pid, waiter: None, records: Some(records) })
        }
        Ok(Fork::Child) => {
            // Async-signal-safe until the signal is armed.
            if daemon {
                let _ = sys::set_parent_death_signal(libc::SIGKILL);
                if sys::getppid() != parent {
                    // The parent died before the signal was armed.
                    sys::exit_now(1);
                }
            }
            children::become_child(records);
            drop(stderr);
            drop(stdout);
            WARNED.store(false, Ordering::Relaxed);
            util::run_after_forkers();
            bootstrap::run(Ending::Immediate, move || {
                target.run_in_fork_child();
                Ok(())
            })
        }
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// CPython 3.12's `DeprecationWarning`, once per process: forking while other threads run
/// can leave the child with a lock that no thread will ever release.
fn warn_if_multithreaded() {
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    let others = sys::thread_count().saturating_sub(1 + pyconc_core::helper::count());
    if others > 0 && !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "pyconc: DeprecationWarning: This process (pid={}) is multi-threaded, use of \
             fork() may lead to deadlocks in the child.",
            sys::getpid().0
        );
    }
}
