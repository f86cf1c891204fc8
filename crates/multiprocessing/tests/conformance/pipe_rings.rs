//! `pipe()`'s shared-memory transport: a ring buffer per direction beside an OS pipe
//! (one-way) or a socket pair (duplex) that carries wake-ups and EOF. CPython's `Pipe` is
//! the bare pipe or socket pair; these tests hold ours to what those guarantee — every
//! message whole and in order at any size, EOF after the last message, `EPIPE` without a
//! reader, readiness through `poll`/`wait` and through the fd — and to what they do not:
//! several writer (and, one-way, reader) processes at once, and processes killed while
//! they use the pipe. Each test runs on both kinds of pipe unless it says otherwise. The
//! sizes cross the ring's 1 MiB capacity, where a frame stops moving whole and moves in
//! pieces.

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multiprocessing::connection::wait;
use multiprocessing::{Connection, Error, Process, StartMethod, pipe};

use crate::each_start_method;
use crate::support::{self, call};

/// The ring's capacity (`CAPACITY` in `connection/ring.rs`).
const RING: usize = 1024 * 1024;

/// Message sizes around every boundary: empty, the 4-byte header, a frame exactly the
/// ring's size and one byte over it, several ring-fulls.
const SIZES: [usize; 16] = [
    0,
    1,
    3,
    4,
    5,
    63,
    64,
    1000,
    RING - 8,
    RING - 5,
    RING - 4,
    RING - 3,
    RING,
    RING + 1,
    3 * RING + 17,
    1 << 20,
];

/// The `i`th test message: its size from [`SIZES`], its bytes derived from `i`.
fn message(i: usize) -> Vec<u8> {
    let size = SIZES[i % SIZES.len()];
    (0..size).map(|k| (k * 31 + i * 7) as u8).collect()
}

/// The two kinds of pipe: one-way, duplex.
const KINDS: [bool; 2] = [false, true];

/// A pipe's (receiving end, sending end).
fn ends(duplex: bool) -> (Connection, Connection) {
    pipe(duplex).unwrap()
}

fn send_every_size(writer: Connection) {
    for i in 0..3 * SIZES.len() {
        writer.send_bytes(&message(i)).unwrap();
    }
}

each_start_method! {
    messages_of_every_size_arrive_whole_and_in_order => messages_of_every_size_arrive_whole_and_in_order;
}

/// The rings reach spawn and forkserver children with their fds; the sizes wrap the ring
/// around many times, at every offset.
fn messages_of_every_size_arrive_whole_and_in_order(method: StartMethod) {
    for duplex in KINDS {
        every_size_through_a_child(method, duplex);
    }
}

fn every_size_through_a_child(method: StartMethod, duplex: bool) {
    let (reader, writer) = ends(duplex);
    let p = call(method, send_every_size, writer);
    p.start().unwrap();
    let mut buf = Vec::new();
    for i in 0..3 * SIZES.len() {
        let n = reader.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(n, SIZES[i % SIZES.len()], "message {i}");
        assert!(buf == message(i), "message {i} of {n} bytes differs");
    }
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(matches!(reader.recv_bytes(), Err(Error::EOFError)));
}

/// `#[test] fn NAME()` running `NAME_on(duplex)` on both kinds of pipe, holding the
/// process tests' lock (some fork).
macro_rules! on_both_kinds {
    ($($name:ident => $body:ident;)*) => {$(
        #[test]
        fn $name() {
            let _serial = support::serial();
            for duplex in KINDS {
                $body(duplex);
            }
        }
    )*};
}

on_both_kinds! {
    several_writer_processes_share_one_end => several_writer_processes_share_one_end_on;
    threads_share_both_ends => threads_share_both_ends_on;
    the_end_comes_after_every_message => the_end_comes_after_every_message_on;
    sending_with_no_reader_left_is_a_broken_pipe => sending_with_no_reader_left_is_a_broken_pipe_on;
    poll_and_wait_see_messages_not_stale_wake_ups => poll_and_wait_see_messages_not_stale_wake_ups_on;
    a_reader_killed_while_waiting_loses_nothing => a_reader_killed_while_waiting_loses_nothing_on;
    a_writer_killed_between_messages_leaves_the_stream_whole => a_writer_killed_between_messages_leaves_the_stream_whole_on;
    a_frame_over_the_limit_is_refused_and_closes_the_reading_end => a_frame_over_the_limit_is_refused_and_closes_the_reading_end_on;
    a_writer_killed_mid_frame_breaks_the_stream_not_the_reader => a_writer_killed_mid_frame_breaks_the_stream_not_the_reader_on;
}

/// A forked child running `body` with its own handle on the pipe's ends.
fn fork(body: impl FnOnce() + Send + 'static) -> Process {
    let p = Process::builder().start_method(StartMethod::Fork).target(body);
    p.start().unwrap();
    p
}

/// Gives a child time to block (in `recv`, or waiting for space), then SIGKILLs it.
fn kill_once_blocked(p: &Process) {
    std::thread::sleep(Duration::from_millis(200));
    p.kill().unwrap();
    assert_eq!(exit_code(p), Some(-libc::SIGKILL));
}

fn exit_code(p: &Process) -> Option<i32> {
    assert!(p.join_timeout(Duration::from_secs(60)).unwrap(), "the child hangs");
    p.exitcode()
}

/// Beyond an OS pipe (atomic only up to 4 KiB): writer processes sharing one end never
/// interleave their messages, at any size, and each one's arrive in its order.
fn several_writer_processes_share_one_end_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let writer = Arc::new(writer);
    let children: Vec<Process> = (0..3u32)
        .map(|id| {
            let writer = Arc::clone(&writer);
            fork(move || {
                for seq in 0..2000u32 {
                    let size = if seq % 500 == 499 { 3 * RING } else { (seq as usize * 13) % 3000 };
                    let mut bytes = vec![(seq % 251) as u8; size + 8];
                    bytes[..4].copy_from_slice(&id.to_le_bytes());
                    bytes[4..8].copy_from_slice(&seq.to_le_bytes());
                    writer.send_bytes(&bytes).unwrap();
                }
            })
        })
        .collect();
    drop(writer);
    let mut next = [0u32; 3];
    let mut buf = Vec::new();
    for _ in 0..3 * 2000 {
        reader.recv_bytes_into(&mut buf).unwrap();
        let id = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        let seq = u32::from_le_bytes(buf[4..8].try_into().unwrap());
        assert_eq!(seq, next[id], "writer {id}'s messages in order");
        assert!(buf[8..].iter().all(|&b| b == (seq % 251) as u8), "a whole message");
        next[id] += 1;
    }
    assert_eq!(next, [2000; 3]);
    for p in &children {
        assert_eq!(exit_code(p), Some(0));
    }
    assert!(matches!(reader.recv_bytes(), Err(Error::EOFError)));
}

/// Reader processes sharing one end: every message is taken exactly once, and each
/// reader takes its messages in the order they were sent. One-way pipes only: a duplex
/// end reads ahead into its process's buffer (which is how it takes in what the peer
/// sends while it waits to send), as CPython's duplex ends need a lock around `recv` to
/// be shared by readers.
#[test]
fn several_reader_processes_share_one_end() {
    let _serial = support::serial();
    let (reader, writer) = pipe(false).unwrap();
    let (results, report) = pipe(false).unwrap();
    let reader = Arc::new(reader);
    let report = Arc::new(report);
    let children: Vec<Process> = (0..3)
        .map(|_| {
            let reader = Arc::clone(&reader);
            let report = Arc::clone(&report);
            fork(move || {
                let mut taken = Vec::new();
                loop {
                    let n: u32 = reader.recv().unwrap();
                    if n == u32::MAX {
                        break;
                    }
                    taken.push(n);
                }
                report.send(&taken).unwrap();
            })
        })
        .collect();
    drop((reader, report));
    for n in 0..6000u32 {
        writer.send(&n).unwrap();
    }
    for _ in 0..3 {
        writer.send(&u32::MAX).unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..3 {
        let taken: Vec<u32> = results.recv().unwrap();
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "one reader's messages in order");
        all.extend(taken);
    }
    all.sort_unstable();
    assert_eq!(all, (0..6000).collect::<Vec<u32>>(), "each message taken exactly once");
    for p in &children {
        assert_eq!(exit_code(p), Some(0));
    }
}

/// Threads of one process: two writers and two readers on one pipe.
fn threads_share_both_ends_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let (reader, writer) = (Arc::new(reader), Arc::new(writer));
    let writers: Vec<_> = (0..2u64)
        .map(|id| {
            let writer = Arc::clone(&writer);
            std::thread::spawn(move || {
                for seq in 0..5000u64 {
                    writer.send(&(id, seq, vec![seq as u8; (seq % 700) as usize])).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let reader = Arc::clone(&reader);
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                for _ in 0..5000 {
                    let (id, seq, bytes): (u64, u64, Vec<u8>) = reader.recv().unwrap();
                    assert_eq!(bytes, vec![seq as u8; (seq % 700) as usize]);
                    taken.push((id, seq));
                }
                taken
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut all: Vec<(u64, u64)> = readers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    all.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..2).flat_map(|id| (0..5000).map(move |s| (id, s))).collect();
    assert_eq!(all, expected);
}

/// EOF comes after the last message, not instead of the messages still in the ring.
fn the_end_comes_after_every_message_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    for i in 0..100u32 {
        writer.send(&i).unwrap();
    }
    writer.send_bytes(&vec![9; RING / 2]).unwrap();
    drop(writer);
    for i in 0..100u32 {
        assert_eq!(reader.recv::<u32>().unwrap(), i);
    }
    assert_eq!(reader.recv_bytes().unwrap(), vec![9; RING / 2]);
    assert!(matches!(reader.recv::<u32>(), Err(Error::EOFError)));
    assert!(reader.poll(Some(Duration::ZERO)).unwrap(), "EOF is ready");
}

/// As an OS pipe: a send with no reader left fails with `EPIPE` (at once, or — once the
/// ring is full — within 0.1 s), never waits forever.
fn sending_with_no_reader_left_is_a_broken_pipe_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    writer.send(&1u32).unwrap();
    assert_eq!(reader.recv::<u32>().unwrap(), 1);
    drop(reader);
    let began = Instant::now();
    // (Enough 64-byte messages to fill the ring four times over.)
    let error = (0..RING / 16).find_map(|_| writer.send_bytes(&[0; 64]).err()).expect("an error");
    assert!(
        matches!(&error, Error::OsError(e) if e.raw_os_error() == Some(libc::EPIPE)),
        "{error:?}"
    );
    assert!(began.elapsed() < Duration::from_secs(2));
    let error = writer.send_bytes(&vec![0; 4 * RING]).unwrap_err();
    assert!(matches!(&error, Error::OsError(e) if e.raw_os_error() == Some(libc::EPIPE)));
}

fn fd_readable(conn: &Connection) -> bool {
    let fd = conn.fileno().unwrap();
    // SAFETY: the connection owns the fd and outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd, no timeout.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) == 1 }
}

/// `poll` and `wait` tell a message from the wake-up a finished reader leaves in the
/// fd; the fd itself is readable whenever a message waits (a `select` on `fileno()`
/// never misses one), and goes quiet once `poll` found nothing.
fn poll_and_wait_see_messages_not_stale_wake_ups_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let (other, _other_writer) = pipe(false).unwrap();
    assert!(!reader.poll(Some(Duration::ZERO)).unwrap());
    assert!(!fd_readable(&reader));

    writer.send(&1u8).unwrap();
    assert!(fd_readable(&reader), "a waiting message makes the fd readable");
    assert!(reader.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(wait(&[&other, &reader], Some(Duration::from_secs(5))).unwrap(), vec![1]);
    assert_eq!(reader.recv::<u8>().unwrap(), 1);

    // Nothing left: neither poll nor wait is fooled by the wake-up byte.
    assert!(!reader.poll(Some(Duration::ZERO)).unwrap());
    assert!(!fd_readable(&reader), "poll took the stale wake-up away");
    writer.send(&2u8).unwrap();
    assert_eq!(reader.recv::<u8>().unwrap(), 2);
    let began = Instant::now();
    assert!(wait(&[&reader], Some(Duration::from_millis(100))).unwrap().is_empty());
    assert!(began.elapsed() >= Duration::from_millis(90));
    let began = Instant::now();
    assert!(!reader.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(began.elapsed() >= Duration::from_millis(90));

    // A message sent while a thread waits wakes it.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.send(&3u8).unwrap();
        writer
    });
    assert_eq!(wait(&[&other, &reader], None).unwrap(), vec![1]);
    assert_eq!(reader.recv::<u8>().unwrap(), 3);
    let writer = sender.join().unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.send(&4u8).unwrap();
    });
    assert!(reader.poll(None).unwrap());
    assert_eq!(reader.recv::<u8>().unwrap(), 4);
    sender.join().unwrap();
    assert!(reader.poll(Some(Duration::from_secs(5))).unwrap(), "EOF is ready");
}

/// Beyond CPython (whose reader lock stays taken forever): a reader process killed while
/// it waits in `recv` holding the readers' lock loses nothing; the next reader takes the
/// lock over and gets every message.
fn a_reader_killed_while_waiting_loses_nothing_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let reader = Arc::new(reader);
    let theirs = Arc::clone(&reader);
    let p = fork(move || {
        let _ = theirs.recv_bytes();
        std::process::exit(3); // not reached: killed while waiting
    });
    kill_once_blocked(&p);
    for i in 0..1000u32 {
        writer.send(&i).unwrap();
    }
    let began = Instant::now();
    for i in 0..1000u32 {
        assert_eq!(reader.recv::<u32>().unwrap(), i);
    }
    assert!(began.elapsed() < Duration::from_secs(2));
}

/// A writer killed halfway through a frame larger than the ring: the reader gets an
/// error within about 0.1 s (not a hang, not a garbled message), and so does the next
/// writer.
fn a_writer_killed_mid_frame_breaks_the_stream_not_the_reader_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let writer = Arc::new(writer);
    let theirs = Arc::clone(&writer);
    let p = fork(move || {
        theirs.send_bytes(&vec![5; 10 * RING]).unwrap(); // waits: nobody reads yet
        std::process::exit(3);
    });
    kill_once_blocked(&p);
    let began = Instant::now();
    let error = reader.recv_bytes().unwrap_err();
    assert!(error.to_string().contains("stream is broken"), "{error}");
    assert!(began.elapsed() < Duration::from_secs(2));
    let error = writer.send_bytes(b"after").unwrap_err();
    assert!(error.to_string().contains("stream is broken"), "{error}");
    assert!(reader.recv_bytes().unwrap_err().to_string().contains("stream is broken"));
}

/// A writer killed while it waits for space, between two frames that fit the ring,
/// leaves the stream whole: the reader gets every message sent before it.
fn a_writer_killed_between_messages_leaves_the_stream_whole_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    let writer = Arc::new(writer);
    let theirs = Arc::clone(&writer);
    let p = fork(move || {
        for i in 0..100_000u32 {
            theirs.send(&(i, vec![7u8; 100])).unwrap(); // fills the ring, then waits
        }
        std::process::exit(3);
    });
    kill_once_blocked(&p);
    // The ring is full: the end marker goes once the reader makes room.
    let marker = std::thread::spawn(move || writer.send(&(u32::MAX, vec![0u8; 100])).unwrap());
    let mut expected = 0;
    loop {
        let (i, bytes): (u32, Vec<u8>) = reader.recv().unwrap();
        if i == u32::MAX {
            break;
        }
        assert_eq!((i, bytes), (expected, vec![7; 100]));
        expected += 1;
    }
    assert!(expected > 100, "the ring held {expected} messages");
    marker.join().unwrap();
}

/// As a socket connection (`an_oversized_frame_is_refused_and_closes_the_connection`): a
/// frame over the reader's limit is refused before anything is allocated for it, and the
/// reading end is closed; frames under it pass.
fn a_frame_over_the_limit_is_refused_and_closes_the_reading_end_on(duplex: bool) {
    let (reader, writer) = ends(duplex);
    reader.set_max_frame(100);
    writer.send_bytes(&[1; 100]).unwrap();
    writer.send_bytes(&[2; 101]).unwrap();
    assert_eq!(reader.recv_bytes().unwrap(), vec![1; 100]);
    let error = reader.recv_bytes().unwrap_err();
    assert!(error.to_string().contains("bad message length: 101 bytes"), "{error}");
    assert!(reader.closed());
    assert!(reader.recv_bytes().unwrap_err().to_string().contains("handle is closed"));
}
