//! A panic in a started thread goes to the default `threading.excepthook`: it prints
//! `Exception in thread NAME:` and the panic once to stderr; the thread ends, the process
//! goes on and exits with status 0 — as CPython does for an exception in a thread.
//!
//! Run: `cargo run -p pyconc-threading --example panic_in_thread`

fn main() -> Result<(), threading::Error> {
    let t = threading::Thread::builder().name("excepthook thread").target(|| {
        panic!("run failed");
    });
    t.start()?;
    t.join()?;
    println!("main goes on after the thread's panic");
    // A hook that panics itself: CPython prints "Exception in threading.excepthook:".
    threading::set_excepthook(|_| panic!("threading_hook failed"));
    let u = threading::Thread::builder().name("second").target(|| panic!("again"));
    u.start()?;
    u.join()?;
    println!("main done");
    Ok(())
}
