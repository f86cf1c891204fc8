//! Exit semantics: `main` returns while a daemon thread runs forever; the process does not
//! wait for it and exits with status 0.
//!
//! Run: `cargo run -p pyconc-threading --example exit_daemon`

use std::time::Duration;

fn main() -> Result<(), threading::Error> {
    let heartbeat = threading::Thread::builder().name("heartbeat").daemon(true).target(|| {
        loop {
            println!("heartbeat");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    heartbeat.start()?;
    std::thread::sleep(Duration::from_millis(50));
    println!("main done");
    Ok(())
}
