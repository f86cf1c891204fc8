//! `Timer`: a thread that calls a function once, after an interval, unless cancelled.
//!
//! The wait sleeps on a futex word with three states: `WAITING`, `CANCELLED` (set by
//! `cancel`) and `FIRED` (claimed by the timer thread just before it calls the function).
//! Both transitions leave `WAITING` by compare-and-swap, so exactly one wins: once `cancel()`
//! has returned, the function will not be called, and a `cancel()` that comes after the
//! function was claimed has no effect — CPython's semantics.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::Error;
use crate::thread::{INITIAL, Kind, Thread};
use pyconc_core::sync::{Futex, WaitWord, deadline_after};

const WAITING: u32 = 0;
const CANCELLED: u32 = 1;
const FIRED: u32 = 2;

/// A thread that runs a function once after `interval`, unless cancelled first.
///
/// Python: `threading.Timer(interval, function)`. A `Timer` dereferences to its
/// [`Thread`], so `name`, `join`, `daemon`, `is_alive`… work as for any thread; its name
/// is `Thread-N`, with no suffix, as in CPython.
///
/// # Differences from CPython
/// - [`cancelled`](Timer::cancelled) tells whether [`cancel`](Timer::cancel) stopped the
///   timer in time (CPython cannot tell whether the function already ran).
/// - The function is a closure (CPython's `args`/`kwargs` are captured instead).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use threading::Timer;
///
/// let t = Timer::new(Duration::from_millis(10), || println!("hello, world"));
/// t.start()?;
/// t.join()?; // "hello, world" after 10 ms
///
/// let never = Timer::new(Duration::from_secs(30), || unreachable!());
/// never.start()?;
/// never.cancel(); // ends the wait at once; the function is not called
/// never.join()?;
/// # Ok::<(), threading::Error>(())
/// ```
pub struct Timer {
    thread: Thread,
    interval: Duration,
    finished: Arc<WaitWord>,
}

impl Timer {
    /// A new, unstarted timer that will call `function` `interval` after `start()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_millis(10), || println!("fired"));
    /// timer.start()?;
    /// timer.join()?;
    /// assert!(timer.finished() && !timer.cancelled());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn new<F: FnOnce() + Send + 'static>(interval: Duration, function: F) -> Timer {
        let finished = Arc::new(WaitWord::new(WAITING));
        let word = Arc::clone(&finished);
        let run = move || {
            let deadline = deadline_after(interval);
            while word.load() == WAITING {
                if !word.wait(WAITING, deadline) {
                    break;
                }
            }
            let claimed = word
                .atomic()
                .compare_exchange(WAITING, FIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if claimed {
                function();
            }
        };
        let name = format!("Thread-{}", crate::thread::registry::next_thread_number());
        let daemon = crate::current_thread().daemon();
        let thread =
            Thread::from_parts(Kind::Started, name, daemon, INITIAL, Some(Box::new(run)), None);
        Timer { thread, interval, finished }
    }

    /// Starts the timer's thread.
    ///
    /// # Errors
    /// As [`Thread::start`]: `threads can only be started once`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_millis(1), || {});
    /// timer.start()?;
    /// let again = timer.start().unwrap_err();
    /// assert_eq!(again.to_string(), "threads can only be started once");
    /// timer.join()?;
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn start(&self) -> Result<(), Error> {
        self.thread.start()
    }

    /// Stops the timer if it is still waiting: the function will not be called.
    ///
    /// Python: `threading.Timer.cancel()`. Before `start()`, the started timer ends at once;
    /// while waiting, the wait ends at once; after the function was called (or while it
    /// runs) it has no effect.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_secs(60), || panic!("not cancelled"));
    /// timer.start()?;
    /// timer.cancel();
    /// timer.join()?;
    /// assert!(timer.cancelled(), "stopped before the function ran");
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn cancel(&self) {
        let cancelled = self
            .finished
            .atomic()
            .compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if cancelled {
            self.finished.wake_all();
        }
    }

    /// The interval given to [`Timer::new`].
    ///
    /// Python: `threading.Timer.interval`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_secs(5), || {});
    /// assert_eq!(timer.interval(), Duration::from_secs(5));
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether the timer is done waiting: cancelled, or the function was called (or is
    /// being called).
    ///
    /// Python: `threading.Timer.finished.is_set()` (CPython sets it after the call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_millis(1), || {});
    /// assert!(!timer.finished());
    /// timer.start()?;
    /// timer.join()?;
    /// assert!(timer.finished());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn finished(&self) -> bool {
        self.finished.load() != WAITING
    }

    /// Whether `cancel()` stopped the timer before it fired, so that the function was not
    /// and will not be called. Beyond CPython, whose `cancel()` cannot tell.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_secs(60), || {});
    /// timer.cancel(); // before start: it will end at once
    /// timer.start()?;
    /// timer.join()?;
    /// assert!(timer.cancelled());
    /// # Ok::<(), threading::Error>(())
    /// ```
    pub fn cancelled(&self) -> bool {
        self.finished.load() == CANCELLED
    }

    /// The timer's thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = threading::Timer::new(Duration::from_millis(1), || {});
    /// timer.thread().set_name("reminder");
    /// assert_eq!(timer.name(), "reminder"); // a Timer derefs to its Thread
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }
}

impl Deref for Timer {
    type Target = Thread;

    fn deref(&self) -> &Thread {
        &self.thread
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("thread", &self.thread)
            .field("interval", &self.interval)
            .field("finished", &self.finished())
            .finish()
    }
}
