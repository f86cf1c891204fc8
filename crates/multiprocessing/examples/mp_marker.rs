//! A program that calls `multiprocessing::init()` first and then says that its `main`
//! ran. `tests/security.rs` runs it with forged spawn markers: `init()` must ignore them
//! and let `main` run as a normal program. With the argument `spawn-a-child`, it also
//! starts a spawn child that runs this program once more with `Command`: that
//! grandchild inherits the child's environment, marker included, and must ignore it.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_marker`

use multiprocessing::{Process, StartMethod};

fn run_me_again(program: String) {
    let out = std::process::Command::new(program).output().expect("cannot run the grandchild");
    print!("grandchild: {}", String::from_utf8_lossy(&out.stdout));
}

fn main() {
    multiprocessing::init();
    println!("main ran as a normal program");
    if std::env::args().nth(1).as_deref() == Some("spawn-a-child") {
        let me = std::env::current_exe().expect("own path").to_string_lossy().into_owned();
        let child = Process::builder().start_method(StartMethod::Spawn).call(run_me_again, me);
        child.start().expect("cannot start the spawn child");
        child.join().expect("cannot join the spawn child");
        std::process::exit(child.exitcode().unwrap_or(99));
    }
}
