//! `pyconc bench pool --mpi`: the Pool over MPI ranks against the local process pool and
//! mpi4py.futures' `MPIPoolExecutor` (where it is installed), side by side in one run:
//! `map` of a trivial function with chunksize 1, per item, 2 workers each.
//!
//! This process stays out of MPI: it starts `mpirun -n 3 pyconc bench-mpi-child` (rank 0
//! measures, ranks 1 and 2 serve) and `mpirun -n 3 python3 -m mpi4py.futures mpi4py.py`,
//! and measures the local pool itself.

use std::process::Command;

use multiprocessing::{Pool, StartMethod};
use serde_json::Value;

use super::measure::{Figures, Report, Row, Settings, Stats};
use super::python::Python;

const SCRIPT: &str = include_str!("mpi4py.py");
const GROUP: &str = "pool";

fn trivial(x: u64) -> u64 {
    x * x
}

/// Items per round and rounds.
fn size(quick: bool) -> (u64, usize) {
    if quick { (2_000, 3) } else { (20_000, 7) }
}

/// `mpirun -n 3`, allowed as root and on fewer cores than ranks.
fn mpirun() -> Vec<String> {
    let mut args =
        vec!["mpirun".to_owned(), "--oversubscribe".to_owned(), "-n".to_owned(), "3".to_owned()];
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        args.insert(1, "--allow-run-as-root".to_owned());
    }
    args
}

/// Times `map_chunked(trivial, 0..items, 1)` on `pool`: per-item ns of each round.
fn time_map(pool: &Pool, items: u64, rounds: usize) -> Stats {
    let _ = pool.map_chunked(trivial, 0..100, 1);
    let samples = (0..rounds)
        .map(|_| {
            let started = std::time::Instant::now();
            let results = pool.map_chunked(trivial, 0..items, 1).expect("map");
            assert_eq!(results.len() as u64, items);
            started.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    Stats::of(samples)
}

fn figures(backend: &str, wall_ns: Stats) -> Figures {
    Figures { backend: backend.to_owned(), wall_ns, cpu_ns: None, peak_rss_kib: None }
}

/// The hidden `bench-mpi-child`, rank 0 of `mpirun -n 3`: the MPI pool's figures as JSON.
#[cfg(feature = "mpi")]
pub(crate) fn run_child(quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (items, rounds) = size(quick);
    let pool = Pool::builder().mpi().build()?;
    let stats = time_map(&pool, items, rounds);
    pool.close();
    pool.join()?;
    println!("{}", serde_json::json!({ "wall_ns": stats }));
    Ok(())
}

fn stats_of(value: &Value) -> Option<Stats> {
    let wall = &value["wall_ns"];
    Some(Stats {
        min: wall["min"].as_f64()?,
        median: wall["median"].as_f64()?,
        max: wall["max"].as_f64()?,
    })
}

#[cfg(feature = "mpi")]
fn mpi_pool(quick: bool) -> Result<Stats, Box<dyn std::error::Error>> {
    let launcher = mpirun();
    let mut command = Command::new(&launcher[0]);
    command.args(&launcher[1..]).arg(std::env::current_exe()?).arg("bench-mpi-child");
    if quick {
        command.arg("--quick");
    }
    let out = command.output()?;
    if !out.status.success() {
        return Err(format!(
            "mpirun failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    stats_of(&json).ok_or_else(|| "unreadable bench-mpi-child output".into())
}

#[cfg(not(feature = "mpi"))]
fn mpi_pool(_: bool) -> Result<Stats, Box<dyn std::error::Error>> {
    Err("pyconc was built without MPI: cargo build --release -p pyconc --features mpi".into())
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let (items, rounds) = size(settings.quick);
    let pyconc = mpi_pool(settings.quick)?;
    let local = Pool::builder().processes(Some(2)).start_method(StartMethod::Fork).build()?;
    let raw = time_map(&local, items, rounds);
    local.close();
    local.join()?;
    let quick = if settings.quick { "1" } else { "0" };
    let has_mpi4py = Command::new("python3")
        .args(["-c", "import mpi4py.futures"])
        .output()
        .is_ok_and(|o| o.status.success());
    let python = if has_mpi4py {
        let items = items.to_string();
        let launcher = mpirun();
        let args = [quick, items.as_str()];
        let out = python.run_script_file_under(
            &launcher,
            &["-m", "mpi4py.futures"],
            "mpi4py_bench.py",
            SCRIPT,
            &args,
        );
        out.and_then(|json| {
            let stats = stats_of(&json).ok_or_else(|| "unreadable mpi4py output".to_owned())?;
            Ok(figures("mpi4py.futures MPIPoolExecutor", stats))
        })
    } else {
        Err("mpi4py is not installed (pip install mpi4py)".to_owned())
    };
    report.push(Row {
        group: GROUP,
        operation: "MPI pool map, chunksize 1 (per item)",
        pyconc: figures("Pool::builder().mpi() (2 ranks)", pyconc),
        raw: figures("local multiprocessing::Pool (2 workers)", raw),
        python,
    });
    Ok(())
}
