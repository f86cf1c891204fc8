//! Generic bodies of CPython's `Lib/test/lock_tests.py` for semaphores (BaseSemaphoreTests,
//! SemaphoreTests, BoundedSemaphoreTests) and events (EventTests), written once over small
//! traits and run on `threading`'s and `multiprocessing`'s types (whose state machines are
//! one: `pyconc_core::sync`). Each body names its source test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock_tests::{assert_waited, bunch, bunch_started, let_threads_block, wait_until};

/// What BaseSemaphoreTests needs of a semaphore.
pub(crate) trait SemaphoreApi: Send + Sync + 'static {
    /// The crate's error type.
    type Error: std::fmt::Display + std::fmt::Debug;
    fn make(value: usize) -> Self;
    fn acquire(&self);
    fn try_acquire(&self) -> bool;
    fn acquire_timeout(&self, timeout: Duration) -> bool;
    /// One release that is allowed (a bounded semaphore's must succeed).
    fn release_one(&self);
    fn release_n(&self, n: usize) -> Result<(), Self::Error>;
    fn value(&self) -> usize;
}

/// What BoundedSemaphoreTests adds.
pub(crate) trait BoundedApi: SemaphoreApi {
    /// The crate's text for releasing past the bound.
    const TOO_MANY: &'static str;
    fn release(&self) -> Result<(), Self::Error>;
    fn bound(&self) -> usize;
}

/// What EventTests needs of an event.
pub(crate) trait EventApi: Send + Sync + 'static {
    fn make() -> Self;
    fn is_set(&self) -> bool;
    fn set(&self);
    fn clear(&self);
    fn wait(&self);
    fn wait_timeout(&self, timeout: Duration) -> bool;
}

/// Implements the traits for `Semaphore`/`BoundedSemaphore`/`Event` types of one crate.
macro_rules! impl_semaphore_event_api {
    ($error:ty, $too_many:expr; $sem:ty, $bounded:ty, $event:ty) => {
        impl SemaphoreApi for $sem {
            type Error = $error;
            fn make(value: usize) -> Self {
                <$sem>::new(value)
            }
            fn acquire(&self) {
                <$sem>::acquire(self)
            }
            fn try_acquire(&self) -> bool {
                <$sem>::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> bool {
                <$sem>::acquire_timeout(self, timeout)
            }
            fn release_one(&self) {
                <$sem>::release(self)
            }
            fn release_n(&self, n: usize) -> Result<(), $error> {
                <$sem>::release_n(self, n)
            }
            fn value(&self) -> usize {
                <$sem>::value(self)
            }
        }
        impl SemaphoreApi for $bounded {
            type Error = $error;
            fn make(value: usize) -> Self {
                <$bounded>::new(value)
            }
            fn acquire(&self) {
                <$bounded>::acquire(self)
            }
            fn try_acquire(&self) -> bool {
                <$bounded>::try_acquire(self)
            }
            fn acquire_timeout(&self, timeout: Duration) -> bool {
                <$bounded>::acquire_timeout(self, timeout)
            }
            fn release_one(&self) {
                <$bounded>::release(self).unwrap()
            }
            fn release_n(&self, n: usize) -> Result<(), $error> {
                <$bounded>::release_n(self, n)
            }
            fn value(&self) -> usize {
                <$bounded>::value(self)
            }
        }
        impl BoundedApi for $bounded {
            const TOO_MANY: &'static str = $too_many;
            fn release(&self) -> Result<(), $error> {
                <$bounded>::release(self)
            }
            fn bound(&self) -> usize {
                <$bounded>::bound(self)
            }
        }
        impl EventApi for $event {
            fn make() -> Self {
                <$event>::new()
            }
            fn is_set(&self) -> bool {
                <$event>::is_set(self)
            }
            fn set(&self) {
                <$event>::set(self)
            }
            fn clear(&self) {
                <$event>::clear(self)
            }
            fn wait(&self) {
                <$event>::wait(self)
            }
            fn wait_timeout(&self, timeout: Duration) -> bool {
                <$event>::wait_timeout(self, timeout)
            }
        }
    };
}
#[allow(unused_imports, reason = "used by multiprocessing's tests, which include this file")]
pub(crate) use impl_semaphore_event_api;

impl_semaphore_event_api!(
    threading::Error, "Semaphore released too many times";
    threading::Semaphore, threading::BoundedSemaphore, threading::Event
);

/// BaseSemaphoreTests.test_constructor / test_acquire
pub(crate) fn acquire_decrements_and_release_increments<S: SemaphoreApi>() {
    let sem = S::make(1);
    sem.acquire();
    sem.release_one();
    let sem = S::make(2);
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.value(), 0);
    sem.release_one();
    sem.release_one();
    assert_eq!(sem.value(), 2);
}

/// BaseSemaphoreTests.test_acquire_contended
pub(crate) fn contended_acquire_admits_one_thread_per_release<S: SemaphoreApi>() {
    let sem = Arc::new(S::make(7));
    sem.acquire();
    let acquired = Arc::new(AtomicUsize::new(0));
    let (s, a) = (Arc::clone(&sem), Arc::clone(&acquired));
    let threads = bunch_started(10, move |_| {
        s.acquire();
        a.fetch_add(1, Ordering::SeqCst);
    });
    wait_until(|| acquired.load(Ordering::SeqCst) == 6);
    let_threads_block();
    assert_eq!(acquired.load(Ordering::SeqCst), 6);
    sem.release_one();
    wait_until(|| acquired.load(Ordering::SeqCst) == 7);
    let_threads_block();
    assert_eq!(acquired.load(Ordering::SeqCst), 7);
    sem.release_n(3).unwrap();
    threading::joinall(&threads).unwrap();
    assert_eq!(acquired.load(Ordering::SeqCst), 10);
}

/// BaseSemaphoreTests.test_multirelease (on an unbounded semaphore)
pub(crate) fn release_n_wakes_n_waiters_and_rejects_zero<S: SemaphoreApi>() {
    let sem = Arc::new(S::make(0));
    assert_eq!(sem.release_n(0).unwrap_err().to_string(), "n must be one or more");
    let acquired = Arc::new(AtomicUsize::new(0));
    let (s, a) = (Arc::clone(&sem), Arc::clone(&acquired));
    let threads = bunch_started(5, move |_| {
        s.acquire();
        a.fetch_add(1, Ordering::SeqCst);
    });
    let_threads_block();
    sem.release_n(3).unwrap();
    wait_until(|| acquired.load(Ordering::SeqCst) == 3);
    let_threads_block();
    assert_eq!(acquired.load(Ordering::SeqCst), 3);
    sem.release_n(2).unwrap();
    threading::joinall(&threads).unwrap();
}

/// BaseSemaphoreTests.test_try_acquire / test_try_acquire_contended
pub(crate) fn try_acquire_never_waits<S: SemaphoreApi>() {
    let sem = Arc::new(S::make(2));
    assert!(sem.try_acquire());
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    let s = Arc::clone(&sem);
    bunch(5, move |_| assert!(!s.try_acquire()));
    sem.release_one();
    assert!(sem.try_acquire());
}

/// BaseSemaphoreTests.test_acquire_timeout
pub(crate) fn acquire_timeout_waits_then_gives_up<S: SemaphoreApi>() {
    let sem = S::make(2);
    assert!(sem.acquire_timeout(Duration::ZERO));
    assert!(sem.acquire_timeout(Duration::from_millis(5)));
    assert!(!sem.acquire_timeout(Duration::ZERO));
    let began = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(50)));
    assert_waited(began.elapsed(), Duration::from_millis(50));
    sem.release_one();
    assert!(sem.acquire_timeout(Duration::from_millis(50)));
    assert!(!sem.acquire_timeout(Duration::ZERO));
}

/// SemaphoreTests.test_release_unacquired
pub(crate) fn unbounded_semaphore_may_exceed_its_initial_value<S: SemaphoreApi>() {
    let sem = S::make(1);
    sem.release_one();
    sem.acquire();
    sem.acquire();
    sem.release_one();
    assert_eq!(sem.value(), 1);
}

/// BoundedSemaphoreTests.test_release_unacquired, test_BoundedSemaphore_limit
pub(crate) fn bounded_semaphore_refuses_to_exceed_and_changes_nothing<B: BoundedApi>() {
    let sem = B::make(3);
    assert_eq!(sem.release().unwrap_err().to_string(), B::TOO_MANY);
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.release_n(3).unwrap_err().to_string(), B::TOO_MANY);
    assert_eq!(sem.value(), 1, "all or nothing");
    sem.release_n(2).unwrap();
    assert_eq!(sem.value(), 3);
    assert_eq!(sem.release_n(0).unwrap_err().to_string(), "n must be one or more");
    assert_eq!(sem.bound(), 3);
}

/// A stress run of BaseSemaphoreTests.test_acquire_contended's invariant.
pub(crate) fn stress_never_admits_more_than_the_count<B: BoundedApi>() {
    let sem = Arc::new(B::make(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let (s, i) = (Arc::clone(&sem), Arc::clone(&inside));
    bunch(6, move |n| {
        for round in 0..2_000 {
            if (n + round) % 2 == 0 {
                s.acquire();
            } else {
                while !s.acquire_timeout(Duration::from_micros(100)) {}
            }
            assert!(i.fetch_add(1, Ordering::SeqCst) < 2, "more than 2 inside");
            i.fetch_sub(1, Ordering::SeqCst);
            s.release().unwrap();
        }
    });
    assert_eq!(sem.value(), 2);
}

/// EventTests.test_is_set
pub(crate) fn set_and_clear_change_is_set<E: EventApi>() {
    let evt = E::make();
    assert!(!evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
}

/// EventTests.test_notify (_check_notify), with and without timeouts
pub(crate) fn set_wakes_every_waiter<E: EventApi>() {
    let evt = Arc::new(E::make());
    let woken = Arc::new(AtomicUsize::new(0));
    let (e, w) = (Arc::clone(&evt), Arc::clone(&woken));
    let threads = bunch_started(5, move |i| {
        if i % 2 == 0 {
            e.wait();
        } else {
            assert!(e.wait_timeout(Duration::from_secs(60)));
        }
        w.fetch_add(1, Ordering::SeqCst);
    });
    let_threads_block();
    assert_eq!(woken.load(Ordering::SeqCst), 0);
    evt.set();
    threading::joinall(&threads).unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 5);
}

/// EventTests.test_timeout
pub(crate) fn wait_timeout_returns_the_flag<E: EventApi>() {
    let evt = Arc::new(E::make());
    let results: Arc<Mutex<Vec<(bool, Duration)>>> = Arc::default();
    let (e, r) = (Arc::clone(&evt), Arc::clone(&results));
    bunch(5, move |_| {
        assert!(!e.wait_timeout(Duration::ZERO));
        let began = Instant::now();
        let set = e.wait_timeout(Duration::from_millis(50));
        r.lock().unwrap().push((set, began.elapsed()));
    });
    for (set, elapsed) in results.lock().unwrap().iter() {
        assert!(!set);
        assert_waited(*elapsed, Duration::from_millis(50));
    }
    evt.set();
    assert!(evt.wait_timeout(Duration::ZERO));
}

/// EventTests.test_set_and_clear
pub(crate) fn waiters_woken_by_set_return_true_even_if_cleared_at_once<E: EventApi>() {
    let evt = Arc::new(E::make());
    let results: Arc<Mutex<Vec<bool>>> = Arc::default();
    let waiting = Arc::new(AtomicUsize::new(0));
    let (e, r, w) = (Arc::clone(&evt), Arc::clone(&results), Arc::clone(&waiting));
    let threads = bunch_started(5, move |_| {
        w.fetch_add(1, Ordering::SeqCst);
        let set = e.wait_timeout(Duration::from_secs(60));
        r.lock().unwrap().push(set);
    });
    wait_until(|| waiting.load(Ordering::SeqCst) == 5);
    let_threads_block();
    evt.set();
    evt.clear();
    threading::joinall(&threads).unwrap();
    assert_eq!(*results.lock().unwrap(), vec![true; 5]);
}

/// Ping-pong through two events many times: a lost wake-up would hang (bounded by the
/// timeout assertion).
pub(crate) fn stress_set_clear_rounds_lose_no_wakeup<E: EventApi>() {
    let ping = Arc::new(E::make());
    let pong = Arc::new(E::make());
    let (pi, po) = (Arc::clone(&ping), Arc::clone(&pong));
    let threads = bunch_started(1, move |_| {
        for _ in 0..2_000 {
            assert!(pi.wait_timeout(Duration::from_secs(30)));
            pi.clear();
            po.set();
        }
    });
    for _ in 0..2_000 {
        ping.set();
        assert!(pong.wait_timeout(Duration::from_secs(30)));
        pong.clear();
    }
    threading::joinall(&threads).unwrap();
}

/// Instantiates every body above for one crate's `Semaphore`, `BoundedSemaphore` and
/// `Event`.
macro_rules! semaphore_event_tests {
    ($module:ident; $sem:ty, $bounded:ty, $event:ty) => {
        mod $module {
            use super::super::semaphore_event_tests as t;

            #[test]
            fn acquire_decrements_and_release_increments() {
                t::acquire_decrements_and_release_increments::<$sem>();
                t::acquire_decrements_and_release_increments::<$bounded>();
            }
            #[test]
            fn contended_acquire_admits_one_thread_per_release() {
                t::contended_acquire_admits_one_thread_per_release::<$sem>();
            }
            #[test]
            fn release_n_wakes_n_waiters_and_rejects_zero() {
                t::release_n_wakes_n_waiters_and_rejects_zero::<$sem>();
            }
            #[test]
            fn try_acquire_never_waits() {
                t::try_acquire_never_waits::<$sem>();
                t::try_acquire_never_waits::<$bounded>();
            }
            #[test]
            fn acquire_timeout_waits_then_gives_up() {
                t::acquire_timeout_waits_then_gives_up::<$sem>();
                t::acquire_timeout_waits_then_gives_up::<$bounded>();
            }
            #[test]
            fn unbounded_semaphore_may_exceed_its_initial_value() {
                t::unbounded_semaphore_may_exceed_its_initial_value::<$sem>();
            }
            #[test]
            fn bounded_semaphore_refuses_to_exceed_and_changes_nothing() {
                t::bounded_semaphore_refuses_to_exceed_and_changes_nothing::<$bounded>();
            }
            #[test]
            fn stress_never_admits_more_than_the_count() {
                t::stress_never_admits_more_than_the_count::<$bounded>();
            }
            #[test]
            fn event_set_and_clear_change_is_set() {
                t::set_and_clear_change_is_set::<$event>();
            }
            #[test]
            fn event_set_wakes_every_waiter() {
                t::set_wakes_every_waiter::<$event>();
            }
            #[test]
            fn event_wait_timeout_returns_the_flag() {
                t::wait_timeout_returns_the_flag::<$event>();
            }
            #[test]
            fn event_waiters_woken_by_set_return_true_even_if_cleared_at_once() {
                t::waiters_woken_by_set_return_true_even_if_cleared_at_once::<$event>();
            }
            #[test]
            fn event_stress_set_clear_rounds_lose_no_wakeup() {
                t::stress_set_clear_rounds_lose_no_wakeup::<$event>();
            }
        }
    };
}
pub(crate) use semaphore_event_tests;
