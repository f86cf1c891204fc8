//! The fork server forks each child ahead of the request that will use it (a *spare*).
//! A spare that is killed before it is used is replaced: the next start still succeeds.
//!
//! Starts a child with the forkserver method, SIGKILLs the server's spare, starts
//! another child, and prints each exit code and whether a spare was found.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_forkserver_spare`

use std::time::{Duration, Instant};

use multiprocessing::{Process, StartMethod};

fn exit_with(code: i32) {
    std::process::exit(code)
}

/// Sleeps a moment (so that its parent, the server, can be read while it runs), then
/// exits with `code`.
fn exit_later_with(code: i32) {
    std::thread::sleep(Duration::from_millis(300));
    std::process::exit(code)
}

/// The running processes whose parent is `pid` (`/proc/PID/stat`, field 4).
fn children_of(pid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let mut rest = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace());
            let state = rest.as_mut().and_then(|r| r.next());
            let parent = rest.as_mut().and_then(|r| r.next()).and_then(|f| f.parse::<u32>().ok());
            state != Some("Z") && parent == Some(pid)
        })
        .collect()
}

fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    let first = Process::builder().start_method(StartMethod::ForkServer).call(exit_later_with, 3);
    first.start()?;
    let server = std::fs::read_to_string(format!("/proc/{}/stat", first.pid().unwrap_or(0)))
        .ok()
        .and_then(|s| s.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<u32>().ok())
        .unwrap_or(0);
    first.join()?;
    if server <= 1 || server == std::process::id() {
        // Not the server (the child ended before it was read): kill nothing.
        println!("first exitcode {:?}\nno server found", first.exitcode());
        return Ok(());
    }
    println!("first exitcode {:?}", first.exitcode());
    // The spare is forked right after the first start.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut spares = children_of(server);
    while spares.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        spares = children_of(server);
    }
    println!("spares {}", spares.len());
    for spare in spares {
        // SAFETY: a plain kill of the server's spare child.
        unsafe { libc::kill(spare, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(50));
    let second = Process::builder().start_method(StartMethod::ForkServer).call(exit_with, 4);
    second.start()?;
    second.join()?;
    println!("second exitcode {:?}", second.exitcode());
    Ok(())
}
