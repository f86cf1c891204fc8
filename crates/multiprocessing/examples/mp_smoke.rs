//! Quick smoke run of every start method.
use multiprocessing::{Process, StartMethod};

fn square(n: u64) {
    println!("{} squared is {} in {}", n, n * n, multiprocessing::current_process().name());
}

fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    for method in multiprocessing::get_all_start_methods() {
        let start = std::time::Instant::now();
        let p = Process::builder().start_method(method).call(square, 7);
        p.start()?;
        p.join()?;
        println!("{method}: {:?} exit {:?} in {:?}", p, p.exitcode(), start.elapsed());
    }
    let p = Process::builder().start_method(StartMethod::Spawn).call(|()| panic!("boom"), ());
    p.start()?;
    p.join()?;
    println!("panic exit {:?}", p.exitcode());
    Ok(())
}
