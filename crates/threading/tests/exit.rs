//! Process exit and panic output, checked by running the crate's example binaries as child
//! processes (their output, exit status and timing). Sources: test_threading.py
//! ThreadJoinOnShutdown (test_1_join_on_shutdown, test_join_nondaemon_on_shutdown),
//! test_4_daemon_threads, ExceptHookTests.test_excepthook, test_custom_excepthook_fail.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `target/<profile>/examples/NAME` (cargo test builds the examples).
fn run_example(name: &str, args: &[&str]) -> (Output, Duration) {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // deps/
    path.pop(); // <profile>/
    let exe: PathBuf = path.join("examples").join(name);
    let began = Instant::now();
    let output = Command::new(&exe)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    (output, began.elapsed())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn main_returning_waits_for_non_daemon_threads() {
    // test_join_nondaemon_on_shutdown
    let (out, took) = run_example("exit_nondaemon", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "main done\nworker done\n");
    assert!(took >= Duration::from_millis(300), "waited for the worker: {took:?}");
    assert_eq!(stderr(&out), "");
}

#[test]
fn main_returning_does_not_wait_for_daemon_threads() {
    // test_4_daemon_threads: rc 0, empty stderr, the daemon is abandoned.
    let (out, _) = run_example("exit_daemon", &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("heartbeat\n"));
    assert!(stdout(&out).contains("main done\n"));
    assert_eq!(stderr(&out), "");
}

#[test]
fn process_exit_in_main_waits_then_keeps_the_status() {
    // CPYTHON.md §1.6: sys.exit(5) with a running non-daemon thread -> its output, rc 5.
    let (out, took) = run_example("exit_code", &[]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), "main exits with 5\nworker done\n");
    assert!(took >= Duration::from_millis(300));
}

#[test]
fn process_exit_in_a_worker_waits_for_the_others_not_itself() {
    let (out, took) = run_example("exit_from_worker", &[]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "exiter calls exit(7)\nslow done\n");
    assert!(took >= Duration::from_millis(300));
}

#[test]
fn a_worker_exiting_while_main_exits_does_not_deadlock() {
    // Rust parks a second caller of exit() forever; the exit hook must not wait for it.
    let (out, _) = run_example("exit_race", &[]);
    assert_eq!(out.status.code(), Some(0), "main's status decides");
    assert_eq!(stdout(&out), "main done\nworker calls exit(3)\n");
}

#[test]
fn default_excepthook_prints_the_panic_once() {
    // test_excepthook: "Exception in thread NAME:" then the error; Rust's own
    // "thread '…' panicked" line must not appear as well. test_custom_excepthook_fail:
    // "Exception in threading.excepthook:" when the hook itself fails.
    let (out, _) = run_example("panic_in_thread", &[]);
    assert_eq!(out.status.code(), Some(0), "a thread's panic does not change the status");
    assert_eq!(stdout(&out), "main goes on after the thread's panic\nmain done\n");
    let err = stderr(&out);
    let expected_first = "Exception in thread excepthook thread:\npanicked at crates/threading/examples/panic_in_thread.rs:";
    assert!(err.starts_with(expected_first), "{err}");
    assert!(err.contains("\nrun failed\n"), "{err}");
    assert!(err.contains("Exception in threading.excepthook:\npanicked at "), "{err}");
    assert!(err.contains("\nthreading_hook failed\n"), "{err}");
    assert_eq!(err.matches("run failed").count(), 1, "printed once: {err}");
    assert!(!err.contains("' panicked at"), "no second report from Rust's hook: {err}");
}

#[test]
fn course_examples_run_with_fast_sleeps() {
    for (name, expected) in [
        ("counter_class", "Count10: counting 9\n"),
        ("counter_function", "Count5: counting 4\n"),
        ("timer", "hello after"),
        ("joinall", "joinall: all 5 threads ended"),
        ("helpers", "main (after join): enumerate() = [\"MainThread\"]"),
        ("daemon", "worker: done;"),
    ] {
        let (out, _) = run_example(name, &["--fast"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains(expected), "{name}: {}", stdout(&out));
    }
}

#[test]
fn daemon_demo_exits_when_the_active_worker_ends() {
    let (out, _) = run_example("daemon", &["--fast"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let (_, after) = text.split_once("the daemon is not waited for\n").expect("worker done");
    // The daemon may beat once more while the process exits, and nothing else happens.
    assert!(after.lines().all(|l| l.starts_with("heartbeat: beat")), "{text}");
    assert!(after.lines().count() <= 2, "{text}");
    assert!(text.contains("heartbeat: beat 1\n"));
}
