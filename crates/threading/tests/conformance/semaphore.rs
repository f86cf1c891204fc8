//! `Semaphore` and `BoundedSemaphore`. Source: lock_tests.py BaseSemaphoreTests,
//! SemaphoreTests, BoundedSemaphoreTests: the bodies shared with `multiprocessing` are in
//! `semaphore_event_tests.rs` (instantiated here, with the events'); the rest here.

use threading::{BoundedSemaphore, Semaphore};

use super::semaphore_event_tests::semaphore_event_tests;

semaphore_event_tests!(shared_bodies; threading::Semaphore, threading::BoundedSemaphore, threading::Event);

#[test]
fn default_value_is_one() {
    // test_default_value
    assert_eq!(Semaphore::default().value(), 1);
    assert_eq!(BoundedSemaphore::default().value(), 1);
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
