//! Generic bodies of CPython's `Lib/test/lock_tests.py`, written once over small traits so
//! that the same cases run on every implementation (threading's primitives and the
//! cross-process ones of `multiprocessing`). Each body names its source test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threading::{Error, Thread};

/// Runs `f(i)` in `n` threads and joins them (lock_tests.Bunch).
pub(crate) fn bunch(n: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    threading::joinall(&bunch_started(n, f)).unwrap();
}

/// Starts `f` in `n` threads without waiting for them.
pub(crate) fn bunch_started(n: usize, f: impl Fn(usize) + Send + Sync + 'static) -> Vec<Thread> {
    let f = Arc::new(f);
    let threads: Vec<Thread> = (0..n)
        .map(|i| {
            let f = Arc::clone(&f);
            Thread::new(move || f(i))
        })
        .collect();
    for t in &threads {
        t.start().unwrap();
    }
    threads
}

/// Polls `condition` until true (lock_tests' `sleeping_retry`), failing after 30 s.
pub(crate) fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 30 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Gives blocked threads time to block (lock_tests' `wait_threads_blocked`).
pub(crate) fn let_threads_block() {
    std::thread::sleep(Duration::from_millis(20));
}

/// `assertTimeout`: at least the timeout elapsed (upper bounds are not checked: the
/// machine may be loaded).
pub(crate) fn assert_waited(elapsed: Duration, timeout: Duration) {
    assert!(elapsed + Duration::from_millis(1) >= timeout, "{elapsed:?} < {timeout:?}");
}

/// What BaseLockTests needs of a lock.
pub(crate) trait LockApi: Send + Sync + 'static {
    /// The crate's error type (`threading::Error`, `multiprocessing::Error`).
    type Error: std::fmt::Debug;
    fn make() -> Self;
    fn acquire(&self);
    fn try_acquire(&self) -> bool;
    fn acquire_timeout(&self, timeout: Duration) -> bool;
    fn release(&self) -> Result<(), Self::Error>;
    /// `with lock:` — acquire, run, release.
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// `Lock`, `RLock` and (ConditionAsRLockTests) a default `Condition` share these names, in
/// `threading` and in `multiprocessing`. `with` is Python's `with lock:` — through the
/// guard (`lock()`) where the type has one, else acquire/release.
macro_rules! impl_lock_api {
    (guard, $error:ty; $($lock:ty),*) => {$(
        impl_lock_api!(@impl $error, $lock, |lock: &$lock, f| {
            let _held = lock.lock();
            f()
        });
    )*};
    (acquire_release, $error:ty; $($lock:ty),*) => {$(
        impl_lock_api!(@impl $error, $lock, |lock: &$lock, f| {
            lock.acquire();
            let result = f();
            lock.release().unwrap();
            result
        });
    )*};
    (@impl $error:ty, $lock:ty, |$this:ident: &$_t:ty, $f:ident| $with:block) => {
        impl LockApi for $lock {
            type Error = $error;
            fn make() -> Self {
                <$lock>::new()
            }
            fn acquire(&self) {
                <$lock>::acquire(self)
            }
            fn try_acquire(&self) -> bool {
                <$lock>::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> bool {
                <$lock>::acquire_timeout(self, timeout)
            }
            fn release(&self) -> Result<(), $error> {
                <$lock>::release(self)
            }
            fn with<R>(&self, $f: impl FnOnce() -> R) -> R {
                let $this = self;
                $with
            }
        }
    };
}
#[allow(unused_imports, reason = "used by multiprocessing's tests, which include this file")]
pub(crate) use impl_lock_api;

impl_lock_api!(guard, Error; threading::Lock, threading::RLock, threading::Condition);

/// BaseLockTests.test_acquire_release
pub(crate) fn acquire_release<L: LockApi>() {
    let lock = L::make();
    lock.acquire();
    lock.release().unwrap();
}

/// BaseLockTests.test_try_acquire
pub(crate) fn try_acquire<L: LockApi>() {
    let lock = L::make();
    assert!(lock.try_acquire());
    lock.release().unwrap();
}

/// BaseLockTests.test_try_acquire_contended
pub(crate) fn try_acquire_contended<L: LockApi>() {
    let lock = Arc::new(L::make());
    lock.acquire();
    let results = Arc::new(AtomicUsize::new(0));
    let (l, r) = (Arc::clone(&lock), Arc::clone(&results));
    bunch(1, move |_| {
        if !l.try_acquire() {
            r.store(1, Ordering::SeqCst);
        }
    });
    assert_eq!(results.load(Ordering::SeqCst), 1, "contended try_acquire fails");
    lock.release().unwrap();
}

/// BaseLockTests.test_acquire_contended
pub(crate) fn acquire_contended<L: LockApi>() {
    let lock = Arc::new(L::make());
    lock.acquire();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (l, s, f) = (Arc::clone(&lock), Arc::clone(&started), Arc::clone(&finished));
    let threads = bunch_started(5, move |_| {
        s.fetch_add(1, Ordering::SeqCst);
        l.acquire();
        l.release().unwrap();
        f.fetch_add(1, Ordering::SeqCst);
    });
    wait_until(|| started.load(Ordering::SeqCst) == 5);
    let_threads_block();
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    lock.release().unwrap();
    threading::joinall(&threads).unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 5);
}

/// BaseLockTests.test_with
pub(crate) fn with_statement<L: LockApi>() {
    let lock = Arc::new(L::make());
    let l = Arc::clone(&lock);
    bunch(1, move |_| {
        l.with(|| ());
    });
    // The guard released it: another thread can take it now.
    let l = Arc::clone(&lock);
    bunch(1, move |_| {
        assert!(l.try_acquire());
        l.release().unwrap();
    });
}

/// BaseLockTests.test_timeout: zero and clamped huge timeouts are accepted; a timeout on
/// a held lock waits at least that long.
pub(crate) fn timeout<L: LockApi>() {
    let lock = Arc::new(L::make());
    assert!(lock.acquire_timeout(Duration::ZERO));
    lock.release().unwrap();
    assert!(lock.acquire_timeout(threading::TIMEOUT_MAX));
    lock.release().unwrap();
    assert!(lock.acquire_timeout(Duration::MAX), "clamped, not an error");
    lock.release().unwrap();
    lock.acquire();
    let l = Arc::clone(&lock);
    bunch(1, move |_| {
        let began = Instant::now();
        assert!(!l.acquire_timeout(Duration::from_millis(50)));
        assert_waited(began.elapsed(), Duration::from_millis(50));
    });
    lock.release().unwrap();
}

/// A bounded stress: threads increment a plain counter under the lock; no update lost.
pub(crate) fn stress_mutual_exclusion<L: LockApi>() {
    struct Shared<L> {
        lock: L,
        inside: AtomicUsize,
        count: AtomicUsize,
    }
    let shared = Arc::new(Shared {
        lock: L::make(),
        inside: AtomicUsize::new(0),
        count: AtomicUsize::new(0),
    });
    let s = Arc::clone(&shared);
    bunch(4, move |i| {
        for round in 0..2_000 {
            let body = || {
                assert_eq!(s.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                let c = s.count.load(Ordering::Relaxed);
                s.count.store(c + 1, Ordering::Relaxed);
                s.inside.fetch_sub(1, Ordering::SeqCst);
            };
            match (i + round) % 3 {
                0 => s.lock.with(body),
                1 => {
                    while !s.lock.try_acquire() {
                        std::hint::spin_loop();
                    }
                    body();
                    s.lock.release().unwrap();
                }
                _ => {
                    while !s.lock.acquire_timeout(Duration::from_micros(50)) {}
                    body();
                    s.lock.release().unwrap();
                }
            }
        }
    });
    assert_eq!(shared.count.load(Ordering::SeqCst), 8_000);
}

/// Instantiates the BaseLockTests bodies for one lock type.
macro_rules! base_lock_tests {
    ($module:ident, $lock:ty) => {
        mod $module {
            use super::super::lock_tests as t;

            #[test]
            fn acquire_release() {
                t::acquire_release::<$lock>();
            }
            #[test]
            fn try_acquire() {
                t::try_acquire::<$lock>();
            }
            #[test]
            fn try_acquire_contended() {
                t::try_acquire_contended::<$lock>();
            }
            #[test]
            fn acquire_contended() {
                t::acquire_contended::<$lock>();
            }
            #[test]
            fn with_statement() {
                t::with_statement::<$lock>();
            }
            #[test]
            fn timeout() {
                t::timeout::<$lock>();
            }
            #[test]
            fn stress_mutual_exclusion() {
                t::stress_mutual_exclusion::<$lock>();
            }
        }
    };
}
pub(crate) use base_lock_tests;
