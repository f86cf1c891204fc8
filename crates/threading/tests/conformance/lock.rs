//! `Lock`, `RLock` and a default `Condition` used as a lock. Source: lock_tests.py
//! BaseLockTests (through `lock_tests.rs`), LockTests, RLockTests, ConditionAsRLockTests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threading::{Lock, RLock, Thread};

use super::lock_tests::{base_lock_tests, bunch, let_threads_block, wait_until};

base_lock_tests!(base_lock, threading::Lock);
base_lock_tests!(base_rlock, threading::RLock);
base_lock_tests!(base_condition_as_rlock, threading::Condition);

#[test]
fn lock_repr_says_locked_or_unlocked() {
    // BaseLockTests.test_repr / test_locked_repr
    let lock = Lock::new();
    assert!(format!("{lock:?}").starts_with("<unlocked _thread.lock object at "));
    lock.acquire();
    assert!(format!("{lock:?}").starts_with("<locked _thread.lock object at "));
    lock.release().unwrap();
}

#[test]
fn lock_is_not_reentrant() {
    // LockTests.test_reacquire: the holder's second acquire blocks until another thread
    // releases.
    let lock = Arc::new(Lock::new());
    let phase = Arc::new(AtomicUsize::new(0));
    let (l, p) = (Arc::clone(&lock), Arc::clone(&phase));
    let t = Thread::new(move || {
        l.acquire();
        p.store(1, Ordering::SeqCst);
        l.acquire(); // blocks until the main thread releases
        p.store(2, Ordering::SeqCst);
    });
    t.start().unwrap();
    wait_until(|| phase.load(Ordering::SeqCst) == 1);
    let_threads_block();
    assert_eq!(phase.load(Ordering::SeqCst), 1);
    lock.release().unwrap();
    t.join().unwrap();
    assert_eq!(phase.load(Ordering::SeqCst), 2);
    lock.release().unwrap();
}

#[test]
fn lock_can_be_released_by_another_thread() {
    // LockTests.test_different_thread
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = Arc::clone(&lock);
    bunch(1, move |_| l.release().unwrap());
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    lock.release().unwrap();
}

#[test]
fn lock_is_usable_after_a_timed_out_acquire() {
    // LockTests.test_state_after_timeout
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l = Arc::clone(&lock);
    bunch(1, move |_| assert!(!l.acquire_timeout(Duration::from_millis(10))));
    lock.release().unwrap();
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    lock.release().unwrap();
}

#[test]
fn releasing_an_unlocked_lock_fails() {
    // BaseLockTests / test_releasing_unacquired_lock (test_threading.py)
    let lock = Lock::new();
    assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
}

#[test]
fn a_waiter_is_not_starved_by_a_releasing_reacquirer() {
    // The fairness policy (see lock.rs): a thread that releases and re-acquires in a
    // tight loop cannot keep a waiter out for long; the waiter gets the lock while the
    // hog is still looping.
    let lock = Arc::new(Lock::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (Arc::clone(&lock), Arc::clone(&stop));
    let hog = Thread::new(move || {
        while !s.load(Ordering::Relaxed) {
            l.acquire();
            std::hint::spin_loop();
            l.release().unwrap();
        }
    });
    hog.start().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let began = Instant::now();
        lock.acquire();
        worst = worst.max(began.elapsed());
        lock.release().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    eprintln!("worst of 20 acquires against a re-acquiring hog: {worst:?}");
    // Bounded: generous enough for a loaded 2-core machine, far below "forever".
    assert!(worst < Duration::from_secs(5), "waited {worst:?}");
}

#[test]
fn rlock_nests_for_its_owner() {
    // RLockTests.test_reacquire and test_recursion_count
    let lock = RLock::new();
    assert_eq!(lock.recursion_count(), 0);
    lock.acquire();
    lock.acquire();
    assert!(lock.try_acquire());
    assert_eq!(lock.recursion_count(), 3);
    assert!(lock.is_owned());
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.recursion_count(), 1);
    lock.release().unwrap();
    assert_eq!(lock.recursion_count(), 0);
    assert!(!lock.is_owned());
    assert!(!lock.locked());
}

#[test]
fn rlock_release_by_a_non_owner_fails() {
    // RLockTests.test_release_unacquired / test_different_thread / test__is_owned
    let lock = Arc::new(RLock::new());
    assert_eq!(lock.release().unwrap_err().to_string(), "cannot release un-acquired lock");
    let l = Arc::clone(&lock);
    let t = Thread::new(move || l.acquire());
    t.start().unwrap();
    t.join().unwrap();
    assert!(lock.locked(), "the dead owner keeps it locked, as in CPython");
    assert!(!lock.is_owned());
    assert_eq!(lock.recursion_count(), 0);
    assert_eq!(lock.release().unwrap_err().to_string(), "cannot release un-acquired lock");
}

#[test]
fn rlock_repr_shows_owner_and_count() {
    let lock = RLock::new();
    assert!(format!("{lock:?}").starts_with("<unlocked _thread.RLock object owner=0 count=0 at "));
    lock.acquire();
    lock.acquire();
    let repr = format!("{lock:?}");
    assert!(
        repr.starts_with(&format!(
            "<locked _thread.RLock object owner={} count=2 at ",
            threading::get_ident()
        )),
        "{repr}"
    );
    lock.release().unwrap();
    lock.release().unwrap();
}
