//! `Timer`: call a function once after an interval, and cancel a timer before it fires.
//!
//! ```python
//! t = Timer(2.0, hello); t.start()           # hello() runs after 2 s
//! u = Timer(5.0, never); u.start(); u.cancel()  # never() never runs
//! ```
//!
//! Run: `cargo run -p pyconc-threading --example timer [-- --fast]`

use std::time::{Duration, Instant};

use threading::Timer;

/// Fires one timer after 2 units and cancels another of 5 units; a unit is 1 s, or 10 ms
/// when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(10) } else { Duration::from_secs(1) };
    let start = Instant::now();
    let hello = Timer::new(2 * unit, move || {
        println!("{}: hello after {:?}", threading::current_thread().name(), start.elapsed());
    });
    let never = Timer::new(5 * unit, || println!("this line is never printed"));
    hello.start()?;
    never.start()?;
    println!("main: started {} and {}", hello.name(), never.name());
    never.cancel();
    never.join()?;
    println!("main: cancelled {} after {:?}", never.name(), start.elapsed());
    hello.join()?;
    println!("main: {} finished", hello.name());
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), threading::Error> {
    demo(std::env::args().any(|arg| arg == "--fast"))
}
