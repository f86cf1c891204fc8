//! Exit semantics: `main` returns while a non-daemon worker is still running, and that worker
//! then calls `std::process::exit(3)` itself. Rust lets only the first caller of `exit`
//! proceed and parks the others forever; the exiting main thread notices that the worker it
//! waits for is parked there and stops waiting, so the process ends — with main's status,
//! 0, as in CPython, where the main thread decides the exit status.
//!
//! Run: `cargo run -p pyconc-threading --example exit_race`

use std::time::Duration;

fn main() -> Result<(), threading::Error> {
    let worker = threading::Thread::builder().name("worker").daemon(false).target(|| {
        std::thread::sleep(Duration::from_millis(200));
        println!("worker calls exit(3)");
        std::process::exit(3);
    });
    worker.start()?;
    println!("main done");
    Ok(())
}
