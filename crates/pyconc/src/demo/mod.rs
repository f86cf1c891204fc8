//! `pyconc demo NAME`: the course examples. Each is also a standalone example of the
//! `threading` or `multiprocessing` crate (`crates/*/examples/`), whose source is included here, so the
//! CLI and `cargo run --example` run the very same code.

use clap::{Args, ValueEnum};

macro_rules! examples {
    ($($module:ident: $file:literal),* $(,)?) => {
        $(
            #[path = $file]
            #[allow(dead_code, reason = "the example's own main() is unused here")]
            mod $module;
        )*
    };
}

examples! {
    counter_class: "../../../threading/examples/counter_class.rs",
    counter_function: "../../../threading/examples/counter_function.rs",
    daemon: "../../../threading/examples/daemon.rs",
    helpers: "../../../threading/examples/helpers.rs",
    timer: "../../../threading/examples/timer.rs",
    joinall: "../../../threading/examples/joinall.rs",
    processes: "../../../multiprocessing/examples/processes.rs",
    process_vs_thread: "../../../multiprocessing/examples/process_vs_thread.rs",
    ipc: "../../../multiprocessing/examples/ipc.rs",
    pool: "../../../multiprocessing/examples/pool.rs",
    manager: "../../../multiprocessing/examples/manager.rs",
}

#[cfg(feature = "mpi")]
#[path = "../../../multiprocessing/examples/mpi_pool.rs"]
#[allow(dead_code, reason = "the example's own main() is unused here")]
mod mpi_pool;

/// Which example to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Demo {
    /// OO style: a `Counter` type implementing `Runnable` (Python: subclassing `Thread`).
    CounterClass,
    /// Function style: `counter()` asking `current_thread()` for its name.
    CounterFunction,
    /// A heartbeat daemon thread next to an active worker: the process exits when the
    /// active thread ends, without waiting for the daemon.
    Daemon,
    /// `current_thread`, `active_count`, `enumerate`, `main_thread` from several threads.
    Helpers,
    /// `Timer`: one that fires and one that is cancelled.
    Timer,
    /// The `joinall()` exercise, with and without one shared deadline.
    Joinall,
    /// The counters as processes: same API as `Thread`, with pids and exit codes.
    Processes,
    /// Process vs Thread: a CPU-bound job on 1 and N workers, and a counter that
    /// processes do not share.
    ProcessVsThread,
    /// Processes that talk: producer/consumers over a Queue, and a shared counter with
    /// and without a Lock (the lost-update race).
    Ipc,
    /// A CPU-bound job over a Pool with a progress bar; a task that panics and a worker
    /// that dies, and the pool goes on.
    Pool,
    /// A manager: a dict and a list shared by several processes; a manager on localhost
    /// TCP reached by a second process with its address and key.
    Manager,
    /// The Pool over MPI ranks: run as `mpirun -n 3 pyconc demo mpi-pool` from a build
    /// with `--features mpi` (not part of running all demos).
    MpiPool,
}

/// Arguments of `pyconc demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The example; all of them in order when omitted (the daemon demo last).
    name: Option<Demo>,
    /// Scales the sleeps down so that the examples finish in well under a second.
    #[arg(long)]
    fast: bool,
}

pub(crate) fn run(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let all = [
        Demo::CounterClass,
        Demo::CounterFunction,
        Demo::Helpers,
        Demo::Timer,
        Demo::Joinall,
        Demo::Processes,
        Demo::ProcessVsThread,
        Demo::Ipc,
        Demo::Pool,
        Demo::Manager,
        Demo::Daemon,
    ];
    let chosen = match args.name {
        Some(demo) => vec![demo],
        None => all.to_vec(),
    };
    for demo in chosen {
        if args.name.is_none() {
            let name = demo.to_possible_value().map(|v| v.get_name().to_owned());
            println!("== pyconc demo {}", name.unwrap_or_default());
        }
        let fast = args.fast;
        match demo {
            Demo::CounterClass => counter_class::demo(fast)?,
            Demo::CounterFunction => counter_function::demo(fast)?,
            Demo::Daemon => daemon::demo(fast)?,
            Demo::Helpers => helpers::demo(fast)?,
            Demo::Timer => timer::demo(fast)?,
            Demo::Joinall => joinall::demo(fast)?,
            Demo::Processes => processes::demo(fast)?,
            Demo::ProcessVsThread => process_vs_thread::demo(fast)?,
            Demo::Ipc => ipc::demo(fast)?,
            Demo::Pool => pool::demo(fast)?,
            Demo::Manager => manager::demo(fast)?,
            #[cfg(feature = "mpi")]
            Demo::MpiPool => mpi_pool::demo(fast)?,
            #[cfg(not(feature = "mpi"))]
            Demo::MpiPool => {
                return Err("pyconc was built without MPI: cargo build --release -p pyconc \
                            --features mpi, then mpirun -n 3 target/release/pyconc demo mpi-pool"
                    .into());
            }
        }
    }
    Ok(())
}
