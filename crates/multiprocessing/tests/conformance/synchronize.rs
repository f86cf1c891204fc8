//! The cross-process primitives. Source: lock_tests.py BaseLockTests (the generic bodies
//! of the threading crate's `lock_tests.rs`, run here on `multiprocessing`'s types), and
//! `_test_multiprocessing.py` `_TestLock`, `_TestSemaphore`, `_TestCondition`,
//! `_TestEvent`, `_TestBarrier` for each start method; plus the robust-lock tests.

use std::time::{Duration, Instant};

use multiprocessing::{
    Barrier, BoundedSemaphore, Condition, Error, Event, Lock, Process, RLock, Semaphore,
    StartMethod,
};

use super::lock_tests::{LockApi, base_lock_tests, impl_lock_api};
use crate::each_start_method;
use crate::support::{self, call};

impl_lock_api!(acquire_release, Error; Lock, RLock, Condition);

base_lock_tests!(base_lock, multiprocessing::Lock);
base_lock_tests!(base_rlock, multiprocessing::RLock);
base_lock_tests!(base_condition_as_rlock, multiprocessing::Condition);

/// _TestLock.test_lock: release of an unlocked Lock.
#[test]
fn lock_released_too_many_times_says_so() {
    let lock = Lock::new();
    assert!(lock.try_acquire());
    assert!(!lock.try_acquire());
    lock.release().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert_eq!(err.to_string(), "semaphore or lock released too many times");
}

/// _TestLock.test_rlock.
#[test]
fn rlock_counts_levels_and_refuses_foreign_release() {
    let lock = RLock::new();
    lock.acquire();
    lock.acquire();
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, Error::AssertionError(_)));
    assert_eq!(err.to_string(), "attempt to release recursive lock not owned by thread");
    lock.acquire();
    let theirs = lock.clone();
    let from_other = std::thread::spawn(move || theirs.release().unwrap_err().to_string());
    assert_eq!(from_other.join().unwrap(), "attempt to release recursive lock not owned by thread");
    lock.release().unwrap();
}

/// _TestSemaphore.test_semaphore / test_bounded_semaphore.
#[test]
fn semaphores_count_and_bounded_ones_refuse_overflow() {
    let sem = Semaphore::new(2);
    assert!(sem.try_acquire() && sem.try_acquire() && !sem.try_acquire());
    sem.release();
    assert_eq!(sem.value(), 1);
    let began = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(10)));
    assert!(!sem.acquire_timeout(Duration::from_millis(100)));
    assert!(began.elapsed() >= Duration::from_millis(95));
    let bounded = BoundedSemaphore::new(1);
    assert_eq!(
        bounded.release().unwrap_err().to_string(),
        "semaphore or lock released too many times"
    );
    bounded.acquire();
    bounded.release().unwrap();
    assert_eq!(sem.release_n(0).unwrap_err().to_string(), "n must be one or more");
}

/// _TestCondition.test_notify / wait outside the lock.
#[test]
fn condition_checks_ownership_with_cpythons_messages() {
    let cond = Condition::new();
    assert_eq!(
        cond.wait().unwrap_err().to_string(),
        "must acquire() condition before using wait()"
    );
    assert_eq!(cond.notify(1).unwrap_err().to_string(), "lock is not owned");
    cond.acquire();
    let began = Instant::now();
    assert!(!cond.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(began.elapsed() >= Duration::from_millis(95));
    cond.release().unwrap();
}

/// _TestBarrier.test_abort / test_reset (single process).
#[test]
fn barrier_abort_and_reset() {
    let barrier = Barrier::new(2);
    let theirs = barrier.clone();
    let waiter = std::thread::spawn(move || theirs.wait());
    while barrier.n_waiting() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    barrier.abort();
    assert!(matches!(waiter.join().unwrap(), Err(Error::BrokenBarrierError)));
    assert!(barrier.broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrierError)));
    barrier.reset();
    assert!(!barrier.broken());
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(50)),
        Err(Error::BrokenBarrierError)
    ));
    assert_eq!(Barrier::try_new(0).unwrap_err().to_string(), "parties must be > 0");
}

// ---- across processes ----

fn hold_then_release((lock, done): (Lock, Event)) {
    lock.acquire();
    done.set();
    std::thread::sleep(Duration::from_millis(200));
    lock.release().unwrap();
}

fn child_waits_for_event((event, out): (Event, Semaphore)) {
    if event.wait_timeout(Duration::from_secs(20)) {
        out.release();
    }
}

fn notify_after_wait((cond, waiting): (Condition, Semaphore)) {
    cond.acquire();
    waiting.release();
    let notified = cond.wait_timeout(Duration::from_secs(20)).unwrap();
    cond.release().unwrap();
    std::process::exit(if notified { 0 } else { 3 });
}

fn barrier_party(barrier: Barrier) {
    let index = barrier.wait_timeout(Duration::from_secs(20)).unwrap();
    std::process::exit(10 + index as i32);
}

fn hold_forever((lock, rlock, held): (Lock, RLock, Event)) {
    lock.acquire();
    rlock.acquire();
    held.set();
    std::thread::sleep(Duration::from_secs(60));
}

each_start_method! {
    lock_is_shared_with_a_child => lock_is_shared_with_a_child;
    event_set_in_the_parent_wakes_the_child => event_set_in_the_parent_wakes_the_child;
    condition_notify_wakes_a_child => condition_notify_wakes_a_child;
    barrier_releases_parties_in_several_processes => barrier_releases_parties_in_several_processes;
    a_lock_whose_holder_is_killed_is_taken_over => a_lock_whose_holder_is_killed_is_taken_over;
}

/// _TestLock across processes: the parent waits while the child holds the lock.
fn lock_is_shared_with_a_child(method: StartMethod) {
    let lock = Lock::new();
    let held = Event::new();
    let p = call(method, hold_then_release, (lock.clone(), held.clone()));
    p.start().unwrap();
    held.wait();
    assert!(lock.locked());
    assert!(!lock.try_acquire());
    let began = Instant::now();
    lock.acquire();
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert!(!lock.owner_died());
    lock.release().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

/// _TestEvent.test_event.
fn event_set_in_the_parent_wakes_the_child(method: StartMethod) {
    let event = Event::new();
    let woke = Semaphore::new(0);
    let p = call(method, child_waits_for_event, (event.clone(), woke.clone()));
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!event.is_set());
    event.set();
    assert!(woke.acquire_timeout(Duration::from_secs(20)));
    p.join().unwrap();
}

/// _TestCondition.test_notify.
fn condition_notify_wakes_a_child(method: StartMethod) {
    let cond = Condition::new();
    let waiting = Semaphore::new(0);
    let p = call(method, notify_after_wait, (cond.clone(), waiting.clone()));
    p.start().unwrap();
    waiting.acquire();
    cond.acquire(); // the child is in wait() once it released the lock
    cond.notify(1).unwrap();
    cond.release().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "the child was notified");
}

/// _TestBarrier.test_barrier: three processes and the parent.
fn barrier_releases_parties_in_several_processes(method: StartMethod) {
    let barrier = Barrier::new(4);
    let procs: Vec<Process> =
        (0..3).map(|_| call(method, barrier_party, barrier.clone())).collect();
    for p in &procs {
        p.start().unwrap();
    }
    let mine = barrier.wait_timeout(Duration::from_secs(20)).unwrap();
    let mut indices: Vec<i32> = vec![mine as i32];
    for p in &procs {
        p.join().unwrap();
        indices.push(p.exitcode().unwrap() - 10);
    }
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2, 3]);
}

/// Beyond CPython: robust locks. The holder is SIGKILLed; the parent takes the Lock and
/// the RLock over, and learns that their owner died.
fn a_lock_whose_holder_is_killed_is_taken_over(method: StartMethod) {
    let lock = Lock::new();
    let rlock = RLock::new();
    let held = Event::new();
    let p = call(method, hold_forever, (lock.clone(), rlock.clone(), held.clone()));
    p.start().unwrap();
    held.wait();
    p.kill().unwrap();
    p.join().unwrap();
    let began = Instant::now();
    assert!(lock.acquire_timeout(Duration::from_secs(10)), "the Lock stayed wedged");
    assert!(lock.owner_died());
    lock.release().unwrap();
    assert!(!lock.owner_died());
    assert!(rlock.acquire_timeout(Duration::from_secs(10)), "the RLock stayed wedged");
    assert!(rlock.owner_died());
    rlock.release().unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
}

/// A primitive serialized outside a process start is refused with CPython's message.
#[test]
fn primitives_cannot_be_serialized_outside_a_process_start() {
    let _serial = support::serial();
    let (a, _b) = multiprocessing::pipe(true).unwrap();
    for (err, name) in [
        (a.send(&Lock::new()).unwrap_err(), "Lock"),
        (a.send(&Semaphore::new(1)).unwrap_err(), "Semaphore"),
        (a.send(&Event::new()).unwrap_err(), "Event"),
    ] {
        assert_eq!(
            err.to_string(),
            format!("{name} objects should only be shared between processes through inheritance")
        );
    }
}
