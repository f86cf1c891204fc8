//! `Event`. Source: lock_tests.py EventTests (test_is_set, test_notify, test_timeout,
//! test_set_and_clear, test_repr).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use threading::Event;

use super::lock_tests::{assert_waited, bunch, bunch_started, let_threads_block, wait_until};

#[test]
fn set_and_clear_change_is_set() {
    // test_is_set
    let evt = Event::new();
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

#[test]
fn set_wakes_every_waiter() {
    // test_notify (_check_notify), with and without timeouts
    let evt = Arc::new(Event::new());
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

#[test]
fn wait_timeout_returns_the_flag() {
    // test_timeout
    let evt = Arc::new(Event::new());
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

#[test]
fn waiters_woken_by_set_return_true_even_if_cleared_at_once() {
    // test_set_and_clear
    let evt = Arc::new(Event::new());
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

#[test]
fn repr_says_set_or_unset() {
    // test_repr
    let evt = Event::new();
    assert!(format!("{evt:?}").ends_with(": unset>"));
    evt.set();
    let repr = format!("{evt:?}");
    assert!(repr.starts_with("<threading.Event at ") && repr.ends_with(": set>"), "{repr}");
}

#[test]
fn stress_set_clear_rounds_lose_no_wakeup() {
    // Ping-pong through two events many times: a lost wake-up would hang (bounded by
    // the timeout assertion).
    let ping = Arc::new(Event::new());
    let pong = Arc::new(Event::new());
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
