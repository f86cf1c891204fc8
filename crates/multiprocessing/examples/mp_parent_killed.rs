//! Beyond CPython: a daemonic child dies with its parent even when the parent is killed
//! (SIGKILL), through `PR_SET_PDEATHSIG`; a non-daemonic child keeps running.
//!
//! Prints `daemon PID` and `worker PID`, then sleeps until killed. With `thread`, the
//! children are started from a worker thread that ends before the parent is killed.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_parent_killed -- [fork|spawn|forkserver] [thread]`

use std::io::Write;
use std::time::Duration;

use multiprocessing::{Process, StartMethod};

fn sleep_long(_: ()) {
    std::thread::sleep(Duration::from_secs(60));
}

fn start_children(method: StartMethod) -> Result<(), multiprocessing::Error> {
    let daemon = Process::builder().start_method(method).daemon(true).call(sleep_long, ());
    let worker = Process::builder().start_method(method).daemon(false).call(sleep_long, ());
    daemon.start()?;
    worker.start()?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "daemon {}", daemon.pid().unwrap_or(0));
    let _ = writeln!(out, "worker {}", worker.pid().unwrap_or(0));
    let _ = out.flush();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiprocessing::init();
    let args: Vec<String> = std::env::args().collect();
    let method: StartMethod = args.get(1).map_or(Ok(StartMethod::Fork), |m| m.parse())?;
    if args.iter().any(|a| a == "thread") {
        std::thread::spawn(move || start_children(method))
            .join()
            .map_err(|_| "thread panicked")??;
    } else {
        start_children(method)?;
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
