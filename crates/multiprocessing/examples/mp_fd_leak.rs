//! Makes one of each object of the crate that owns fds — pipes of both kinds (one end
//! closed), a queue, a lock, a shared value, an event, a listener — and runs itself
//! again with `Command` (`list` argument), which lists the fds it inherited. It prints
//! those that this program did not inherit itself: none may reach an exec'd program.
//! Used by `tests/security.rs`.
//!
//! Run: `cargo run -p pyconc-multiprocessing --example mp_fd_leak`

use multiprocessing::connection::{Address, Listener};
use multiprocessing::{Event, Lock, Queue, Value, pipe};

fn inherited_fds() -> Vec<i32> {
    let dir = std::fs::read_dir("/proc/self/fd").expect("no /proc/self/fd");
    let mut fds: Vec<i32> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|fd| {
            // The directory being read is an fd of its own.
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
            !link.to_string_lossy().starts_with("/proc/")
        })
        .collect();
    fds.sort_unstable();
    fds
}

fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    if std::env::args().nth(1).as_deref() == Some("list") {
        println!("{:?}", inherited_fds());
        return Ok(());
    }
    let before = inherited_fds();
    let (a, b) = pipe(true)?;
    let (c, d) = pipe(false)?;
    a.send(&1u8)?;
    let _: u8 = b.recv()?;
    c.close()?; // keeps its fd number valid, pointing at /dev/null
    let queue: Queue<u32> = Queue::new(0)?;
    queue.put(7)?;
    let _ = queue.get()?;
    let (lock, value, event) = (Lock::new(), Value::new(5u64)?, Event::new());
    let listener = Listener::bind(Address::Abstract(b"pyconc-fd-leak".to_vec()), None)?;
    let me = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(me).arg("list").output()?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let theirs: Vec<i32> = listed
        .trim()
        .trim_matches(['[', ']'])
        .split(", ")
        .filter_map(|fd| fd.parse().ok())
        .collect();
    let leaked: Vec<i32> = theirs.into_iter().filter(|fd| !before.contains(fd)).collect();
    println!("leaked fds: {leaked:?}");
    drop((a, b, d, queue, lock, value, event, listener));
    Ok(())
}
