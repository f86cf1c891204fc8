//! `pyconc bench scaling`: the seed's last lesson in numbers — a CPU-bound job of equal
//! tasks on 1..N workers, as threads and as processes, in Rust and in CPython.
//!
//! | series | how |
//! |---|---|
//! | pyconc threads | `threading::Thread`s taking tasks from a shared counter |
//! | pyconc processes | `Pool::map_chunked(spin, tasks, 1)` on a fork `Pool` of that size |
//! | CPython threads | `threading.Thread`s (the GIL lets one run at a time) |
//! | CPython processes | `multiprocessing.Pool.map(spin, tasks, 1)` |
//!
//! Each speedup is the job's time run one task after another (in the same language)
//! divided by its time on the workers. N is twice the CPUs, to show where it stops.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use multiprocessing::{Pool, StartMethod};
use serde::Serialize;

use super::measure::{Operation, Settings, compare};
use super::python::Python;

const SCRIPT: &str = include_str!("scaling.py");
/// Tasks in the job: a multiple of every worker count up to 4, so none idles at the end.
const TASKS: usize = 12;

/// CPU-bound work: `n` steps of an xorshift generator (scaling.py has the same loop).
pub(crate) fn spin(n: u64) -> u64 {
    let mut x: u64 = 88_172_645_463_325_252;
    for _ in 0..black_box(n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// The speedups at one worker count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Point {
    pub(crate) workers: usize,
    pub(crate) threads: f64,
    pub(crate) processes: f64,
    pub(crate) python_threads: Option<f64>,
    pub(crate) python_processes: Option<f64>,
}

/// The whole scaling measurement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scaling {
    pub(crate) tasks: usize,
    /// Loop steps per task in Rust and in CPython (CPython's loop is ~100x slower).
    pub(crate) steps: u64,
    pub(crate) python_steps: u64,
    /// The job run one task after another, median wall ns.
    pub(crate) sequential_ns: f64,
    pub(crate) python_sequential_ns: Option<f64>,
    pub(crate) points: Vec<Point>,
    /// Why CPython has no figures, if it has none.
    pub(crate) python_missing: Option<String>,
}

struct Sequential {
    steps: u64,
}
impl Operation for Sequential {
    fn name(&self) -> &'static str {
        "one task after another"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            for _ in 0..TASKS {
                black_box(spin(self.steps));
            }
        }
    }
}

struct Threads {
    workers: usize,
    steps: u64,
}
impl Operation for Threads {
    fn name(&self) -> &'static str {
        "threading::Thread workers"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let left = Arc::new(AtomicUsize::new(TASKS));
            let threads: Vec<threading::Thread> = (0..self.workers)
                .map(|_| {
                    let (left, steps) = (Arc::clone(&left), self.steps);
                    let t = threading::Thread::new(move || {
                        while left
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                            .is_ok()
                        {
                            black_box(spin(steps));
                        }
                    });
                    t.start().expect("start");
                    t
                })
                .collect();
            for t in threads {
                t.join().expect("join");
            }
        }
    }
}

struct Processes<'a> {
    pool: &'a Pool,
    steps: u64,
}
impl Operation for Processes<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::Pool workers"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            black_box(self.pool.map_chunked(spin, vec![self.steps; TASKS], 1).expect("map"));
        }
    }
}

/// The median wall time of `key` (or `key`/`workers`) in scaling.py's output.
fn python_median(all: &serde_json::Value, key: &str, workers: Option<usize>) -> Option<f64> {
    let op = match workers {
        None => &all[key],
        Some(w) => &all[key][w.to_string()],
    };
    op["wall_ns"]["median"].as_f64()
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
) -> Result<Scaling, Box<dyn std::error::Error>> {
    let max_workers = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let (steps, python_steps) =
        if settings.quick { (1_000_000, 10_000) } else { (10_000_000, 100_000) };
    let args = [
        if settings.quick { "1" } else { "0" }.to_owned(),
        TASKS.to_string(),
        python_steps.to_string(),
        max_workers.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let python_figures = python.run_script_file("scaling.py", SCRIPT, &args);
    let (sequential, _) =
        compare(settings, 1, &Sequential { steps }, &Threads { workers: 1, steps });
    let python_sequential =
        python_figures.as_ref().ok().and_then(|all| python_median(all, "sequential", None));
    let mut points = Vec::new();
    for workers in 1..=max_workers {
        let pool =
            Pool::builder().processes(Some(workers)).start_method(StartMethod::Fork).build()?;
        let (threads, processes) =
            compare(settings, 1, &Threads { workers, steps }, &Processes { pool: &pool, steps });
        pool.close();
        pool.join()?;
        let speedup = |ns: f64| sequential.wall_ns.median / ns;
        let python_speedup = |key: &str| {
            let all = python_figures.as_ref().ok()?;
            Some(python_sequential? / python_median(all, key, Some(workers))?)
        };
        points.push(Point {
            workers,
            threads: speedup(threads.wall_ns.median),
            processes: speedup(processes.wall_ns.median),
            python_threads: python_speedup("threads"),
            python_processes: python_speedup("processes"),
        });
    }
    Ok(Scaling {
        tasks: TASKS,
        steps,
        python_steps,
        sequential_ns: sequential.wall_ns.median,
        python_sequential_ns: python_sequential,
        points,
        python_missing: python_figures.err(),
    })
}
