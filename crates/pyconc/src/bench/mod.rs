//! `pyconc bench GROUP`: pyconc, raw Rust and CPython measured side by side in one run.
//!
//! Each measured operation is a [`measure::Operation`] with one implementation per backend.
//! The backends of one operation run in alternating rounds (warm-up first, then rounds
//! until a time budget), so that drift of this noisy machine hits them alike; the table
//! shows medians and the ratios between backends. CPython runs the equivalent script
//! (`threads.py`, `processes.py`, `ipc.py`, `pool.py`, `threadpool.py`, `managers.py`, shipped inside the binary) with the `python3` found on `PATH` or given
//! by `--python`; without it, its column says why it is missing.

mod ipc;
mod managers;
mod measure;
mod mpi;
mod pool;
mod processes;
mod python;
mod scaling;
mod svg;
mod threadpool;
mod threads;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

/// The benchmark groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Group {
    /// Thread start+join, current_thread, Timer, 1000 threads (time and peak RSS).
    Threads,
    /// Process start+join with fork, spawn and forkserver.
    Processes,
    /// Pipe and Queue messages, 1 MiB messages and round trips between processes.
    Ipc,
    /// Pool creation, map throughput (default chunks and chunksize 1), CPU-bound speedup.
    Pool,
    /// ThreadPool map throughput (default chunks and chunksize 1) vs rayon and CPython.
    Threadpool,
    /// A manager's proxy calls (dict, list, namespace, queue, lock) vs CPython's Manager().
    Managers,
    /// A CPU-bound job on 1..2×CPUs workers: threads vs processes, pyconc vs CPython.
    Scaling,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Threads => "threads",
            Group::Processes => "processes",
            Group::Ipc => "ipc",
            Group::Pool => "pool",
            Group::Threadpool => "threadpool",
            Group::Managers => "managers",
            Group::Scaling => "scaling",
        }
    }
}

/// Arguments of `pyconc bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Which groups to run; all when omitted.
    groups: Vec<Group>,
    /// Short rounds: finishes in seconds (used by CI; the figures are rougher).
    #[arg(long)]
    quick: bool,
    /// The CPython interpreter to compare with.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw the report as an SVG chart in this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also measure the Pool over MPI (`mpirun -n 3`) against the local pool and
    /// mpi4py.futures (needs a build with `--features mpi` and Open MPI).
    #[arg(long)]
    mpi: bool,
}

/// Arguments of the hidden `pyconc bench-child`: one measurement in a fresh process.
#[derive(Debug, Args)]
pub(crate) struct ChildArgs {
    /// The measurement.
    job: threads::ChildJob,
}

pub(crate) fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let groups = if args.groups.is_empty() {
        vec![
            Group::Threads,
            Group::Processes,
            Group::Ipc,
            Group::Pool,
            Group::Threadpool,
            Group::Managers,
            Group::Scaling,
        ]
    } else {
        args.groups.clone()
    };
    let settings = measure::Settings::new(args.quick);
    let python = python::Python::find(&args.python);
    let mut report = measure::Report::new(&python);
    // On stderr, and drawn only when stderr is a terminal (indicatif hides it otherwise).
    let progress = ProgressBar::new(groups.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} groups, measuring {msg} ({elapsed})",
    )?);
    for group in groups {
        progress.set_message(group.name());
        match group {
            Group::Threads => threads::run(&settings, &python, &mut report)?,
            Group::Processes => processes::run(&settings, &python, &mut report)?,
            Group::Ipc => ipc::run(&settings, &python, &mut report)?,
            Group::Pool => pool::run(&settings, &python, &mut report)?,
            Group::Threadpool => threadpool::run(&settings, &python, &mut report)?,
            Group::Managers => managers::run(&settings, &python, &mut report)?,
            Group::Scaling => report.set_scaling(scaling::run(&settings, &python)?),
        }
        report.group_done(group.name());
        progress.inc(1);
    }
    if args.mpi {
        progress.set_message("pool over MPI");
        mpi::run(&settings, &python, &mut report)?;
    }
    report.speed_after();
    progress.finish_and_clear();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", report.table(color));
    if let Some(path) = &args.json {
        std::fs::write(path, report.json()?)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        svg::write(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The hidden `pyconc bench-mpi-child`: rank 0 of `bench pool --mpi`'s `mpirun`.
#[cfg(feature = "mpi")]
pub(crate) fn run_mpi_child(quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    mpi::run_child(quick)
}

pub(crate) fn run_child(args: &ChildArgs) -> Result<(), Box<dyn std::error::Error>> {
    threads::run_child(args.job)
}

/// In the child of the raw spawn baseline (this program run again), exits at once.
pub(crate) fn exit_if_raw_spawn_probe() {
    if std::env::var_os(processes::RAW_SPAWN_PROBE).is_some() {
        std::process::exit(0);
    }
}
