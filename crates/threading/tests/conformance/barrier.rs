//! `Barrier`. Source: lock_tests.py BarrierTests (test_barrier, test_barrier_10,
//! test_wait_return, test_action, test_abort, test_reset, test_abort_and_reset,
//! test_timeout, test_default_timeout, test_single_thread, test_repr).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use threading::{Barrier, Error};

use super::lock_tests::{assert_waited, bunch, bunch_started, wait_until};

const N: usize = 5;
/// CPython uses 2 s; generous here because this 2-core machine runs tests in parallel.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn barrier() -> Arc<Barrier> {
    Arc::new(Barrier::new(N).with_timeout(DEFAULT_TIMEOUT))
}

fn is_broken(result: Result<usize, Error>) -> bool {
    matches!(result, Err(Error::BrokenBarrierError))
}

fn multipass(passes: usize) {
    // test_barrier / test_barrier_10: threads pass in lockstep.
    let b = barrier();
    let phase0 = Arc::new(AtomicUsize::new(0));
    let phase1 = Arc::new(AtomicUsize::new(0));
    let (bb, p0, p1) = (Arc::clone(&b), Arc::clone(&phase0), Arc::clone(&phase1));
    bunch(N, move |_| {
        for i in 0..passes {
            p0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(p1.load(Ordering::SeqCst), i * N);
            bb.wait().unwrap();
            p1.fetch_add(1, Ordering::SeqCst);
            assert_eq!(p0.load(Ordering::SeqCst), (i + 1) * N);
            bb.wait().unwrap();
        }
        assert_eq!(bb.n_waiting(), 0);
        assert!(!bb.broken());
    });
}

#[test]
fn threads_pass_in_lockstep() {
    multipass(1);
}

#[test]
fn barrier_is_reusable_for_ten_cycles() {
    multipass(10);
}

#[test]
fn wait_returns_distinct_arrival_indices() {
    // test_wait_return
    let b = barrier();
    let results: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (bb, r) = (Arc::clone(&b), Arc::clone(&results));
    bunch(N, move |_| {
        let index = bb.wait().unwrap();
        r.lock().unwrap().push(index);
    });
    let mut results = results.lock().unwrap().clone();
    results.sort_unstable();
    assert_eq!(results, (0..N).collect::<Vec<_>>());
}

#[test]
fn action_runs_once_before_anyone_is_released() {
    // test_action
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let b = Arc::new(Barrier::new(N).with_action(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let (bb, r) = (Arc::clone(&b), Arc::clone(&runs));
    bunch(N, move |_| {
        bb.wait().unwrap();
        assert_eq!(r.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_panicking_action_breaks_the_barrier() {
    let b = Arc::new(Barrier::new(3).with_action(|| panic!("action failed")));
    let broken = Arc::new(AtomicUsize::new(0));
    let (bb, br) = (Arc::clone(&b), Arc::clone(&broken));
    bunch(3, move |_| {
        if is_broken(bb.wait()) {
            br.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(broken.load(Ordering::SeqCst), 3);
    assert!(b.broken());
}

#[test]
fn abort_breaks_the_barrier_for_everyone() {
    // test_abort
    let b = barrier();
    let passed = Arc::new(AtomicUsize::new(0));
    let broken = Arc::new(AtomicUsize::new(0));
    let (bb, p, br) = (Arc::clone(&b), Arc::clone(&passed), Arc::clone(&broken));
    bunch(N, move |_| {
        // As in CPython, a thread still leaving the first cycle when abort() comes may
        // get the broken error from its first wait too.
        let outcome = bb.wait().and_then(|i| {
            if i == N / 2 {
                bb.abort();
                return Ok(None);
            }
            bb.wait().map(Some)
        });
        match outcome {
            Ok(Some(_)) => p.fetch_add(1, Ordering::SeqCst),
            Ok(None) => 0,
            Err(Error::BrokenBarrierError) => br.fetch_add(1, Ordering::SeqCst),
            Err(e) => panic!("{e}"),
        };
    });
    assert_eq!(passed.load(Ordering::SeqCst), 0);
    assert_eq!(broken.load(Ordering::SeqCst), N - 1);
    assert!(b.broken());
    assert!(is_broken(b.wait()), "stays broken for later waits");
}

#[test]
fn reset_frees_the_waiters_with_the_broken_error() {
    // test_reset
    let b = barrier();
    let (r1, r2, r3) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (bb, a1, a2, a3) = (Arc::clone(&b), Arc::clone(&r1), Arc::clone(&r2), Arc::clone(&r3));
    bunch(N, move |_| {
        let i = bb.wait().unwrap();
        if i == N / 2 {
            wait_until(|| bb.n_waiting() >= N - 1);
            bb.reset();
        } else {
            match bb.wait() {
                Ok(_) => a1.fetch_add(1, Ordering::SeqCst),
                Err(_) => a2.fetch_add(1, Ordering::SeqCst),
            };
        }
        bb.wait().unwrap();
        a3.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(r1.load(Ordering::SeqCst), 0);
    assert_eq!(r2.load(Ordering::SeqCst), N - 1);
    assert_eq!(r3.load(Ordering::SeqCst), N);
}

#[test]
fn a_broken_barrier_can_be_reset() {
    // test_abort_and_reset
    let b = barrier();
    let b2 = Arc::new(Barrier::new(N));
    let (r1, r2, r3) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (bb, bb2, a1, a2, a3) =
        (Arc::clone(&b), Arc::clone(&b2), Arc::clone(&r1), Arc::clone(&r2), Arc::clone(&r3));
    bunch(N, move |_| {
        let outcome = bb.wait().and_then(|i| {
            if i == N / 2 {
                bb.abort();
                return Ok(None);
            }
            bb.wait().map(Some)
        });
        match outcome {
            Ok(Some(_)) => a1.fetch_add(1, Ordering::SeqCst),
            Ok(None) => 0,
            Err(_) => a2.fetch_add(1, Ordering::SeqCst),
        };
        if bb2.wait().unwrap() == N / 2 {
            bb.reset();
        }
        bb2.wait().unwrap();
        bb.wait().unwrap();
        a3.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(r1.load(Ordering::SeqCst), 0);
    assert_eq!(r2.load(Ordering::SeqCst), N - 1);
    assert_eq!(r3.load(Ordering::SeqCst), N);
}

#[test]
fn a_timeout_breaks_the_barrier_for_all() {
    // test_timeout: one thread is late; the others' shorter timeout breaks it.
    let b = Arc::new(Barrier::new(N).with_timeout(Duration::from_millis(400)));
    let bb = Arc::clone(&b);
    bunch(N, move |_| {
        let i = bb.wait().unwrap();
        if i == N / 2 {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(is_broken(bb.wait_timeout(Duration::from_millis(100))));
    });
    assert!(b.broken());
}

#[test]
fn the_default_timeout_applies_to_wait() {
    // test_default_timeout
    let b = Arc::new(Barrier::new(2).with_timeout(Duration::from_millis(100)));
    let began = Instant::now();
    let bb = Arc::clone(&b);
    bunch(1, move |_| assert!(is_broken(bb.wait())));
    assert_waited(began.elapsed(), Duration::from_millis(100));
}

#[test]
fn a_single_party_barrier_never_waits() {
    // test_single_thread
    let b = Barrier::new(1);
    assert_eq!(b.wait().unwrap(), 0);
    assert_eq!(b.wait().unwrap(), 0);
    assert_eq!(b.parties(), 1);
}

#[test]
fn zero_parties_is_an_error_not_a_hang() {
    // CPython 3.12+ (gh-121474): parties must be > 0.
    assert_eq!(Barrier::try_new(0).unwrap_err().to_string(), "parties must be > 0");
    assert_eq!(Barrier::new(0).wait().unwrap_err().to_string(), "parties must be > 0");
}

#[test]
fn repr_shows_waiters_and_broken() {
    // test_repr
    let b = Arc::new(Barrier::new(3));
    assert!(format!("{b:?}").ends_with(": waiters=0/3>"));
    let bb = Arc::clone(&b);
    let threads = bunch_started(2, move |_| {
        bb.wait_timeout(Duration::from_secs(60)).unwrap();
    });
    wait_until(|| b.n_waiting() >= 2);
    let repr = format!("{b:?}");
    assert!(
        repr.starts_with("<threading.Barrier at ") && repr.ends_with(": waiters=2/3>"),
        "{repr}"
    );
    b.wait_timeout(Duration::from_secs(60)).unwrap();
    threading::joinall(&threads).unwrap();
    assert!(format!("{b:?}").ends_with(": waiters=0/3>"));
    b.abort();
    assert!(format!("{b:?}").ends_with(": broken>"));
    assert_eq!(Error::BrokenBarrierError.to_string(), "broken barrier");
}

#[test]
fn stress_many_generations_with_resets() {
    let b = Arc::new(Barrier::new(4));
    let bb = Arc::clone(&b);
    bunch(4, move |_| {
        for _ in 0..500 {
            bb.wait_timeout(Duration::from_secs(60)).unwrap();
        }
    });
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}
