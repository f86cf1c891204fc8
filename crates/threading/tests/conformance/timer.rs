//! `Timer`. Source: test_threading.py TimerTests and CPYTHON.md §1.3 (cancel before start,
//! while waiting, after the call).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threading::{Thread, Timer};

#[test]
fn timer_calls_the_function_once_after_the_interval() {
    let calls = Arc::new(AtomicUsize::new(0));
    let theirs = Arc::clone(&calls);
    let began = Instant::now();
    let t = Timer::new(Duration::from_millis(50), move || {
        theirs.fetch_add(1, Ordering::SeqCst);
    });
    t.start().unwrap();
    t.join().unwrap();
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(t.finished());
    assert_eq!(t.interval(), Duration::from_millis(50));
}

#[test]
fn cancel_while_waiting_ends_the_wait_and_never_calls() {
    let calls = Arc::new(AtomicUsize::new(0));
    let theirs = Arc::clone(&calls);
    let t = Timer::new(Duration::from_secs(30), move || {
        theirs.fetch_add(1, Ordering::SeqCst);
    });
    t.start().unwrap();
    t.cancel();
    // The 30 s wait ends at once; a generous bound, only to catch a wait that ignores cancel.
    assert!(t.join_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(t.cancelled());
}

#[test]
fn cancel_before_start_makes_the_started_timer_end_at_once() {
    let t = Timer::new(Duration::from_secs(30), || panic!("must not run"));
    t.cancel();
    t.start().unwrap();
    assert!(t.join_timeout(Duration::from_secs(10)).unwrap());
}

#[test]
fn cancel_after_the_call_has_no_effect() {
    let t = Timer::new(Duration::ZERO, || {});
    t.start().unwrap();
    t.join().unwrap();
    t.cancel();
    t.cancel();
    assert!(t.finished());
    assert!(!t.cancelled(), "too late: the function had run");
}

#[test]
fn cancel_races_never_call_after_cancel_returned() {
    // Timers whose interval expires around the moment cancel() is called. Exactly one side
    // wins: either cancel() stopped the timer (then the function is never called, not even
    // later), or the timer had claimed the call first (then it runs exactly once).
    let mut cancelled = 0;
    for i in 0..300u64 {
        let calls = Arc::new(AtomicUsize::new(0));
        let theirs = Arc::clone(&calls);
        let t = Timer::new(Duration::from_micros(i % 60), move || {
            theirs.fetch_add(1, Ordering::SeqCst);
        });
        t.start().unwrap();
        std::thread::sleep(Duration::from_micros(30));
        t.cancel();
        let won = t.cancelled();
        t.join().unwrap();
        let total = calls.load(Ordering::SeqCst);
        if won {
            assert_eq!(total, 0, "called after cancel() stopped the timer");
            cancelled += 1;
        } else {
            assert_eq!(total, 1, "the claimed call runs exactly once");
        }
    }
    assert!(cancelled > 0, "some cancels must win the race");
}

#[test]
fn timer_is_a_thread_named_thread_n_without_suffix() {
    let t = Timer::new(Duration::ZERO, || {});
    let name = t.name();
    assert!(name.starts_with("Thread-") && !name.contains(' '), "{name}");
    let as_thread: &Thread = &t;
    assert!(!as_thread.is_alive());
    t.set_daemon(true).unwrap();
    t.start().unwrap();
    assert_eq!(t.start().unwrap_err().to_string(), "threads can only be started once");
    t.join().unwrap();
    assert!(format!("{t:?}").starts_with("Timer"));
}
