//! Exit behaviour, panics, the parent being killed and the `init()` rules, checked by
//! running the crate's example binaries as child processes. Sources: CPYTHON.md §2.5
//! (the verified parent-exit script), _test_multiprocessing.py test_stderr_flush,
//! TestNoForkBomb.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const METHODS: [&str; 3] = ["fork", "spawn", "forkserver"];

fn example(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // deps/
    path.pop(); // <profile>/
    path.join("examples").join(name)
}

fn run_example(name: &str, args: &[&str]) -> (Output, Duration) {
    let began = Instant::now();
    let output = Command::new(example(name))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    (output, began.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn main_returning_terminates_daemonic_children_and_joins_the_others() {
    for method in METHODS {
        let (out, took) = run_example("mp_exit", &[method]);
        assert_eq!(out.status.code(), Some(0), "{method}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "parent main done\nnon-daemon child finished\n", "{method}");
        assert!(took < Duration::from_secs(8), "{method}: the daemonic child was not waited for");
        assert!(took >= Duration::from_millis(300), "{method}: the worker was waited for");
    }
}

#[test]
fn process_exit_in_main_also_runs_the_exit_function() {
    for method in METHODS {
        let (out, took) = run_example("mp_exit", &[method, "exit"]);
        assert_eq!(out.status.code(), Some(4), "{method}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "parent main done\nnon-daemon child finished\n", "{method}");
        assert!(took < Duration::from_secs(8), "{method}");
    }
}

#[test]
fn a_panicking_child_reports_process_name_and_exits_with_1() {
    for method in METHODS {
        let (out, _) = run_example("mp_panic", &[method]);
        assert_eq!(out.status.code(), Some(0), "the parent is unaffected");
        assert_eq!(text(&out.stdout), "exitcode Some(1)\n");
        let class = match method {
            "fork" => "ForkProcess",
            "spawn" => "SpawnProcess",
            _ => "ForkServerProcess",
        };
        let stderr = text(&out.stderr);
        let expected_start = format!("Process {class}-1:\npanicked at ");
        assert!(stderr.starts_with(&expected_start), "{method}: {stderr}");
        assert!(stderr.contains("examples/mp_panic.rs:"), "{stderr}");
        assert!(stderr.ends_with(":\nboom\n"), "{stderr}");
        assert!(!stderr.contains("thread '"), "Rust's own panic message is not printed: {stderr}");
    }
}

fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

fn wait_ended(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ended(pid)
}

/// Runs `mp_parent_killed` with `method` and `extra`; returns it with the pids of the
/// daemonic and the non-daemonic child it started.
fn start_parent_killed(method: &str, extra: &[&str]) -> (std::process::Child, i32, i32) {
    let mut parent = Command::new(example("mp_parent_killed"))
        .arg(method)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let mut pid_of = |label: &str| -> i32 {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(label).unwrap().trim().parse().unwrap()
    };
    let daemon = pid_of("daemon");
    let worker = pid_of("worker");
    (parent, daemon, worker)
}

fn parent_killed(method: &str, extra: &[&str]) {
    let (mut parent, daemon, worker) = start_parent_killed(method, extra);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!ended(daemon) && !ended(worker), "{method}: both children run");
    parent.kill().unwrap();
    parent.wait().unwrap();
    let daemon_died = wait_ended(daemon, Duration::from_secs(5));
    let worker_alive = !ended(worker);
    // SAFETY: plain kill of the leftover worker (and daemon, if the test failed).
    unsafe {
        libc::kill(worker, libc::SIGKILL);
        libc::kill(daemon, libc::SIGKILL);
    }
    assert!(daemon_died, "{method} {extra:?}: the daemonic child outlived its SIGKILLed parent");
    assert!(worker_alive, "{method} {extra:?}: the non-daemonic child keeps running");
}

#[test]
fn daemonic_children_die_when_the_parent_is_sigkilled() {
    for method in METHODS {
        parent_killed(method, &[]);
    }
}

#[test]
fn daemonic_children_started_from_an_ended_thread_die_with_the_parent_only() {
    for method in METHODS {
        parent_killed(method, &["thread"]);
    }
}

/// The parent of `pid` (`/proc/PID/stat`, field 4), if it runs.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The running processes whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| parent_of(p) == Some(pid) && !ended(p))
        .collect()
}

/// Beyond CPython: the fork server keeps a child forked ahead of the next request; when
/// the parent is SIGKILLed, the server and that spare end too (only the non-daemonic
/// child the program started keeps running).
#[test]
fn the_fork_server_and_its_spare_child_end_when_the_parent_is_sigkilled() {
    let (mut parent, daemon, worker) = start_parent_killed("forkserver", &[]);
    let server = parent_of(worker).expect("the worker runs");
    assert!(server > 1 && server != parent.id() as i32, "the worker's parent is the server");
    // The spare is forked right after the last start: give it the time to appear.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut spares = Vec::new();
    while spares.is_empty() && Instant::now() < deadline {
        spares = children_of(server).into_iter().filter(|&p| p != daemon && p != worker).collect();
        std::thread::sleep(Duration::from_millis(10));
    }
    parent.kill().unwrap();
    parent.wait().unwrap();
    let server_ended = wait_ended(server, Duration::from_secs(5));
    let spares_ended = spares.iter().all(|&p| wait_ended(p, Duration::from_secs(5)));
    let worker_alive = !ended(worker);
    // SAFETY: plain kills of what the test started (and what it may have left).
    unsafe {
        libc::kill(worker, libc::SIGKILL);
        libc::kill(daemon, libc::SIGKILL);
        for &p in &spares {
            libc::kill(p, libc::SIGKILL);
        }
    }
    assert_eq!(spares.len(), 1, "the server keeps one spare child");
    assert!(server_ended, "the fork server outlived its SIGKILLed parent");
    assert!(spares_ended, "the spare outlived its server");
    assert!(worker_alive, "the non-daemonic child keeps running");
}

/// Beyond CPython: a spare the fork server forked ahead is replaced when it is killed
/// before use; the next start succeeds (and no zombie is left behind: the server reaps
/// the spare when its pidfd says it ended).
#[test]
fn a_killed_spare_of_the_fork_server_is_replaced() {
    let (out, _) = run_example("mp_forkserver_spare", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first exitcode Some(3)\nspares 1\nsecond exitcode Some(4)\n");
}

#[test]
fn without_init_spawn_and_forkserver_refuse_and_main_runs_once() {
    let (out, _) = run_example("mp_no_init", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("main runs once").count(), 1, "{stdout}");
    for method in ["spawn", "forkserver"] {
        let line = stdout.lines().find(|l| l.starts_with(&format!("{method}:"))).unwrap();
        assert!(line.contains("must call multiprocessing::init() as its first line"), "{line}");
    }
    assert!(stdout.contains("fork: exitcode Some(0)"), "{stdout}");
}

#[test]
fn starting_a_process_before_init_in_a_spawned_child_is_refused() {
    let (out, _) = run_example("mp_late_init", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "child exitcode Some(0)\n");
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("RuntimeError: \n        An attempt has been made to start a new process before the\n        current process has finished its bootstrapping phase."), "{stderr}");
}

#[test]
fn forking_a_multi_threaded_process_warns_once() {
    let (out, _) = run_example("mp_fork_warning", &["threads"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("DeprecationWarning: This process (pid=").count(), 1, "{stderr}");
    assert!(
        stderr.contains("is multi-threaded, use of fork() may lead to deadlocks in the child.")
    );
    let (out, _) = run_example("mp_fork_warning", &[]);
    assert_eq!(text(&out.stdout), "forked 3 times\n");
    assert_eq!(text(&out.stderr), "", "a single-threaded fork does not warn");
}

/// The worker pids the `mp_pool_exit` example printed.
fn pool_workers(stdout: &str) -> Vec<i32> {
    stdout.lines().filter_map(|l| l.strip_prefix("worker ")).map(|p| p.parse().unwrap()).collect()
}

#[test]
fn a_pool_left_running_is_terminated_at_exit() {
    for method in METHODS {
        for mode in ["leak", "exit"] {
            let (out, took) = run_example("mp_pool_exit", &[method, mode]);
            let stdout = text(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{method} {mode}: {}", text(&out.stderr));
            assert!(stdout.contains("main done"), "{method} {mode}: {stdout}");
            assert!(took < Duration::from_secs(10), "{method} {mode}: took {took:?}");
            let workers = pool_workers(&stdout);
            assert_eq!(workers.len(), 2, "{method} {mode}: {stdout}");
            for pid in workers {
                assert!(
                    wait_ended(pid, Duration::from_secs(5)),
                    "{method} {mode}: worker {pid} lives on"
                );
            }
        }
    }
}

#[test]
fn pool_workers_die_when_the_parent_is_sigkilled() {
    for method in METHODS {
        let mut parent = Command::new(example("mp_pool_exit"))
            .args([method, "wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
        let mut workers = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == "main done" {
                break;
            }
            workers.extend(pool_workers(&line));
        }
        assert_eq!(workers.len(), 2, "{method}");
        parent.kill().unwrap();
        parent.wait().unwrap();
        for pid in workers {
            let died = wait_ended(pid, Duration::from_secs(5));
            // SAFETY: plain kill of a leftover worker if the test failed.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            assert!(died, "{method}: pool worker {pid} outlived its SIGKILLed parent");
        }
    }
}

/// _TestLogging (test_enable_logging, test_level): nothing is logged until
/// `log_to_stderr`; then CPython's lines at CPython's points, `[LEVEL/ProcessName]`; a
/// child gets its parent's level under every start method.
#[test]
fn logging_to_stderr_prints_cpythons_lines_and_children_inherit_the_level() {
    for method in METHODS {
        let (out, _) = run_example("mp_logging", &[method]);
        assert_eq!(out.status.code(), Some(0), "{method}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout, "child level OFF\nchild level DEBUG\nchild level TRACE\n", "{method}");
        let stderr = text(&out.stderr);
        let class = match method {
            "fork" => "ForkProcess",
            "spawn" => "SpawnProcess",
            _ => "ForkServerProcess",
        };
        for line in [
            format!("[INFO/{class}-2] child process calling self.run()"),
            format!("[INFO/{class}-2] process exiting with exitcode 0"),
            "[DEBUG/MainProcess] added worker".to_owned(),
            "[DEBUG/MainProcess] closing pool".to_owned(),
            "[DEBUG/MainProcess] joining pool".to_owned(),
            "[INFO/MainProcess] process shutting down".to_owned(),
            "[DEBUG/MainProcess] running all \"atexit\" finalizers with priority >= 0".to_owned(),
            "[DEBUG/MainProcess] running the remaining \"atexit\" finalizers".to_owned(),
            "[INFO/MainProcess] calling terminate() for daemon sleeper".to_owned(),
            "[INFO/MainProcess] calling join() for process quick".to_owned(),
        ] {
            assert!(stderr.lines().any(|l| l == line), "{method}: no {line:?} in\n{stderr}");
        }
        assert!(!stderr.contains(&format!("{class}-1]")), "{method}: logged before log_to_stderr");
        assert!(
            stderr.lines().any(|l| l.starts_with("[SUBDEBUG/MainProcess] finalizer calling ")),
            "{method}: the finalizers are named at SUBDEBUG:\n{stderr}"
        );
    }
}

/// The pid the `mp_manager_exit` example printed for its manager's server.
fn server_pid(line: &str) -> i32 {
    line.trim().strip_prefix("server ").unwrap().parse().unwrap()
}

// util._exit_function runs the manager's finalizer (exitpriority 0): a manager leaked by a
// program that returns from main is shut down, under every start method.
#[test]
fn a_leaked_manager_is_shut_down_at_exit() {
    for method in METHODS {
        let (out, took) = run_example("mp_manager_exit", &[method, "exit"]);
        assert_eq!(out.status.code(), Some(0), "{method}: {}", text(&out.stderr));
        let pid = server_pid(&text(&out.stdout));
        assert!(
            wait_ended(pid, Duration::from_secs(2)),
            "{method}: the server {pid} outlived its program"
        );
        assert!(took < Duration::from_secs(8), "{method}: {took:?}");
    }
}

// Beyond CPython (whose manager server is orphaned): the server dies with a SIGKILLed
// program.
#[test]
fn a_manager_server_dies_with_its_sigkilled_program() {
    for method in METHODS {
        let mut parent = Command::new(example("mp_manager_exit"))
            .args([method, "wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
        let pid = server_pid(&lines.next().unwrap().unwrap());
        assert!(!ended(pid));
        parent.kill().unwrap();
        parent.wait().unwrap();
        let died = wait_ended(pid, Duration::from_secs(5));
        // SAFETY: plain kill of a leftover server, should the test fail.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(died, "{method}: the server {pid} outlived its SIGKILLed program");
    }
}

/// The segments the `mp_shared_memory` example printed (`segment NAME` lines).
fn segments(stdout: &str) -> Vec<String> {
    stdout.lines().filter_map(|l| l.strip_prefix("segment ")).map(str::to_owned).collect()
}

/// Whether every segment is gone from `/dev/shm` within `within`.
fn segments_gone(names: &[String], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = names.iter().any(|n| std::path::Path::new("/dev/shm").join(n).exists());
        if !left {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const LEAK_WARNING: &str =
    "resource_tracker: There appear to be 2 leaked shared_memory objects to clean up at shutdown";

/// CPython's resource tracker: segments a program (here the main process and a child, by
/// every start method) created and never unlinked are unlinked after it exits, with
/// CPython's warning; the child's segment outlived the child (the example checks).
#[test]
fn shared_memory_left_at_exit_is_unlinked_with_cpythons_warning() {
    for method in METHODS {
        let (out, _) = run_example("mp_shared_memory", &[method, "exit"]);
        assert_eq!(out.status.code(), Some(0), "{method}: {}", text(&out.stderr));
        let names = segments(&text(&out.stdout));
        assert_eq!(names.len(), 2, "{method}");
        assert!(segments_gone(&names, Duration::from_secs(10)), "{method}: {names:?} leaked");
        assert!(text(&out.stderr).contains(LEAK_WARNING), "{method}: {}", text(&out.stderr));
    }
}

/// test_shared_memory_cleaned_after_process_termination, with SIGKILL sent to the whole
/// program (its process group: the main process and every child): the tracker, in a
/// session of its own, survives and unlinks what the program left.
#[test]
fn shared_memory_of_a_sigkilled_program_is_unlinked() {
    use std::os::unix::process::CommandExt;
    for method in METHODS {
        let mut program = Command::new(example("mp_shared_memory"))
            .args([method, "wait"])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(program.stdout.take().unwrap()).lines();
        let names: Vec<String> = lines
            .take(2)
            .map(|l| l.unwrap().strip_prefix("segment ").unwrap().to_owned())
            .collect();
        // SAFETY: kill with a valid signal number has no memory effects.
        assert_eq!(unsafe { libc::kill(-(program.id() as i32), libc::SIGKILL) }, 0);
        let out = program.wait_with_output().unwrap();
        assert!(segments_gone(&names, Duration::from_secs(10)), "{method}: {names:?} leaked");
        assert!(text(&out.stderr).contains(LEAK_WARNING), "{method}: {}", text(&out.stderr));
    }
}

/// A program that unlinks what it made gets no warning; a `SharedMemoryManager`'s server
/// unlinks through the program's own tracker, so no warning either (bpo-36867).
#[test]
fn unlinked_segments_and_a_shared_memory_manager_leave_no_warning() {
    for method in METHODS {
        for mode in ["clean", "manager"] {
            let (out, _) = run_example("mp_shared_memory", &[method, mode]);
            assert_eq!(out.status.code(), Some(0), "{method} {mode}: {}", text(&out.stderr));
            let names = segments(&text(&out.stdout));
            assert_eq!(names.len(), 2, "{method} {mode}");
            assert!(segments_gone(&names, Duration::from_secs(10)), "{method} {mode}: leaked");
            assert_eq!(text(&out.stderr), "", "{method} {mode}");
        }
    }
}

/// CPython 3.13's `track=False`: a segment created untracked is left for the program to
/// unlink; the tracker neither unlinks it nor warns.
#[test]
fn an_untracked_segment_outlives_its_program() {
    let (out, _) = run_example("mp_shared_memory", &["fork", "untracked"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names = segments(&text(&out.stdout));
    assert_eq!(names.len(), 1);
    let path = std::path::Path::new("/dev/shm").join(&names[0]);
    let still_there = path.exists();
    let _ = std::fs::remove_file(&path);
    assert!(still_there, "the untracked segment was unlinked");
    assert_eq!(text(&out.stderr), "");
}

/// The tracker's table grows past its first mapping (64 names) without the allocator:
/// 300 segments left at exit are all unlinked, with CPython's count in the warning.
#[test]
fn many_segments_left_at_exit_are_all_unlinked() {
    let (out, _) = run_example("mp_shared_memory", &["fork", "many"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names = segments(&text(&out.stdout));
    assert_eq!(names.len(), 300);
    assert!(segments_gone(&names, Duration::from_secs(10)), "segments leaked");
    assert!(
        text(&out.stderr).contains(
            "resource_tracker: There appear to be 300 leaked shared_memory objects to clean up \
             at shutdown"
        ),
        "{}",
        text(&out.stderr)
    );
}
