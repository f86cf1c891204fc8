//! `pyconc bench pool`: pyconc's `Pool` vs raw Rust vs CPython's `multiprocessing.Pool`.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | Pool(2) create+map(2)+close+join | `Pool::builder().processes(Some(2))` (fork) | 2 × `fork`, a result over a pipe each, `waitpid` | `get_context("fork").Pool(2)` |
//! | map 200k items, default chunks | `pool.map(trivial, 0..200_000)` | 2 scoped threads, half each | `pool.map(trivial, range(200_000))` |
//! | map 20k items, chunksize 1 | `pool.map_chunked(trivial, 0..20_000, 1)` | 2 threads pulling items from a shared channel | `pool.map(trivial, range(20_000), 1)` |
//! | CPU-bound: 4 equal tasks | `pool.map_chunked(spin, [n; 4], 1)` on `Pool(2)` | the 4 tasks one after another (speedup = raw / pyconc) | its own speedup on the same loop (fewer steps) |
//!
//! `--quick` uses 20k and 2k items and shorter tasks.

use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use multiprocessing::{Pool, PoolOf, Runs, StartMethod, Workers};

use super::measure::{Operation, Report, Row, Settings, compare};
use super::python::{Python, python_figures};
use super::scaling::spin;

const SCRIPT: &str = include_str!("pool.py");
const GROUP: &str = "pool";

pub(super) fn trivial(x: u64) -> u64 {
    x + 1
}

fn fork_pool(processes: usize) -> Pool {
    Pool::builder()
        .processes(Some(processes))
        .start_method(StartMethod::Fork)
        .build()
        .expect("pool")
}

struct PyconcCreateMapJoin;
impl Operation for PyconcCreateMapJoin {
    fn name(&self) -> &'static str {
        "multiprocessing::Pool (fork)"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let pool = fork_pool(2);
            assert_eq!(pool.map(trivial, 0..2).expect("map"), vec![1, 2]);
            pool.close();
            pool.join().expect("join");
        }
    }
}

struct RawForkPipes;
impl Operation for RawForkPipes {
    fn name(&self) -> &'static str {
        "2 x fork, pipe, waitpid"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let mut children = Vec::new();
            for i in 0..2u64 {
                let mut fds = [0; 2];
                // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
                // SAFETY: the child only writes to a pipe and calls `_exit`, both
                // async-signal-safe.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let value = trivial(i).to_ne_bytes();
                    // SAFETY: async-signal-safe calls on fds this child owns, then `_exit`.
                    unsafe {
                        libc::write(fds[1], value.as_ptr().cast(), value.len());
                        libc::_exit(0);
                    }
                }
                assert!(pid > 0, "fork failed");
                // SAFETY: the parent's copy of the write end is not used again.
                unsafe { libc::close(fds[1]) };
                children.push((pid, fds[0]));
            }
            for (pid, fd) in children {
                let mut value = [0u8; 8];
                // SAFETY: reads into a valid 8-byte buffer from the pipe we own, then
                // closes it and reaps the child we created.
                unsafe {
                    libc::read(fd, value.as_mut_ptr().cast(), value.len());
                    libc::close(fd);
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                }
                black_box(value);
            }
        }
    }
}

/// `map` of [`trivial`] over `0..items` on a pool of either kind (the `threadpool`
/// group's too).
pub(super) struct PyconcMap<'a, W: Workers> {
    pub(super) pool: &'a PoolOf<W>,
    pub(super) items: u64,
    pub(super) chunksize: Option<usize>,
    pub(super) name: &'static str,
}
impl<W: Runs<u64, u64>> Operation for PyconcMap<'_, W> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let results = match self.chunksize {
                None => self.pool.map(trivial, 0..self.items),
                Some(chunksize) => self.pool.map_chunked(trivial, 0..self.items, chunksize),
            };
            assert_eq!(results.expect("map").len() as u64, self.items);
        }
    }
}

struct ScopedThreads {
    items: u64,
}
impl Operation for ScopedThreads {
    fn name(&self) -> &'static str {
        "std::thread::scope, 2 threads"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let items: Vec<u64> = (0..self.items).collect();
            let (a, b) = items.split_at(items.len() / 2);
            let (x, y) = std::thread::scope(|s| {
                let x = s.spawn(|| a.iter().map(|&i| trivial(i)).collect::<Vec<_>>());
                let y = s.spawn(|| b.iter().map(|&i| trivial(i)).collect::<Vec<_>>());
                (x.join().expect("thread"), y.join().expect("thread"))
            });
            black_box((x, y));
        }
    }
}

struct ChannelThreads {
    items: u64,
}
impl Operation for ChannelThreads {
    fn name(&self) -> &'static str {
        "2 threads, mpsc channel per item"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let (task_tx, task_rx) = mpsc::channel::<u64>();
            let task_rx = Arc::new(Mutex::new(task_rx));
            let (result_tx, result_rx) = mpsc::channel::<(u64, u64)>();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let (tasks, results) = (Arc::clone(&task_rx), result_tx.clone());
                    s.spawn(move || {
                        loop {
                            let Ok(item) = tasks.lock().expect("lock").recv() else { break };
                            let _ = results.send((item, trivial(item)));
                        }
                    });
                }
                for i in 0..self.items {
                    task_tx.send(i).expect("send");
                }
                let mut results = vec![0; self.items as usize];
                for _ in 0..self.items {
                    let (i, r) = result_rx.recv().expect("recv");
                    results[i as usize] = r;
                }
                drop(task_tx);
                black_box(results);
            });
        }
    }
}

struct PyconcCpuBound<'a> {
    pool: &'a Pool,
    steps: u64,
}
impl Operation for PyconcCpuBound<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::Pool (2 workers)"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            black_box(self.pool.map_chunked(spin, [self.steps; 4], 1).expect("map"));
        }
    }
}

struct Sequential {
    steps: u64,
}
impl Operation for Sequential {
    fn name(&self) -> &'static str {
        "the 4 tasks one after another"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            for _ in 0..4 {
                black_box(spin(self.steps));
            }
        }
    }
}

/// A `map` row: its name, the CPython script's key, items, chunk size, raw baseline.
type MapRow<'a> = (&'static str, &'static str, u64, Option<usize>, &'a dyn Operation);

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let (big, small, steps, python_steps) = if settings.quick {
        (20_000, 2_000, 2_000_000, 20_000)
    } else {
        (200_000, 20_000, 20_000_000, 200_000)
    };
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script_file("pool.py", SCRIPT, &[quick, &python_steps.to_string()]);
    let (pyconc, raw) = compare(settings, 4, &PyconcCreateMapJoin, &RawForkPipes);
    report.push(Row {
        group: GROUP,
        operation: "Pool(2) create+map(2)+close+join",
        pyconc,
        raw,
        python: python_figures(
            &python_ops,
            "create_map_close_join",
            "CPython multiprocessing.Pool",
        ),
    });
    let pool = fork_pool(2);
    let map_rows: [MapRow<'_>; 2] = [
        (
            if settings.quick {
                "map 20k items, default chunks"
            } else {
                "map 200k items, default chunks"
            },
            "map_default_chunks",
            big,
            None,
            &ScopedThreads { items: big },
        ),
        (
            if settings.quick { "map 2k items, chunksize 1" } else { "map 20k items, chunksize 1" },
            "map_chunksize_1",
            small,
            Some(1),
            &ChannelThreads { items: small },
        ),
    ];
    for (operation, key, items, chunksize, raw) in map_rows {
        let ours =
            PyconcMap { pool: &pool, items, chunksize, name: "multiprocessing::Pool (2 workers)" };
        let (pyconc, raw) = compare(settings, 1, &ours, raw);
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython multiprocessing.Pool"),
        });
    }
    let (pyconc, raw) =
        compare(settings, 1, &PyconcCpuBound { pool: &pool, steps }, &Sequential { steps });
    let python = python_figures(&python_ops, "cpu_bound_4_tasks", "CPython").and_then(|pool| {
        let alone = python_figures(&python_ops, "cpu_bound_sequential", "CPython")?;
        Err(format!(
            "CPU-bound: CPython runs a slower loop ({python_steps} steps per task); its own \
                 Pool(2) speedup over running the 4 tasks one after another: {:.2}x",
            alone.wall_ns.median / pool.wall_ns.median
        ))
    });
    report.push(Row {
        group: GROUP,
        operation: "CPU-bound 4 tasks on Pool(2)",
        pyconc,
        raw,
        python,
    });
    pool.close();
    pool.join()?;
    Ok(())
}
