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
}

#[test]
fn cancel_races_never_call_after_cancel_returned() {
    // Timers whose interval expires around the moment cancel() is called: the function
    // may run only if it was claimed before cancel() returned, never after.
    use std::sync::atomic::AtomicBool;
    let late_calls = Arc::new(AtomicUsize::new(0));
    let mut cancelled = 0;
    for i in 0..300u64 {
        let cancel_returned = Arc::new(AtomicBool::new(false));
        let (returned, late) = (Arc::clone(&cancel_returned), Arc::clone(&late_calls));
        let called = Arc::new(AtomicBool::new(false));
        let was_called = Arc::clone(&called);
        let t = Timer::new(Duration::from_micros(i % 60), move || {
            was_called.store(true, Ordering::SeqCst);
            if returned.load(Ordering::SeqCst) {
                late.fetch_add(1, Ordering::SeqCst);
            }
        });
        t.start().unwrap();
        std::thread::sleep(Duration::from_micros(30));
        t.cancel();
        cancel_returned.store(true, Ordering::SeqCst);
        t.join().unwrap();
        if !called.load(Ordering::SeqCst) {
            cancelled += 1;
        }
    }
    assert_eq!(late_calls.load(Ordering::SeqCst), 0);
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
