//! "Process vs Thread: performance and design implications", the course's last lesson.
//!
//! 1. A CPU-bound job split over 1 and 2 workers, as threads and as processes. In CPython
//!    the GIL lets only one thread run Python code at a time, so threads do not speed it
//!    up and processes do; Rust threads have no GIL, so both scale, and processes pay a
//!    start-up cost.
//! 2. A shared counter: threads share the process's memory and all see one counter;
//!    each process works on its own copy, so the parent's counter does not move.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example process_vs_thread [-- --fast]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use multiprocessing::Process;
use threading::Thread;

/// Counts primes below `limit` by trial division: pure CPU work.
fn count_primes(from: u64, to: u64) -> u64 {
    (from.max(2)..to).filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count()
        as u64
}

fn prime_slice((from, to): (u64, u64)) {
    std::hint::black_box(count_primes(from, to));
}

fn split(limit: u64, workers: u64) -> Vec<(u64, u64)> {
    (0..workers).map(|w| (limit * w / workers, limit * (w + 1) / workers)).collect()
}

fn with_threads(limit: u64, workers: u64) -> Result<Duration, Box<dyn std::error::Error>> {
    let began = Instant::now();
    let threads: Vec<Thread> = split(limit, workers)
        .into_iter()
        .map(|slice| Thread::new(move || prime_slice(slice)))
        .collect();
    for t in &threads {
        t.start()?;
    }
    threading::joinall(&threads)?;
    Ok(began.elapsed())
}

fn with_processes(limit: u64, workers: u64) -> Result<Duration, Box<dyn std::error::Error>> {
    let began = Instant::now();
    let procs: Vec<Process> =
        split(limit, workers).into_iter().map(|slice| Process::call(prime_slice, slice)).collect();
    for p in &procs {
        p.start()?;
    }
    threading::joinall(&procs)?;
    Ok(began.elapsed())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn add_thousand(_: ()) {
    for _ in 0..1000 {
        COUNTER.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs both parts; `fast` uses a smaller job.
pub(crate) fn demo(fast: bool) -> Result<(), Box<dyn std::error::Error>> {
    let limit = if fast { 20_000 } else { 3_000_000 };
    let workers = multiprocessing::cpu_count().clamp(2, 4) as u64;
    println!(
        "CPU-bound: count the primes below {limit} ({} CPUs usable)",
        multiprocessing::cpu_count()
    );
    let one_thread = with_threads(limit, 1)?;
    let many_threads = with_threads(limit, workers)?;
    let one_process = with_processes(limit, 1)?;
    let many_processes = with_processes(limit, workers)?;
    let speedup = |one: Duration, many: Duration| one.as_secs_f64() / many.as_secs_f64();
    println!("  1 thread:    {one_thread:>10.2?}");
    println!(
        "  {workers} threads:   {many_threads:>10.2?}  speedup {:.2}x",
        speedup(one_thread, many_threads)
    );
    println!("  1 process:   {one_process:>10.2?}");
    println!(
        "  {workers} processes: {many_processes:>10.2?}  speedup {:.2}x",
        speedup(one_process, many_processes)
    );
    println!("  (CPython: threads stay at ~1x because of the GIL; Rust threads have none)");

    println!("Shared memory: each worker adds 1000 to a global counter");
    COUNTER.store(0, Ordering::Relaxed);
    let threads: Vec<Thread> = (0..2).map(|_| Thread::new(|| add_thousand(()))).collect();
    for t in &threads {
        t.start()?;
    }
    threading::joinall(&threads)?;
    println!("  after 2 threads:   {} (one memory, shared)", COUNTER.load(Ordering::Relaxed));
    COUNTER.store(0, Ordering::Relaxed);
    let procs: Vec<Process> = (0..2).map(|_| Process::call(add_thousand, ())).collect();
    for p in &procs {
        p.start()?;
    }
    threading::joinall(&procs)?;
    println!(
        "  after 2 processes: {} (each child changed its own copy; share through Pipe, Queue or Value)",
        COUNTER.load(Ordering::Relaxed)
    );
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiprocessing::init();
    demo(std::env::args().any(|arg| arg == "--fast"))
}
