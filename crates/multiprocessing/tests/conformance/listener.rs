//! `multiprocessing.connection`: `Listener`, `client`, `wait` — ported from CPython 3.11's
//! `_TestListener`, `_TestListenerClient`, `OtherTest` (authentication failures) and
//! `TestWait`, plus the handshake's abuse cases (wrong key, no key, truncated, oversized,
//! silent peer) and wire compatibility with the installed `python3`, both ways.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use multiprocessing::connection::{Address, Listener, client, wait};
use multiprocessing::{Error, Process, StartMethod, pipe};

use crate::each_start_method;
use crate::support::{TempPath, python_missing, serial};

fn tcp() -> Address {
    Address::Tcp("127.0.0.1:0".parse().unwrap())
}

fn abstract_name() -> Address {
    Address::Abstract(
        format!("pyconc-test-{}-{:?}", std::process::id(), Instant::now()).into_bytes(),
    )
}

/// Connects from another thread and sends `message`; returns the thread's outcome.
fn talk(
    address: Address,
    key: Option<&'static [u8]>,
    message: &'static [u8],
) -> std::thread::JoinHandle<Result<(), Error>> {
    std::thread::spawn(move || {
        let conn = client(address, key)?;
        conn.send_bytes(message)?;
        let _ = conn.recv_bytes(); // wait until the other side is done
        Ok(())
    })
}

// _TestListener.test_context / test_abstract_socket / _TestListenerClient.test_issue16955,
// for every family and with and without a key.
#[test]
fn listener_and_client_talk_over_every_family() {
    let _serial = serial();
    let path = TempPath::new("listener");
    for address in [tcp(), Address::Unix(path.0.clone()), abstract_name()] {
        for key in [None, Some(&b"secret"[..])] {
            let listener = Listener::bind(address.clone(), key).unwrap();
            let bound = listener.address();
            if let (Address::Tcp(asked), Address::Tcp(got)) = (&address, &bound) {
                assert_eq!(asked.ip(), got.ip());
                assert_ne!(got.port(), 0);
            } else {
                assert_eq!(bound, address);
            }
            let peer = talk(bound, key, b"hello");
            let conn = listener.accept().unwrap();
            assert_eq!(conn.recv_bytes().unwrap(), b"hello");
            conn.send(&1729u32).unwrap();
            peer.join().unwrap().unwrap();
            assert!(listener.last_accepted().is_some());
            listener.close();
            // CPython: accept on a closed listener raises OSError.
            assert!(matches!(listener.accept(), Err(Error::OsError(_))));
            if let Address::Unix(path) = &address {
                assert!(!path.exists(), "close removes the socket file");
            }
        }
    }
}

// _TestListener.test_multiple_bind
#[test]
fn binding_an_address_in_use_fails() {
    let _serial = serial();
    let path = TempPath::new("listener-twice");
    for address in [tcp(), Address::Unix(path.0.clone()), abstract_name()] {
        let first = Listener::bind(address, None).unwrap();
        let again = Listener::bind(first.address(), None);
        assert!(matches!(again, Err(Error::OsError(_))), "{again:?}");
    }
}

fn send_hello(address: Address) {
    let conn = client(address, Some(b"key")).unwrap();
    conn.send(&"hello".to_string()).unwrap();
    conn.close().unwrap();
}

// _TestListenerClient.test_listener_client: the client is another process.
fn listener_client(method: StartMethod) {
    for address in [tcp(), abstract_name()] {
        let listener = Listener::bind(address, Some(b"key")).unwrap();
        let p = Process::builder()
            .start_method(method)
            .daemon(true)
            .call(send_hello, listener.address());
        p.start().unwrap();
        let conn = listener.accept().unwrap();
        assert_eq!(conn.recv::<String>().unwrap(), "hello");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
}

each_start_method! {
    test_listener_client => listener_client;
}

// OtherTest.test_deliver/answer_challenge_auth_failure, with real peers: a wrong key
// fails on both sides with CPython's messages, and nothing is handed out.
#[test]
fn a_wrong_key_fails_on_both_sides() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"right")).unwrap();
    let peer = talk(listener.address(), Some(b"wrong"), b"never delivered");
    let err = listener.accept().unwrap_err();
    assert!(matches!(err, Error::AuthenticationError(_)), "{err:?}");
    assert_eq!(err.to_string(), "digest received was wrong");
    let err = peer.join().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "digest sent was rejected");
    assert!(listener.last_accepted().is_none());
}

#[test]
fn a_client_without_the_key_is_refused_before_its_message_is_read() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"key")).unwrap();
    let peer = talk(listener.address(), None, b"unauthenticated data!");
    let err = listener.accept().unwrap_err();
    assert!(matches!(err, Error::AuthenticationError(_)), "{err:?}");
    assert!(err.to_string().starts_with("unsupported message length"), "{err}");
    drop(listener);
    let _ = peer.join().unwrap();
}

#[test]
fn a_client_with_a_key_refuses_a_server_without_one() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), None).unwrap();
    let address = listener.address();
    let peer = std::thread::spawn(move || client(address, Some(b"key")));
    let conn = listener.accept().unwrap();
    conn.send_bytes(b"not a challenge").unwrap();
    let err = peer.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::AuthenticationError(_)), "{err:?}");
    assert_eq!(err.to_string(), "Protocol error, expected challenge: message=b'not a challenge'");
}

/// A raw TCP peer that writes `bytes` and then goes silent (or closes).
fn raw_peer(address: &Address, bytes: &[u8], close: bool) -> Option<TcpStream> {
    let Address::Tcp(address) = address else { unreachable!() };
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(bytes).unwrap();
    if close { None } else { Some(stream) }
}

#[test]
fn truncated_and_oversized_handshakes_fail_at_once() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"key")).unwrap();
    // A peer that sends part of a frame and hangs up: an error (EOF, or a reset) at once.
    for bytes in [&[0u8, 0][..], &[0, 0, 0, 40, 1, 2, 3][..]] {
        let started = Instant::now();
        raw_peer(&listener.address(), bytes, true);
        assert!(listener.accept().is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // A first frame that claims 2 GiB is refused before anything is allocated.
    let started = Instant::now();
    let _peer = raw_peer(&listener.address(), &[0x7f, 0xff, 0xff, 0xff], false);
    let err = listener.accept().unwrap_err();
    assert!(err.to_string().starts_with("bad message length: 2147483647 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_silent_client_does_not_hold_up_the_others_and_is_dropped() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"key")).unwrap();
    listener.set_handshake_timeout(Duration::from_millis(500));
    let silent = raw_peer(&listener.address(), &[], false);
    std::thread::sleep(Duration::from_millis(50));
    let good = talk(listener.address(), Some(b"key"), b"good");
    let started = Instant::now();
    let conn = listener.accept().unwrap();
    assert!(started.elapsed() < Duration::from_millis(450), "{:?}", started.elapsed());
    assert_eq!(conn.recv_bytes().unwrap(), b"good");
    drop(conn);
    good.join().unwrap().unwrap();
    let err = listener.accept_timeout(Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.to_string(), "the peer did not complete the handshake in time");
    drop(silent);
    let started = Instant::now();
    assert!(listener.accept_timeout(Duration::from_millis(100)).unwrap().is_none());
    assert!(started.elapsed() >= Duration::from_millis(100));
}

fn sleep_then_exit(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

// TestWait.test_wait / test_wait_timeout / test_neg_timeout, over connections, a
// listener and a process sentinel.
#[test]
fn wait_returns_the_ready_objects() {
    let _serial = serial();
    let (a, b) = pipe(true).unwrap();
    let (c, d) = pipe(true).unwrap();
    let listener = Listener::bind(tcp(), None).unwrap();
    let started = Instant::now();
    assert!(wait(&[&a, &c, &listener], Some(Duration::from_millis(100))).unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(wait(&[&a], Some(Duration::ZERO)).unwrap().is_empty());
    d.send_bytes(b"x").unwrap();
    assert_eq!(wait(&[&a, &c, &listener], None).unwrap(), vec![1]);
    let _peer = client(listener.address(), None).unwrap();
    assert_eq!(wait(&[&a, &listener], Some(Duration::from_secs(5))).unwrap(), vec![1]);
    let p = Process::call(sleep_then_exit, 100);
    p.start().unwrap();
    assert!(wait(&[&p, &a], Some(Duration::from_millis(10))).unwrap().is_empty());
    assert_eq!(wait(&[&p, &a], Some(Duration::from_secs(5))).unwrap(), vec![0]);
    p.join().unwrap();
    b.send_bytes(b"y").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"y");
}

const PYTHON_CLIENT: &str = r#"
import sys
from multiprocessing.connection import Client
family, address, key = sys.argv[1], sys.argv[2], sys.argv[3].encode() or None
if family == "tcp":
    host, port = address.rsplit(":", 1)
    address = (host, int(port))
try:
    conn = Client(address, authkey=key)
    conn.send_bytes(b"from python")
    print(conn.recv_bytes().decode())
except Exception as e:
    print(type(e).__name__, e)
"#;

const PYTHON_LISTENER: &str = r#"
import sys
from multiprocessing.connection import Listener
key = sys.argv[1].encode() or None
listener = Listener(("127.0.0.1", 0), authkey=key)
print(listener.address[1], flush=True)
try:
    conn = listener.accept()
    print(conn.recv_bytes().decode(), flush=True)
    conn.send_bytes(b"from python")
except Exception as e:
    print(type(e).__name__, e, flush=True)
"#;

/// A real `python3` client (CPython 3.11: the legacy HMAC-MD5 handshake) talks to a pyconc
/// listener: authenticated, over TCP and a Unix socket; and a wrong key fails both sides.
#[test]
fn a_python_client_talks_to_a_pyconc_listener() {
    if python_missing() {
        return;
    }
    let _serial = serial();
    let path = TempPath::new("py-listener");
    for (family, address) in [("tcp", tcp()), ("unix", Address::Unix(path.0.clone()))] {
        for (server_key, client_key, works) in
            [("secret", "secret", true), ("", "", true), ("secret", "wrong", false)]
        {
            let listener = Listener::bind(
                address.clone(),
                (!server_key.is_empty()).then_some(server_key.as_bytes()),
            )
            .unwrap();
            let shown = match listener.address() {
                Address::Tcp(a) => a.to_string(),
                Address::Unix(p) => p.to_string_lossy().into_owned(),
                Address::Abstract(_) => unreachable!(),
            };
            let python = std::process::Command::new("python3")
                .args(["-c", PYTHON_CLIENT, family, &shown, client_key])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let accepted = listener.accept();
            if works {
                let conn = accepted.unwrap();
                assert_eq!(conn.recv_bytes().unwrap(), b"from python");
                conn.send_bytes(b"from pyconc").unwrap();
            } else {
                assert_eq!(accepted.unwrap_err().to_string(), "digest received was wrong");
            }
            let out = python.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            let expected =
                if works { "from pyconc" } else { "AuthenticationError digest sent was rejected" };
            assert_eq!(said.trim(), expected, "{family} {server_key:?}/{client_key:?}");
            listener.close();
        }
    }
}

/// A pyconc client talks to a real `python3` listener, and a wrong key fails both sides.
#[test]
fn a_pyconc_client_talks_to_a_python_listener() {
    if python_missing() {
        return;
    }
    let _serial = serial();
    for (server_key, client_key, works) in
        [("secret", "secret", true), ("", "", true), ("secret", "wrong", false)]
    {
        let mut python = std::process::Command::new("python3")
            .args(["-c", PYTHON_LISTENER, server_key])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(python.stdout.take().unwrap()));
        let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
        let address = Address::Tcp(format!("127.0.0.1:{port}").parse().unwrap());
        let key = (!client_key.is_empty()).then_some(client_key.as_bytes());
        match client(address, key) {
            Ok(conn) => {
                assert!(works, "{server_key:?}/{client_key:?} should fail");
                conn.send_bytes(b"from pyconc").unwrap();
                assert_eq!(conn.recv_bytes().unwrap(), b"from python");
                assert_eq!(lines.next().unwrap().unwrap(), "from pyconc");
            }
            Err(err) => {
                assert!(!works, "{err}");
                assert_eq!(err.to_string(), "digest sent was rejected");
                assert_eq!(
                    lines.next().unwrap().unwrap(),
                    "AuthenticationError digest received was wrong"
                );
            }
        }
        python.wait().unwrap();
    }
}

fn threads_here() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Issue 14, item 2: 600 peers that connect and never answer cost no thread each (before
/// the fix: one thread per peer, 602 threads), and a legitimate client is still accepted
/// while they hold their connections.
#[test]
fn a_flood_of_silent_peers_costs_no_thread_each_and_a_client_still_gets_in() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"key")).unwrap();
    let address = listener.address();
    let threads = threads_here();
    std::thread::scope(|scope| {
        // The listener accepts while the flood arrives (its backlog alone holds ~128).
        let accepting = scope.spawn(|| listener.accept_timeout(Duration::from_secs(30)));
        let flood: Vec<TcpStream> =
            (0..600).map(|_| raw_peer(&address, &[], false).unwrap()).collect();
        // The accepting thread, and whatever threads other tests run meanwhile; a thread
        // per handshake would add ~600.
        let during = threads_here();
        let good = talk(address.clone(), Some(b"key"), b"good");
        let conn = accepting.join().unwrap().unwrap().expect("the client got in");
        assert_eq!(conn.recv_bytes().unwrap(), b"good");
        drop(conn); // the talker waits for the end of the connection
        good.join().unwrap().unwrap();
        assert!(during < threads + 50, "{during} threads during the flood, {threads} before");
        drop(flood);
    });
}

fn accept_with_few_fds(listener: Listener) {
    listener.set_max_handshakes(10_000);
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .max()
        .unwrap_or(3);
    // Fill every free fd number below the highest, so that exactly two stay free.
    loop {
        // SAFETY: dup of fd 2 returns a new fd or -1; the fds are never used.
        let fd = unsafe { libc::dup(2) };
        if fd < 0 || fd > highest {
            // SAFETY: closes the fd just made, owned by nobody else.
            unsafe { libc::close(fd) };
            break;
        }
    }
    let highest = highest as u64;
    let limit = libc::rlimit { rlim_cur: highest + 3, rlim_max: highest + 3 };
    // SAFETY: setrlimit reads a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match listener.accept_timeout(Duration::from_secs(1)) {
            Ok(Some(conn)) if conn.recv_bytes().is_ok_and(|m| m == b"good") => {
                std::process::exit(0)
            }
            Ok(_) => {}
            Err(Error::AuthenticationError(_)) => {}
            Err(error) => {
                eprintln!("accept failed: {error}");
                std::process::exit(3);
            }
        }
    }
    std::process::exit(4);
}

/// Issue 14, item 2: a listener whose process has run out of fds (`EMFILE`) does not fail
/// `accept` over and over: it lets go of the oldest handshake or backs off, and the
/// legitimate client still gets in. (Before the fix `accept` returned "Too many open
/// files" again and again: exit code 3.)
#[test]
fn running_out_of_fds_backs_off_instead_of_failing() {
    let _serial = serial();
    let listener = Listener::bind(tcp(), Some(b"key")).unwrap();
    let address = listener.address();
    let child = Process::builder()
        .start_method(StartMethod::Fork)
        .target(move || accept_with_few_fds(listener));
    child.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let flood: Vec<TcpStream> = (0..100).map(|_| raw_peer(&address, &[], false).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let good = talk(address, Some(b"key"), b"good");
    child.join().unwrap();
    let _ = good.join();
    drop(flood);
    assert_eq!(child.exitcode(), Some(0), "3: accept failed; 4: the client never got in");
}
