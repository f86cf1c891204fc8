//! `current_thread`, `enumerate`, `active_count`, dummy threads. Source: test_threading.py
//! (test_enumerate_after_join, test_foreign_thread, test_ident_of_no_threading_threads,
//! test_dummy_thread_after_fork's registry part, test_limbo_cleanup).

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use threading::Thread;

#[test]
fn started_threads_are_listed_until_joined() {
    // test_enumerate_after_join: a joined thread is never in enumerate().
    for _ in 0..50 {
        let gate = Arc::new(Barrier::new(2));
        let inside = Arc::clone(&gate);
        let t = Thread::new(move || {
            inside.wait();
        });
        let unstarted = Thread::new(|| {});
        t.start().unwrap();
        let listed = threading::enumerate();
        assert!(listed.contains(&t), "listed right after start()");
        assert!(!listed.contains(&unstarted), "never an unstarted thread");
        assert!(listed.contains(&threading::main_thread()));
        gate.wait();
        t.join().unwrap();
        assert!(!threading::enumerate().contains(&t));
    }
}

#[test]
fn current_thread_inside_a_started_thread_is_that_thread() {
    let (tx, rx) = mpsc::channel();
    let t =
        Thread::builder().name("me").target(move || tx.send(threading::current_thread()).unwrap());
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(rx.recv().unwrap(), t);
}

#[test]
fn foreign_threads_get_a_daemonic_dummy_thread_removed_at_exit() {
    // test_foreign_thread / test_ident_of_no_threading_threads: a thread not started by
    // threading gets a Dummy-N daemon thread that is alive, listed, and cannot be joined.
    // Unlike CPython 3.11 (like 3.13), it is unlisted when the foreign thread exits.
    let handle = std::thread::spawn(|| {
        let me = threading::current_thread();
        assert!(me.name().starts_with("Dummy-"), "{}", me.name());
        assert!(me.daemon());
        assert!(me.is_alive());
        assert_eq!(me.ident(), Some(threading::get_ident()));
        assert_eq!(me.native_id(), Some(threading::get_native_id()));
        assert_eq!(me, threading::current_thread(), "the same handle every time");
        assert!(threading::enumerate().contains(&me));
        assert_eq!(me.join().unwrap_err().to_string(), "cannot join a dummy thread");
        assert!(format!("{me:?}").starts_with("<_DummyThread(Dummy-"));
        me
    });
    let dummy = handle.join().unwrap();
    assert!(!dummy.is_alive());
    assert!(!threading::enumerate().contains(&dummy));
}

#[test]
fn active_count_is_the_length_of_enumerate() {
    // Under concurrency with other tests, counts move; the identity must hold for one
    // snapshot, and both include the main thread.
    assert!(threading::active_count() >= 1);
    let listed = threading::enumerate();
    assert_eq!(listed[0], threading::main_thread(), "main thread first");
}

#[test]
fn registry_stays_consistent_under_concurrent_start_and_exit() {
    // Many threads starting, asking for the registry and ending at once.
    let workers: Vec<Thread> = (0..8)
        .map(|_| {
            Thread::new(|| {
                for _ in 0..50 {
                    let t = Thread::new(|| {
                        let _ = threading::enumerate();
                        let _ = threading::current_thread().name();
                    });
                    t.start().unwrap();
                    assert!(threading::active_count() >= 2);
                    t.join().unwrap();
                    assert!(!threading::enumerate().contains(&t));
                }
            })
        })
        .collect();
    for w in &workers {
        w.start().unwrap();
    }
    assert!(threading::joinall_timeout(&workers, Duration::from_secs(120)).unwrap().is_empty());
    for w in &workers {
        assert!(!threading::enumerate().contains(w));
    }
}

#[test]
fn main_thread_is_named_main_thread_and_never_joinable_from_itself() {
    let main = threading::main_thread();
    assert_eq!(main.name(), "MainThread");
    assert!(!main.daemon());
    assert!(main.is_alive());
    assert_eq!(main.native_id(), Some(u64::from(std::process::id())));
    assert_ne!(main.ident(), Some(threading::get_ident()), "libtest runs tests off main");
    assert_eq!(main.start().unwrap_err().to_string(), "threads can only be started once");
    assert!(!main.join_timeout(Duration::from_millis(10)).unwrap(), "alive until exit");
}
