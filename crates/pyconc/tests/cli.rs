//! The `pyconc` program end to end: every demo with `--fast`, and `bench threads|processes
//! --quick` writing JSON.

use std::process::Command;

/// Whether `python3` runs here (then every row must have CPython figures).
fn have_python() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs `pyconc bench GROUP --quick --json F`; returns the printed table and the JSON rows,
/// after checking that every row has figures for pyconc, raw Rust and (when `python3`
/// runs) CPython.
fn bench_rows(group: &str) -> (String, Vec<serde_json::Value>) {
    let dir = std::env::temp_dir().join(format!("pyconc-cli-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let out = pyconc(&["bench", group, "--quick", "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let rows = report["rows"].as_array().unwrap().clone();
    for row in &rows {
        assert!(row["pyconc"]["wall_ns"]["median"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["raw"]["wall_ns"]["median"].as_f64().unwrap() > 0.0, "{row}");
        if have_python()
            && row["python"]["Err"].as_str().is_none_or(|why| !why.starts_with("CPU-bound"))
        {
            assert!(row["python"]["Ok"]["wall_ns"]["median"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    (String::from_utf8_lossy(&out.stdout).into_owned(), rows)
}

fn operations(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|r| r["operation"].as_str().unwrap()).collect()
}

fn pyconc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pyconc")).args(args).output().expect("run pyconc")
}

#[test]
fn every_demo_runs_with_fast_sleeps() {
    for (demo, expected) in [
        ("counter-class", "Count5: counting 4"),
        ("counter-function", "Count10: counting 9"),
        ("daemon", "the daemon is not waited for"),
        ("helpers", "MainThread"),
        ("timer", "hello after"),
        ("joinall", "still alive"),
        ("processes", "Count5 (pid "),
        ("process-vs-thread", "after 2 processes: 0"),
        ("ipc", "with the lock:  400000 (none lost)"),
        ("pool", "died while running this task: it was killed by signal 6 (SIGABRT)"),
    ] {
        let out = pyconc(&["demo", demo, "--fast"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{demo}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(expected), "{demo}: {text}");
    }
}

#[test]
fn demo_without_a_name_runs_them_all() {
    let out = pyconc(&["demo", "--fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(text.matches("== pyconc demo ").count(), 10, "{text}");
}

#[test]
fn unknown_demo_is_a_usage_error() {
    let out = pyconc(&["demo", "no-such-demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
}

#[test]
fn bench_threads_quick_reports_every_operation() {
    let (table, rows) = bench_rows("threads");
    assert_eq!(
        operations(&rows),
        [
            "thread start+join",
            "current_thread()",
            "Timer start+cancel+join",
            "Lock acquire+release",
            "Event ping-pong round trip",
            "1000 threads start+join"
        ]
    );
    for operation in operations(&rows) {
        assert!(table.contains(operation));
    }
    assert!(rows[5]["pyconc"]["peak_rss_kib"].as_u64().unwrap() > 0);
}

#[test]
fn processes_demo_reports_exit_codes() {
    let out = pyconc(&["demo", "processes", "--fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("exited with Some(5)") && text.contains("exited with Some(0)"), "{text}");
    assert_eq!(
        text.matches("Count10 (pid ").count(),
        10 + 1,
        "ten counts and the exit line: {text}"
    );
}

#[test]
fn bench_processes_quick_reports_every_start_method() {
    let (_, rows) = bench_rows("processes");
    assert_eq!(operations(&rows), ["fork start+join", "spawn start+join", "forkserver start+join"]);
}

#[test]
fn bench_ipc_quick_reports_every_operation() {
    let (_, rows) = bench_rows("ipc");
    assert_eq!(
        operations(&rows),
        [
            "Pipe small message (64 B)",
            "Queue small item",
            "Pipe 1 MiB message",
            "Pipe round trip (64 B), one CPU"
        ]
    );
}

#[test]
fn pool_demo_reports_the_primes_and_survives_its_faults() {
    let out = pyconc(&["demo", "pool", "--fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("7837 primes below 80000"), "{text}");
    assert!(text.contains("a task panicked: 7 is odd"), "{text}");
    assert!(text.contains("the pool goes on: [1, 4, 9, 16, 25]"), "{text}");
    assert!(text.contains("tasks: 47 submitted, 45 done, 2 failed"), "{text}");
}

#[test]
fn bench_pool_quick_reports_every_operation() {
    let (table, rows) = bench_rows("pool");
    // The CPU-bound row compares with running the tasks one after another; CPython runs
    // its own (slower) loop, so only its speedup is reported, in a note.
    assert!(!have_python() || table.contains("its own Pool(2) speedup"), "{table}");
    assert_eq!(
        operations(&rows),
        [
            "Pool(2) create+map(2)+close+join",
            "map 20k items, default chunks",
            "map 2k items, chunksize 1",
            "CPU-bound 4 tasks on Pool(2)"
        ]
    );
}
