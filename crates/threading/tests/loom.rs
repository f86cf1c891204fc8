//! loom models of the primitives' state machines: every interleaving of a few threads is
//! explored. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p pyconc-threading --test loom --release`
//! (`.ci/run` does). Under `cfg(loom)` the atomics, mutexes and futex words of the
//! synchronisation core are loom's (`pyconc_core::sync::primitive` and its `WaitWord`), so
//! these models cover the `Event` and semaphore state machines that `multiprocessing`'s
//! cross-process types run too.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use threading::{Barrier, Event, Lock, Semaphore};

#[test]
fn event_set_wakes_a_waiter_and_is_never_lost() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let e = Arc::clone(&event);
        let waiter = thread::spawn(move || e.wait());
        event.set();
        waiter.join().unwrap();
        assert!(event.is_set());
    });
}

#[test]
fn event_set_wakes_every_waiter() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let e = Arc::clone(&event);
                thread::spawn(move || e.wait())
            })
            .collect();
        event.set();
        for w in waiters {
            w.join().unwrap();
        }
    });
}

#[test]
fn semaphore_never_admits_more_than_its_count() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (s, i) = (Arc::clone(&sem), Arc::clone(&inside));
                thread::spawn(move || {
                    s.acquire();
                    assert_eq!(i.fetch_add(1, Ordering::SeqCst), 0);
                    i.fetch_sub(1, Ordering::SeqCst);
                    s.release();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn semaphore_release_wakes_a_sleeping_acquirer() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let s = Arc::clone(&sem);
        let acquirer = thread::spawn(move || s.acquire());
        sem.release();
        acquirer.join().unwrap();
        assert_eq!(sem.value(), 0);
    });
}

#[test]
fn lock_excludes_and_hands_over() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (l, i) = (Arc::clone(&lock), Arc::clone(&inside));
                thread::spawn(move || {
                    l.acquire();
                    assert_eq!(i.fetch_add(1, Ordering::SeqCst), 0);
                    i.fetch_sub(1, Ordering::SeqCst);
                    l.release().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(!lock.locked());
    });
}

#[test]
fn barrier_generations_do_not_mix() {
    // Two threads pass a 2-party barrier twice: each cycle gives indices {0, 1}, and
    // nobody of the second cycle is counted in the first.
    loom::model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let b = Arc::clone(&barrier);
        let other = thread::spawn(move || {
            let first = b.wait().unwrap();
            let second = b.wait().unwrap();
            (first, second)
        });
        let first = barrier.wait().unwrap();
        let second = barrier.wait().unwrap();
        let (o1, o2) = other.join().unwrap();
        assert_eq!(first + o1, 1);
        assert_eq!(second + o2, 1);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

#[test]
fn condition_notify_wakes_a_waiter_for_a_predicate() {
    loom::model(|| {
        let cond = Arc::new(threading::Condition::with_lock(Lock::new()));
        let flag = Arc::new(AtomicUsize::new(0));
        let (c, f) = (Arc::clone(&cond), Arc::clone(&flag));
        let notifier = thread::spawn(move || {
            let _held = c.lock();
            f.store(1, Ordering::Relaxed);
            c.notify_all().unwrap();
        });
        {
            let _held = cond.lock();
            assert!(cond.wait_for(|| flag.load(Ordering::Relaxed) == 1, None).unwrap());
        }
        notifier.join().unwrap();
    });
}
