//! `pyconc`: runs the Python course's threading and multiprocessing examples on pyconc (`pyconc demo NAME`) and
//! measures pyconc against raw Rust and CPython side by side (`pyconc bench GROUP`).

mod bench;
mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Python's threading and multiprocessing, in Rust: the course examples and the benchmarks.
#[derive(Debug, Parser)]
#[command(name = "pyconc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one of the course's examples (all of them, in order, without a name).
    Demo(demo::DemoArgs),
    /// Measures pyconc against raw Rust and CPython side by side, printing ratios.
    Bench(bench::BenchArgs),
    /// Runs one measurement in a fresh process (used by `bench` for peak memory).
    #[command(hide = true)]
    BenchChild(bench::ChildArgs),
    /// Rank 0 of `bench pool --mpi`'s `mpirun` job.
    #[cfg(feature = "mpi")]
    #[command(hide = true)]
    BenchMpiChild {
        /// Short rounds.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    // Spawn and forkserver children of the demos and benchmarks run this program again;
    // they run their target here and never reach the rest of main.
    multiprocessing::init();
    bench::exit_if_raw_spawn_probe();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::BenchChild(args) => bench::run_child(&args),
        #[cfg(feature = "mpi")]
        Command::BenchMpiChild { quick } => bench::run_mpi_child(quick),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pyconc: {e}");
            ExitCode::FAILURE
        }
    }
}
