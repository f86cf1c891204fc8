//! A panic in a child: `Process NAME:` and the panic on the child's stderr, exit code 1;
//! the parent goes on (CPython's traceback report, test_stderr_flush).
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_panic -- [fork|spawn|forkserver]`

use multiprocessing::{Process, StartMethod};

fn raiser(message: String) {
    panic!("{message}"); // MARKER
}

fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    let method: StartMethod =
        std::env::args().nth(1).map_or(Ok(StartMethod::Fork), |m| m.parse())?;
    let p = Process::builder().start_method(method).call(raiser, "boom".to_owned());
    p.start()?;
    p.join()?;
    println!("exitcode {:?}", p.exitcode());
    Ok(())
}
