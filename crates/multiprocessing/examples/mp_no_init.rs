//! A program that forgot `multiprocessing::init()`: spawn and forkserver refuse to start
//! instead of running `main` again in the child. Fork needs no `init()`.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_no_init`

use multiprocessing::{Process, StartMethod};

fn nothing(_: ()) {}

fn main() {
    println!("main runs once");
    for method in [StartMethod::Spawn, StartMethod::ForkServer, StartMethod::Fork] {
        let p = Process::builder().start_method(method).call(nothing, ());
        match p.start().and_then(|()| p.join()) {
            Ok(()) => println!("{method}: exitcode {:?}", p.exitcode()),
            Err(error) => println!("{method}: {error}"),
        }
    }
}
