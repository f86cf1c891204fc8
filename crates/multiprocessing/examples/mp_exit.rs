//! At exit the parent terminates its daemonic children and waits for the others
//! (CPython's `util._exit_function`; CPYTHON.md §2.5's verified script).
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_exit -- [fork|spawn|forkserver] [exit]`
//! With `exit`, `main` ends with `std::process::exit(4)` instead of returning.

use std::time::Duration;

use multiprocessing::{Process, StartMethod};

fn daemon_child(_: ()) {
    std::thread::sleep(Duration::from_secs(10));
    println!("daemon child finished");
}

fn non_daemon_child(_: ()) {
    std::thread::sleep(Duration::from_millis(300));
    println!("non-daemon child finished");
}

fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    let args: Vec<String> = std::env::args().collect();
    let method: StartMethod = args.get(1).map_or(Ok(StartMethod::Fork), |m| m.parse())?;
    let daemon = Process::builder().start_method(method).daemon(true).call(daemon_child, ());
    let worker = Process::builder().start_method(method).call(non_daemon_child, ());
    daemon.start()?;
    worker.start()?;
    println!("parent main done");
    if args.iter().any(|a| a == "exit") {
        std::process::exit(4);
    }
    Ok(())
}
