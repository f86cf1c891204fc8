//! Panics in threads and `excepthook`. Source: test_threading.py ExceptHookTests
//! (test_excepthook, test_custom_excepthook, test_custom_excepthook_fail). The default
//! hook's stderr output is checked in `tests/exit.rs` through an example binary.

use std::sync::{Arc, Mutex};

use threading::{ExceptHookArgs, Thread};

#[test]
fn a_panicking_thread_calls_the_hook_and_ends_normally() {
    let _settings = super::global_settings();
    let seen: Arc<Mutex<Vec<ExceptHookArgs>>> = Arc::default();
    let log = Arc::clone(&seen);
    threading::set_excepthook(move |args| log.lock().unwrap().push(args.clone()));
    let t = Thread::builder().name("excepthook thread").target(|| panic!("run failed"));
    t.start().unwrap();
    t.join().expect("a panic is never propagated to join()");
    assert!(!t.is_alive());
    let t2 = Thread::new(|| std::panic::panic_any(42_u8));
    t2.start().unwrap();
    t2.join().unwrap();
    threading::set_excepthook(threading::excepthook);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].thread.as_ref(), Some(&t));
    assert_eq!(seen[0].message, "run failed");
    let location = seen[0].location.as_ref().expect("location recorded");
    assert!(location.file.ends_with("excepthook.rs"), "{location}");
    assert!(location.line > 0);
    assert_eq!(seen[1].message, "Box<dyn Any>");
}

#[test]
fn a_panicking_hook_does_not_kill_the_thread_or_the_process() {
    // test_custom_excepthook_fail: the hook's own failure is reported, the thread ends.
    let _settings = super::global_settings();
    threading::set_excepthook(|_| panic!("threading_hook failed"));
    let t = Thread::new(|| panic!("original"));
    t.start().unwrap();
    t.join().unwrap();
    threading::set_excepthook(threading::excepthook);
    let after = Thread::new(|| {});
    after.start().unwrap();
    after.join().unwrap();
}
