//! `Event`. Source: lock_tests.py EventTests: test_is_set, test_notify, test_timeout and
//! test_set_and_clear are shared with `multiprocessing` (`semaphore_event_tests.rs`,
//! instantiated in `semaphore.rs`); test_repr is here.

use threading::Event;

#[test]
fn repr_says_set_or_unset() {
    // test_repr
    let evt = Event::new();
    assert!(format!("{evt:?}").ends_with(": unset>"));
    evt.set();
    let repr = format!("{evt:?}");
    assert!(repr.starts_with("<threading.Event at ") && repr.ends_with(": set>"), "{repr}");
}
