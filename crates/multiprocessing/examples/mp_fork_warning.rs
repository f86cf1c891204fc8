//! Forking while other threads run prints CPython 3.12's DeprecationWarning once; a
//! single-threaded fork prints nothing.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_fork_warning -- [threads]`

use std::time::Duration;

use multiprocessing::Process;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _sleeper = if std::env::args().any(|a| a == "threads") {
        Some(std::thread::spawn(|| std::thread::sleep(Duration::from_secs(2))))
    } else {
        None
    };
    for _ in 0..3 {
        let p = Process::new(|| {});
        p.start()?;
        p.join()?;
    }
    println!("forked 3 times");
    Ok(())
}
