//! `Process`, ported from `_TestProcess` in CPython 3.11's `_test_multiprocessing.py`.

use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multiprocessing::{Process, StartMethod, active_children, current_process, parent_process};

use crate::each_start_method;
use crate::support::{self, TempPath, append, call, process_ended};

// ---- child targets (plain fns, so that every start method can run them) ----

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn panic_with(message: String) {
    panic!("{message}")
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms))
}

fn nothing(_: ()) {}

/// test_process's `_test`: the child reports what it sees of itself and its parent.
fn report(path: String) {
    // Long enough for the parent to see it running.
    std::thread::sleep(Duration::from_millis(100));
    let me = current_process();
    let parent = parent_process().expect("a child has a parent");
    let mut stdin = String::new();
    let read = std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin);
    append(&path, &format!("name={}", me.name()));
    append(&path, &format!("daemon={}", me.daemon()));
    append(&path, &format!("pid={}", me.pid().unwrap()));
    append(&path, &format!("os_pid={}", std::process::id()));
    append(&path, &format!("alive={}", me.is_alive()));
    append(&path, &format!("parent_name={}", parent.name()));
    append(&path, &format!("parent_pid={}", parent.pid().unwrap()));
    append(&path, &format!("parent_alive={}", parent.is_alive()));
    append(&path, &format!("method={}", multiprocessing::get_start_method()));
    append(&path, &format!("stdin={:?}", read.map(|_| stdin)));
    append(&path, &format!("children={}", active_children().len()));
}

fn lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

each_start_method! {
    process_reports_itself_and_its_parent => process_reports_itself_and_its_parent;
    exit_codes_follow_the_childs_ending => exit_codes_follow_the_childs_ending;
    terminate_gives_minus_sigterm => terminate_gives_minus_sigterm;
    kill_gives_minus_sigkill => kill_gives_minus_sigkill;
    killed_right_after_start_is_reported => killed_right_after_start_is_reported;
    interrupt_gives_minus_sigint => interrupt_gives_minus_sigint;
    children_start_with_their_process_objects_authkey => children_start_with_their_process_objects_authkey;
    join_timeout_returns_false_while_running => join_timeout_returns_false_while_running;
    active_children_lists_running_children => active_children_lists_running_children;
    sentinel_becomes_readable_at_exit => sentinel_becomes_readable_at_exit;
    close_refuses_a_running_process_then_closes => close_refuses_a_running_process_then_closes;
    many_processes_start_and_end => many_processes_start_and_end;
    child_waits_for_its_non_daemon_threads => child_waits_for_its_non_daemon_threads;
    children_of_children_are_named_with_both_numbers => children_of_children_are_named_with_both_numbers;
    grandchild_sees_its_parent_die => grandchild_sees_its_parent_die;
    parent_asked_about_only_after_it_ended_is_not_alive => parent_asked_about_only_after_it_ended_is_not_alive;
    a_raw_fork_in_a_child_keeps_its_parent_process => a_raw_fork_in_a_child_keeps_its_parent_process;
    daemonic_child_cannot_start_children => daemonic_child_cannot_start_children;
    join_from_many_threads => join_from_many_threads;
    dropped_handle_child_is_reaped => dropped_handle_child_is_reaped;
    child_exit_function_terminates_its_daemonic_children => child_exit_function_terminates_its_daemonic_children;
    daemonic_child_started_from_a_short_lived_thread_survives_it => daemonic_child_started_from_a_short_lived_thread_survives_it;
    joinall_waits_for_threads_and_processes => joinall_waits_for_threads_and_processes;
}

/// test_process (and test_parent_process_attributes, test_current in the child).
fn process_reports_itself_and_its_parent(method: StartMethod) {
    let out = TempPath::new("report");
    let p = Process::builder().start_method(method).daemon(true).call(report, out.arg());
    assert!(p.daemon());
    assert_eq!(p.exitcode(), None);
    assert!(!p.is_alive());
    assert!(!active_children().contains(&p));
    p.start().unwrap();
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.pid(), p.ident());
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(!active_children().contains(&p));
    let seen = lines(&out.read());
    assert_eq!(seen["name"], p.name());
    assert_eq!(seen["daemon"], "true");
    assert_eq!(seen["pid"], p.pid().unwrap().to_string());
    assert_eq!(seen["os_pid"], seen["pid"]);
    assert_eq!(seen["alive"], "true");
    assert_eq!(seen["parent_name"], "MainProcess");
    assert_eq!(seen["parent_pid"], std::process::id().to_string());
    assert_eq!(seen["parent_alive"], "true");
    assert_eq!(seen["method"], method.name(), "check_context: the child reports its method");
    assert_eq!(seen["stdin"], r#"Ok("")"#, "stdin is /dev/null in a child");
    assert_eq!(seen["children"], "0", "a child starts with no children");
}

/// test_sys_exit, test_exitcode table of CPYTHON.md §2.2.
fn exit_codes_follow_the_childs_ending(method: StartMethod) {
    for (code, expected) in [(0, 0), (8, 8), (1, 1), (256, 0), (-1, 255)] {
        let p = call(method, exit_with, code);
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(expected), "exit({code})");
    }
    let p = call(method, panic_with, "boom".to_owned());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(1), "a panic");
    let p = call(method, nothing, ());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "a target that returns");
    let p = Process::builder().start_method(method).build();
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "no target");
}

/// test_terminate (`_kill_process(p.terminate)`): join(0) returns at once while the child
/// lives, then the exit code is -SIGTERM.
fn terminate_gives_minus_sigterm(method: StartMethod) {
    let p = call(method, sleep_ms, 60_000);
    p.start().unwrap();
    assert!(p.is_alive());
    let began = Instant::now();
    assert!(!p.join_timeout(Duration::ZERO).unwrap());
    assert!(began.elapsed() < Duration::from_secs(1));
    assert!(p.is_alive());
    p.terminate().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    assert!(format!("{p:?}").contains("exitcode=-SIGTERM"), "{p:?}");
    p.terminate().unwrap(); // a no-op once the exit code is known
    p.kill().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
}

/// test_kill.
fn kill_gives_minus_sigkill(method: StartMethod) {
    let p = call(method, sleep_ms, 60_000);
    p.start().unwrap();
    p.kill().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
}

/// Beyond CPython's tests: a child killed the moment `start()` returns is reported as
/// killed, every time (a fork-server child tells the server about itself before the
/// parent learns its pid, so its end is always reported; with the other order, a spare
/// preempted between the two — which a loaded machine does — was killed unreported).
fn killed_right_after_start_is_reported(method: StartMethod) {
    for _ in 0..100 {
        let p = call(method, sleep_ms, 60_000);
        p.start().unwrap();
        p.kill().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
    }
}

fn report_authkeys(path: String) {
    let mine = current_process().authkey();
    let parents = parent_process().unwrap().authkey();
    let grandchild = Process::new(|| {});
    append(&path, &format!("{mine:?}|{parents:?}|{:?}", grandchild.authkey()));
}

/// test_current / test_process's authkey parts: 32 random bytes in the main process; a
/// child starts with its Process object's key (its creator's unless set), and passes it on.
fn children_start_with_their_process_objects_authkey(method: StartMethod) {
    let mine = current_process().authkey();
    assert_eq!(mine.len(), 32);
    assert_ne!(mine, vec![0; 32]);
    let out = TempPath::new("authkey");
    let p = call(method, report_authkeys, out.arg());
    assert_eq!(p.authkey(), mine);
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(out.read().trim(), format!("{mine:?}|{mine:?}|{mine:?}"));
    let custom = b"another key".to_vec();
    let out = TempPath::new("authkey-set");
    let q = call(method, report_authkeys, out.arg());
    q.set_authkey(&custom);
    q.start().unwrap();
    q.join().unwrap();
    assert_eq!(out.read().trim(), format!("{custom:?}|{custom:?}|{custom:?}"));
    assert_eq!(current_process().authkey(), mine, "the parent's own key is unchanged");
}

/// test_interrupt (CPython 3.14): SIGINT, whose default action ends a Rust child (a
/// CPython child raises KeyboardInterrupt instead).
fn interrupt_gives_minus_sigint(method: StartMethod) {
    let p = call(method, sleep_ms, 60_000);
    assert_eq!(p.interrupt().unwrap_err().to_string(), "process not started");
    p.start().unwrap();
    p.interrupt().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGINT));
    p.interrupt().unwrap(); // a no-op once the exit code is known
}

/// test_process's join(timeout) parts; _TestProcess.test_join_timeout.
fn join_timeout_returns_false_while_running(method: StartMethod) {
    let p = call(method, sleep_ms, 400);
    p.start().unwrap();
    let began = Instant::now();
    assert!(!p.join_timeout(Duration::from_millis(100)).unwrap());
    let waited = began.elapsed();
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(p.is_alive());
    assert!(p.join_timeout(Duration::from_secs(30)).unwrap());
    assert!(p.join_timeout(Duration::ZERO).unwrap(), "repeatable after the end");
    assert_eq!(p.exitcode(), Some(0));
}

/// test_active_children.
fn active_children_lists_running_children(method: StartMethod) {
    let p = call(method, sleep_ms, 60_000);
    assert!(!active_children().contains(&p));
    p.start().unwrap();
    assert!(active_children().contains(&p));
    p.terminate().unwrap();
    p.join().unwrap();
    assert!(!active_children().contains(&p));
}

/// test_sentinel.
fn sentinel_becomes_readable_at_exit(method: StartMethod) {
    let p = call(method, sleep_ms, 300);
    assert_eq!(p.sentinel().unwrap_err().to_string(), "process not started");
    p.start().unwrap();
    let fd = p.sentinel().unwrap();
    // SAFETY: the process object owns the fd and lives through this test.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    assert!(!readable(fd, 0));
    assert!(readable(fd, 30_000));
    p.join().unwrap();
    assert!(readable(fd, 0));
}

/// A forked child that someone else reaped (here a raw `waitpid`, behind the library's
/// back): a join reports the lost status at once (CPython's `waitpid` fails with
/// `ChildProcessError` there too), whether it waits without the child's pidfd (not opened
/// yet) or with a timeout, and the sentinel, opened after the reap, is readable at once —
/// it does not name whatever process took the pid since.
#[test]
fn a_child_reaped_by_someone_else_joins_at_once_with_a_readable_sentinel() {
    let _serial = support::serial();
    let reaped_behind_our_back = || {
        let p = Process::builder().start_method(StartMethod::Fork).target(|| {});
        p.start().unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(p.pid().unwrap(), &mut status, 0) }, p.pid().unwrap());
        p
    };
    let untimed = reaped_behind_our_back();
    assert!(untimed.join().is_err());
    assert_eq!(untimed.exitcode(), None);
    let timed = reaped_behind_our_back();
    let fd = timed.sentinel().unwrap();
    // SAFETY: the process object owns the fd and lives through this test.
    assert!(readable(unsafe { BorrowedFd::borrow_raw(fd) }, 0));
    assert!(timed.join_timeout(Duration::from_secs(60)).is_err());
    assert_eq!(timed.exitcode(), None);
}

fn readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) == 1 }
}

/// test_close.
fn close_refuses_a_running_process_then_closes(method: StartMethod) {
    let p = call(method, sleep_ms, 60_000);
    p.start().unwrap();
    assert!(p.is_alive());
    let err = p.close().unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot close a process while it is still running. You should first call join() or terminate()."
    );
    p.terminate().unwrap();
    p.join().unwrap();
    p.close().unwrap();
    p.close().unwrap(); // idempotent
    assert!(!p.is_alive());
    assert_eq!(p.pid(), None);
    for err in [p.join().unwrap_err(), p.start().unwrap_err(), p.terminate().unwrap_err()] {
        assert_eq!(err.to_string(), "process object is closed");
    }
    assert_eq!(p.sentinel().unwrap_err().to_string(), "process object is closed");
    assert!(p.name().ends_with(&p.name()[p.name().len() - 1..]), "name stays readable");
    // An unstarted process can be closed too.
    call(method, nothing, ()).close().unwrap();
}

/// test_many_processes: some end on their own, some are terminated.
fn many_processes_start_and_end(method: StartMethod) {
    let n = if method == StartMethod::Fork { 20 } else { 10 };
    let procs: Vec<Process> =
        (0..n).map(|i| call(method, sleep_ms, if i % 2 == 0 { 10 } else { 60_000 })).collect();
    for p in &procs {
        p.start().unwrap();
    }
    for (i, p) in procs.iter().enumerate() {
        if i % 2 == 1 {
            p.terminate().unwrap();
        }
    }
    for (i, p) in procs.iter().enumerate() {
        p.join().unwrap();
        let expected = if i % 2 == 0 { 0 } else { -libc::SIGTERM };
        assert_eq!(p.exitcode(), Some(expected), "process {i}");
    }
}

fn thread_then_file(path: String) {
    // test_wait_for_threads: a non-daemon thread finishes after the target returned.
    threading::Thread::builder()
        .daemon(false)
        .start(move || {
            std::thread::sleep(Duration::from_millis(300));
            append(&path, "thread done");
        })
        .unwrap();
}

/// test_wait_for_threads.
fn child_waits_for_its_non_daemon_threads(method: StartMethod) {
    let out = TempPath::new("threads");
    let p = call(method, thread_then_file, out.arg());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(out.read(), "thread done\n", "join returned after the child's thread ended");
}

fn spawn_grandchildren(path: String) {
    append(&path, &current_process().name());
    let method = multiprocessing::get_start_method();
    for _ in 0..2 {
        let child = Process::builder()
            .start_method(method)
            .call(|path: String| append(&path, &current_process().name()), path.clone());
        child.start().unwrap();
        child.join().unwrap();
    }
}

/// test_recursion (names, CPYTHON.md §2.2: a child of `Process-4` names its own `Process-4:1`).
fn children_of_children_are_named_with_both_numbers(method: StartMethod) {
    let out = TempPath::new("names");
    let p =
        Process::builder().start_method(method).daemon(false).call(spawn_grandchildren, out.arg());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let names: Vec<String> = out.read().lines().map(str::to_owned).collect();
    let class = match method {
        StartMethod::Fork => "ForkProcess",
        StartMethod::Spawn => "SpawnProcess",
        StartMethod::ForkServer => "ForkServerProcess",
    };
    let own = p.name();
    let number = own.strip_prefix(&format!("{class}-")).unwrap();
    assert_eq!(names, [own.clone(), format!("{class}-{number}:1"), format!("{class}-{number}:2")]);
}

fn grandchild_reports_parent(path: String) {
    let method = multiprocessing::get_start_method();
    let grandchild = Process::builder().start_method(method).call(
        |path: String| {
            let parent = parent_process().unwrap();
            append(&path, &format!("started {}", parent.is_alive()));
            // Wait for the parent to be terminated, then report.
            let ended = parent.join_timeout(Duration::from_secs(20)).unwrap();
            append(&path, &format!("parent ended {ended} alive {}", parent.is_alive()));
        },
        path,
    );
    grandchild.start().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// test_parent_process: after the child is terminated, the grandchild reports "not alive".
fn grandchild_sees_its_parent_die(method: StartMethod) {
    let out = TempPath::new("parent");
    let p = Process::builder()
        .start_method(method)
        .daemon(false)
        .call(grandchild_reports_parent, out.arg());
    p.start().unwrap();
    assert_eq!(out.wait_lines(1), "started true\n");
    p.terminate().unwrap();
    p.join().unwrap();
    assert_eq!(out.wait_lines(2), "started true\nparent ended true alive false\n");
}

fn grandchild_asks_about_its_parent_late(path: String) {
    let method = multiprocessing::get_start_method();
    let grandchild = Process::builder().start_method(method).call(
        |path: String| {
            append(&path, "started");
            // Nothing asks about the parent until the test has joined it.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !std::fs::read_to_string(&path).unwrap_or_default().contains("joined")
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            let parent = parent_process().unwrap();
            let sentinel = parent.sentinel().map(|fd| {
                // SAFETY: the process object owns the fd and outlives this use.
                readable(unsafe { BorrowedFd::borrow_raw(fd) }, 0)
            });
            append(
                &path,
                &format!(
                    "alive {} ended {} sentinel readable {:?}",
                    parent.is_alive(),
                    parent.join_timeout(Duration::ZERO).unwrap(),
                    sentinel
                ),
            );
        },
        path,
    );
    grandchild.start().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Beyond CPython's tests: a fork or spawn child opens its parent's pidfd only when
/// `parent_process()` first needs it; a parent that ended before that is not alive, and
/// its sentinel is readable, as if it had been taken at the start.
fn parent_asked_about_only_after_it_ended_is_not_alive(method: StartMethod) {
    let out = TempPath::new("late-parent");
    let p = Process::builder()
        .start_method(method)
        .daemon(false)
        .call(grandchild_asks_about_its_parent_late, out.arg());
    p.start().unwrap();
    assert_eq!(out.wait_lines(1), "started\n");
    p.terminate().unwrap();
    p.join().unwrap();
    append(&out.arg(), "joined");
    assert_eq!(
        out.wait_lines(3),
        "started\njoined\nalive false ended true sentinel readable Ok(true)\n"
    );
}

fn raw_fork_reports_parent(path: String) {
    // SAFETY: this child runs one thread; the grandchild reports through a file and ends
    // with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let parent = parent_process().unwrap();
        let report = format!("parent {} alive {}", parent.pid().unwrap(), parent.is_alive());
        append(&path, &report);
        // SAFETY: ends the grandchild without running the child's exit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the grandchild just forked; `status` is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// CPython: `parent_process()` in a process forked with `os.fork()` by a child is that
/// child's parent (the object is inherited). Here too, although the child opens its
/// parent's pidfd only when it is needed: it is opened before any fork.
fn a_raw_fork_in_a_child_keeps_its_parent_process(method: StartMethod) {
    let out = TempPath::new("raw-fork-parent");
    let p = call(method, raw_fork_reports_parent, out.arg());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(out.read(), format!("parent {} alive true\n", std::process::id()));
}

fn try_start_child(path: String) {
    let child = Process::new(|| {});
    append(&path, &format!("daemon={}", child.daemon()));
    let err = child.start().unwrap_err();
    append(&path, &err.to_string());
}

/// CPYTHON.md §2.2 Daemon: a daemonic process cannot start children; the Process objects
/// it creates default to daemonic.
fn daemonic_child_cannot_start_children(method: StartMethod) {
    let out = TempPath::new("daemonic");
    let p = Process::builder().start_method(method).daemon(true).call(try_start_child, out.arg());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(out.read(), "daemon=true\ndaemonic processes are not allowed to have children\n");
}

/// Beyond CPython's tests: join from several threads at once, all return when it ends.
/// Half of them with a timeout: those open the child's sentinel while the others wait
/// without one (a forked child's pidfd is opened on first need).
fn join_from_many_threads(method: StartMethod) {
    let p = call(method, sleep_ms, 300);
    p.start().unwrap();
    let joiners: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    p.join().unwrap();
                } else {
                    assert!(p.join_timeout(Duration::from_secs(60)).unwrap());
                }
                p.exitcode()
            })
        })
        .collect();
    for joiner in joiners {
        assert_eq!(joiner.join().unwrap(), Some(0));
    }
}

/// Beyond CPython: a child whose every handle was dropped while it ran is still reaped
/// (the support guard checks for zombies).
fn dropped_handle_child_is_reaped(method: StartMethod) {
    let p = call(method, sleep_ms, 100);
    let started = Instant::now();
    p.start().unwrap();
    let pid = p.pid().unwrap();
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ended = process_ended(pid);
    while !ended && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        ended = process_ended(pid);
    }
    // Described at once, while it still runs.
    let running = (!ended).then(|| support::describe_process(pid));
    assert!(
        running.is_none(),
        "the child outlived its 100 ms target: still running {:?} after its start: {}",
        started.elapsed(),
        running.unwrap_or_default()
    );
    // Generous: on a loaded machine the reaper thread may wait for a CPU.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut zombie = process_exists(pid);
    while zombie && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        zombie = process_exists(pid);
    }
    assert!(!zombie, "not reaped: {}", support::describe_zombies(&[pid]));
}

fn process_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn start_daemonic_and_return(path: String) {
    let method = multiprocessing::get_start_method();
    let daemonic = Process::builder().start_method(method).daemon(true).call(
        |path: String| {
            append(&path, &format!("{}", std::process::id()));
            std::thread::sleep(Duration::from_secs(60));
        },
        path.clone(),
    );
    daemonic.start().unwrap();
    let _ = support::TempPath::new("unused");
    while std::fs::read_to_string(&path).unwrap_or_default().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// _exit_function in a child: its daemonic children are terminated when it ends.
fn child_exit_function_terminates_its_daemonic_children(method: StartMethod) {
    let out = TempPath::new("grand-daemon");
    let p = Process::builder()
        .start_method(method)
        .daemon(false)
        .call(start_daemonic_and_return, out.arg());
    p.start().unwrap();
    assert!(p.join_timeout(Duration::from_secs(30)).unwrap(), "the child did not wait 60 s");
    assert_eq!(p.exitcode(), Some(0));
    let grandchild: i32 = out.read().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_ended(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(process_ended(grandchild));
}

/// PR_SET_PDEATHSIG follows the creating thread: a daemonic child started from a thread
/// that then ends must keep running (it is created by the launcher thread).
fn daemonic_child_started_from_a_short_lived_thread_survives_it(method: StartMethod) {
    let p = Process::builder().start_method(method).daemon(true).call(sleep_ms, 60_000);
    let q = p.clone();
    std::thread::spawn(move || q.start().unwrap()).join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(p.is_alive(), "the daemonic child died with the thread that started it");
    p.kill().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
}

/// The seed's joinall exercise over threads and processes together.
fn joinall_waits_for_threads_and_processes(method: StartMethod) {
    let p = call(method, sleep_ms, 200);
    let t = threading::Thread::new(|| std::thread::sleep(Duration::from_millis(100)));
    p.start().unwrap();
    t.start().unwrap();
    let handles: Vec<&dyn threading::Joinable> = vec![&p, &t];
    threading::joinall(handles).unwrap();
    assert!(!p.is_alive() && !t.is_alive());
    assert_eq!(p.exitcode(), Some(0));
}

// ---- fork-only: closures ----

/// test_lose_target_ref: start() drops the parent's copy of the target.
#[test]
fn start_drops_the_parents_copy_of_the_closure() {
    let _serial = support::serial();
    let captured = Arc::new(());
    let in_child = Arc::clone(&captured);
    let p = Process::new(move || drop(in_child));
    assert_eq!(Arc::strong_count(&captured), 2);
    p.start().unwrap();
    assert_eq!(Arc::strong_count(&captured), 1);
    p.join().unwrap();
}

/// A forked child can start threads even if another thread of its parent was starting or
/// ending one at the moment of the fork. std takes a process-wide lock when one of its
/// threads starts or ends (its stack-overflow bookkeeping); a child forked while another
/// thread held it finds it held forever, and its first `std::thread::spawn` hangs — a
/// manager's server did, in this suite, about once in a few hundred runs. The library's
/// threads (`pyconc_core::os_thread`) do not take it.
///
/// The moment is made, not waited for: each child marks its copy of std's lock held (its
/// address from this program's symbol table), as a thread of the parent would have left
/// it. A first child checks that this does stop a `std::thread::spawn`; the second starts
/// a `threading::Thread`, a queue's feeder, a pool (its handler thread, and workers that
/// inherit the held lock) and a manager (its server, forked too, starts a thread per
/// client), and must end by itself.
#[test]
fn a_child_forked_while_std_held_its_thread_start_lock_can_start_threads() {
    let _serial = support::serial();
    let lock = std_thread_start_lock().expect(
        "std's thread-start lock (std::sys::pal::unix::stack_overflow::thread_info::LOCK) is \
         not in this program's symbol table: if std no longer has it, this test can go",
    );
    let hold = move || {
        // SAFETY: `lock` is the address of std's `static LOCK: Mutex<()>`, whose futex
        // word (0: unlocked, 1: locked) is its only 4-byte field; this forked child has
        // one thread, which holds no lock of std's, so marking the word locked only
        // simulates a parent thread that held it at the fork. The first child checks the
        // simulation: if the word were not the lock, its std thread would start.
        let word = unsafe { &*(lock as *const std::sync::atomic::AtomicU32) };
        word.store(1, std::sync::atomic::Ordering::SeqCst);
    };

    let control = Process::builder().start_method(StartMethod::Fork).target(move || {
        hold();
        std::thread::spawn(|| {}).join().unwrap();
    });
    control.start().unwrap();
    let started = control.join_timeout(Duration::from_secs(2)).unwrap();
    if !started {
        control.kill().unwrap();
        control.join().unwrap();
    }
    assert!(!started, "with the lock marked held, a std thread must not start: not the lock");

    let child = Process::builder().start_method(StartMethod::Fork).target(move || {
        hold();
        let t = threading::Thread::new(|| {});
        t.start().unwrap();
        t.join().unwrap();
        let q = multiprocessing::Queue::new(0).unwrap();
        q.put(1u8).unwrap();
        q.close();
        q.join_thread().unwrap();
        let pool = multiprocessing::Pool::builder()
            .processes(Some(1))
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        assert_eq!(pool.map(|x: u8| x + 1, 0..4u8).unwrap(), [1, 2, 3, 4]);
        pool.close();
        pool.join().unwrap();
        let manager =
            multiprocessing::managers::Manager::builder().start_method(StartMethod::Fork).start();
        assert_eq!(manager.unwrap().value(7u8).unwrap().get().unwrap(), 7);
    });
    child.start().unwrap();
    let ended = child.join_timeout(Duration::from_secs(30)).unwrap();
    if !ended {
        let description = support::describe_process(child.pid().unwrap());
        child.kill().unwrap();
        child.join().unwrap();
        panic!("the child could not start its threads: {description}");
    }
    assert_eq!(child.exitcode(), Some(0));
}

/// The run-time address of std's thread-start lock, from this program's symbol table.
fn std_thread_start_lock() -> Option<usize> {
    use object::{Object, ObjectSymbol};
    let program = std::fs::read("/proc/self/exe").ok()?;
    let file = object::File::parse(&*program).ok()?;
    let symbol = file.symbols().find(|symbol| {
        symbol.name().is_ok_and(|name| name.contains("14stack_overflow11thread_info4LOCK"))
    })?;
    Some(load_bias() + usize::try_from(symbol.address()).ok()?)
}

/// Where this (position-independent) program was loaded: what its symbols' addresses
/// are offset by.
fn load_bias() -> usize {
    extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the C library passes a valid `info` for the duration of the call, and
        // `data` is the `usize` below, borrowed for the call of `dl_iterate_phdr`.
        unsafe { *data.cast::<usize>() = (*info).dlpi_addr as usize };
        1 // The program itself comes first: stop there.
    }
    let mut bias = 0usize;
    // SAFETY: `first` matches the callback type and writes only through `data`, which
    // points at `bias` for the duration of the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut bias).cast()) };
    bias
}

/// A closure child sees the parent's memory as it was at the fork.
#[test]
fn fork_child_runs_a_closure_with_captures() {
    let _serial = support::serial();
    let values: Vec<i32> = (1..=3).collect();
    let p = Process::new(move || std::process::exit(values.iter().sum()));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(6));
}

/// CPYTHON.md §2.2: default names `Process-N`, numbered at construction.
#[test]
fn default_names_count_up_from_construction() {
    let _serial = support::serial();
    let a = Process::new(|| {});
    let b = Process::call(nothing, ());
    let na: u32 = a.name().strip_prefix("Process-").unwrap().parse().unwrap();
    let nb: u32 = b.name().strip_prefix("Process-").unwrap().parse().unwrap();
    assert!(nb > na, "{} then {}", a.name(), b.name());
    b.set_name("renamed");
    assert_eq!(b.name(), "renamed");
}

/// test_daemon_argument: default = the creating process's flag (false in the main process).
#[test]
fn daemon_defaults_to_the_creators_flag() {
    let _serial = support::serial();
    let p = Process::new(|| {});
    assert!(!p.daemon());
    p.set_daemon(true).unwrap();
    assert!(p.daemon());
    p.start().unwrap();
    assert_eq!(p.set_daemon(false).unwrap_err().to_string(), "process has already started");
    p.join().unwrap();
}

/// test_current.
#[test]
fn current_process_is_the_main_process() {
    let me = current_process();
    assert_eq!(me.name(), "MainProcess");
    assert_eq!(me.ident(), Some(std::process::id() as i32));
    assert!(me.is_alive());
    assert_eq!(me.exitcode(), None);
    assert!(!me.daemon());
    assert_eq!(me.join().unwrap_err().to_string(), "can only join a child process");
    assert!(parent_process().is_none());
    assert_eq!(format!("{me:?}"), "<_MainProcess name='MainProcess' parent=None started>");
}

/// test_cpu_count.
#[test]
fn cpu_count_is_at_least_one() {
    assert!(multiprocessing::cpu_count() >= 1);
}

/// repr, CPYTHON.md §2.2.
#[test]
fn debug_output_is_cpythons_repr() {
    let _serial = support::serial();
    let p = Process::builder().name("R").target(|| std::process::exit(3));
    let me = std::process::id();
    assert_eq!(format!("{p:?}"), format!("<Process name='R' parent={me} initial>"));
    p.start().unwrap();
    let pid = p.pid().unwrap();
    p.join().unwrap();
    assert_eq!(
        format!("{p:?}"),
        format!("<Process name='R' pid={pid} parent={me} stopped exitcode=3>")
    );
    p.close().unwrap();
    assert_eq!(format!("{p:?}"), format!("<Process name='R' parent={me} closed>"));
}

/// CPython's `BaseProcess.__repr__` says "started" for `_current_process` before
/// anything else: so does a child's `current_process()`, and so does it in a process
/// that a raw `fork()` made from that child (whose record its parent made).
#[test]
fn the_current_process_is_started_in_its_repr_after_a_raw_fork() {
    let _serial = support::serial();
    let p = Process::builder().name("R").target(|| {
        let mine = format!("{:?}", current_process());
        // SAFETY: the grandchild only formats a string and ends with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let theirs = format!("{:?}", current_process());
            // SAFETY: ends the grandchild at once, without running the child's exit path.
            unsafe { libc::_exit(if theirs.ends_with(" started>") { 7 } else { 8 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the grandchild just forked; `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let ok = mine.starts_with("<Process name='R' parent=")
            && mine.ends_with(" started>")
            && libc::WEXITSTATUS(status) == 7;
        std::process::exit(if ok { 42 } else { 1 });
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(42));
}

/// A process inherited by a fork child is not that child's to start or join.
#[test]
fn a_forked_child_cannot_start_or_join_the_parents_process_objects() {
    let _serial = support::serial();
    let unstarted = Process::new(|| {});
    let started = Process::new(|| sleep_ms(200));
    started.start().unwrap();
    let (u, s) = (unstarted.clone(), started.clone());
    let checker = Process::new(move || {
        let ok = u.start().unwrap_err().to_string()
            == "can only start a process object created by current process"
            && s.join().unwrap_err().to_string() == "can only join a child process"
            && !s.is_alive()
            && s.exitcode().is_none()
            && s.terminate().is_err();
        std::process::exit(if ok { 42 } else { 1 });
    });
    checker.start().unwrap();
    checker.join().unwrap();
    assert_eq!(checker.exitcode(), Some(42));
    started.join().unwrap();
}

/// Process::new with spawn/forkserver: an error naming Process::call, nothing started.
#[test]
fn a_closure_needs_the_fork_start_method() {
    let _serial = support::serial();
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let p = Process::builder().start_method(method).target(|| {});
        let err = p.start().unwrap_err();
        assert!(err.to_string().contains("Process::call"), "{err}");
        assert_eq!(p.pid(), None);
    }
}

/// Distinct processes have distinct pids; a started set of them is what active_children shows.
#[test]
fn active_children_is_exactly_the_running_set() {
    let _serial = support::serial();
    let procs: Vec<Process> = (0..3).map(|_| Process::call(sleep_ms, 60_000)).collect();
    for p in &procs {
        p.start().unwrap();
    }
    let pids: BTreeSet<i32> = procs.iter().map(|p| p.pid().unwrap()).collect();
    assert_eq!(pids.len(), 3);
    let active: BTreeSet<i32> = active_children().iter().filter_map(Process::pid).collect();
    assert!(pids.is_subset(&active));
    for p in &procs {
        p.kill().unwrap();
        p.join().unwrap();
    }
    let active: BTreeSet<i32> = active_children().iter().filter_map(Process::pid).collect();
    assert!(pids.is_disjoint(&active));
}

fn tuple_args((a, b, text): (u8, u8, String)) {
    std::process::exit(i32::from(a) * 10 + i32::from(b) + text.len() as i32);
}

each_start_method! {
    several_arguments_travel_as_one_tuple => several_arguments_travel_as_one_tuple;
}

/// test_args_argument: several arguments are one tuple.
fn several_arguments_travel_as_one_tuple(method: StartMethod) {
    let p = call(method, tuple_args, (3, 4, "xy".to_owned()));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(36));
}

/// Process.run() runs the target in the calling process (CPython: `run()` called directly).
#[test]
fn run_calls_the_target_here() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RAN: AtomicBool = AtomicBool::new(false);
    let p = Process::new(|| RAN.store(true, Ordering::SeqCst));
    p.run();
    assert!(RAN.load(Ordering::SeqCst));
    assert_eq!(p.pid(), None, "run() starts no process");
}

/// A fork child may use a handle to its own `Process` object (copied from the parent while
/// `start()` was running): nothing it locks was held across the fork.
#[test]
fn a_fork_child_can_use_its_own_process_handle() {
    let _serial = support::serial();
    let slot: Arc<std::sync::OnceLock<Process>> = Arc::new(std::sync::OnceLock::new());
    let in_child = Arc::clone(&slot);
    let p = Process::new(move || {
        let me = in_child.get().unwrap();
        let text = format!("{me:?} {:?} {}", me.pid(), me.is_alive());
        std::process::exit(if text.contains("unknown") { 0 } else { 2 });
    });
    slot.set(p.clone()).unwrap();
    p.start().unwrap();
    assert!(p.join_timeout(Duration::from_secs(20)).unwrap(), "the child deadlocked");
    assert_eq!(p.exitcode(), Some(0));
}

fn report_parent_pid(path: String) {
    // SAFETY: getppid has no preconditions.
    append(&path, &format!("{}", unsafe { libc::getppid() }));
}

/// CPython's fork server ignores SIGINT, so that Ctrl-C in a terminal (sent to the whole
/// process group) reaches the program and its children but not the server.
#[test]
fn the_fork_server_survives_an_interrupt() {
    let _serial = support::serial();
    let out = TempPath::new("forkserver-pid");
    let p = call(StartMethod::ForkServer, report_parent_pid, out.arg());
    p.start().unwrap();
    p.join().unwrap();
    let server: i32 = out.read().trim().parse().unwrap();
    // SAFETY: signals the fork server, our own descendant, by pid.
    assert_eq!(unsafe { libc::kill(server, libc::SIGINT) }, 0);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!process_ended(server), "the server is still there");
    let again = call(StartMethod::ForkServer, sleep_ms, 1);
    again.start().unwrap();
    again.join().unwrap();
    assert_eq!(again.exitcode(), Some(0));
}
