//! Timing: alternating rounds of each backend, medians, CPU time, and the report table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use serde::Serialize;

use super::python::Python;
use super::scaling::Scaling;

/// One measured operation on one backend.
pub(crate) trait Operation {
    /// The backend's name for this operation, e.g. `std::thread::spawn+join`.
    fn name(&self) -> &'static str;
    /// Performs the operation `iterations` times.
    fn run(&self, iterations: u64);
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// The least number of rounds per backend.
    pub(crate) min_rounds: usize,
    /// The most rounds per backend.
    pub(crate) max_rounds: usize,
    /// Stop adding rounds after this long (per operation, all backends together).
    pub(crate) budget: Duration,
    /// Repetitions of whole-process measurements (peak RSS).
    pub(crate) process_repeats: usize,
    pub(crate) quick: bool,
}

impl Settings {
    pub(crate) fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                min_rounds: 5,
                max_rounds: 15,
                budget: Duration::from_millis(600),
                process_repeats: 1,
                quick,
            }
        } else {
            Settings {
                min_rounds: 15,
                max_rounds: 101,
                budget: Duration::from_secs(4),
                process_repeats: 5,
                quick,
            }
        }
    }
}

/// Summary of the per-operation times of the rounds, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Stats {
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) max: f64,
}

impl Stats {
    pub(crate) fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median =
            if n % 2 == 1 { samples[n / 2] } else { (samples[n / 2 - 1] + samples[n / 2]) / 2.0 };
        Stats { min: samples[0], median, max: samples[n - 1] }
    }
}

/// Figures of one backend for one operation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figures {
    pub(crate) backend: String,
    /// Wall time per operation, ns.
    pub(crate) wall_ns: Stats,
    /// Process CPU time (user+system, all threads) per operation, median, ns.
    pub(crate) cpu_ns: Option<f64>,
    /// Peak resident set size of the process, KiB (whole-process measurements only).
    pub(crate) peak_rss_kib: Option<u64>,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) group: &'static str,
    pub(crate) operation: &'static str,
    pub(crate) pyconc: Figures,
    pub(crate) raw: Figures,
    /// CPython's figures, or why there are none.
    pub(crate) python: Result<Figures, String>,
}

/// CPU time of the whole process (all threads), as CPython's `time.process_time()`.
fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).map(Duration::from).unwrap_or_default()
}

/// Measures `pyconc` and `raw` in alternating rounds of `batch` operations each.
pub(crate) fn compare(
    settings: &Settings,
    batch: u64,
    pyconc: &dyn Operation,
    raw: &dyn Operation,
) -> (Figures, Figures) {
    compare_settled(settings, batch, pyconc, raw, Duration::ZERO)
}

/// [`compare`], pausing `settle` (untimed) before each round of each backend, so that
/// neither starts while the other's threads still run: a thread pool's idle workers spin
/// for a while after their work (rayon's do), and on a small machine they would take CPU
/// time from the backend measured next.
pub(crate) fn compare_settled(
    settings: &Settings,
    batch: u64,
    pyconc: &dyn Operation,
    raw: &dyn Operation,
    settle: Duration,
) -> (Figures, Figures) {
    let [pyconc, raw] = compare_all(settings, batch, [pyconc, raw], settle);
    (pyconc, raw)
}

/// Measures every backend in rounds of `batch` operations, each round running all of
/// them one after another, in an order that turns by one from round to round (so none
/// always runs first, on a warmer or colder machine).
pub(crate) fn compare_all<const N: usize>(
    settings: &Settings,
    batch: u64,
    backends: [&dyn Operation; N],
    settle: Duration,
) -> [Figures; N] {
    for backend in backends {
        backend.run(batch.div_ceil(4).max(1)); // warm-up
    }
    let mut wall: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let mut cpu: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < settings.min_rounds
        || (rounds < settings.max_rounds && start.elapsed() < settings.budget)
    {
        // Two backends: alternately first. More: each starts the round in turn.
        for k in 0..N {
            let i = if N == 2 && rounds % 2 == 1 { N - 1 - k } else { (rounds + k) % N };
            if !settle.is_zero() {
                std::thread::sleep(settle);
            }
            let cpu_before = cpu_time();
            let began = Instant::now();
            backends[i].run(batch);
            let elapsed = began.elapsed();
            let cpu_used = cpu_time().saturating_sub(cpu_before);
            wall[i].push(elapsed.as_nanos() as f64 / batch as f64);
            cpu[i].push(cpu_used.as_nanos() as f64 / batch as f64);
        }
        rounds += 1;
    }
    std::array::from_fn(|i| Figures {
        backend: backends[i].name().to_owned(),
        wall_ns: Stats::of(std::mem::take(&mut wall[i])),
        cpu_ns: Some(Stats::of(std::mem::take(&mut cpu[i])).median),
        peak_rss_kib: None,
    })
}

/// A floor under a row: the least that the operation can cost when written with libc
/// alone, measured in the same rounds as the row's pyconc and raw figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Floor {
    /// The row's operation.
    pub(crate) operation: &'static str,
    pub(crate) floor: Figures,
    /// What the floor does that the row's raw baseline does not.
    pub(crate) why: &'static str,
}

/// The dependent steps of [`machine_speed`]'s loop.
const SPEED_STEPS: u64 = 20_000_000;

/// How long a fixed loop of [`SPEED_STEPS`] dependent integer multiply-adds takes on one
/// CPU: the fastest of three. A shared machine (a cloud VM, a CI runner) runs at another
/// speed from one minute to the next as its host gets busy — on the machine of
/// `docs/BENCHMARKS.md` a loop like this one takes up to 1.6× as long in its slow
/// phases — so a figure in nanoseconds means something only beside this one, taken in
/// the same run. (Ratios between backends measured in the same rounds move much less.)
pub(crate) fn machine_speed() -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut x = 1u64;
            for step in 0..SPEED_STEPS {
                x = std::hint::black_box(
                    x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(step),
                );
            }
            std::hint::black_box(x);
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// The round trips of [`cpu_round_trip`].
const ROUND_TRIPS: u64 = 100_000;

/// How long a cache line takes to go from one CPU to another and back: two threads,
/// pinned to the first two CPUs this process may use, bounce a counter [`ROUND_TRIPS`]
/// times. Where a VM's CPUs sit on its host (two threads of one core, two cores, two
/// chiplets) sets it, and it changes when the host moves them; every operation that
/// passes data between threads or processes moves with it. `None` with one CPU, or if
/// the two threads did not both run within a second (then they share a CPU).
pub(crate) fn cpu_round_trip() -> Option<Duration> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    use std::sync::atomic::{AtomicU64, Ordering};
    /// Written by the side that gives up.
    const STOP: u64 = u64::MAX;
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&cpu| allowed.is_set(cpu).unwrap_or(false));
    let (first, second) = (cpus.next()?, cpus.next()?);
    let pin = |cpu: usize| {
        let mut set = CpuSet::new();
        set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
    };
    let word = AtomicU64::new(0);
    let until = Instant::now() + Duration::from_secs(1);
    // Waits for `word` to be `value`; false if the other side stopped, or after `until`.
    let wait = |value: u64| {
        let mut spins = 0u32;
        loop {
            match word.load(Ordering::Acquire) {
                seen if seen == value => return true,
                STOP => return false,
                _ => {}
            }
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 && Instant::now() > until {
                word.store(STOP, Ordering::Release);
                return false;
            }
            std::hint::spin_loop();
        }
    };
    std::thread::scope(|scope| {
        let echo = scope.spawn(|| {
            if !pin(second) {
                word.store(STOP, Ordering::Release);
                return;
            }
            for trip in 0..ROUND_TRIPS {
                if !wait(2 * trip + 1) {
                    return;
                }
                word.store(2 * trip + 2, Ordering::Release);
            }
        });
        let lead = scope.spawn(|| {
            if !pin(first) {
                word.store(STOP, Ordering::Release);
                return None;
            }
            let start = Instant::now();
            for trip in 0..ROUND_TRIPS {
                word.store(2 * trip + 1, Ordering::Release);
                if !wait(2 * trip + 2) {
                    return None;
                }
            }
            Some(start.elapsed() / ROUND_TRIPS as u32)
        });
        let took = lead.join().ok().flatten();
        let _ = echo.join();
        took
    })
}

/// The machine's speed ([`machine_speed`]) and its CPUs' round trip ([`cpu_round_trip`])
/// before the groups ran and after.
#[derive(Debug, Serialize)]
struct Speed {
    before_ms: f64,
    after_ms: Option<f64>,
    round_trip_before_ns: Option<f64>,
    round_trip_after_ns: Option<f64>,
}

/// Everything measured in one `pyconc bench` run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    machine: Machine,
    speed: Speed,
    rows: Vec<Row>,
    /// Floors under some rows.
    floors: Vec<Floor>,
    /// The CPU-bound speedup of threads and processes on 1..N workers.
    scaling: Option<Scaling>,
    /// The groups that were run, in order.
    groups: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cores: usize,
    kernel: String,
    cpu: String,
    pyconc: &'static str,
    rustc: &'static str,
    python: String,
}

impl Report {
    pub(crate) fn new(python: &Python) -> Report {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_default();
        Report {
            machine: Machine {
                cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                kernel,
                cpu,
                pyconc: env!("CARGO_PKG_VERSION"),
                rustc: env!("PYCONC_RUSTC_VERSION"),
                python: python.version().unwrap_or_else(|e| format!("absent: {e}")),
            },
            speed: Speed {
                before_ms: machine_speed().as_secs_f64() * 1e3,
                after_ms: None,
                round_trip_before_ns: cpu_round_trip().map(|d| d.as_secs_f64() * 1e9),
                round_trip_after_ns: None,
            },
            rows: Vec::new(),
            floors: Vec::new(),
            scaling: None,
            groups: Vec::new(),
        }
    }

    /// Measures the machine's speed again, after the groups.
    pub(crate) fn speed_after(&mut self) {
        self.speed.after_ms = Some(machine_speed().as_secs_f64() * 1e3);
        self.speed.round_trip_after_ns = cpu_round_trip().map(|d| d.as_secs_f64() * 1e9);
    }

    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Adds a floor under the row of `floor.operation` (pushed before or after it).
    pub(crate) fn push_floor(&mut self, floor: Floor) {
        self.floors.push(floor);
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub(crate) fn set_scaling(&mut self, scaling: Scaling) {
        self.scaling = Some(scaling);
    }

    pub(crate) fn scaling(&self) -> Option<&Scaling> {
        self.scaling.as_ref()
    }

    pub(crate) fn group_done(&mut self, group: &'static str) {
        self.groups.push(group);
    }

    pub(crate) fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The aligned terminal table; ratios in colour when `color`.
    pub(crate) fn table(&self, color: bool) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "machine: {} cores, {}, Linux {}", m.cores, m.cpu, m.kernel);
        let _ = writeln!(out, "pyconc {} built by {}; python: {}", m.pyconc, m.rustc, m.python);
        let after = self.speed.after_ms.map_or(String::new(), |ms| format!(", {ms:.1} ms after"));
        let _ = writeln!(
            out,
            "machine speed: {}M dependent multiply-adds on one CPU took {:.1} ms before the \
             groups{after} (slower when the host is busy; times in ns move with it)",
            SPEED_STEPS / 1_000_000,
            self.speed.before_ms,
        );
        let trip = |ns: Option<f64>| ns.map_or("n/a".to_owned(), |ns| format!("{ns:.0} ns"));
        let _ = writeln!(
            out,
            "a cache line's round trip between two CPUs: {} before, {} after (where the host \
             runs the CPUs sets it; every hand-off between threads or processes moves with it)",
            trip(self.speed.round_trip_before_ns),
            trip(self.speed.round_trip_after_ns),
        );
        let paint = |text: String, good: bool, bad: bool| paint(text, color, good, bad);
        let _ = writeln!(
            out,
            "{:<34} {:>11} {:>11} {:>11} {:>9} {:>9}   raw Rust baseline",
            "operation (median wall time)", "pyconc", "raw Rust", "CPython", "py/raw", "CPy/py",
        );
        for row in &self.rows {
            let (python, speedup) = match &row.python {
                Ok(f) => {
                    let times = primary(f) / primary(&row.pyconc);
                    let text = format!("{:>9}", ratio(primary(f), primary(&row.pyconc)));
                    (format_value(f), paint(text, times >= 1.0, times < 1.0))
                }
                Err(_) => ("n/a".to_owned(), format!("{:>9}", "n/a")),
            };
            let cost = primary(&row.pyconc) / primary(&row.raw);
            let overhead = paint(
                format!("{:>9}", ratio(primary(&row.pyconc), primary(&row.raw))),
                cost <= 1.5,
                cost > 3.0,
            );
            let _ = writeln!(
                out,
                "{:<34} {:>11} {:>11} {:>11} {} {}   {}",
                format!("{}: {}", row.group, row.operation),
                format_value(&row.pyconc),
                format_value(&row.raw),
                python,
                overhead,
                speedup,
                row.raw.backend
            );
            if let (Some(p), Some(r)) = (row.pyconc.cpu_ns, row.raw.cpu_ns) {
                let _ = writeln!(
                    out,
                    "{:<34} {:>11} {:>11}",
                    "  cpu time per op",
                    format_ns(p),
                    format_ns(r)
                );
            }
            for floor in self.floors.iter().filter(|f| f.operation == row.operation) {
                let _ = writeln!(
                    out,
                    "  floor, libc alone: {} = {} raw Rust; pyconc = {} the floor ({})",
                    format_value(&floor.floor),
                    ratio(primary(&floor.floor), primary(&row.raw)),
                    ratio(primary(&row.pyconc), primary(&floor.floor)),
                    floor.floor.backend
                );
            }
            if let (Some(p), Some(r)) = (row.pyconc.peak_rss_kib, row.raw.peak_rss_kib) {
                let py = match &row.python {
                    Ok(f) => f.peak_rss_kib.map(format_kib).unwrap_or_default(),
                    Err(_) => "n/a".to_owned(),
                };
                let py_ratio = match &row.python {
                    Ok(Figures { peak_rss_kib: Some(q), .. }) => ratio(*q as f64, p as f64),
                    _ => "n/a".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{:<34} {:>11} {:>11} {:>11} {:>9} {:>9}",
                    "  peak RSS",
                    format_kib(p),
                    format_kib(r),
                    py,
                    ratio(p as f64, r as f64),
                    py_ratio
                );
            }
        }
        for row in &self.rows {
            if let Err(why) = &row.python {
                let _ = writeln!(out, "note: no CPython figure for {}: {why}", row.operation);
                break;
            }
        }
        let _ = writeln!(
            out,
            "py/raw: pyconc time / raw Rust time (lower is better); CPy/py: CPython time / pyconc time (higher: pyconc faster)"
        );
        for floor in &self.floors {
            let _ = writeln!(out, "floor of {}: {}", floor.operation, floor.why);
        }
        if let Some(scaling) = &self.scaling {
            scaling_table(&mut out, scaling);
        }
        out
    }
}

/// The speedup section of the table.
fn scaling_table(out: &mut String, s: &Scaling) {
    let _ = writeln!(
        out,
        "\nCPU-bound job of {} equal tasks: speedup over running them one after another",
        s.tasks
    );
    let _ = writeln!(
        out,
        "{:>8} {:>15} {:>17} {:>16} {:>18}",
        "workers", "pyconc threads", "pyconc processes", "CPython threads", "CPython processes"
    );
    let show = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}x"));
    for p in &s.points {
        let _ = writeln!(
            out,
            "{:>8} {:>15} {:>17} {:>16} {:>18}",
            p.workers,
            show(Some(p.threads)),
            show(Some(p.processes)),
            show(p.python_threads),
            show(p.python_processes)
        );
    }
    let _ = writeln!(
        out,
        "one after another: Rust {} ({} steps a task), CPython {} ({} steps a task)",
        format_ns(s.sequential_ns),
        s.steps,
        s.python_sequential_ns.map_or_else(|| "n/a".to_owned(), format_ns),
        s.python_steps
    );
    if let Some(why) = &s.python_missing {
        let _ = writeln!(out, "note: no CPython speedups: {why}");
    }
}

/// `text` in green (`good`), red (`bad`) or plain, when `color`.
fn paint(text: String, color: bool, good: bool, bad: bool) -> String {
    match (color, good, bad) {
        (true, true, _) => format!("\x1b[32m{text}\x1b[0m"),
        (true, _, true) => format!("\x1b[31m{text}\x1b[0m"),
        _ => text,
    }
}

pub(crate) fn primary(f: &Figures) -> f64 {
    f.wall_ns.median
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}x", a / b) } else { "n/a".to_owned() }
}

fn format_value(f: &Figures) -> String {
    format_ns(primary(f))
}

pub(crate) fn format_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn format_kib(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the order in which backends run.
    struct Recorder<'a> {
        id: usize,
        runs: &'a Mutex<Vec<usize>>,
    }

    impl Operation for Recorder<'_> {
        fn name(&self) -> &'static str {
            ["first", "second", "third"][self.id]
        }
        fn run(&self, _iterations: u64) {
            self.runs.lock().unwrap().push(self.id);
        }
    }

    fn rounds(count: usize) -> Settings {
        Settings {
            min_rounds: count,
            max_rounds: count,
            budget: Duration::ZERO,
            process_repeats: 1,
            quick: true,
        }
    }

    #[test]
    fn every_backend_runs_each_round_and_each_starts_a_round_in_turn() {
        let runs = Mutex::new(Vec::new());
        let [a, b, c] = [0, 1, 2].map(|id| Recorder { id, runs: &runs });
        let figures = compare_all(&rounds(3), 1, [&a, &b, &c], Duration::ZERO);
        assert_eq!(figures.map(|f| f.backend), ["first", "second", "third"]);
        // The warm-up, then three rounds.
        assert_eq!(*runs.lock().unwrap(), [0, 1, 2, 0, 1, 2, 1, 2, 0, 2, 0, 1]);
    }

    #[test]
    fn two_backends_take_turns_going_first() {
        let runs = Mutex::new(Vec::new());
        let [a, b] = [0, 1].map(|id| Recorder { id, runs: &runs });
        let (pyconc, raw) = compare(&rounds(4), 1, &a, &b);
        assert_eq!((pyconc.backend.as_str(), raw.backend.as_str()), ("first", "second"));
        assert_eq!(*runs.lock().unwrap(), [0, 1, 0, 1, 1, 0, 0, 1, 1, 0]);
    }
}
