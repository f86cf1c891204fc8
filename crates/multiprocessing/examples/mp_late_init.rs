//! `init()` called late: in the spawned child, code before `init()` runs, and a process
//! started there fails with CPython's bootstrapping `RuntimeError` (TestNoForkBomb) instead
//! of starting processes without end.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_late_init`

use multiprocessing::{Process, StartMethod};

fn nothing(_: ()) {}

fn main() -> Result<(), multiprocessing::Error> {
    if std::env::var_os("PYCONC_LATE_INIT_PARENT").is_none() {
        // The parent: marks its children, calls init() first, and spawns one child.
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("PYCONC_LATE_INIT_PARENT", "1") };
        multiprocessing::init();
        let p = Process::builder().start_method(StartMethod::Spawn).call(nothing, ());
        p.start()?;
        p.join()?;
        println!("child exitcode {:?}", p.exitcode());
        return Ok(());
    }
    // The child runs this before reaching init(): the mistake this example shows.
    let p = Process::builder().start_method(StartMethod::Spawn).call(nothing, ());
    if let Err(error) = p.start() {
        eprintln!("RuntimeError: {error}");
    }
    multiprocessing::init();
    unreachable!("init() runs the spawned child's target and exits");
}
