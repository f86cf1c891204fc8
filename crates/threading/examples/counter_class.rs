//! The Python course's OO-style thread: a `Counter(Thread)` class with its own `run()`.
//!
//! ```python
//! class Counter(Thread):
//!     def __init__(self, count, delay, *args, **kwargs):
//!         super().__init__(*args, **kwargs)
//!         self.count, self.delay = count, delay
//!     def run(self):
//!         for i in range(self.count):
//!             print(f"{self.name}: counting {i}")
//!             sleep(self.delay)
//! ```
//!
//! Run: `cargo run -p pyconc-threading --example counter_class [-- --fast]`

use std::time::Duration;

use threading::{Runnable, Thread};

/// Counts to `count`, printing the thread's name, with `delay` between counts.
struct Counter {
    count: u32,
    delay: Duration,
}

impl Runnable for Counter {
    fn run(self) {
        let name = threading::current_thread().name();
        for i in 0..self.count {
            println!("{name}: counting {i}");
            std::thread::sleep(self.delay);
        }
    }
}

/// Starts Count5 (every 2 units) and Count10 (every unit) and joins both; a unit is 1 s,
/// or 10 ms when `fast`.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(10) } else { Duration::from_secs(1) };
    let c1 = Thread::builder().name("Count5").target(Counter { count: 5, delay: 2 * unit });
    let c2 = Thread::builder().name("Count10").target(Counter { count: 10, delay: unit });
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
