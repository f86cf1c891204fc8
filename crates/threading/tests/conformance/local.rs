//! `Local`. Source: test_threading_local.py (per-thread values, many locals and threads).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use threading::Local;

use super::lock_tests::bunch;

#[test]
fn each_thread_sees_its_own_value() {
    // test_threading_local: a value set in one thread is invisible in others.
    let local: Arc<Local<Cell<usize>>> = Arc::new(Local::new());
    local.get_or(|| Cell::new(100));
    let l = Arc::clone(&local);
    bunch(8, move |i| {
        assert!(l.get().is_none());
        let mine = l.get_or(|| Cell::new(i));
        mine.set(mine.get() * 10);
        assert_eq!(l.get().unwrap().get(), i * 10);
        assert_eq!(l.get_or(|| Cell::new(999)).get(), i * 10, "init runs once per thread");
    });
    assert_eq!(local.get().unwrap().get(), 100);
    assert_eq!(local.len(), 9);
}

#[test]
fn values_are_dropped_with_the_local() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Counted>> = Arc::new(Local::new());
    let (l, d) = (Arc::clone(&local), Arc::clone(&drops));
    bunch(6, move |_| {
        l.get_or(|| Counted(Arc::clone(&d)));
    });
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(local);
    assert_eq!(drops.load(Ordering::SeqCst), 6, "no value leaked");
}

#[test]
fn take_removes_the_callers_value() {
    let mut local: Local<String> = Local::new();
    local.get_or(|| "mine".to_owned());
    assert_eq!(local.take().as_deref(), Some("mine"));
    assert!(local.get().is_none());
    assert!(local.is_empty());
}

#[test]
fn many_locals_and_threads() {
    let locals: Arc<Vec<Local<usize>>> = Arc::new((0..50).map(|_| Local::new()).collect());
    let ls = Arc::clone(&locals);
    bunch(8, move |t| {
        for (i, local) in ls.iter().enumerate() {
            assert_eq!(*local.get_or(|| t * 1000 + i), t * 1000 + i);
        }
    });
    assert!(locals.iter().all(|l| l.len() == 8));
}
