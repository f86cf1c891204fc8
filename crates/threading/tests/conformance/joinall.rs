//! `joinall` / `joinall_timeout` (the Python course's exercise) and the `Joinable` trait.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use threading::{Joinable, Thread, Timer};

#[test]
fn joinall_waits_for_every_thread() {
    let threads: Vec<Thread> = (1..=4u64)
        .map(|n| Thread::new(move || std::thread::sleep(Duration::from_millis(10 * n))))
        .collect();
    for t in &threads {
        t.start().unwrap();
    }
    threading::joinall(&threads).unwrap();
    assert!(threads.iter().all(|t| !t.is_alive()));
}

#[test]
fn joinall_timeout_uses_one_deadline_for_all() {
    let release = Arc::new(Barrier::new(11));
    let blocked: Vec<Thread> = (0..10)
        .map(|_| {
            let release = Arc::clone(&release);
            Thread::new(move || {
                release.wait();
            })
        })
        .collect();
    let quick = Thread::new(|| {});
    let mut all = blocked.clone();
    all.push(quick.clone());
    for t in &all {
        t.start().unwrap();
    }
    quick.join().unwrap();
    let began = Instant::now();
    let alive = threading::joinall_timeout(&all, Duration::from_millis(100)).unwrap();
    let waited = began.elapsed();
    assert!(waited >= Duration::from_millis(100), "not before the deadline: {waited:?}");
    // One deadline: ten blocked threads cost one timeout (100 ms), not ten (1 s).
    assert!(waited < Duration::from_millis(900), "one shared deadline: {waited:?}");
    assert_eq!(alive, blocked);
    release.wait();
    assert!(threading::joinall_timeout(&all, Duration::from_secs(60)).unwrap().is_empty());
}

#[test]
fn joinall_mixes_handle_types_through_the_trait() {
    let t = Thread::new(|| {});
    let timer = Timer::new(Duration::from_millis(5), || {});
    t.start().unwrap();
    timer.start().unwrap();
    let handles: Vec<&dyn Joinable> = vec![&t, &timer];
    threading::joinall(handles.iter().copied()).unwrap();
    assert!(handles.iter().all(|h| !h.is_alive()));
    assert_eq!(handles[0].name(), t.name());
}

#[test]
fn joinall_reports_the_first_join_error() {
    let unstarted = Thread::new(|| {});
    let err = threading::joinall([&unstarted]).unwrap_err();
    assert_eq!(err.to_string(), "cannot join thread before it is started");
    let err = threading::joinall_timeout([&unstarted], Duration::ZERO).unwrap_err();
    assert_eq!(err.to_string(), "cannot join thread before it is started");
}
