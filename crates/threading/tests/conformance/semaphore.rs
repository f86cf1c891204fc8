//! `Semaphore` and `BoundedSemaphore`. Source: lock_tests.py BaseSemaphoreTests,
//! SemaphoreTests, BoundedSemaphoreTests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threading::{BoundedSemaphore, Semaphore};

use super::lock_tests::{assert_waited, bunch, bunch_started, let_threads_block, wait_until};

#[test]
fn acquire_decrements_and_release_increments() {
    // test_constructor / test_acquire / test_default_value
    let sem = Semaphore::new(1);
    sem.acquire();
    sem.release();
    let sem = Semaphore::new(2);
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.value(), 0);
    sem.release();
    sem.release();
    assert_eq!(Semaphore::default().value(), 1);
    assert_eq!(BoundedSemaphore::default().value(), 1);
}

#[test]
fn contended_acquire_admits_one_thread_per_release() {
    // test_acquire_contended
    let sem = Arc::new(Semaphore::new(7));
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
    sem.release();
    wait_until(|| acquired.load(Ordering::SeqCst) == 7);
    let_threads_block();
    assert_eq!(acquired.load(Ordering::SeqCst), 7);
    sem.release_n(3).unwrap();
    threading::joinall(&threads).unwrap();
    assert_eq!(acquired.load(Ordering::SeqCst), 10);
    assert_eq!(sem.value(), 0);
}

#[test]
fn release_n_wakes_n_waiters_and_rejects_zero() {
    // test_multirelease
    let sem = Arc::new(Semaphore::new(0));
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

#[test]
fn try_acquire_never_waits() {
    // test_try_acquire / test_try_acquire_contended
    let sem = Arc::new(Semaphore::new(2));
    assert!(sem.try_acquire());
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    let s = Arc::clone(&sem);
    bunch(5, move |_| assert!(!s.try_acquire()));
    sem.release();
    assert!(sem.try_acquire());
}

#[test]
fn acquire_timeout_waits_then_gives_up() {
    // test_acquire_timeout
    let sem = Semaphore::new(2);
    assert!(sem.acquire_timeout(Duration::ZERO));
    assert!(sem.acquire_timeout(Duration::from_millis(5)));
    assert!(!sem.acquire_timeout(Duration::ZERO));
    let began = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(50)));
    assert_waited(began.elapsed(), Duration::from_millis(50));
    sem.release();
    assert!(sem.acquire_timeout(Duration::from_millis(50)));
    assert!(!sem.acquire_timeout(Duration::ZERO));
}

#[test]
fn with_statement_releases() {
    // test_with
    let sem = Semaphore::new(2);
    {
        let _a = sem.lock();
        let _b = sem.lock();
        assert!(!sem.try_acquire());
    }
    assert_eq!(sem.value(), 2);
}

#[test]
fn unbounded_semaphore_may_exceed_its_initial_value() {
    // SemaphoreTests.test_release_unacquired
    let sem = Semaphore::new(1);
    sem.release();
    sem.acquire();
    sem.acquire();
    sem.release();
    assert_eq!(sem.value(), 1);
}

#[test]
fn bounded_semaphore_refuses_to_exceed_and_changes_nothing() {
    // BoundedSemaphoreTests.test_release_unacquired, test_BoundedSemaphore_limit
    let sem = BoundedSemaphore::new(3);
    assert_eq!(sem.release().unwrap_err().to_string(), "Semaphore released too many times");
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.release_n(3).unwrap_err().to_string(), "Semaphore released too many times");
    assert_eq!(sem.value(), 1, "all or nothing");
    sem.release_n(2).unwrap();
    assert_eq!(sem.value(), 3);
    assert_eq!(sem.release_n(0).unwrap_err().to_string(), "n must be one or more");
    assert_eq!(sem.bound(), 3);
}

#[test]
fn reprs_are_cpythons() {
    // SemaphoreTests.test_repr / BoundedSemaphoreTests.test_repr
    let sem = Semaphore::new(3);
    let repr = format!("{sem:?}");
    assert!(repr.starts_with("<threading.Semaphore at ") && repr.ends_with(": value=3>"), "{repr}");
    let sem = BoundedSemaphore::new(3);
    sem.acquire();
    let repr = format!("{sem:?}");
    assert!(
        repr.starts_with("<threading.BoundedSemaphore at ") && repr.ends_with(": value=2/3>"),
        "{repr}"
    );
}

#[test]
fn stress_never_admits_more_than_the_count() {
    let sem = Arc::new(BoundedSemaphore::new(2));
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
