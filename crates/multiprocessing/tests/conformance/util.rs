//! `multiprocessing.util`: finalizers and after-fork hooks.
//! Ported from CPython 3.11's `_test_multiprocessing.py` (`_TestFinalize`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use multiprocessing::util::{Finalize, register_after_fork};
use multiprocessing::{Connection, Process, pipe};

use crate::support::serial;

/// Python: `_TestFinalize.test_finalize`. The child's finalizers run when called, when
/// their object goes, and at its exit by priority (equal priorities newest first); those
/// without an exit priority whose object outlives the process never run.
#[test]
fn finalizers_run_when_called_dropped_or_at_exit_by_priority() {
    let _serial = serial();
    let (ours, theirs) = pipe(false).unwrap();
    let theirs = Arc::new(theirs);
    let p = Process::new(move || {
        let send = |what: &'static str| {
            let conn: Arc<Connection> = Arc::clone(&theirs);
            move || conn.send(&what.to_owned()).unwrap()
        };
        // `del a`: the object goes, its finalizer runs.
        drop(Finalize::new(send("a"), None));
        let close_b = Finalize::new(send("b"), None);
        assert!(close_b.call());
        assert!(!close_b.call(), "already called");
        drop(close_b);
        // Objects that outlive the process (CPython exits without collecting them).
        std::mem::forget(Finalize::new(send("c"), None));
        std::mem::forget(Finalize::new(send("d10"), Some(1)));
        std::mem::forget(Finalize::new(send("d01"), Some(0)));
        std::mem::forget(Finalize::new(send("d02"), Some(0)));
        std::mem::forget(Finalize::new(send("d03"), Some(0)));
        let _ = Finalize::at_exit(send("e"), -10);
        let _ = Finalize::at_exit(send("STOP"), -100);
    });
    p.set_daemon(true).unwrap();
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let mut result = Vec::new();
    loop {
        let item: String = ours.recv().unwrap();
        if item == "STOP" {
            break;
        }
        result.push(item);
    }
    assert_eq!(result, ["a", "b", "d10", "d03", "d02", "d01", "e"]);
}

/// A finalizer of the parent never runs in a forked child (CPython clears the registry
/// in `_after_fork`), neither at the child's exit nor when the child drops a copy of its
/// handle; it still runs in the parent.
#[test]
fn a_parents_finalizer_does_not_run_in_a_forked_child() {
    let _serial = serial();
    let (ours, theirs) = pipe(false).unwrap();
    let theirs = Arc::new(theirs);
    let finalizer = |what: &'static str| {
        let conn = Arc::clone(&theirs);
        Finalize::new(move || conn.send(&what.to_owned()).unwrap(), Some(5))
    };
    let kept = finalizer("kept by the parent");
    let moved = finalizer("moved into the child");
    let conn = Arc::clone(&theirs);
    let p = Process::new(move || {
        assert!(!moved.still_active(), "not this process's");
        let moved = &moved;
        assert!(!moved.call());
        conn.send(&"child done".to_owned()).unwrap();
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    drop(p); // the parent's copy of the closure, and of `moved`, is gone by now
    let mut got = [ours.recv::<String>().unwrap(), ours.recv::<String>().unwrap()];
    got.sort();
    assert_eq!(got, ["child done", "moved into the child"], "sent once, by the parent");
    assert!(!ours.poll(Some(std::time::Duration::from_millis(50))).unwrap());
    drop(kept);
    assert_eq!(ours.recv::<String>().unwrap(), "kept by the parent");
}

/// Python: `util.register_after_fork` (as `Queue`, `Lock` and the managers use it): the
/// hook runs in a forked child for an object still alive, and not for one that is gone.
#[test]
fn after_fork_hooks_run_in_forked_children_for_live_objects() {
    let _serial = serial();
    let alive = Arc::new(AtomicU32::new(0));
    register_after_fork(&alive, |n| {
        n.fetch_add(1, Ordering::Relaxed);
    });
    let gone = Arc::new(AtomicU32::new(0));
    register_after_fork(&gone, |_| panic!("ran for an object that is gone"));
    drop(gone);
    let seen = Arc::clone(&alive);
    let p = Process::new(move || assert_eq!(seen.load(Ordering::Relaxed), 1));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(alive.load(Ordering::Relaxed), 0);
}

/// A forked child forgets the parent's finalizers without dropping what they captured:
/// dropping them would run the captures' destructors (a temporary directory's removal,
/// say) in the child — and in every child std's `Command` forks.
#[test]
fn a_forked_child_does_not_drop_what_a_parents_finalizer_captured() {
    struct SaysDropped(Arc<Connection>);
    impl Drop for SaysDropped {
        fn drop(&mut self) {
            let _ = self.0.send(&"dropped".to_owned());
        }
    }
    let _serial = serial();
    let (ours, theirs) = pipe(false).unwrap();
    let witness = SaysDropped(Arc::new(theirs));
    let finalizer = Finalize::at_exit(move || drop(witness), 50);
    let p = Process::new(|| {});
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(
        !ours.poll(Some(std::time::Duration::from_millis(100))).unwrap(),
        "the child dropped the parent's captures"
    );
    finalizer.cancel(); // the parent's: its captures are dropped here
    assert_eq!(ours.recv::<String>().unwrap(), "dropped");
}

/// A hook that registers another hook does not deadlock the child (the hooks run outside
/// the registry's lock); the new hook runs in later children.
#[test]
fn an_after_fork_hook_may_register_another() {
    let _serial = serial();
    let counter = Arc::new(AtomicU32::new(0));
    register_after_fork(&counter, |n| {
        n.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::new(AtomicU32::new(0));
        register_after_fork(&inner, |_| {});
    });
    let seen = Arc::clone(&counter);
    let p = Process::new(move || assert_eq!(seen.load(Ordering::Relaxed), 1));
    p.start().unwrap();
    assert!(p.join_timeout(std::time::Duration::from_secs(30)).unwrap(), "the child hung");
    assert_eq!(p.exitcode(), Some(0));
}
