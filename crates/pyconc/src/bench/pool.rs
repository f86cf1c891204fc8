//! `pyconc bench pool`: pyconc's `Pool` vs raw Rust vs CPython's `multiprocessing.Pool`.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | Pool(2) create+map(2)+close+join | `Pool::builder().processes(Some(2))` (fork) | 2 × `fork`, a result over a pipe each, `waitpid` | `get_context("fork").Pool(2)` |
//! | apply round trip | `pool.apply(trivial, i)` on a pool of 2 forked workers | a forked child that answers each 8 bytes on a pipe pair | `pool.apply(trivial, (i,))` |
//! | map 200k items, default chunks | `pool.map(trivial, 0..200_000)` | 2 scoped threads, half each | `pool.map(trivial, range(200_000))` |
//! | map 20k items, chunksize 1 | `pool.map_chunked(trivial, 0..20_000, 1)` | 2 threads pulling items from a shared channel | `pool.map(trivial, range(20_000), 1)` |
//! | CPU-bound: 4 equal tasks | `pool.map_chunked(spin, [n; 4], 1)` on `Pool(2)` | the 4 tasks one after another (speedup = raw / pyconc) | its own speedup on the same loop (fewer steps) |
//!
//! The first row has a floor measured in the same rounds: the same pool written with libc
//! alone (two forked workers that wait for a task on a pipe, answer it on another, and
//! exit at the end of their task pipe). The raw baseline runs each child's work as it
//! forks; any pool's workers exist before their tasks, so the floor is what a pool costs
//! at the least.
//!
//! `--quick` uses 20k and 2k items and shorter tasks.

use std::hint::black_box;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multiprocessing::{Pool, PoolOf, Runs, StartMethod, Workers};

use super::measure::{Floor, Operation, Report, Row, Settings, compare, compare_all};
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

/// Forks a child that answers every 8 bytes on one pipe with [`trivial`] of them on
/// another, until the first pipe ends; it first closes `inherited` (the parent's ends of
/// such children forked before it). Returns (the child, the pipe to it, the pipe from
/// it).
fn fork_answerer(inherited: &[libc::c_int]) -> (libc::pid_t, libc::c_int, libc::c_int) {
    let (mut tasks, mut results) = ([0; 2], [0; 2]);
    // SAFETY: valid two-int arrays for pipe(2) to fill.
    unsafe {
        assert_eq!(libc::pipe(tasks.as_mut_ptr()), 0, "pipe");
        assert_eq!(libc::pipe(results.as_mut_ptr()), 0, "pipe");
    }
    // SAFETY: the child only closes, reads and writes pipes and calls `_exit`, all
    // async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut task = [0u8; 8];
        // SAFETY: async-signal-safe calls on fds this child owns, into and from live
        // 8-byte buffers, then `_exit` at the end of the task pipe.
        unsafe {
            libc::close(tasks[1]);
            libc::close(results[0]);
            for &fd in inherited {
                libc::close(fd);
            }
            while libc::read(tasks[0], task.as_mut_ptr().cast(), task.len()) == 8 {
                let value = trivial(u64::from_ne_bytes(task)).to_ne_bytes();
                libc::write(results[1], value.as_ptr().cast(), value.len());
            }
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "fork failed");
    // SAFETY: the child's ends are not used again in the parent.
    unsafe {
        libc::close(tasks[0]);
        libc::close(results[1]);
    }
    (pid, tasks[1], results[0])
}

/// The floor of a pool's lifetime: a pool of two workers with libc alone. Each waits for
/// a task on its pipe, answers on another, and exits when its task pipe ends.
struct RawPool;
impl Operation for RawPool {
    fn name(&self) -> &'static str {
        "2 x fork, workers wait for a task on a pipe, answer, exit at its end"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            // (pid, task write end, result read end) of each worker.
            let mut workers = Vec::new();
            for _ in 0..2 {
                // It lets go of the pool's ends of the workers forked before it (as
                // pyconc's workers do), or their task pipes would end only when this one
                // exits.
                let before: Vec<libc::c_int> =
                    workers.iter().flat_map(|&(_, task, result)| [task, result]).collect();
                workers.push(fork_answerer(&before));
            }
            for (i, &(_, task, _)) in (0u64..).zip(&workers) {
                let value = i.to_ne_bytes();
                // SAFETY: writes a live 8-byte buffer to a pipe this process owns.
                unsafe { libc::write(task, value.as_ptr().cast(), value.len()) };
            }
            for &(_, _, result) in &workers {
                let mut value = [0u8; 8];
                // SAFETY: reads into a live 8-byte buffer from a pipe this process owns.
                unsafe { libc::read(result, value.as_mut_ptr().cast(), value.len()) };
                black_box(value);
            }
            for &(_, task, result) in &workers {
                // SAFETY: closes this process's ends once; the end of the task pipe
                // tells the worker to exit.
                unsafe {
                    libc::close(task);
                    libc::close(result);
                }
            }
            for (pid, _, _) in workers {
                // SAFETY: reaps a child this process created.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            }
        }
    }
}

/// `pool.apply(trivial, i)`, one call after another: a task's way to a worker and its
/// result's way back.
struct PyconcApply<'a> {
    pool: &'a Pool,
}
impl Operation for PyconcApply<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::Pool (2 workers)"
    }
    fn run(&self, iterations: u64) {
        for i in 0..iterations {
            assert_eq!(self.pool.apply(trivial, i).expect("apply"), i + 1);
        }
    }
}

/// A forked child that answers every 8 bytes on one pipe with [`trivial`] of them on
/// another: the round trip of a task to a process and back, with nothing around it.
struct RawEcho {
    /// (the child, the pipe to it, the pipe from it).
    child: (libc::pid_t, libc::c_int, libc::c_int),
}
impl RawEcho {
    fn start() -> RawEcho {
        RawEcho { child: fork_answerer(&[]) }
    }
}
impl Operation for RawEcho {
    fn name(&self) -> &'static str {
        "a forked child answering on a pipe pair"
    }
    fn run(&self, iterations: u64) {
        let (_, tasks, results) = self.child;
        for i in 0..iterations {
            let (task, mut value) = (i.to_ne_bytes(), [0u8; 8]);
            // SAFETY: writes and reads live 8-byte buffers on pipes this process owns.
            unsafe {
                libc::write(tasks, task.as_ptr().cast(), task.len());
                libc::read(results, value.as_mut_ptr().cast(), value.len());
            }
            assert_eq!(u64::from_ne_bytes(value), i + 1);
        }
    }
}
impl Drop for RawEcho {
    fn drop(&mut self) {
        let (pid, tasks, results) = self.child;
        // SAFETY: closes this process's ends once (the end of the task pipe ends the
        // child), then reaps the child it created.
        unsafe {
            libc::close(tasks);
            libc::close(results);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
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
    const LIFETIME: &str = "Pool(2) create+map(2)+close+join";
    let [pyconc, raw, floor] =
        compare_all(settings, 4, [&PyconcCreateMapJoin, &RawForkPipes, &RawPool], Duration::ZERO);
    report.push_floor(Floor {
        operation: LIFETIME,
        floor,
        why: "two forked workers that wait for a task, answer it and exit when told, written \
              with libc; the raw baseline runs each child's work as it forks, and any pool's \
              workers exist before their tasks",
    });
    report.push(Row {
        group: GROUP,
        operation: LIFETIME,
        pyconc,
        raw,
        python: python_figures(
            &python_ops,
            "create_map_close_join",
            "CPython multiprocessing.Pool",
        ),
    });
    // A pool that only callers who wait have used: its caller hands out the task and
    // reads the result itself (the `map` rows below start the pool's thread).
    let quiet = fork_pool(2);
    let echo = RawEcho::start();
    let (pyconc, raw) = compare(settings, 100, &PyconcApply { pool: &quiet }, &echo);
    drop(echo);
    quiet.close();
    quiet.join()?;
    report.push(Row {
        group: GROUP,
        operation: "apply round trip",
        pyconc,
        raw,
        python: python_figures(&python_ops, "apply_round_trip", "CPython multiprocessing.Pool"),
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
