//! A `Pool`: a CPU-bound job spread over worker processes with a progress bar, then the
//! faults CPython's `Pool` cannot survive — a task that panics, a worker that dies.
//!
//! ```python
//! with Pool() as pool:
//!     for n in pool.imap_unordered(count_primes, ranges):   # progress as results arrive
//!         total += n
//!     pool.apply(crash)          # CPython: hangs forever (python/cpython#96062)
//! ```
//!
//! Run: `cargo run -p pyconc-multiprocessing --example pool [-- --fast]`

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use multiprocessing::{Error, Pool};

/// The number of primes in `lo..hi` (trial division: CPU-bound on purpose).
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo..hi).filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count()
        as u64
}

fn crash(_: ()) -> u64 {
    std::process::abort() // the worker dies mid-task
}

fn checked_half(n: u64) -> u64 {
    assert!(n % 2 == 0, "{n} is odd");
    n / 2
}

fn square(n: u64) -> u64 {
    n * n
}

pub(crate) fn demo(fast: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (pieces, size) = if fast { (40, 2_000) } else { (200, 10_000) };
    let ranges: Vec<(u64, u64)> = (0..pieces).map(|i| (i * size, (i + 1) * size)).collect();
    let limit = pieces * size;

    let started = Instant::now();
    let alone: u64 = ranges.iter().map(|&r| count_primes(r)).sum();
    let one_process = started.elapsed();

    let pool = Pool::new(None)?;
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::new(pieces).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pieces {msg}")
            .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    let mut total = 0;
    for count in pool.imap_unordered(count_primes, ranges)? {
        total += count?;
        bar.inc(1);
        bar.set_message(format!("({} running)", pool.stats().running));
    }
    bar.finish_and_clear();
    let in_pool = started.elapsed();
    assert_eq!(total, alone);
    println!("{total} primes below {limit}");
    println!(
        "one process: {one_process:.1?}; Pool of {} workers: {in_pool:.1?} ({:.1}x)",
        pool.processes(),
        one_process.as_secs_f64() / in_pool.as_secs_f64()
    );

    match pool.apply(checked_half, 7) {
        Err(Error::RemoteTraceback(panic)) => println!("a task panicked: {}", panic.message),
        other => println!("unexpected: {other:?}"),
    }
    match pool.apply(crash, ()) {
        Err(error @ Error::WorkerDied(_)) => println!("{error}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("the pool goes on: {:?}", pool.map(square, 1..=5)?);
    let stats = pool.stats();
    println!("tasks: {} submitted, {} done, {} failed", stats.submitted, stats.done, stats.failed);
    pool.close();
    pool.join()?;
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiprocessing::init();
    demo(std::env::args().any(|a| a == "--fast"))
}
