//! A manager: a dict and a list in a server process, shared by several processes; then a
//! manager on localhost TCP, reached by a second process that only knows its address and
//! key (a "remote" manager, as it would be from another machine).
//!
//! ```python
//! with Manager() as manager:
//!     scores, log = manager.dict(), manager.list()
//!     workers = [Process(target=play, args=(scores, log, name)) for name in names]
//!     ...
//! server = BaseManager(address=("127.0.0.1", 0), authkey=b"course")
//! server.start()
//! # elsewhere: BaseManager(address=addr, authkey=b"course").connect()
//! ```
//!
//! Run: `cargo run -p pyconc-multiprocessing --example manager [-- --fast]`

use std::time::Duration;

use multiprocessing::connection::Address;
use multiprocessing::managers::{DictProxy, ListProxy, Manager, Namespace, QueueProxy};
use multiprocessing::{Process, StartMethod, current_process};

fn play((scores, log, rounds, pause): (DictProxy<String, u32>, ListProxy<String>, u32, u64)) {
    let me = current_process().name();
    for round in 1..=rounds {
        let total = scores.get(&me).unwrap().unwrap_or(0) + round;
        scores.set(me.clone(), total).unwrap();
        log.append(format!("{me} scored {round}")).unwrap();
        std::thread::sleep(Duration::from_millis(pause));
    }
}

fn remote_client((address, key, board): (Address, Vec<u8>, Namespace)) {
    // The board came as a proxy (it carries the server's address); the client also
    // connects by address and key, as a program on another machine would.
    let manager = Manager::connect(address, Some(&key)).unwrap();
    board.set("visitor", &format!("process {}", std::process::id())).unwrap();
    let wrong = Manager::connect(manager.address(), Some(b"guess"));
    println!("  a client with a wrong key: {}", wrong.unwrap_err());
    let greetings = manager.queue::<String>(0).unwrap();
    greetings.put("hello from the remote client".into()).unwrap();
    // The queue travels back in the shared namespace, so the owner can read it.
    board.set("greetings", &greetings).unwrap();
}

/// Runs both parts; `fast` shortens the pauses.
pub(crate) fn demo(fast: bool) -> Result<(), multiprocessing::Error> {
    let pause = if fast { 1 } else { 50 };
    println!("A dict and a list in a manager, shared by 3 processes:");
    let manager = Manager::new()?;
    let (scores, log) = (manager.dict::<String, u32>()?, manager.list::<String>()?);
    let players: Vec<Process> = ["Ada", "Grace", "Linus"]
        .iter()
        .map(|name| {
            Process::builder().name(*name).call(play, (scores.clone(), log.clone(), 3, pause))
        })
        .collect();
    for p in &players {
        p.start()?;
    }
    for p in &players {
        p.join()?;
    }
    let mut table = scores.items()?;
    table.sort();
    for (name, total) in &table {
        println!("  {name}: {total}");
    }
    println!("  {} log lines, the first: {:?}", log.len()?, log.get(0)?);
    println!("  the server: {}", manager.process().map(Process::name).unwrap_or_default());
    manager.shutdown()?;

    println!("A manager on TCP, reached by a second process with the address and key:");
    let key = b"course".to_vec();
    let server = Manager::builder()
        .address(Address::Tcp("127.0.0.1:0".parse().expect("an address")))
        .authkey(&key)
        .start()?;
    println!("  listening at {:?}", server.address());
    let board = server.namespace()?;
    let client = Process::builder()
        .start_method(StartMethod::Spawn)
        .name("RemoteClient")
        .call(remote_client, (server.address(), key, board.clone()));
    client.start()?;
    client.join()?;
    println!("  the visitor was {}", board.get::<String>("visitor")?);
    let greetings: QueueProxy<String> = board.get("greetings")?;
    println!("  its queue holds: {:?}", greetings.get()?);
    Ok(())
}

#[allow(dead_code, reason = "the entry point when built as an example, unused in the CLI")]
fn main() -> Result<(), multiprocessing::Error> {
    multiprocessing::init();
    demo(std::env::args().any(|arg| arg == "--fast"))
}
