//! The synchronization proxies of a manager: `Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Condition`, `Event`, `Barrier` (CPython's `AcquirerProxy`,
//! `ConditionProxy`, `EventProxy`, `BarrierProxy`). The primitive lives in the server;
//! its owner is the server thread that serves the calling thread's connection, so a
//! lock acquired by one thread is owned by that thread, as in CPython.

use std::time::Duration;

use super::protocol::{Op, Reply, Wait};
use super::proxy::{boolean, count, proxy_type, unexpected, unit};
use crate::Error;

/// `acquire`, `acquire_timeout`, `try_acquire` and `release` of a proxy whose server
/// object has them; `$make` is the `Manager` method of the doc examples.
macro_rules! acquirer {
    ($name:ident, $make:literal) => {
        impl $name {
            #[doc = concat!("Waits until acquired. Python: `acquire()`.\n\n# Errors\nThe server cannot be reached.\n\n# Examples\n\n```\nlet manager = multiprocessing::managers::Manager::new()?;\nlet x = manager.", $make, "?;\nx.acquire()?;\nx.release()?;\n# Ok::<(), multiprocessing::Error>(())\n```")]
            pub fn acquire(&self) -> Result<(), Error> {
                boolean(self.base.invoke(Op::Acquire(Wait::Forever))?).map(drop)
            }

            #[doc = concat!("Waits at most `timeout`; whether it was acquired. Python: `acquire(timeout=t)`.\n\n# Errors\nThe server cannot be reached.\n\n# Examples\n\n```\nuse std::time::Duration;\n\nlet manager = multiprocessing::managers::Manager::new()?;\nlet x = manager.", $make, "?;\nassert!(x.acquire_timeout(Duration::from_secs(1))?);\nx.release()?;\n# Ok::<(), multiprocessing::Error>(())\n```")]
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Error> {
                boolean(self.base.invoke(Op::Acquire(Wait::For(timeout)))?)
            }

            #[doc = concat!("Acquires if it can at once; whether it did. Python: `acquire(False)`.\n\n# Errors\nThe server cannot be reached.\n\n# Examples\n\n```\nlet manager = multiprocessing::managers::Manager::new()?;\nlet x = manager.", $make, "?;\nassert!(x.try_acquire()?);\nx.release()?;\n# Ok::<(), multiprocessing::Error>(())\n```")]
            pub fn try_acquire(&self) -> Result<bool, Error> {
                boolean(self.base.invoke(Op::Acquire(Wait::No))?)
            }

            #[doc = concat!("Releases it. Python: `release()`.\n\n# Errors\nThe server's: releasing what is not held (CPython's texts); the server cannot be reached.\n\n# Examples\n\n```\nlet manager = multiprocessing::managers::Manager::new()?;\nlet x = manager.", $make, "?;\nx.acquire()?;\nx.release()?;\n# Ok::<(), multiprocessing::Error>(())\n```")]
            pub fn release(&self) -> Result<(), Error> {
                unit(self.base.invoke(Op::Release)?)
            }
        }
    };
}

proxy_type! {
    /// A lock in a manager's server: CPython's `Manager().Lock()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let lock = manager.lock()?;
    /// lock.acquire()?;
    /// assert!(!lock.try_acquire()?);
    /// lock.release()?;
    /// assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    LockProxy
}
acquirer!(LockProxy, "lock()");

proxy_type! {
    /// A reentrant lock in a manager's server: CPython's `Manager().RLock()`. Its owner is
    /// the calling thread (the server thread serving its connection).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// rlock.acquire()?;
    /// rlock.acquire()?; // again, by its owner
    /// rlock.release()?;
    /// rlock.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    RLockProxy
}
acquirer!(RLockProxy, "rlock()");

proxy_type! {
    /// A semaphore in a manager's server: CPython's `Manager().Semaphore(n)` and
    /// `BoundedSemaphore(n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let slots = manager.semaphore(2)?;
    /// assert!(slots.try_acquire()? && slots.try_acquire()?);
    /// assert!(!slots.try_acquire()?);
    /// slots.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    SemaphoreProxy
}
acquirer!(SemaphoreProxy, "semaphore(1)");

proxy_type! {
    /// A condition variable in a manager's server: CPython's `Manager().Condition()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.acquire()?;
    /// assert!(!cond.wait_timeout(Duration::from_millis(10))?, "nobody notified");
    /// cond.notify_all()?;
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ConditionProxy
}
acquirer!(ConditionProxy, "condition()");

impl ConditionProxy {
    /// Releases the lock, waits to be notified, takes the lock again.
    /// Python: `cond.wait()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot wait on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let cond = manager.condition()?;
    /// assert_eq!(cond.wait().unwrap_err().to_string(), "cannot wait on un-acquired lock");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        boolean(self.base.invoke(Op::CondWait(None))?).map(drop)
    }

    /// As [`wait`](ConditionProxy::wait), at most `timeout`; whether it was notified.
    /// Python: `cond.wait(timeout)`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot wait on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.acquire()?;
    /// assert!(!cond.wait_timeout(Duration::from_millis(5))?);
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        boolean(self.base.invoke(Op::CondWait(Some(timeout)))?)
    }

    /// Wakes up to `n` waiters. Python: `cond.notify(n)`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot notify on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let cond = manager.condition()?;
    /// cond.acquire()?;
    /// cond.notify(1)?;
    /// cond.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> Result<(), Error> {
        unit(self.base.invoke(Op::CondNotify(u32::try_from(n).unwrap_or(u32::MAX)))?)
    }

    /// Wakes every waiter. Python: `cond.notify_all()`.
    ///
    /// # Errors
    /// [`Error::RuntimeError`] `cannot notify on un-acquired lock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let cond = manager.condition()?;
    /// assert!(cond.notify_all().is_err(), "not acquired");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::CondNotifyAll)?)
    }
}

proxy_type! {
    /// An event in a manager's server: CPython's `Manager().Event()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let event = manager.event()?;
    /// assert!(!event.is_set()?);
    /// event.set()?;
    /// event.wait()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    EventProxy
}

impl EventProxy {
    /// Sets the flag, waking every waiter. Python: `event.set()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let event = manager.event()?;
    /// event.set()?;
    /// assert!(event.is_set()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::EventSet)?)
    }

    /// Clears the flag. Python: `event.clear()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let event = manager.event()?;
    /// event.set()?;
    /// event.clear()?;
    /// assert!(!event.is_set()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::EventClear)?)
    }

    /// Whether the flag is set. Python: `event.is_set()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(!manager.event()?.is_set()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool, Error> {
        boolean(self.base.invoke(Op::EventIsSet)?)
    }

    /// Waits until the flag is set. Python: `event.wait()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let event = manager.event()?;
    /// event.set()?;
    /// event.wait()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        boolean(self.base.invoke(Op::EventWait(None))?).map(drop)
    }

    /// Waits at most `timeout`; whether the flag is set. Python: `event.wait(timeout)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(!manager.event()?.wait_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        boolean(self.base.invoke(Op::EventWait(Some(timeout)))?)
    }
}

proxy_type! {
    /// A barrier in a manager's server: CPython's `Manager().Barrier(parties)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, managers::Manager};
    ///
    /// let manager = Manager::new()?;
    /// let barrier = manager.barrier(2)?;
    /// let theirs = barrier.clone();
    /// let p = Process::new(move || { theirs.wait().unwrap(); });
    /// p.start()?;
    /// barrier.wait()?;
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    BarrierProxy
}

impl BarrierProxy {
    /// Waits until `parties` callers wait; returns this caller's index (0 to parties − 1).
    /// Python: `barrier.wait()`.
    ///
    /// # Errors
    /// [`Error::BrokenBarrierError`] when the barrier is broken or aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.barrier(1)?.wait()?, 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize, Error> {
        count(self.base.invoke(Op::BarrierWait(None))?)
    }

    /// As [`wait`](BarrierProxy::wait), at most `timeout` (then the barrier breaks).
    /// Python: `barrier.wait(timeout)`.
    ///
    /// # Errors
    /// [`Error::BrokenBarrierError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let barrier = manager.barrier(2)?;
    /// assert!(barrier.wait_timeout(Duration::from_millis(10)).is_err());
    /// assert!(barrier.broken()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, Error> {
        count(self.base.invoke(Op::BarrierWait(Some(timeout)))?)
    }

    /// Breaks the barrier: every waiter gets `BrokenBarrierError`. Python: `abort()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let barrier = manager.barrier(3)?;
    /// barrier.abort()?;
    /// assert!(barrier.broken()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn abort(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::BarrierAbort)?)
    }

    /// Back to the empty, unbroken state. Python: `reset()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let barrier = manager.barrier(3)?;
    /// barrier.abort()?;
    /// barrier.reset()?;
    /// assert!(!barrier.broken()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn reset(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::BarrierReset)?)
    }

    fn state(&self) -> Result<(usize, usize, bool), Error> {
        match self.base.invoke(Op::BarrierState)? {
            Reply::Barrier(parties, waiting, broken) => {
                Ok((parties as usize, waiting as usize, broken))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The number of callers that pass together. Python: `parties`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.barrier(4)?.parties()?, 4);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn parties(&self) -> Result<usize, Error> {
        Ok(self.state()?.0)
    }

    /// How many callers wait now. Python: `n_waiting`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.barrier(2)?.n_waiting()?, 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn n_waiting(&self) -> Result<usize, Error> {
        Ok(self.state()?.1)
    }

    /// Whether the barrier is broken. Python: `broken`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(!manager.barrier(2)?.broken()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn broken(&self) -> Result<bool, Error> {
        Ok(self.state()?.2)
    }
}
