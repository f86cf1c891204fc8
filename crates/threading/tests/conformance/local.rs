//! `Local`. Source: test_threading_local.py (test_local_refs, test_derived,
//! test_threading_local / _test_one_class), plus `with`'s thread-exit drop and its edges.

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

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_value_reached_through_with_is_dropped_when_its_thread_exits() {
    // test_local_refs: n threads each store a value; once they ended, their values are
    // gone (CPython: n-1 or n of them, its pure-Python local keeps the last one; here all).
    for n in [20, 50, 100] {
        let drops = Arc::new(AtomicUsize::new(0));
        let local: Arc<Local<Counted>> = Arc::new(Local::new());
        for _ in 0..n {
            let (l, d) = (Arc::clone(&local), Arc::clone(&drops));
            let t = threading::Thread::new(move || {
                l.with(|| Counted(Arc::clone(&d)), |_| {});
            });
            t.start().unwrap();
            t.join().unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), n, "every thread's value went with it");
        assert!(local.is_empty());
    }
}

#[test]
fn with_sees_the_same_value_on_every_call_of_a_thread() {
    // test_derived: each thread sets its value and reads back its own.
    let local: Arc<Local<Cell<usize>>> = Arc::new(Local::new());
    let l = Arc::clone(&local);
    bunch(10, move |i| {
        l.with(|| Cell::new(0), |x| x.set(i));
        std::thread::yield_now();
        assert_eq!(l.with(|| Cell::new(999), Cell::get), i);
    });
    assert!(local.is_empty());
}

#[test]
fn a_value_set_in_one_thread_is_not_seen_in_another() {
    // _test_one_class: f1 sets the value and waits; f2 must not see it.
    let local: Arc<Local<Cell<u32>>> = Arc::new(Local::new());
    let (set, release) = (Arc::new(threading::Event::new()), Arc::new(threading::Event::new()));
    let (l, s, r) = (Arc::clone(&local), Arc::clone(&set), Arc::clone(&release));
    let t1 = threading::Thread::new(move || {
        l.with(|| Cell::new(1), |_| {});
        s.set();
        r.wait();
    });
    t1.start().unwrap();
    set.wait();
    let l = Arc::clone(&local);
    let t2 = threading::Thread::new(move || {
        assert_eq!(l.with(|| Cell::new(2), Cell::get), 2, "not the first thread's value");
    });
    t2.start().unwrap();
    t2.join().unwrap();
    assert_eq!(local.len(), 1, "only the first thread's value is left");
    release.set();
    t1.join().unwrap();
    assert!(local.is_empty());
}

#[test]
fn a_value_also_reached_through_get_or_outlives_its_thread() {
    let drops = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Counted>> = Arc::new(Local::new());
    let (l, d) = (Arc::clone(&local), Arc::clone(&drops));
    let t = threading::Thread::new(move || {
        l.with(|| Counted(Arc::clone(&d)), |_| {});
        let _ = l.get(); // a plain &T now exists: kept until the Local drops
    });
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(local.len(), 1);
    drop(local);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn memory_stays_bounded_by_the_live_threads_however_many_come_and_go() {
    let local: Arc<Local<Vec<u8>>> = Arc::new(Local::new());
    for _ in 0..20 {
        let l = Arc::clone(&local);
        bunch(10, move |_| {
            l.with(|| vec![0; 1024], |v| assert_eq!(v.len(), 1024));
        });
        assert!(local.is_empty(), "200 threads came and went; none left a value");
    }
}

#[test]
fn a_thread_exiting_after_its_local_was_dropped_is_harmless() {
    let drops = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Counted>> = Arc::new(Local::new());
    let (l, d) = (Arc::clone(&local), Arc::clone(&drops));
    let (stored, go) = (Arc::new(threading::Event::new()), Arc::new(threading::Event::new()));
    let (s, g) = (Arc::clone(&stored), Arc::clone(&go));
    let t = threading::Thread::new(move || {
        l.with(|| Counted(Arc::clone(&d)), |_| {});
        drop(l);
        s.set();
        g.wait();
    });
    t.start().unwrap();
    stored.wait();
    drop(local); // the last handle: every value goes now
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    go.set();
    t.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1, "not dropped twice");
}

#[test]
fn a_values_destructor_may_use_the_local_again() {
    /// Uses the Local from its destructor when it has one.
    struct Reenter(Option<Arc<Local<Reenter>>>, Arc<AtomicUsize>);
    impl Drop for Reenter {
        fn drop(&mut self) {
            if let Some(local) = self.0.take() {
                // During the thread's exit: the call gets a value of its own.
                local.with(|| Reenter(None, Arc::clone(&self.1)), |_| {});
            }
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Reenter>> = Arc::new(Local::new());
    let (l, d) = (Arc::clone(&local), Arc::clone(&drops));
    let t = threading::Thread::new(move || {
        let inner = Arc::clone(&l);
        l.with(|| Reenter(Some(inner), Arc::clone(&d)), |_| {});
    });
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the value and the one made in its drop");
    assert!(local.is_empty());
}
