//! Exit semantics: a worker thread calls `std::process::exit(7)` while another non-daemon
//! thread works and `main` waits for the first. The exit waits for the other non-daemon
//! thread (never for the exiting thread itself), then the status is 7.
//!
//! Run: `cargo run -p pyconc-threading --example exit_from_worker`

use std::time::Duration;

fn main() -> Result<(), threading::Error> {
    let slow = threading::Thread::builder().name("slow").daemon(false).target(|| {
        std::thread::sleep(Duration::from_millis(300));
        println!("slow done");
    });
    let exiter = threading::Thread::builder().name("exiter").daemon(false).target(|| {
        println!("exiter calls exit(7)");
        std::process::exit(7);
    });
    slow.start()?;
    exiter.start()?;
    exiter.join()?;
    println!("main must not get here");
    Ok(())
}
