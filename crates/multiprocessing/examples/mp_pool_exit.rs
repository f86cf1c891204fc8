//! A program that ends while its `Pool` still runs tasks: the pool is terminated at exit
//! (CPython's pool finalizer; test_worker_finalization_via_atexit_handler_of_multiprocessing),
//! and when the program is SIGKILLed, its workers die with it.
//!
//! Prints `worker PID` for each worker, then `main done`, then ends as the mode says:
//! `leak` (the pool is never dropped: `std::mem::forget`, then `main` returns), `exit`
//! (`std::process::exit(0)` with the pool alive) or `wait` (sleeps until killed).
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_pool_exit -- [fork|spawn|forkserver] [leak|exit|wait]`

use std::io::Write;
use std::time::Duration;

use multiprocessing::{Pool, StartMethod, active_children};

fn sleepy(seconds: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(seconds));
    seconds
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiprocessing::init();
    let args: Vec<String> = std::env::args().collect();
    let method: StartMethod = args.get(1).map_or(Ok(StartMethod::Fork), |m| m.parse())?;
    let mode = args.get(2).map_or("leak", String::as_str);
    let pool = Pool::builder().processes(Some(2)).start_method(method).build()?;
    let pending = pool.map_async(sleepy, [30, 30, 30]);
    for child in active_children() {
        println!("worker {}", child.pid().unwrap_or(0));
    }
    println!("main done");
    std::io::stdout().flush()?;
    match mode {
        "exit" => std::process::exit(0),
        "wait" => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
    std::mem::forget(pending);
    std::mem::forget(pool);
    Ok(())
}
