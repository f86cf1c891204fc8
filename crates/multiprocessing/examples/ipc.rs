//! Processes that talk: a producer and two consumers over a `Queue`, then a counter in
//! shared memory updated by two processes without and with a `Lock` — the lost-update race.
//!
//! ```python
//! def producer(q):
//!     for i in range(10): q.put(i * i)
//!     for _ in range(2): q.put(None)
//!
//! def consumer(q, name):
//!     while (item := q.get()) is not None:
//!         print(f"{name} got {item}")
//!
//! counter = Value("i", 0, lock=False)       # counter.value += 1 races
//! counter = Value("i", 0)                   # with counter.get_lock(): counter.value += 1
//! ```
//!
//! Run: `cargo run -p pyconc-multiprocessing --example ipc [-- --fast]`

use std::time::Duration;

use multiprocessing::{Barrier, Process, Queue, Value, current_process};

fn producer(queue: Queue<Option<u64>>) {
    for i in 0..10 {
        queue.put(Some(i * i)).unwrap();
    }
    for _ in 0..2 {
        queue.put(None).unwrap(); // one "stop" per consumer
    }
}

fn consumer(queue: Queue<Option<u64>>) {
    let me = current_process().name();
    while let Ok(Some(item)) = queue.get() {
        println!("{me} got {item}");
        std::thread::sleep(Duration::from_millis(2)); // "work", so both consumers get some
    }
}

fn add_unlocked((counter, times, start): (Value<u64>, u64, Barrier)) {
    let _ = start.wait(); // both processes run the loop at the same time
    for _ in 0..times {
        counter.set(counter.get() + 1); // read, then write: another process may write between
    }
}

fn add_locked((counter, times, start): (Value<u64>, u64, Barrier)) {
    let _ = start.wait();
    for _ in 0..times {
        counter.update(|n| *n += 1); // read and write under the value's lock
    }
}

type Adder = fn((Value<u64>, u64, Barrier));

fn run_pair(body: Adder, counter: &Value<u64>, times: u64) -> Result<(), multiprocessing::Error> {
    let start = Barrier::try_new(2)?;
    let procs: Vec<Process> =
        (0..2).map(|_| Process::call(body, (counter.clone(), times, start.clone()))).collect();
    for p in &procs {
        p.start()?;
    }
    for p in &procs {
        p.join()?;
    }
    Ok(())
}

/// Runs both parts; `fast` uses fewer increments.
pub(crate) fn demo(fast: bool) -> Result<(), multiprocessing::Error> {
    println!("Producer/consumer over a Queue:");
    let queue = Queue::<Option<u64>>::new(0)?;
    let workers = [
        Process::builder().name("Producer").call(producer, queue.clone()),
        Process::builder().name("Consumer-A").call(consumer, queue.clone()),
        Process::builder().name("Consumer-B").call(consumer, queue.clone()),
    ];
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?;
    }

    let times = if fast { 200_000 } else { 2_000_000 };
    println!("Shared counter, 2 processes x {times} increments:");
    let unlocked = Value::new_raw(0u64)?;
    run_pair(add_unlocked, &unlocked, times)?;
    let lost = 2 * times - unlocked.get();
    println!("  without a lock: {} ({lost} updates lost to the race)", unlocked.get());
    let locked = Value::new(0u64)?;
    run_pair(add_locked, &locked, times)?;
    println!("  with the lock:  {} (none lost)", locked.get());
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    demo(std::env::args().any(|arg| arg == "--fast"))
}
