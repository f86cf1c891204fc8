//! Generic bodies of CPython's `Lib/test/lock_tests.py` BarrierTests (test_barrier,
//! test_barrier_10, test_wait_return, test_action, test_abort, test_reset,
//! test_abort_and_reset, test_timeout, test_default_timeout, test_single_thread), written
//! once over a small trait and run on `threading::Barrier` and `multiprocessing::Barrier`
//! (CPython runs the same class on both: `_test_multiprocessing.py`'s `_TestBarrier` is
//! these tests again). Each body names its source test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock_tests::{assert_waited, bunch, wait_until};

/// CPython uses 2 s; generous here because this 2-core machine runs tests in parallel.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const N: usize = 5;

/// What BarrierTests needs of a barrier.
pub(crate) trait BarrierApi: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// The crate's error type.
    type Error: std::fmt::Display + std::fmt::Debug;
    fn make(parties: usize) -> Self;
    fn try_make(parties: usize) -> Result<Self, Self::Error>;
    fn with_action(self, action: impl Fn() + Send + Sync + 'static) -> Self;
    fn with_timeout(self, timeout: Duration) -> Self;
    fn wait(&self) -> Result<usize, Self::Error>;
    fn wait_timeout(&self, timeout: Duration) -> Result<usize, Self::Error>;
    fn reset(&self);
    fn abort(&self);
    fn parties(&self) -> usize;
    fn n_waiting(&self) -> usize;
    fn broken(&self) -> bool;
    /// Whether `error` is the crate's `BrokenBarrierError`.
    fn is_broken_error(error: &Self::Error) -> bool;
}

/// Implements [`BarrierApi`] for one crate's `Barrier`.
macro_rules! impl_barrier_api {
    ($barrier:ty, $error:ty) => {
        impl BarrierApi for $barrier {
            type Error = $error;
            fn make(parties: usize) -> Self {
                <$barrier>::new(parties)
            }
            fn try_make(parties: usize) -> Result<Self, $error> {
                <$barrier>::try_new(parties)
            }
            fn with_action(self, action: impl Fn() + Send + Sync + 'static) -> Self {
                <$barrier>::with_action(self, action)
            }
            fn with_timeout(self, timeout: Duration) -> Self {
                <$barrier>::with_timeout(self, timeout)
            }
            fn wait(&self) -> Result<usize, $error> {
                <$barrier>::wait(self)
            }
            fn wait_timeout(&self, timeout: Duration) -> Result<usize, $error> {
                <$barrier>::wait_timeout(self, timeout)
            }
            fn reset(&self) {
                <$barrier>::reset(self)
            }
            fn abort(&self) {
                <$barrier>::abort(self)
            }
            fn parties(&self) -> usize {
                <$barrier>::parties(self)
            }
            fn n_waiting(&self) -> usize {
                <$barrier>::n_waiting(self)
            }
            fn broken(&self) -> bool {
                <$barrier>::broken(self)
            }
            fn is_broken_error(error: &$error) -> bool {
                matches!(error, <$error>::BrokenBarrierError)
            }
        }
    };
}
pub(crate) use impl_barrier_api;

fn barrier<B: BarrierApi>() -> Arc<B> {
    Arc::new(B::make(N).with_timeout(DEFAULT_TIMEOUT))
}

fn is_broken<B: BarrierApi>(result: Result<usize, B::Error>) -> bool {
    result.as_ref().is_err_and(B::is_broken_error)
}

fn multipass<B: BarrierApi>(passes: usize) {
    // test_barrier / test_barrier_10: threads pass in lockstep.
    let b = barrier::<B>();
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

pub(crate) fn threads_pass_in_lockstep<B: BarrierApi>() {
    multipass::<B>(1);
}

pub(crate) fn barrier_is_reusable_for_ten_cycles<B: BarrierApi>() {
    multipass::<B>(10);
}

pub(crate) fn wait_returns_distinct_arrival_indices<B: BarrierApi>() {
    // test_wait_return
    let b = barrier::<B>();
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

pub(crate) fn action_runs_once_before_anyone_is_released<B: BarrierApi>() {
    // test_action
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let b = Arc::new(B::make(N).with_action(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let (bb, r) = (Arc::clone(&b), Arc::clone(&runs));
    bunch(N, move |_| {
        bb.wait().unwrap();
        assert_eq!(r.load(Ordering::SeqCst), 1);
    });
}

pub(crate) fn a_panicking_action_breaks_the_barrier<B: BarrierApi>() {
    let b = Arc::new(B::make(3).with_action(|| panic!("action failed")));
    let broken = Arc::new(AtomicUsize::new(0));
    let (bb, br) = (Arc::clone(&b), Arc::clone(&broken));
    bunch(3, move |_| {
        if is_broken::<B>(bb.wait()) {
            br.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(broken.load(Ordering::SeqCst), 3);
    assert!(b.broken());
}

pub(crate) fn abort_breaks_the_barrier_for_everyone<B: BarrierApi>() {
    // test_abort
    let b = barrier::<B>();
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
            Err(e) if B::is_broken_error(&e) => br.fetch_add(1, Ordering::SeqCst),
            Err(e) => panic!("{e}"),
        };
    });
    assert_eq!(passed.load(Ordering::SeqCst), 0);
    assert_eq!(broken.load(Ordering::SeqCst), N - 1);
    assert!(b.broken());
    assert!(is_broken::<B>(b.wait()), "stays broken for later waits");
}

pub(crate) fn reset_frees_the_waiters_with_the_broken_error<B: BarrierApi>() {
    // test_reset
    let b = barrier::<B>();
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

pub(crate) fn a_broken_barrier_can_be_reset<B: BarrierApi>() {
    // test_abort_and_reset
    let b = barrier::<B>();
    let b2 = Arc::new(B::make(N));
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

pub(crate) fn a_timeout_breaks_the_barrier_for_all<B: BarrierApi>() {
    // test_timeout: one thread is late; the others' shorter timeout breaks it.
    let b = Arc::new(B::make(N).with_timeout(Duration::from_millis(400)));
    let bb = Arc::clone(&b);
    bunch(N, move |_| {
        let i = bb.wait().unwrap();
        if i == N / 2 {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(is_broken::<B>(bb.wait_timeout(Duration::from_millis(100))));
    });
    assert!(b.broken());
}

pub(crate) fn the_default_timeout_applies_to_wait<B: BarrierApi>() {
    // test_default_timeout
    let b = Arc::new(B::make(2).with_timeout(Duration::from_millis(100)));
    let began = Instant::now();
    let bb = Arc::clone(&b);
    bunch(1, move |_| assert!(is_broken::<B>(bb.wait())));
    assert_waited(began.elapsed(), Duration::from_millis(100));
}

pub(crate) fn a_single_party_barrier_never_waits<B: BarrierApi>() {
    // test_single_thread
    let b = B::make(1);
    assert_eq!(b.wait().unwrap(), 0);
    assert_eq!(b.wait().unwrap(), 0);
    assert_eq!(b.parties(), 1);
}

pub(crate) fn zero_parties_is_an_error_not_a_hang<B: BarrierApi>() {
    // CPython 3.12+ (gh-121474): parties must be > 0.
    assert_eq!(B::try_make(0).unwrap_err().to_string(), "parties must be > 0");
    assert_eq!(B::make(0).wait().unwrap_err().to_string(), "parties must be > 0");
}

pub(crate) fn stress_many_generations_with_resets<B: BarrierApi>() {
    let b = Arc::new(B::make(4));
    let bb = Arc::clone(&b);
    bunch(4, move |_| {
        for _ in 0..500 {
            bb.wait_timeout(Duration::from_secs(60)).unwrap();
        }
    });
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.broken());
}

/// Instantiates every body above for one crate's `Barrier`.
macro_rules! barrier_tests {
    ($module:ident; $barrier:ty) => {
        mod $module {
            use super::super::barrier_tests as t;

            #[test]
            fn threads_pass_in_lockstep() {
                t::threads_pass_in_lockstep::<$barrier>();
            }
            #[test]
            fn barrier_is_reusable_for_ten_cycles() {
                t::barrier_is_reusable_for_ten_cycles::<$barrier>();
            }
            #[test]
            fn wait_returns_distinct_arrival_indices() {
                t::wait_returns_distinct_arrival_indices::<$barrier>();
            }
            #[test]
            fn action_runs_once_before_anyone_is_released() {
                t::action_runs_once_before_anyone_is_released::<$barrier>();
            }
            #[test]
            fn a_panicking_action_breaks_the_barrier() {
                t::a_panicking_action_breaks_the_barrier::<$barrier>();
            }
            #[test]
            fn abort_breaks_the_barrier_for_everyone() {
                t::abort_breaks_the_barrier_for_everyone::<$barrier>();
            }
            #[test]
            fn reset_frees_the_waiters_with_the_broken_error() {
                t::reset_frees_the_waiters_with_the_broken_error::<$barrier>();
            }
            #[test]
            fn a_broken_barrier_can_be_reset() {
                t::a_broken_barrier_can_be_reset::<$barrier>();
            }
            #[test]
            fn a_timeout_breaks_the_barrier_for_all() {
                t::a_timeout_breaks_the_barrier_for_all::<$barrier>();
            }
            #[test]
            fn the_default_timeout_applies_to_wait() {
                t::the_default_timeout_applies_to_wait::<$barrier>();
            }
            #[test]
            fn a_single_party_barrier_never_waits() {
                t::a_single_party_barrier_never_waits::<$barrier>();
            }
            #[test]
            fn zero_parties_is_an_error_not_a_hang() {
                t::zero_parties_is_an_error_not_a_hang::<$barrier>();
            }
            #[test]
            fn stress_many_generations_with_resets() {
                t::stress_many_generations_with_resets::<$barrier>();
            }
        }
    };
}
pub(crate) use barrier_tests;
