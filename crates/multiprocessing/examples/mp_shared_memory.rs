//! A program that leaves shared memory behind: run by `tests/exit.rs` (`shared_memory_*`)
//! to check the resource tracker. It creates a segment, has a child (started with the
//! given method) create another, checks that the child's segment outlives the child, and
//! prints both names (`segment NAME`). Then `exit` returns from `main` without unlinking
//! (the tracker must warn and unlink both); `wait` sleeps until killed (the tracker must
//! unlink both after a SIGKILL); `clean` unlinks both first (no warning); `manager` makes
//! them through a `SharedMemoryManager` and shuts it down (no warning: the server uses
//! the program's tracker); `untracked` makes one segment with `track(false)` and exits
//! (the tracker must leave it); `many` leaves 300 segments (the tracker's table grows).
//! Usage: `mp_shared_memory fork|spawn|forkserver exit|wait|clean|manager|untracked|many`.

use std::io::Write;

use multiprocessing::shared_memory::{Item, SharedMemory, SharedMemoryManager};
use multiprocessing::{Connection, Process, StartMethod};

/// The child's part: creates a segment, sends its name, exits without unlinking.
fn create_in_child(conn: Connection) {
    let shm = SharedMemory::create(4096).unwrap();
    shm.write_at(0, b"from the child").unwrap();
    conn.send(&shm.name().to_owned()).unwrap();
}

fn main() {
    multiprocessing::init();
    let mut args = std::env::args().skip(1);
    let method: StartMethod = args.next().unwrap_or_default().parse().unwrap();
    let mode = args.next().unwrap_or_default();
    let mut out = std::io::stdout();
    if mode == "many" {
        for _ in 0..300 {
            let shm = SharedMemory::create(64).unwrap();
            writeln!(out, "segment {}", shm.name()).unwrap();
        }
        return;
    }
    if mode == "untracked" {
        let shm = SharedMemory::options().track(false).create(64).unwrap();
        writeln!(out, "segment {}", shm.name()).unwrap();
        return;
    }
    if mode == "manager" {
        let smm = SharedMemoryManager::with_builder(
            multiprocessing::managers::ManagerBuilder::new().start_method(method),
        )
        .unwrap();
        let list = smm.shareable_list((0..10).map(Item::Int).collect()).unwrap();
        let shm = smm.shared_memory(100).unwrap();
        writeln!(out, "segment {}", list.shm().name()).unwrap();
        writeln!(out, "segment {}", shm.name()).unwrap();
        smm.shutdown().unwrap();
        return;
    }
    // The child creates its segment before this process has made any.
    let (theirs, reader) = multiprocessing::pipe(false).map(|(r, w)| (w, r)).unwrap();
    let child = Process::builder().start_method(method).call(create_in_child, theirs);
    child.start().unwrap();
    let name: String = reader.recv().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
    // CPython: a segment a child created stays usable after the child exits.
    let childs = SharedMemory::attach(&name).expect("the child's segment outlives the child");
    let mut text = [0u8; 14];
    childs.read_at(0, &mut text).unwrap();
    assert_eq!(&text, b"from the child");
    let mine = SharedMemory::create(4096).unwrap();
    writeln!(out, "segment {}", mine.name()).unwrap();
    writeln!(out, "segment {name}").unwrap();
    out.flush().unwrap();
    match mode.as_str() {
        "wait" => std::thread::sleep(std::time::Duration::from_secs(60)),
        "clean" => {
            mine.unlink().unwrap();
            childs.unlink().unwrap();
        }
        _ => {}
    }
}
