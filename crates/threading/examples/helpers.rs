//! The helper functions of the `threading` module: `current_thread()`, `active_count()`,
//! `enumerate()` and `main_thread()`, asked from the main thread and from two workers.
//!
//! Run: `cargo run -p pyconc-threading --example helpers [-- --fast]`

use std::time::Duration;

use threading::{Thread, active_count, current_thread, enumerate, main_thread};

fn report(who: &str) {
    let me = current_thread();
    println!("{who}: current_thread() = {me:?}");
    println!("{who}: is main_thread()? {}", me == main_thread());
    println!("{who}: active_count() = {}", active_count());
    let names: Vec<String> = enumerate().iter().map(Thread::name).collect();
    println!("{who}: enumerate() = {names:?}");
}

/// Prints the helpers' answers before, during and after two workers run; the workers sleep
/// 2 units (1 s, or 10 ms when `fast`) so that both are alive together.
pub(crate) fn demo(fast: bool) -> Result<(), threading::Error> {
    let unit = if fast { Duration::from_millis(10) } else { Duration::from_secs(1) };
    report("main (before)");
    println!("main: main_thread() = {:?}", main_thread());
    let workers: Vec<Thread> = ["worker-1", "worker-2"]
        .into_iter()
        .map(|name| {
            Thread::builder().name(name).target(move || {
                std::thread::sleep(unit);
                report(name);
                std::thread::sleep(unit);
            })
        })
        .collect();
    for worker in &workers {
        worker.start()?;
    }
    threading::joinall(&workers)?;
    report("main (after join)");
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), threading::Error> {
    demo(std::env::args().any(|arg| arg == "--fast"))
}
