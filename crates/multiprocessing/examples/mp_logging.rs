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
}
