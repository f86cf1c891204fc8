//! Every `threading` error message, produced by the real misuse and compared with CPython
//! 3.11's text (CPYTHON.md §1.10).

use threading::{Error, Thread};

#[test]
fn error_messages_are_cpythons_word_for_word() {
    let unstarted = Thread::new(|| {});
    let started = Thread::new(|| {});
    started.start().unwrap();
    let dummy = threading::current_thread(); // a libtest thread: Dummy-N
    let cases: Vec<(Error, &str)> = vec![
        (started.start().unwrap_err(), "threads can only be started once"),
        (unstarted.join().unwrap_err(), "cannot join thread before it is started"),
        (dummy.join().unwrap_err(), "cannot join a dummy thread"),
        (started.set_daemon(true).unwrap_err(), "cannot set daemon status of active thread"),
        (threading::stack_size(Some(1000)).unwrap_err(), "size not valid: 1000 bytes"),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
    started.join().unwrap();
}

#[test]
fn error_kinds_follow_the_python_exception_types() {
    let unstarted = Thread::new(|| {});
    assert!(matches!(unstarted.join(), Err(Error::RuntimeError(_))));
    assert!(matches!(threading::current_thread().join(), Err(Error::AssertionError(_))));
    assert!(matches!(threading::stack_size(Some(1)), Err(Error::ValueError(_))));
}

#[test]
fn joining_current_thread_is_an_error() {
    // test_threading.ThreadTests.test_joining_current_thread (from inside a started thread,
    // since libtest threads are dummies).
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Thread::new(move || {
        let me = threading::current_thread();
        tx.send(me.join().unwrap_err().to_string()).unwrap();
        tx.send(me.join_timeout(std::time::Duration::ZERO).unwrap_err().to_string()).unwrap();
    });
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(rx.recv().unwrap(), "cannot join current thread");
    assert_eq!(rx.recv().unwrap(), "cannot join current thread");
}

#[test]
fn public_types_are_send_and_sync() {
    // CPython's objects are shareable between threads; so are these (share with Arc or a
    // static). A compile-time check: this test fails to build if one is not.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Thread>();
    send_sync::<threading::Timer>();
    send_sync::<threading::Lock>();
    send_sync::<threading::RLock>();
    send_sync::<threading::Condition>();
    send_sync::<threading::Semaphore>();
    send_sync::<threading::BoundedSemaphore>();
    send_sync::<threading::Event>();
    send_sync::<threading::Barrier>();
    send_sync::<threading::Local<std::cell::Cell<u8>>>();
    send_sync::<Error>();
}
