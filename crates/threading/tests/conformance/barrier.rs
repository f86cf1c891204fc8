//! `Barrier`. Source: lock_tests.py BarrierTests, whose bodies are in `barrier_tests.rs`
//! (instantiated here; the multiprocessing crate runs them on its `Barrier` too), and
//! test_repr here.

use std::sync::Arc;
use std::time::Duration;

use threading::{Barrier, Error};

use super::barrier_tests::{BarrierApi, barrier_tests, impl_barrier_api};
use super::lock_tests::{bunch_started, wait_until};

impl_barrier_api!(threading::Barrier, threading::Error);
barrier_tests!(shared_bodies; threading::Barrier);

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
