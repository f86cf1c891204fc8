//! A `Pool` over MPI ranks (cargo feature `mpi`): the same `map`/`imap`/`apply_async` as a
//! local pool, with the other ranks of the `mpirun` job as workers.
//!
//! ```python
//! # mpi4py.futures, run as: mpirun -n 3 python -m mpi4py.futures prog.py
//! with MPIPoolExecutor() as pool:
//!     print(list(pool.map(square, range(10))))
//! ```
//!
//! Run: `cargo build -p pyconc-multiprocessing --features mpi --example mpi_pool` then
//! `mpirun -n 3 target/debug/examples/mpi_pool [--fast | --die | --hang]` (as root, add
//! `--allow-run-as-root`; on fewer cores than ranks, `--oversubscribe`). Across machines:
//! `mpirun -n 8 --hostfile hosts target/release/examples/mpi_pool`, with the binary at the
//! same path on every host.

use std::time::Instant;

use multiprocessing::{Error, Pool, StartMethod};

fn square(n: u64) -> u64 {
    n * n
}

fn checked_half(n: u64) -> u64 {
    assert!(n % 2 == 0, "{n} is odd");
    n / 2
}

fn rank_name(_: u32) -> String {
    multiprocessing::current_process().name()
}

fn die(_: u32) -> u32 {
    std::process::abort()
}

fn hang(_: u32) -> u32 {
    std::thread::sleep(std::time::Duration::from_secs(60));
    0
}

/// `--die`: a task aborts its rank (the job ends: MPI cannot replace a rank);
/// `--hang`: a task outlives the pool's 1 s deadline (the job is aborted).
fn fail_on_purpose(how: &str) -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::builder().mpi().deadline(std::time::Duration::from_secs(1)).build()?;
    println!("failing on purpose: {how}");
    let outcome = if how == "--die" { pool.apply(die, 0) } else { pool.apply(hang, 0) };
    println!("unreachable: the job should have ended ({outcome:?})");
    Ok(())
}

pub(crate) fn demo(fast: bool) -> Result<(), Box<dyn std::error::Error>> {
    let pool = match Pool::builder().mpi().build() {
        Ok(pool) => pool,
        Err(error) => {
            println!("{error}");
            return Err(error.into());
        }
    };
    println!("MPI pool of {} worker ranks", pool.processes());
    println!("map: {:?}", pool.map(square, 0..10)?);
    let mut unordered: Vec<u64> = pool.imap_unordered(square, 0..10)?.collect::<Result<_, _>>()?;
    unordered.sort_unstable();
    println!("imap_unordered, sorted: {unordered:?}");
    println!("apply_async: {}", pool.apply_async(square, 12).get()?);
    match pool.apply(checked_half, 7) {
        Err(Error::RemoteTraceback(panic)) => println!("a task panicked: {}", panic.message),
        other => println!("unexpected: {other:?}"),
    }
    let mut ranks = pool.map_chunked(rank_name, 0..8, 1)?;
    ranks.sort();
    ranks.dedup();
    println!("ran on: {}", ranks.join(", "));

    let items = if fast { 2_000 } else { 20_000 };
    let started = Instant::now();
    pool.map_chunked(square, 0..items, 1)?;
    let mpi = items as f64 / started.elapsed().as_secs_f64();
    // Forked by the single-threaded fork server: forking this process directly would copy
    // it in the middle of MPI's progress threads (and print the fork-with-threads warning).
    let local = Pool::builder()
        .processes(Some(pool.processes()))
        .start_method(StartMethod::ForkServer)
        .build()?;
    let started = Instant::now();
    local.map_chunked(square, 0..items, 1)?;
    let processes = items as f64 / started.elapsed().as_secs_f64();
    println!(
        "map of {items} items, chunksize 1: MPI pool {mpi:.0} items/s, local process pool {processes:.0} items/s"
    );
    pool.close();
    pool.join()?;
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiprocessing::init();
    let args: Vec<String> = std::env::args().collect();
    if let Some(how) = args.iter().find(|a| *a == "--die" || *a == "--hang") {
        return fail_on_purpose(how);
    }
    demo(args.iter().any(|a| a == "--fast"))
}
