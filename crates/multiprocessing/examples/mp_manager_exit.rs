//! A program that starts a manager and never shuts it down: run by `tests/exit.rs`
//! (`manager_*`). Prints `server PID`, then: `exit` returns from `main` with the manager
//! leaked (the exit function must shut the server down); `wait` sleeps until killed (the
//! server must not outlive a SIGKILLed parent). Usage: `mp_manager_exit fork|spawn|forkserver exit|wait`.

use std::io::Write;

use multiprocessing::StartMethod;
use multiprocessing::managers::Manager;

fn main() {
    multiprocessing::init();
    let mut args = std::env::args().skip(1);
    let method: StartMethod = args.next().unwrap_or_default().parse().unwrap();
    let mode = args.next().unwrap_or_default();
    let manager = Manager::builder().start_method(method).start().unwrap();
    let list = manager.list::<u8>().unwrap();
    list.append(1).unwrap();
    let pid = manager.process().unwrap().pid().unwrap();
    println!("server {pid}");
    std::io::stdout().flush().unwrap();
    // Neither the manager nor the proxy is dropped: only the exit path can stop it.
    std::mem::forget(list);
    std::mem::forget(manager);
    if mode == "wait" {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
