//! `log_to_stderr` in a parent, and what it and its children print: run by
//! `tests/exit.rs` (`logging_*`). Usage: `mp_logging fork|spawn|forkserver`.

use multiprocessing::{Pool, Process, StartMethod, get_logger, log_to_stderr, util};

fn report_level(_: ()) {
    println!("child level {}", get_logger().level());
}

fn main() {
    multiprocessing::init();
    let method: StartMethod = std::env::args().nth(1).unwrap_or_default().parse().unwrap();
    // Nothing is shown before log_to_stderr (CPython: the logger has no handler).
    let p = Process::builder().start_method(method).call(report_level, ());
    p.start().unwrap();
    p.join().unwrap();
    log_to_stderr(Some(util::DEBUG));
    let p = Process::builder().start_method(method).call(report_level, ());
    p.start().unwrap();
    p.join().unwrap();
    let pool = Pool::builder().processes(Some(1)).start_method(method).build().unwrap();
    pool.close();
    pool.join().unwrap();
    // At exit: the daemonic child is terminated, the other joined, each finalizer named.
    get_logger().set_level(util::SUBDEBUG);
    let daemon = Process::builder().start_method(method).name("sleeper").daemon(true);
    daemon.call(sleep_long, ()).start().unwrap();
    // "quick" outlives main by a second so that the exit path finds it running and joins it
    // (a child already gone is reaped silently, as CPython's active_children() does).
    let other = Process::builder().start_method(method).name("quick").call(report_late, ());
    other.start().unwrap();
}

fn report_late(_: ()) {
    std::thread::sleep(std::time::Duration::from_secs(1));
    report_level(());
}

fn sleep_long(_: ()) {
    std::thread::sleep(std::time::Duration::from_secs(60));
}
