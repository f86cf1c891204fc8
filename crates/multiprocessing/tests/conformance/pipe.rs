//! `pipe()` and `Connection`, ported from `_TestConnection` in CPython 3.11's
//! `_test_multiprocessing.py` (test_connection, test_duplex_false, test_spawn_close,
//! test_sendbytes, test_fd_transfer's idea: a connection passed to a child), plus bad-frame
//! tests and a property test (the frame-decoder fuzz target, run by every `cargo test`).

use std::io::Write;
use std::time::{Duration, Instant};

use multiprocessing::connection::{Address, Listener};
use multiprocessing::{Connection, Error, StartMethod, pipe};
use proptest::prelude::*;

use crate::each_start_method;
use crate::support::{self, call};

/// test_connection's `_echo`: sends back every message until the empty message (EOF
/// alone cannot end it: a fork child holds a copy of the parent's end too).
fn echo(conn: Connection) {
    loop {
        let message = conn.recv_bytes().unwrap();
        if message.is_empty() {
            break;
        }
        conn.send_bytes(&message).unwrap();
    }
    conn.close().unwrap();
}

each_start_method! {
    messages_round_trip_through_a_child => messages_round_trip_through_a_child;
    closing_the_childs_end_gives_eof => closing_the_childs_end_gives_eof;
    both_ends_sending_large_messages_do_not_deadlock => both_ends_sending_large_messages_do_not_deadlock;
    a_one_way_pipe_reaches_the_child => a_one_way_pipe_reaches_the_child;
}

/// test_connection.
fn messages_round_trip_through_a_child(method: StartMethod) {
    let (conn, child_conn) = pipe(true).unwrap();
    let p = call(method, echo, child_conn);
    p.start().unwrap();

    let seq = vec![1u32, 2, 3];
    conn.send(&seq).unwrap();
    assert_eq!(conn.recv::<Vec<u32>>().unwrap(), seq);

    let msg = b"hello world".to_vec();
    conn.send_bytes(&msg).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), msg);

    conn.send_bytes(b"\0").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"\0");

    let mut buffer = Vec::with_capacity(64);
    conn.send_bytes(&msg).unwrap();
    assert_eq!(conn.recv_bytes_into(&mut buffer).unwrap(), msg.len());
    assert_eq!(buffer, msg);

    // poll: nothing yet, then a message.
    assert!(!conn.poll(Some(Duration::ZERO)).unwrap());
    let began = Instant::now();
    assert!(!conn.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(began.elapsed() >= Duration::from_millis(90));
    conn.send(&"x").unwrap();
    assert!(conn.poll(None).unwrap());
    assert_eq!(conn.recv::<String>().unwrap(), "x");

    let big = vec![7u8; 3 << 20];
    conn.send_bytes(&big).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), big);

    // The empty message ends the child, which closes its end: we see EOF.
    conn.send_bytes(b"").unwrap();
    assert!(matches!(conn.recv_bytes(), Err(Error::EOFError)));
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn close_and_exit(conn: Connection) {
    conn.send(&"bye").unwrap();
    conn.close().unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// test_spawn_close.
fn closing_the_childs_end_gives_eof(method: StartMethod) {
    let (conn, child_conn) = pipe(true).unwrap();
    let p = call(method, close_and_exit, child_conn);
    p.start().unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "bye");
    let began = Instant::now();
    assert!(matches!(conn.recv::<String>(), Err(Error::EOFError)));
    assert!(began.elapsed() < Duration::from_millis(150), "EOF at close(), not at exit");
    p.join().unwrap();
}

fn send_then_receive(conn: Connection) {
    let payload = vec![1u8; 4 << 20];
    conn.send_bytes(&payload).unwrap();
    assert_eq!(conn.recv_bytes().unwrap().len(), 4 << 20);
}

/// Beyond CPython (whose Connection deadlocks here): both ends send 4 MiB before reading.
fn both_ends_sending_large_messages_do_not_deadlock(method: StartMethod) {
    let (conn, child_conn) = pipe(true).unwrap();
    let p = call(method, send_then_receive, child_conn);
    p.start().unwrap();
    conn.send_bytes(&vec![2u8; 4 << 20]).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), vec![1u8; 4 << 20]);
    assert!(p.join_timeout(Duration::from_secs(30)).unwrap());
    assert_eq!(p.exitcode(), Some(0));
}

fn write_numbers(conn: Connection) {
    for i in 0..100u32 {
        conn.send(&i).unwrap();
    }
}

/// test_duplex_false across processes: the child gets the sending end.
fn a_one_way_pipe_reaches_the_child(method: StartMethod) {
    let (reader, writer) = pipe(false).unwrap();
    let p = call(method, write_numbers, writer);
    p.start().unwrap();
    let received: Vec<u32> = (0..100).map(|_| reader.recv().unwrap()).collect();
    assert_eq!(received, (0..100).collect::<Vec<u32>>());
    p.join().unwrap();
    assert!(matches!(reader.recv::<u32>(), Err(Error::EOFError)), "the writer is gone");
}

/// test_duplex_false.
#[test]
fn a_one_way_pipe_refuses_the_wrong_direction() {
    let _serial = support::serial();
    let (reader, writer) = pipe(false).unwrap();
    assert!(reader.readable() && !reader.writable());
    assert!(writer.writable() && !writer.readable());
    assert_eq!(reader.send(&1).unwrap_err().to_string(), "connection is read-only");
    assert_eq!(writer.recv::<u32>().unwrap_err().to_string(), "connection is write-only");
    writer.send(&5u8).unwrap();
    assert_eq!(reader.recv::<u8>().unwrap(), 5);
}

/// test_connection's closed-handle part.
#[test]
fn every_use_after_close_says_handle_is_closed() {
    let _serial = support::serial();
    let (a, b) = pipe(true).unwrap();
    a.close().unwrap();
    a.close().unwrap();
    assert!(a.closed());
    for err in [a.send(&1).unwrap_err(), a.recv::<u8>().unwrap_err(), a.poll(None).unwrap_err()] {
        assert_eq!(err.to_string(), "handle is closed");
    }
    assert_eq!(a.fileno().unwrap_err().to_string(), "handle is closed");
    assert!(matches!(b.recv::<u8>(), Err(Error::EOFError)), "the peer sees EOF");
}

/// Pickling a Connection outside a process start is refused, as CPython refuses.
#[test]
fn a_connection_cannot_be_serialized_outside_a_process_start() {
    let _serial = support::serial();
    let (a, b) = pipe(true).unwrap();
    let (c, _d) = pipe(true).unwrap();
    let err = a.send(&c).unwrap_err();
    assert!(matches!(err, Error::PicklingError(_)));
    assert!(
        err.to_string().contains(
            "Connection objects should only be shared between processes through inheritance"
        ),
        "{err}"
    );
    drop(b);
}

/// A raw socket standing in for a hostile peer: the other end of a connection whose
/// frames travel in the socket itself (a `Listener`'s; a `pipe()`'s travel in shared
/// memory, and its socket carries only wake-ups).
fn raw_peer() -> (Connection, std::net::TcpStream) {
    let listener = Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), None).unwrap();
    let Address::Tcp(address) = listener.address() else { unreachable!("a TCP listener") };
    let raw = std::net::TcpStream::connect(address).unwrap();
    (listener.accept().unwrap(), raw)
}

#[test]
fn an_oversized_frame_is_refused_and_closes_the_connection() {
    let _serial = support::serial();
    let (conn, mut raw) = raw_peer();
    conn.set_max_frame(1024);
    raw.write_all(&[0x7f, 0xff, 0xff, 0xff]).unwrap();
    let err = conn.recv_bytes().unwrap_err();
    assert!(err.to_string().starts_with("bad message length"), "{err}");
    assert_eq!(conn.recv_bytes().unwrap_err().to_string(), "handle is closed");
}

#[test]
fn a_truncated_frame_is_an_error_not_a_hang() {
    let _serial = support::serial();
    let (conn, mut raw) = raw_peer();
    raw.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    drop(raw);
    let err = conn.recv_bytes().unwrap_err();
    assert!(err.to_string().contains("in the middle of a message"), "{err}");
}

#[test]
fn bytes_of_the_wrong_type_are_an_unpickling_error() {
    let _serial = support::serial();
    let (a, b) = pipe(true).unwrap();
    a.send(&"not a number").unwrap();
    assert!(matches!(b.recv::<(u64, u64, u64, u64)>(), Err(Error::UnpicklingError(_))));
    a.send_bytes(&[0xff; 3]).unwrap();
    assert!(matches!(b.recv::<String>(), Err(Error::UnpicklingError(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The frame-decoder fuzz target: any byte stream from a peer gives values or errors —
    /// never a panic, a hang or an allocation beyond the frame limit.
    #[test]
    fn any_byte_stream_decodes_or_errors(stream in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _serial = support::serial();
        let (conn, mut raw) = raw_peer();
        conn.set_max_frame(4096);
        raw.write_all(&stream).unwrap();
        drop(raw);
        for _ in 0..64 {
            let outcome = conn.recv::<(u8, Vec<String>, Option<Vec<u64>>)>();
            match outcome {
                Ok(_) | Err(Error::UnpicklingError(_)) => {}
                Err(_) => break, // EOF, truncated, oversized
            }
        }
    }

    /// Valid frames of arbitrary values round-trip.
    #[test]
    fn values_round_trip(values in proptest::collection::vec(any::<(u32, String, Vec<i16>)>(), 0..16)) {
        let _serial = support::serial();
        let (a, b) = pipe(true).unwrap();
        for value in &values {
            a.send(value).unwrap();
        }
        for value in &values {
            prop_assert_eq!(&b.recv::<(u32, String, Vec<i16>)>().unwrap(), value);
        }
    }
}
