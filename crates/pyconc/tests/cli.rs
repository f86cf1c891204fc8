//! The `pyconc` program end to end: every demo with `--fast`, and `bench --quick` writing
//! its JSON and SVG reports.

use std::process::Command;

/// Whether `python3` runs here (then every row must have CPython figures).
fn have_python() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
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
        ("manager", "its queue holds: \"hello from the remote client\""),
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
    assert_eq!(text.matches("== pyconc demo ").count(), 11, "{text}");
}

#[test]
fn unknown_demo_is_a_usage_error() {
    let out = pyconc(&["demo", "no-such-demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
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
fn pool_demo_reports_the_primes_and_survives_its_faults() {
    let out = pyconc(&["demo", "pool", "--fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("7837 primes below 80000"), "{text}");
    assert!(text.contains("a task panicked: 7 is odd"), "{text}");
    assert!(text.contains("the pool goes on: [1, 4, 9, 16, 25]"), "{text}");
    assert!(text.contains("tasks: 47 submitted, 45 done, 2 failed"), "{text}");
}

/// Every operation of every group, in the report's order.
const OPERATIONS: [(&str, &str); 34] = [
    ("threads", "thread start+join"),
    ("threads", "current_thread()"),
    ("threads", "Timer start+cancel+join"),
    ("threads", "Lock acquire+release"),
    ("threads", "Event ping-pong round trip"),
    ("threads", "1000 threads start+join"),
    ("processes", "fork start+join"),
    ("processes", "spawn start+join"),
    ("processes", "forkserver start+join"),
    ("processes", "fork start+join, 1 GiB parent"),
    ("processes", "forkserver start+join, 1 GiB parent"),
    ("processes", "spawn start+join, 1 GiB parent"),
    ("ipc", "Pipe small message (64 B)"),
    ("ipc", "Queue small item"),
    ("ipc", "Pipe 1 MiB message"),
    ("ipc", "Pipe round trip (64 B), one CPU"),
    ("ipc", "SharedMemory 32 MiB handoff"),
    ("ipc", "SharedMemory attach, 1 MiB"),
    ("ipc", "SharedMemory attach, 1 GiB"),
    ("pool", "Pool(2) create+map(2)+close+join"),
    ("pool", "apply round trip"),
    ("pool", "map 20k items, default chunks"),
    ("pool", "map 2k items, chunksize 1"),
    ("pool", "CPU-bound 4 tasks on Pool(2)"),
    ("threadpool", "ThreadPool map 20k items, default chunks"),
    ("threadpool", "ThreadPool map 2k items, chunksize 1"),
    ("managers", "manager dict set"),
    ("managers", "manager dict get"),
    ("managers", "manager list append"),
    ("managers", "manager namespace get"),
    ("managers", "manager queue put+get"),
    ("managers", "manager lock acquire+release"),
    ("managers", "Value set+get (no manager)"),
    ("managers", "Queue put+get (no manager)"),
];

/// `pyconc bench --quick --json F --svg G`, as CI runs it: both files parse and hold every
/// operation and the machine's speed; every row has figures for pyconc, raw Rust and (when
/// `python3` runs, except where CPython runs different work) CPython; the pool's lifetime
/// has its libc floor; the scaling chart covers 1..2×CPUs workers.
#[test]
fn bench_quick_writes_json_and_svg_with_every_operation() {
    let dir = std::env::temp_dir().join(format!("pyconc-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("out.json"), dir.join("out.svg"));
    let out = pyconc(&[
        "bench",
        "--quick",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let machine = &report["machine"];
    assert!(machine["cores"].as_u64().unwrap() >= 1);
    for field in ["kernel", "cpu", "rustc", "python", "pyconc"] {
        assert!(machine[field].as_str().is_some_and(|s| !s.is_empty()), "{field}: {machine}");
    }
    // The machine's speed, before the groups and after, in the report and the table.
    for when in ["before_ms", "after_ms"] {
        assert!(report["speed"][when].as_f64().is_some_and(|ms| ms > 0.0), "{}", report["speed"]);
    }
    // The CPUs' round trip: none with one CPU.
    for when in ["round_trip_before_ns", "round_trip_after_ns"] {
        let trip = &report["speed"][when];
        assert!(trip.is_null() || trip.as_f64().is_some_and(|ns| ns > 0.0), "{trip}");
    }
    assert!(table.contains("machine speed: "), "{table}");
    assert!(table.contains("a cache line's round trip between two CPUs: "), "{table}");
    let rows = report["rows"].as_array().unwrap();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["group"].as_str().unwrap(), r["operation"].as_str().unwrap()))
        .collect();
    assert_eq!(got, OPERATIONS);
    for row in rows {
        for backend in ["pyconc", "raw"] {
            let stats = &row[backend]["wall_ns"];
            let (min, median, max) = (
                stats["min"].as_f64().unwrap(),
                stats["median"].as_f64().unwrap(),
                stats["max"].as_f64().unwrap(),
            );
            assert!(0.0 < min && min <= median && median <= max, "{row}");
        }
        let different_work =
            row["python"]["Err"].as_str().is_some_and(|why| why.starts_with("CPU-bound"));
        if have_python() && !different_work {
            assert!(row["python"]["Ok"]["wall_ns"]["median"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert!(table.contains(row["operation"].as_str().unwrap()), "{table}");
    }
    assert!(rows[5]["pyconc"]["peak_rss_kib"].as_u64().unwrap() > 0);
    // The pool's lifetime has its floor, measured in the same rounds, on a line of its own.
    let floors = report["floors"].as_array().unwrap();
    assert_eq!(floors.len(), 1, "{floors:?}");
    assert_eq!(floors[0]["operation"], "Pool(2) create+map(2)+close+join");
    assert!(floors[0]["floor"]["wall_ns"]["median"].as_f64().unwrap() > 0.0);
    assert!(table.contains("  floor, libc alone: "), "{table}");
    assert!(table.contains("floor of Pool(2) create+map(2)+close+join: "), "{table}");
    assert!(!have_python() || table.contains("its own Pool(2) speedup"), "{table}");
    let points = report["scaling"]["points"].as_array().unwrap();
    let cpus = machine["cores"].as_u64().unwrap();
    assert_eq!(points.len() as u64, 2 * cpus);
    for point in points {
        assert!(
            point["threads"].as_f64().unwrap() > 0.0 && point["processes"].as_f64().unwrap() > 0.0
        );
        if have_python() {
            assert!(point["python_threads"].as_f64().unwrap() > 0.0, "{point}");
        }
    }

    let svg = roxmltree::Document::parse(&svg_text).expect("the SVG is well-formed XML");
    assert_eq!(svg.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = svg.descendants().filter_map(|n| n.text()).collect();
    for (group, operation) in OPERATIONS {
        let label = format!("{group}: {operation}");
        assert!(texts.iter().any(|t| t.contains(&label)), "no {label:?} in the SVG");
    }
    assert!(texts.iter().any(|t| t.contains("pyconc processes (Pool)")), "no speedup chart");
}
