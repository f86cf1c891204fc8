//! `connection::send_handle`/`recv_handle` — CPython 3.11's `_TestPicklingConnections`
//! (`test_pickling`, `test_access`: connections handed to a process that is already
//! running) and `reduction.send_handle`, for a `Connection`, a `Queue`, a `Lock` and a raw
//! fd, under every start method; plus the misuse cases (a handle fetched twice, a forged
//! ticket, a sender that is gone).

use std::io::{Read, Write};
use std::time::Duration;

use multiprocessing::connection::{Address, Handle, Listener, client, recv_handle, send_handle};
use multiprocessing::{Connection, Error, Lock, Process, Queue, StartMethod, pipe};
use serde::{Deserialize, Serialize};

use crate::each_start_method;

/// The child: takes a connection, a queue, a lock and a file from `control`, and uses
/// each.
fn use_what_comes(control: Connection) {
    let conn: Connection = recv_handle(&control).unwrap();
    let question: String = conn.recv().unwrap();
    conn.send(&format!("{question} answered")).unwrap();
    let queue: Queue<u32> = recv_handle(&control).unwrap();
    queue.put(41 + 1).unwrap();
    let lock: Lock = recv_handle(&control).unwrap();
    // The parent holds the lock: this waits until it lets go.
    lock.acquire();
    control.send(&"locked").unwrap();
    lock.release().unwrap();
    let file: Handle = recv_handle(&control).unwrap();
    std::fs::File::from(file.into_fd()).write_all(b"written by the child").unwrap();
    control.send(&"done").unwrap();
}

// _TestPicklingConnections.test_access: objects made after the child started reach it.
fn objects_made_later_reach_a_running_child(method: StartMethod) {
    let (control, theirs) = pipe(true).unwrap();
    let child = Process::builder().start_method(method).call(use_what_comes, theirs);
    child.start().unwrap();
    let (near, far) = pipe(true).unwrap();
    send_handle(&control, &far).unwrap();
    drop(far);
    near.send(&"question").unwrap();
    assert_eq!(near.recv::<String>().unwrap(), "question answered");
    let queue = Queue::<u32>::new(0).unwrap();
    send_handle(&control, &queue).unwrap();
    assert_eq!(queue.get_timeout(Duration::from_secs(20)).unwrap(), 42);
    let lock = Lock::new();
    lock.acquire();
    send_handle(&control, &lock).unwrap();
    assert!(!control.poll(Some(Duration::from_millis(100))).unwrap(), "the child waits");
    lock.release().unwrap();
    assert_eq!(control.recv::<String>().unwrap(), "locked");
    let (mut reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    send_handle(&control, &Handle::new(writer.into())).unwrap();
    assert_eq!(control.recv::<String>().unwrap(), "done");
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    assert_eq!(text, "written by the child");
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
}

each_start_method! {
    handles_reach_a_running_child => objects_made_later_reach_a_running_child;
}

// _TestPicklingConnections.test_pickling: a connection accepted by one process is handed
// on, over a Listener's TCP connection, to another that serves it.
#[test]
fn a_connection_is_handed_on_over_a_tcp_connection() {
    let _serial = crate::support::serial();
    let listener =
        Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), Some(b"key")).unwrap();
    let address = listener.address();
    let peer = std::thread::spawn(move || {
        let control = client(address, Some(b"key")).unwrap();
        let (near, far) = pipe(true).unwrap();
        send_handle(&control, &far).unwrap();
        near.send(&7u8).unwrap();
        near.recv::<u8>().unwrap()
    });
    let control = listener.accept().unwrap();
    let served: Connection = recv_handle(&control).unwrap();
    let n: u8 = served.recv().unwrap();
    served.send(&(n * 6)).unwrap();
    assert_eq!(peer.join().unwrap(), 42);
}

#[test]
fn values_without_fds_travel_alone() {
    let (a, b) = pipe(true).unwrap();
    send_handle(&a, &(1u8, "no fds".to_string())).unwrap();
    assert_eq!(recv_handle::<(u8, String)>(&b).unwrap(), (1, "no fds".to_string()));
}

/// The wire form of a sent handle, as a peer could forge it.
#[derive(Serialize, Deserialize, Clone)]
struct Sent {
    ticket: Option<Ticket>,
    payload: Vec<u8>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Ticket {
    name: String,
    id: u64,
    secret: [u8; 32],
    count: u32,
}

#[test]
fn a_handle_is_fetched_once_and_only_with_its_secret() {
    let (a, b) = pipe(true).unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    send_handle(&a, &Handle::new(file.into())).unwrap();
    let sent: Sent = b.recv().unwrap();
    let mut forged = sent.clone();
    forged.ticket.as_mut().unwrap().secret[0] ^= 1;
    a.send(&forged).unwrap();
    let err = recv_handle::<Handle>(&b).unwrap_err();
    assert!(err.to_string().contains("already received, or is unknown"), "{err}");
    // The forgery did not use the entry up: the right secret still fetches it, once.
    a.send(&sent).unwrap();
    recv_handle::<Handle>(&b).unwrap();
    a.send(&sent).unwrap();
    assert!(recv_handle::<Handle>(&b).is_err(), "a second fetch finds nothing");
    // A ticket naming another socket is not followed.
    let mut elsewhere = sent;
    elsewhere.ticket.as_mut().unwrap().name = "some-other-service".into();
    a.send(&elsewhere).unwrap();
    let err = recv_handle::<Handle>(&b).unwrap_err();
    assert!(err.to_string().contains("names no resource sharer"), "{err}");
}

fn send_a_file_then_exit(control: Connection) {
    let file = std::fs::File::open("/dev/null").unwrap();
    send_handle(&control, &Handle::new(file.into())).unwrap();
}

#[test]
fn a_handle_whose_sender_is_gone_fails_at_once() {
    let _serial = crate::support::serial();
    let (ours, theirs) = pipe(true).unwrap();
    let child =
        Process::builder().start_method(StartMethod::Spawn).call(send_a_file_then_exit, theirs);
    child.start().unwrap();
    child.join().unwrap();
    let err = recv_handle::<Handle>(&ours).unwrap_err();
    assert!(matches!(err, Error::OsError(_)));
    assert!(err.to_string().contains("resource sharer is gone"), "{err}");
}

fn send_from_a_fork_child(control: Connection) {
    let (mut reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    send_handle(&control, &Handle::new(writer.into())).unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    control.send(&text).unwrap();
}

#[test]
fn a_fork_child_shares_through_its_own_sharer() {
    let _serial = crate::support::serial();
    // This process's sharer runs; the fork child must start its own.
    let (a, b) = pipe(true).unwrap();
    send_handle(&a, &Handle::new(std::fs::File::open("/dev/null").unwrap().into())).unwrap();
    recv_handle::<Handle>(&b).unwrap();
    let (ours, theirs) = pipe(true).unwrap();
    let child =
        Process::builder().start_method(StartMethod::Fork).call(send_from_a_fork_child, theirs);
    child.start().unwrap();
    let handle: Handle = recv_handle(&ours).unwrap();
    std::fs::File::from(handle.into_fd()).write_all(b"from the parent").unwrap();
    assert_eq!(ours.recv::<String>().unwrap(), "from the parent");
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
}
