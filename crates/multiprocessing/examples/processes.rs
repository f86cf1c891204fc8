//! The course's counters, run as processes: `multiprocessing.Process` has the same API as
//! `Thread`, but each counter runs in its own process, with its own pid and exit code.
//!
//! ```python
//! from multiprocessing import Process, current_process
//! import os
//!
//! def counter(count, delay):
//!     p = current_process()
//!     for i in range(count):
//!         print(f"{p.name} (pid {os.getpid()}): counting {i}")
//!         sleep(delay)
//!
//! c1 = Process(target=counter, name="Count5", args=(5, 2))
//! c2 = Process(target=counter, name="Count10", args=(10, 1))
//! ```
//!
//! Run: `cargo run -p pyconc-multiprocessing --example processes [-- --fast]`

use std::time::Duration;

use multiprocessing::{Process, active_children, current_process};

/// `(count, delay in ms)`: a plain `fn` with serde arguments runs under every start method.
fn counter((count, delay_ms): (u32, u64)) {
    let p = current_process();
    for i in 0..count {
        println!("{} (pid {}): counting {i}", p.name(), std::process::id());
        std::thread::sleep(Duration::from_millis(delay_ms));
    }
    if p.name() == "Count5" {
        std::process::exit(5); // an exit code the parent will see
    }
}

/// Runs Count5 and Count10 as processes and reports their pids and exit codes; a unit is
/// 1 s, or 10 ms when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), multiprocessing::Error> {
    let unit: u64 = if fast { 10 } else { 1000 };
    let c1 = Process::builder().name("Count5").call(counter, (5, 2 * unit));
    let c2 = Process::builder().name("Count10").call(counter, (10, unit));
    println!("{} (pid {}) starts two counters", current_process().name(), std::process::id());
    c1.start()?;
    c2.start()?;
    println!("started {:?} and {:?}", c1, c2);
    println!("active_children: {}", active_children().len());
    c1.join()?;
    c2.join()?;
    for p in [&c1, &c2] {
        println!("{} (pid {}) exited with {:?}", p.name(), p.pid().unwrap_or(0), p.exitcode());
    }
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    demo(std::env::args().any(|arg| arg == "--fast"))
}
