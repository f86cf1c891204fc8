//! `Condition`. Source: lock_tests.py ConditionTests (test_acquire, test_unacquired_wait,
//! test_unacquired_notify, test_notify, test_timeout, test_waitfor, test_waitfor_timeout).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use threading::{Condition, Lock, RLock};

use super::lock_tests::{assert_waited, bunch, bunch_started, let_threads_block, wait_until};

#[test]
fn default_condition_is_reentrant_and_lock_condition_shares_its_lock() {
    // test_acquire
    let cond = Condition::new();
    cond.acquire();
    cond.acquire();
    cond.release().unwrap();
    cond.release().unwrap();
    let cond = Condition::with_lock(Lock::new());
    cond.acquire();
    assert!(!cond.try_acquire(), "a Lock-based condition is not reentrant");
    cond.release().unwrap();
    {
        let _held = cond.lock();
        assert!(!cond.try_acquire());
    }
    assert!(cond.try_acquire());
    cond.release().unwrap();
}

#[test]
fn wait_and_notify_need_the_lock() {
    // test_unacquired_wait / test_unacquired_notify
    for cond in
        [Condition::new(), Condition::with_lock(Lock::new()), Condition::with_rlock(RLock::new())]
    {
        assert_eq!(cond.wait().unwrap_err().to_string(), "cannot wait on un-acquired lock");
        assert_eq!(
            cond.wait_timeout(Duration::ZERO).unwrap_err().to_string(),
            "cannot wait on un-acquired lock"
        );
        assert_eq!(cond.notify(1).unwrap_err().to_string(), "cannot notify on un-acquired lock");
        assert_eq!(cond.notify_all().unwrap_err().to_string(), "cannot notify on un-acquired lock");
        // CPython's wait_for tests the predicate first: a true one needs no wait.
        assert!(cond.wait_for(|| true, None).unwrap());
        assert_eq!(
            cond.wait_for(|| false, None).unwrap_err().to_string(),
            "cannot wait on un-acquired lock"
        );
    }
}

#[test]
fn wait_releases_every_rlock_level_and_restores_them() {
    let cond = Arc::new(Condition::with_rlock(RLock::new()));
    cond.acquire();
    cond.acquire();
    let c = Arc::clone(&cond);
    let notifier = bunch_started(1, move |_| {
        // Gets the lock only because wait() released both levels.
        let _held = c.lock();
        c.notify(1).unwrap();
    });
    assert!(cond.wait_timeout(Duration::from_secs(30)).unwrap());
    // Both levels are back: two releases succeed, a third fails.
    cond.release().unwrap();
    cond.release().unwrap();
    assert!(cond.release().is_err());
    threading::joinall(&notifier).unwrap();
}

fn check_notify(cond: Arc<Condition>) {
    // lock_tests.ConditionTests._check_notify: FIFO wake-ups, no spurious ones.
    let n = 5;
    let phase = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(AtomicUsize::new(0));
    let results1: Arc<Mutex<Vec<(bool, usize)>>> = Arc::default();
    let results2: Arc<Mutex<Vec<(bool, usize)>>> = Arc::default();
    let (c, p, r, r1, r2) = (
        Arc::clone(&cond),
        Arc::clone(&phase),
        Arc::clone(&ready),
        Arc::clone(&results1),
        Arc::clone(&results2),
    );
    let threads = bunch_started(n, move |_| {
        c.acquire();
        r.fetch_add(1, Ordering::SeqCst);
        c.wait().unwrap();
        let result = (true, p.load(Ordering::SeqCst));
        c.release().unwrap();
        r1.lock().unwrap().push(result);
        c.acquire();
        r.fetch_add(1, Ordering::SeqCst);
        c.wait().unwrap();
        let result = (true, p.load(Ordering::SeqCst));
        c.release().unwrap();
        r2.lock().unwrap().push(result);
    });
    wait_until(|| ready.load(Ordering::SeqCst) >= n && cond.waiting() == n);
    ready.store(0, Ordering::SeqCst);
    assert!(results1.lock().unwrap().is_empty());
    // Notify 3 threads first.
    cond.acquire();
    cond.notify(3).unwrap();
    phase.store(1, Ordering::SeqCst);
    cond.release().unwrap();
    wait_until(|| results1.lock().unwrap().len() >= 3);
    assert_eq!(*results1.lock().unwrap(), vec![(true, 1); 3]);
    assert!(results2.lock().unwrap().is_empty());
    wait_until(|| cond.waiting() == n);
    // Notify 5: the two still in their first wait come first (FIFO), then three.
    cond.acquire();
    cond.notify(5).unwrap();
    phase.store(2, Ordering::SeqCst);
    cond.release().unwrap();
    wait_until(|| results1.lock().unwrap().len() + results2.lock().unwrap().len() >= n + 3);
    assert_eq!(*results1.lock().unwrap(), [vec![(true, 1); 3], vec![(true, 2); 2]].concat());
    assert_eq!(*results2.lock().unwrap(), vec![(true, 2); 3]);
    wait_until(|| cond.waiting() == 2);
    cond.acquire();
    cond.notify_all().unwrap();
    phase.store(3, Ordering::SeqCst);
    cond.release().unwrap();
    threading::joinall(&threads).unwrap();
    assert_eq!(*results2.lock().unwrap(), [vec![(true, 2); 3], vec![(true, 3); 2]].concat());
}

#[test]
fn notify_wakes_waiters_in_fifo_order_without_spurious_wakeups() {
    // test_notify: twice, to check the internal state is still right.
    for cond in [Condition::new(), Condition::with_lock(Lock::new())] {
        let cond = Arc::new(cond);
        check_notify(Arc::clone(&cond));
        check_notify(cond);
    }
}

#[test]
fn notify_without_waiters_is_a_no_op() {
    let cond = Condition::new();
    let _held = cond.lock();
    cond.notify(3).unwrap();
    cond.notify_all().unwrap();
    assert_eq!(cond.waiting(), 0);
}

#[test]
fn wait_timeout_returns_false_after_the_timeout() {
    // test_timeout
    let cond = Arc::new(Condition::new());
    let results: Arc<Mutex<Vec<(Duration, bool)>>> = Arc::default();
    let (c, r) = (Arc::clone(&cond), Arc::clone(&results));
    bunch(5, move |_| {
        let _held = c.lock();
        let began = Instant::now();
        let notified = c.wait_timeout(Duration::from_millis(100)).unwrap();
        r.lock().unwrap().push((began.elapsed(), notified));
    });
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 5);
    for (elapsed, notified) in results.iter() {
        assert_waited(*elapsed, Duration::from_millis(100));
        assert!(!notified);
    }
    assert_eq!(cond.waiting(), 0, "timed-out waiters leave the queue");
}

#[test]
fn wait_for_returns_when_the_predicate_holds() {
    // test_waitfor
    let cond = Arc::new(Condition::new());
    let state = Arc::new(AtomicUsize::new(0));
    let (c, s) = (Arc::clone(&cond), Arc::clone(&state));
    let waiter = bunch_started(1, move |_| {
        let _held = c.lock();
        assert!(c.wait_for(|| s.load(Ordering::SeqCst) == 4, None).unwrap());
        assert_eq!(s.load(Ordering::SeqCst), 4);
    });
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(10));
        let _held = cond.lock();
        state.fetch_add(1, Ordering::SeqCst);
        cond.notify(1).unwrap();
    }
    threading::joinall(&waiter).unwrap();
}

#[test]
fn wait_for_times_out_with_one_deadline() {
    // test_waitfor_timeout: notified three times, but the predicate never holds.
    let cond = Arc::new(Condition::new());
    let state = Arc::new(AtomicUsize::new(0));
    let (c, s) = (Arc::clone(&cond), Arc::clone(&state));
    let waiter = bunch_started(1, move |_| {
        let _held = c.lock();
        let began = Instant::now();
        let result = c.wait_for(|| s.load(Ordering::SeqCst) == 4, Some(Duration::from_millis(100)));
        assert!(!result.unwrap());
        assert_waited(began.elapsed(), Duration::from_millis(100));
    });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        let _held = cond.lock();
        state.fetch_add(1, Ordering::SeqCst);
        cond.notify(1).unwrap();
    }
    threading::joinall(&waiter).unwrap();
}

#[test]
fn lock_condition_ownership_is_guessed_from_locked() {
    // CPYTHON.md §1.8 fidelity trap: over a plain Lock, "owned" means "held by anyone",
    // so a non-holder may notify while another thread holds the lock.
    let cond = Arc::new(Condition::with_lock(Lock::new()));
    cond.acquire();
    let c = Arc::clone(&cond);
    bunch(1, move |_| c.notify(1).unwrap());
    cond.release().unwrap();
    let_threads_block();
    assert!(format!("{cond:?}").starts_with("<Condition(<unlocked _thread.lock object"));
}
