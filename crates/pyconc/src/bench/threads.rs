//! `pyconc bench threads`: pyconc's `threading` vs `std::thread` vs CPython's `threading`.
//!
//! | operation            | pyconc                              | raw Rust baseline                           | CPython                       |
//! |----------------------|-------------------------------------|---------------------------------------------|-------------------------------|
//! | thread start+join    | `Thread::new(f)`, `start`, `join`   | `std::thread::spawn(f).join()`              | `Thread(target=f)`            |
//! | current_thread       | `threading::current_thread()`       | `std::thread::current()`                    | `threading.current_thread()`  |
//! | Timer cancel         | `Timer::new(1 s)`, start, cancel, join | thread + `Condvar::wait_timeout`, cancel, join | `Timer(1.0, f)`           |
//! | Lock acquire+release | `Lock::acquire`, `release`          | `Mutex::lock`, drop                         | `lock.acquire(); lock.release()` |
//! | Event ping-pong      | two `Event`s, set/wait/clear        | two `Mutex<bool>` + `Condvar`               | two `threading.Event`s        |
//! | 1000 threads         | start 1000, join 1000, in a fresh process: time and peak RSS | the same with `std::thread` | the same              |

use std::hint::black_box;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::Value;

use super::measure::{Figures, Operation, Report, Row, Settings, Stats, compare};
use super::python::{Python, python_figures};

const SCRIPT: &str = include_str!("threads.py");
const GROUP: &str = "threads";

struct PyconcStartJoin;
impl Operation for PyconcStartJoin {
    fn name(&self) -> &'static str {
        "threading::Thread start+join"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let t = threading::Thread::new(|| {});
            t.start().expect("start");
            t.join().expect("join");
        }
    }
}

struct StdSpawnJoin;
impl Operation for StdSpawnJoin {
    fn name(&self) -> &'static str {
        "std::thread::spawn+join"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            std::thread::spawn(|| {}).join().expect("join");
        }
    }
}

struct PyconcCurrent;
impl Operation for PyconcCurrent {
    fn name(&self) -> &'static str {
        "threading::current_thread()"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            black_box(threading::current_thread());
        }
    }
}

struct StdCurrent;
impl Operation for StdCurrent {
    fn name(&self) -> &'static str {
        "std::thread::current()"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            black_box(std::thread::current());
        }
    }
}

struct PyconcTimerCancel;
impl Operation for PyconcTimerCancel {
    fn name(&self) -> &'static str {
        "threading::Timer start+cancel+join"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let t = threading::Timer::new(Duration::from_secs(1), || {});
            t.start().expect("start");
            t.cancel();
            t.join().expect("join");
        }
    }
}

/// The hand-written timer a Rust programmer would write without pyconc.
struct StdCondvarTimer;
impl Operation for StdCondvarTimer {
    fn name(&self) -> &'static str {
        "std thread + Condvar::wait_timeout"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let shared = Arc::new((Mutex::new(false), Condvar::new()));
            let theirs = Arc::clone(&shared);
            let handle = std::thread::spawn(move || {
                let (cancelled, cv) = &*theirs;
                let deadline = Instant::now() + Duration::from_secs(1);
                let mut cancelled = cancelled.lock().expect("lock");
                while !*cancelled {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    cancelled = cv.wait_timeout(cancelled, deadline - now).expect("wait").0;
                }
                if !*cancelled {
                    black_box(());
                }
            });
            *shared.0.lock().expect("lock") = true;
            shared.1.notify_all();
            handle.join().expect("join");
        }
    }
}

struct PyconcLock(threading::Lock);
impl Operation for PyconcLock {
    fn name(&self) -> &'static str {
        "threading::Lock acquire+release"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            self.0.acquire();
            self.0.release().expect("release");
        }
    }
}

struct StdMutex(Mutex<()>);
impl Operation for StdMutex {
    fn name(&self) -> &'static str {
        "std::sync::Mutex lock+unlock"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            drop(black_box(self.0.lock().expect("lock")));
        }
    }
}

/// Round trips of a set->wait->clear ping-pong between two threads through two events.
fn ping_pong<E: Send + Sync + 'static>(
    iterations: u64,
    make: fn() -> E,
    set: fn(&E),
    wait_and_clear: fn(&E),
) {
    let ping = Arc::new(make());
    let pong = Arc::new(make());
    let (pi, po) = (Arc::clone(&ping), Arc::clone(&pong));
    let peer = std::thread::spawn(move || {
        for _ in 0..iterations {
            wait_and_clear(&pi);
            set(&po);
        }
    });
    for _ in 0..iterations {
        set(&ping);
        wait_and_clear(&pong);
    }
    peer.join().expect("peer");
}

struct PyconcEventPingPong;
impl Operation for PyconcEventPingPong {
    fn name(&self) -> &'static str {
        "threading::Event ping-pong"
    }
    fn run(&self, iterations: u64) {
        ping_pong(iterations, threading::Event::new, threading::Event::set, |e| {
            e.wait();
            e.clear();
        });
    }
}

/// The Mutex + Condvar event a Rust programmer would write without pyconc.
#[derive(Default)]
struct CondvarEvent {
    flag: Mutex<bool>,
    cv: Condvar,
}

struct StdEventPingPong;
impl Operation for StdEventPingPong {
    fn name(&self) -> &'static str {
        "std Mutex+Condvar event ping-pong"
    }
    fn run(&self, iterations: u64) {
        ping_pong(
            iterations,
            CondvarEvent::default,
            |e| {
                *e.flag.lock().expect("lock") = true;
                e.cv.notify_all();
            },
            |e| {
                let mut flag = e.flag.lock().expect("lock");
                while !*flag {
                    flag = e.cv.wait(flag).expect("wait");
                }
                *flag = false;
            },
        );
    }
}

/// Whole-process measurements, run by `pyconc bench-child JOB` in a fresh process so
/// that its peak RSS is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ChildJob {
    /// Start 1000 `threading::Thread`s, then join them.
    ManyPyconc,
    /// Start 1000 `std::thread`s, then join them.
    ManyStd,
}

pub(crate) fn run_child(job: ChildJob) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    match job {
        ChildJob::ManyPyconc => {
            let threads: Vec<threading::Thread> =
                (0..1000).map(|_| threading::Thread::new(|| {})).collect();
            for t in &threads {
                t.start()?;
            }
            threading::joinall(&threads)?;
        }
        ChildJob::ManyStd => {
            let handles: Vec<_> = (0..1000).map(|_| std::thread::spawn(|| {})).collect();
            for h in handles {
                h.join().map_err(|_| "a thread panicked")?;
            }
        }
    }
    let elapsed = start.elapsed();
    let rss = getrusage(UsageWho::RUSAGE_SELF)?.max_rss();
    println!(
        "{}",
        serde_json::json!({ "time_ns": elapsed.as_nanos() as u64, "peak_rss_kib": rss })
    );
    Ok(())
}

fn child_figures(job: ChildJob, repeats: usize, name: &str) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let job = job.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
    let mut runs = Vec::new();
    for _ in 0..repeats {
        let out = Command::new(&exe)
            .args(["bench-child", &job])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!("bench-child {job} failed: {}", out.status));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        runs.push(
            serde_json::from_str::<Value>(stdout.trim())
                .map_err(|e| format!("bench-child: {e}"))?,
        );
    }
    figures_of_runs(name, &runs)
}

fn figures_of_runs(name: &str, runs: &[Value]) -> Result<Figures, String> {
    let times: Vec<f64> = runs.iter().filter_map(|r| r["time_ns"].as_f64()).collect();
    let mut rss: Vec<u64> = runs.iter().filter_map(|r| r["peak_rss_kib"].as_u64()).collect();
    if times.is_empty() || rss.is_empty() {
        return Err("no figures".to_owned());
    }
    rss.sort_unstable();
    Ok(Figures {
        backend: name.to_owned(),
        wall_ns: Stats::of(times),
        cpu_ns: None,
        peak_rss_kib: Some(rss[rss.len() / 2]),
    })
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script(SCRIPT, &["ops", quick]);
    let lock = PyconcLock(threading::Lock::new());
    let mutex = StdMutex(Mutex::new(()));
    let pairs: [(&'static str, &'static str, u64, &dyn Operation, &dyn Operation); 5] = [
        ("thread start+join", "thread_start_join", 20, &PyconcStartJoin, &StdSpawnJoin),
        ("current_thread()", "current_thread", 100_000, &PyconcCurrent, &StdCurrent),
        ("Timer start+cancel+join", "timer_cancel", 20, &PyconcTimerCancel, &StdCondvarTimer),
        ("Lock acquire+release", "lock_acquire_release", 100_000, &lock, &mutex),
        (
            "Event ping-pong round trip",
            "event_ping_pong",
            2_000,
            &PyconcEventPingPong,
            &StdEventPingPong,
        ),
    ];
    for (operation, key, batch, pyconc, raw) in pairs {
        let (pyconc, raw) = compare(settings, batch, pyconc, raw);
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython threading"),
        });
    }

    let repeats = settings.process_repeats;
    let mut pyconc_runs = Vec::new();
    let mut std_runs = Vec::new();
    let mut python_runs = Vec::new();
    // Alternate the three so that drift hits them alike.
    for _ in 0..repeats {
        pyconc_runs.push(child_figures(ChildJob::ManyPyconc, 1, "pyconc")?);
        std_runs.push(child_figures(ChildJob::ManyStd, 1, "std")?);
        python_runs.push(python.run_script(SCRIPT, &["many"]));
    }
    let merge = |name: &str, runs: &[Figures]| {
        let values: Vec<Value> = runs
            .iter()
            .map(|f| serde_json::json!({ "time_ns": f.wall_ns.median, "peak_rss_kib": f.peak_rss_kib }))
            .collect();
        figures_of_runs(name, &values)
    };
    let python_many = python_runs
        .into_iter()
        .collect::<Result<Vec<Value>, String>>()
        .and_then(|runs| figures_of_runs("CPython threading", &runs));
    report.push(Row {
        group: GROUP,
        operation: "1000 threads start+join",
        pyconc: merge("1000 threading::Thread, fresh process", &pyconc_runs)?,
        raw: merge("1000 std::thread::spawn, fresh process", &std_runs)?,
        python: python_many,
    });
    Ok(())
}
