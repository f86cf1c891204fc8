//! Exit semantics: `main` returns while a non-daemon thread still works; the process waits
//! for it (CPython's `threading._shutdown`), then exits with status 0.
//!
//! Run: `cargo run -p pyconc-threading --example exit_nondaemon`

use std::time::Duration;

fn main() -> Result<(), threading::Error> {
    let worker = threading::Thread::builder().name("worker").daemon(false).target(|| {
        std::thread::sleep(Duration::from_millis(300));
        println!("worker done");
    });
    worker.start()?;
    println!("main done");
    Ok(())
}
