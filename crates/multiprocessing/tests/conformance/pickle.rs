//! Python's objects over connections: a python3 program and a pyconc program exchange
//! plain data as pickles through `Listener`/`client` with an authkey, both ways, and
//! pickles that would make the receiver run code are refused (skipped with a message when
//! python3 is absent).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use multiprocessing::Error;
use multiprocessing::connection::{Address, Listener, PyHashable, PyValue, client};

use crate::support::python_missing;

/// What the python3 side sends first: every plain type.
const SENT_BY_PYTHON: &str =
    r#"[None, True, 3, 2.5, "s", b"b", [1, 2], (1, "x"), {"k": [1]}, {7}, 2**62, -1]"#;

fn expected_from_python() -> PyValue {
    let mut dict = BTreeMap::new();
    dict.insert(PyHashable::String("k".into()), PyValue::List(vec![PyValue::I64(1)]));
    PyValue::List(vec![
        PyValue::None,
        PyValue::Bool(true),
        PyValue::I64(3),
        PyValue::F64(2.5),
        PyValue::String("s".into()),
        PyValue::Bytes(b"b".to_vec()),
        PyValue::List(vec![PyValue::I64(1), PyValue::I64(2)]),
        PyValue::Tuple(vec![PyValue::I64(1), PyValue::String("x".into())]),
        PyValue::Dict(dict),
        PyValue::Set([PyHashable::I64(7)].into_iter().collect()),
        PyValue::I64(1 << 62),
        PyValue::I64(-1),
    ])
}

/// What pyconc sends back, and how python3 prints it.
fn reply() -> (i64, String, Vec<f64>, serde_bytes::ByteBuf, Option<bool>) {
    (1, "from rust".into(), vec![1.5], serde_bytes::ByteBuf::from(b"raw".to_vec()), None)
}
const REPLY_REPR: &str = "(1, 'from rust', [1.5], b'raw', None)";

const PYTHON_CLIENT: &str = r#"
import sys
from multiprocessing.connection import Client
host, port = sys.argv[1].rsplit(":", 1)
conn = Client((host, int(port)), authkey=b"secret")
conn.send(eval(sys.argv[2]))
print(repr(conn.recv()), flush=True)
"#;

const PYTHON_LISTENER: &str = r#"
import sys
from multiprocessing.connection import Listener
listener = Listener(("127.0.0.1", 0), authkey=b"secret")
print(listener.address[1], flush=True)
conn = listener.accept()
print(repr(conn.recv()), flush=True)
conn.send(eval(sys.argv[1]))
"#;

/// python3's `conn.send(obj)` arrives as a Rust value, and pyconc's `send_pickle` arrives
/// in python3's `conn.recv()`: a pyconc listener and a python3 client.
#[test]
fn python_client_and_pyconc_listener_exchange_objects() {
    if python_missing() {
        return;
    }
    let listener =
        Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), Some(b"secret")).unwrap();
    let Address::Tcp(address) = listener.address() else { unreachable!() };
    let python = Command::new("python3")
        .args(["-c", PYTHON_CLIENT, &address.to_string(), SENT_BY_PYTHON])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv_pickle_value().unwrap(), expected_from_python());
    conn.send_pickle(&reply()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), REPLY_REPR);
}

/// The same with a pyconc client and a python3 listener; values decode into Rust types.
#[test]
fn pyconc_client_and_python_listener_exchange_objects() {
    if python_missing() {
        return;
    }
    let mut python = Command::new("python3")
        .args(["-c", PYTHON_LISTENER, "(42, 'answer', [True, None], {'a': 1.5})"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(python.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let conn = client(Address::Tcp(format!("127.0.0.1:{port}").parse().unwrap()), Some(b"secret"))
        .unwrap();
    conn.send_pickle(&reply()).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), REPLY_REPR);
    type Answer = (u32, String, (bool, Option<i32>), BTreeMap<String, f64>);
    let answer: Answer = conn.recv_pickle().unwrap();
    assert_eq!(answer, (42, "answer".into(), (true, None), [("a".into(), 1.5)].into()));
    python.wait().unwrap();
}

const PYTHON_HOSTILE: &str = r#"
import datetime, os, sys
from multiprocessing.connection import Client
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
class Point:
    def __init__(self):
        self.x = 1
host, port = sys.argv[1].rsplit(":", 1)
conn = Client((host, int(port)), authkey=b"secret")
for obj in (Evil(), datetime.date(2020, 1, 1), Point(), os.system):
    conn.send(obj)
conn.send("still plain")
"#;

/// Pickles that name globals or ask for calls are refused before anything is decoded:
/// the `os.system` of a hostile peer never runs, and the connection goes on.
#[test]
fn pickles_that_would_run_code_are_refused() {
    if python_missing() {
        return;
    }
    let marker = std::env::temp_dir().join(format!("pyconc-pickle-evil-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let listener =
        Listener::bind(Address::Tcp("127.0.0.1:0".parse().unwrap()), Some(b"secret")).unwrap();
    let Address::Tcp(address) = listener.address() else { unreachable!() };
    let python = Command::new("python3")
        .args(["-c", PYTHON_HOSTILE, &address.to_string(), &marker.to_string_lossy()])
        .spawn()
        .unwrap();
    let conn = listener.accept().unwrap();
    for _ in 0..4 {
        let refused = conn.recv_pickle::<PyValue>().unwrap_err();
        assert!(matches!(refused, Error::UnpicklingError(_)), "{refused}");
        assert!(refused.to_string().starts_with("refused: "), "{refused}");
    }
    assert_eq!(conn.recv_pickle::<String>().unwrap(), "still plain");
    let _ = python.wait_with_output();
    assert!(!marker.exists(), "the hostile pickle ran code");
}
