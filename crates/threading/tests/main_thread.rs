//! Tests that must run on the process's real main thread, in a process of their own:
//! exact thread counts, daemon inheritance from the main thread, `shutdown()`, and
//! `fork()`. libtest would run them on worker threads among other tests, so this target
//! has its own `main` (`harness = false`) and runs the cases in order.
//!
//! Sources: test_threading.py ThreadTests (test_daemon_param, test_enumerate_after_join,
//! test_is_alive_after_fork, test_main_thread_after_fork_from_nonmain_thread,
//! test_dummy_thread_after_fork, test_3_join_in_forked_from_thread, test_main_thread).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use threading::Thread;

fn main() {
    let cases: [(&str, fn()); 6] = [
        ("main_thread_is_the_caller_and_counts_once", main_thread_is_the_caller_and_counts_once),
        ("threads_made_by_main_are_not_daemonic", threads_made_by_main_are_not_daemonic),
        ("counts_follow_start_and_join_exactly", counts_follow_start_and_join_exactly),
        ("shutdown_joins_non_daemon_threads_only", shutdown_joins_non_daemon_threads_only),
        ("fork_from_main_keeps_only_the_main_thread", fork_from_main_keeps_only_the_main_thread),
        (
            "fork_from_a_worker_makes_it_the_main_thread",
            fork_from_a_worker_makes_it_the_main_thread,
        ),
    ];
    let mut passed = 0;
    for (name, case) in cases {
        print!("test {name} ... ");
        case();
        println!("ok");
        passed += 1;
    }
    println!("{passed} passed, 0 failed");
}

fn main_thread_is_the_caller_and_counts_once() {
    // test_main_thread: main_thread() is current_thread() in the main thread.
    let main = threading::main_thread();
    assert_eq!(threading::current_thread(), main);
    assert_eq!(main.name(), "MainThread");
    assert_eq!(main.ident(), Some(threading::get_ident()));
    assert_eq!(main.native_id(), Some(threading::get_native_id()));
    assert_eq!(threading::active_count(), 1);
    assert_eq!(threading::enumerate(), vec![main.clone()]);
    assert_eq!(main.join().unwrap_err().to_string(), "cannot join current thread");
    // From another thread, main_thread() is still the process's first thread.
    let t = Thread::new(move || {
        assert_eq!(threading::main_thread(), main);
        assert_ne!(threading::current_thread(), main);
    });
    t.start().unwrap();
    t.join().unwrap();
}

fn threads_made_by_main_are_not_daemonic() {
    // test_daemon_param: daemon=None inherits the main thread's False.
    assert!(!Thread::new(|| {}).daemon());
    let t = Thread::builder().daemon(true).target(|| assert!(Thread::new(|| {}).daemon()));
    t.start().unwrap();
    t.join().unwrap();
}

fn counts_follow_start_and_join_exactly() {
    // test_enumerate_after_join and active_count == len(enumerate()), in insertion order.
    let gate = Arc::new(Barrier::new(4));
    let threads: Vec<Thread> = (0..3)
        .map(|_| {
            let gate = Arc::clone(&gate);
            Thread::new(move || {
                gate.wait();
            })
        })
        .collect();
    for (i, t) in threads.iter().enumerate() {
        t.start().unwrap();
        assert_eq!(threading::active_count(), i + 2);
    }
    let mut expected = vec![threading::main_thread()];
    expected.extend(threads.iter().cloned());
    assert_eq!(threading::enumerate(), expected);
    gate.wait();
    threading::joinall(&threads).unwrap();
    assert_eq!(threading::active_count(), 1);
}

fn shutdown_joins_non_daemon_threads_only() {
    let daemon =
        Thread::builder().daemon(true).target(|| std::thread::sleep(Duration::from_secs(3600)));
    let worker = Thread::new(|| std::thread::sleep(Duration::from_millis(100)));
    daemon.start().unwrap();
    worker.start().unwrap();
    let began = Instant::now();
    threading::shutdown();
    assert!(!worker.is_alive());
    assert!(began.elapsed() >= Duration::from_millis(90));
    assert!(daemon.is_alive(), "daemon threads are not waited for");
}

/// Forks; the child runs `check` and exits with 0 if it returned, 1 if it panicked.
fn in_forked_child(check: impl FnOnce()) {
    // SAFETY: the child only runs `check` and then `_exit`s; the threading registry was
    // made consistent for it by the fork handlers, which is what these tests check.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_ok();
        // SAFETY: ends the child at once, without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
}

fn fork_from_main_keeps_only_the_main_thread() {
    // test_is_alive_after_fork / test_dummy_thread_after_fork: other threads are stopped in
    // the child, enumerate() has one element, joining a vanished thread returns at once.
    let base = threading::active_count(); // the main thread and the sleeping daemon
    let hold = Arc::new(Barrier::new(2));
    let inside = Arc::clone(&hold);
    // Daemonic, so that a failed assertion cannot leave the process waiting for it.
    let other = Thread::builder().daemon(true).target(move || {
        inside.wait();
    });
    other.start().unwrap();
    let dummy_gate = Arc::new(Barrier::new(2));
    let dummy_inside = Arc::clone(&dummy_gate);
    let foreign = std::thread::spawn(move || {
        let _ = threading::current_thread(); // registers a dummy
        dummy_inside.wait();
        dummy_inside.wait();
    });
    dummy_gate.wait();
    assert_eq!(threading::active_count(), base + 2);
    let other_in_child = other.clone();
    in_forked_child(move || {
        assert_eq!(threading::active_count(), 1);
        assert_eq!(threading::enumerate(), vec![threading::main_thread()]);
        assert_eq!(threading::current_thread(), threading::main_thread());
        assert!(!other_in_child.is_alive());
        assert!(other_in_child.join_timeout(Duration::from_secs(5)).unwrap());
        other_in_child.join().unwrap();
        assert_eq!(threading::main_thread().native_id(), Some(threading::get_native_id()));
        // Threads can be started in the child.
        let t = Thread::new(|| {});
        t.start().unwrap();
        t.join().unwrap();
    });
    hold.wait();
    other.join().unwrap();
    dummy_gate.wait();
    foreign.join().unwrap();
}

fn fork_from_a_worker_makes_it_the_main_thread() {
    // test_main_thread_after_fork_from_nonmain_thread: the child's main thread is the
    // forking worker (named like it), and the old main thread is stopped and joinable.
    let t = Thread::builder().name("Thread-1 (func)").target(|| {
        let me = threading::current_thread();
        let old_main = threading::main_thread();
        in_forked_child(move || {
            let main = threading::main_thread();
            assert_eq!(main, me);
            assert_eq!(main.name(), "Thread-1 (func)");
            assert_eq!(main.ident(), Some(threading::get_ident()));
            assert_eq!(threading::current_thread().ident(), Some(threading::get_ident()));
            assert_eq!(threading::enumerate(), vec![me.clone()]);
            assert!(!old_main.is_alive());
            old_main.join().unwrap(); // test_3_join_in_forked_from_thread: does not block
        });
    });
    t.start().unwrap();
    t.join().unwrap();
}
