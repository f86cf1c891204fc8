//! Active threads vs daemon threads: a heartbeat daemon thread beats forever next to an
//! active (non-daemon) worker. `main` returns at once; the process lives on until the
//! active worker ends, and then exits without waiting for the daemon.
//!
//! ```python
//! Thread(target=heartbeat, daemon=True).start()
//! Thread(target=worker).start()
//! print("main thread returns")   # the process waits for worker, not for heartbeat
//! ```
//!
//! Run: `cargo run -p pyconc-threading --example daemon [-- --fast]`

use std::time::Duration;

use threading::Thread;

/// Starts the heartbeat (every 2 units) and the worker (4 steps of 3 units) and returns;
/// a unit is 100 ms, or 5 ms when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(5) } else { Duration::from_millis(100) };
    let heartbeat = Thread::builder().name("heartbeat").daemon(true).target(move || {
        let mut beat = 0;
        loop {
            beat += 1;
            println!("heartbeat: beat {beat}");
            std::thread::sleep(2 * unit);
        }
    });
    let worker = Thread::builder().name("worker").target(move || {
        for step in 1..=4 {
            std::thread::sleep(3 * unit);
            println!("worker: step {step} of 4");
        }
        println!("worker: done; the process exits now, the daemon is not waited for");
    });
    heartbeat.start()?;
    worker.start()?;
    println!(
        "main: returning with {} threads alive (heartbeat daemon={}, worker daemon={})",
        threading::active_count(),
        heartbeat.daemon(),
        worker.daemon()
    );
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), threading::Error> {
    demo(std::env::args().any(|arg| arg == "--fast"))
}
