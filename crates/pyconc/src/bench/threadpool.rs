//! `pyconc bench threadpool`: pyconc's `ThreadPool` vs rayon vs CPython's
//! `multiprocessing.pool.ThreadPool`, on the same trivial work as the `pool` group.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | ThreadPool map 200k items, default chunks | `ThreadPool(2).map(trivial, 0..200_000)` | rayon `par_iter().map(trivial).collect()` on a 2-thread pool | `ThreadPool(2).map(trivial, range(200_000))` |
//! | ThreadPool map 20k items, chunksize 1 | `map_chunked(trivial, 0..20_000, 1)` | the same rayon pipeline split into single items (`with_max_len(1)`) | `pool.map(trivial, range(20_000), 1)` |
//!
//! `--quick` uses 20k and 2k items.

use std::hint::black_box;

use multiprocessing::ThreadPool;
use rayon::prelude::*;

use super::measure::{Operation, Report, Row, Settings, compare_settled};
use super::pool::{PyconcMap, trivial};
use super::python::{Python, python_figures};

const SCRIPT: &str = include_str!("threadpool.py");
const GROUP: &str = "threadpool";

/// The pause before each round (see `compare_settled`): rayon's idle workers spin and
/// yield for a while before they sleep.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(2);

struct Rayon<'a> {
    pool: &'a rayon::ThreadPool,
    items: u64,
    /// Split into single items (rayon's closest to `chunksize` 1).
    single_items: bool,
}
impl Operation for Rayon<'_> {
    fn name(&self) -> &'static str {
        if self.single_items {
            "rayon par_iter, with_max_len(1), 2 threads"
        } else {
            "rayon par_iter, 2 threads"
        }
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let results: Vec<u64> = self.pool.install(|| {
                // A `usize` range: rayon's `u64` ranges cannot be split by length.
                let items = (0..self.items as usize).into_par_iter();
                if self.single_items {
                    items.with_max_len(1).map(|i| trivial(i as u64)).collect()
                } else {
                    items.map(|i| trivial(i as u64)).collect()
                }
            });
            assert_eq!(black_box(results).len() as u64, self.items);
        }
    }
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let (big, small) = if settings.quick { (20_000, 2_000) } else { (200_000, 20_000) };
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script_file("threadpool.py", SCRIPT, &[quick]);
    let pool = ThreadPool::new(Some(2))?;
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let rows = [
        (
            if settings.quick {
                "ThreadPool map 20k items, default chunks"
            } else {
                "ThreadPool map 200k items, default chunks"
            },
            "map_default_chunks",
            big,
            None,
        ),
        (
            if settings.quick {
                "ThreadPool map 2k items, chunksize 1"
            } else {
                "ThreadPool map 20k items, chunksize 1"
            },
            "map_chunksize_1",
            small,
            Some(1),
        ),
    ];
    for (operation, key, items, chunksize) in rows {
        let name = "multiprocessing::ThreadPool (2 threads)";
        let ours = PyconcMap { pool: &pool, items, chunksize, name };
        let rayon = Rayon { pool: &threads, items, single_items: chunksize.is_some() };
        let (pyconc, raw) = compare_settled(settings, 1, &ours, &rayon, SETTLE);
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython multiprocessing.pool.ThreadPool"),
        });
    }
    pool.close();
    pool.join()?;
    Ok(())
}
