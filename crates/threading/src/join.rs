//! `joinall`: wait for many threads — or processes — with one call and one deadline.
//!
//! CPython has no `joinall` (the Python course sets it as an exercise); the idiom is
//! `for t in threads: t.join()`. [`Joinable`] is the small trait that `Thread` and
//! `multiprocessing::Process` share, so one call waits for threads and processes alike.

use std::time::{Duration, Instant};

use crate::error::Error;
use pyconc_core::sync::deadline_after;

/// A handle that can be joined: a [`Thread`](crate::Thread), a [`Timer`](crate::Timer),
/// a `multiprocessing::Process`.
pub trait Joinable {
    /// Waits until it ends.
    ///
    /// # Errors
    /// The handle's own join errors (e.g. `cannot join thread before it is started`).
    fn join(&self) -> Result<(), Error>;
    /// Waits at most `timeout`; `Ok(true)` when it has ended.
    ///
    /// # Errors
    /// As [`Joinable::join`].
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Error>;
    /// Whether it is still running.
    fn is_alive(&self) -> bool;
    /// Its name.
    fn name(&self) -> String;
}

impl Joinable for crate::Thread {
    fn join(&self) -> Result<(), Error> {
        crate::Thread::join(self)
    }
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        crate::Thread::join_timeout(self, timeout)
    }
    fn is_alive(&self) -> bool {
        crate::Thread::is_alive(self)
    }
    fn name(&self) -> String {
        crate::Thread::name(self)
    }
}

impl Joinable for crate::Timer {
    fn join(&self) -> Result<(), Error> {
        self.thread().join()
    }
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.thread().join_timeout(timeout)
    }
    fn is_alive(&self) -> bool {
        self.thread().is_alive()
    }
    fn name(&self) -> String {
        self.thread().name()
    }
}

impl<J: Joinable + ?Sized> Joinable for &J {
    fn join(&self) -> Result<(), Error> {
        (**self).join()
    }
    fn join_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        (**self).join_timeout(timeout)
    }
    fn is_alive(&self) -> bool {
        (**self).is_alive()
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// Waits for every handle to end, in order.
///
/// The Python course's `joinall()` exercise: `for t in threads: t.join()`. Works for
/// threads, timers and (through [`Joinable`]) processes, also mixed as `&dyn Joinable`.
///
/// # Examples
///
/// ```
/// use threading::Thread;
///
/// let threads: Vec<Thread> = (0..4).map(|_| Thread::new(|| {})).collect();
/// for t in &threads { t.start()?; }
/// threading::joinall(&threads)?;
/// assert!(threads.iter().all(|t| !t.is_alive()));
/// # Ok::<(), threading::Error>(())
/// ```
///
/// # Errors
/// The first join error (e.g. `cannot join thread before it is started`); the handles
/// after it are not waited for.
pub fn joinall<'a, J>(threads: impl IntoIterator<Item = &'a J>) -> Result<(), Error>
where
    J: Joinable + ?Sized + 'a,
{
    for thread in threads {
        thread.join()?;
    }
    Ok(())
}

/// Waits for every handle with ONE deadline for all of them, and returns those still
/// alive when it passed (empty: all ended).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use threading::Thread;
///
/// let quick = Thread::new(|| {});
/// let slow = Thread::new(|| std::thread::sleep(Duration::from_millis(300)));
/// quick.start()?;
/// slow.start()?;
/// let alive = threading::joinall_timeout([&quick, &slow], Duration::from_millis(20))?;
/// assert_eq!(alive, vec![slow.clone()]);
/// slow.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
///
/// # Errors
/// The first join error; the handles after it are not waited for.
pub fn joinall_timeout<'a, J>(
    threads: impl IntoIterator<Item = &'a J>,
    timeout: Duration,
) -> Result<Vec<J>, Error>
where
    J: Joinable + Clone + 'a,
{
    let deadline = deadline_after(timeout);
    let mut alive = Vec::new();
    for thread in threads {
        let remaining = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => crate::TIMEOUT_MAX,
        };
        if !thread.join_timeout(remaining)? {
            alive.push(thread.clone());
        }
    }
    Ok(alive)
}
