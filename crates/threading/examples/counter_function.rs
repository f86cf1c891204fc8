//! The Python course's function-style thread: a `counter(count, delay)` function that asks
//! `current_thread()` for its name.
//!
//! ```python
//! def counter(count, delay):
//!     t = current()
//!     for i in range(count):
//!         print(f"{t.name}: counting {i}")
//!         sleep(delay)
//!
//! c1 = Thread(target=counter, name="Count5", args=(5, 2))
//! c2 = Thread(target=counter, name="Count10", kwargs={"count": 10, "delay": 1})
//! ```
//!
//! Run: `cargo run -p pyconc-threading --example counter_function [-- --fast]`

use std::time::Duration;

use threading::{Thread, current_thread as current};

fn counter(count: u32, delay: Duration) {
    let t = current(); // the Thread running this function
    for i in 0..count {
        println!("{}: counting {i}", t.name());
        std::thread::sleep(delay);
    }
}

/// Runs `counter` in Count5 and Count10 and joins both; a unit is 1 s, or 10 ms when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(10) } else { Duration::from_secs(1) };
    // `args=(5, 2)` and `kwargs={...}` become the closure's captures.
    let c1 = Thread::builder().name("Count5").target(move || counter(5, 2 * unit));
    let c2 = Thread::builder().name("Count10").target(move || counter(10, unit));
    c1.start()?;
    c2.start()?;
    c1.join()?;
    c2.join()?;
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), threading::Error> {
    demo(std::env::args().any(|arg| arg == "--fast"))
}
