//! Exit semantics: `std::process::exit(5)` in `main` while a non-daemon thread works: the
//! thread finishes first (its output appears), then the process exits with status 5, as
//! CPython's `sys.exit(5)` does.
//!
//! Run: `cargo run -p pyconc-threading --example exit_code`

use std::time::Duration;

fn main() {
    let worker = threading::Thread::builder().name("worker").daemon(false).target(|| {
        std::thread::sleep(Duration::from_millis(300));
        println!("worker done");
    });
    worker.start().expect("start");
    println!("main exits with 5");
    std::process::exit(5);
}
