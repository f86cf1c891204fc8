//! The Python course's exercise: a `joinall()` that waits for all threads to exit — and its
//! timed form, with one deadline for all of them.
//!
//! ```python
//! def joinall(threads):
//!     for t in threads:
//!         t.join()
//! ```
//!
//! Run: `cargo run -p pyconc-threading --example joinall [-- --fast]`

use std::time::{Duration, Instant};

use threading::Thread;

/// Starts five sleepers of 1..5 units, waits 2.5 units for all with one deadline, then
/// joins the rest; a unit is 200 ms, or 10 ms when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(10) } else { Duration::from_millis(200) };
    let start = Instant::now();
    let threads: Vec<Thread> = (1..=5)
        .map(|n| {
            Thread::builder().name(format!("sleeper-{n}")).target(move || {
                std::thread::sleep(n * unit);
            })
        })
        .collect();
    for t in &threads {
        t.start()?;
    }
    let alive = threading::joinall_timeout(&threads, unit * 5 / 2)?;
    let names: Vec<String> = alive.iter().map(Thread::name).collect();
    println!("after 2.5 units: still alive {names:?}");
    threading::joinall(&threads)?;
    println!("joinall: all {} threads ended after {} units", threads.len(), {
        start.elapsed().as_millis() / unit.as_millis()
    });
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), threading::Error> {
    demo(std::env::args().any(|arg| arg == "--fast"))
}
