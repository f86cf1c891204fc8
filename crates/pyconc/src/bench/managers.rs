//! `pyconc bench managers`: a manager's proxies, round trip by round trip, vs the
//! transport's floor vs CPython's `multiprocessing.Manager()`.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | dict set, dict get, list append, namespace get | the proxy call | one duplex `pipe()` round trip to an echo process (the transport a local manager uses) | the same call on `Manager()`'s proxy |
//! | queue put+get, lock acquire+release | the two proxy calls | two such round trips | the same two calls |
//! | Value set+get, Queue put+get (no manager) | `multiprocessing::Value`, `Queue` | a `Mutex<u64>`, an `mpsc` channel | `mp.Value`, `mp.Queue` |
//!
//! The last two rows are the contrast: what sharing costs without a server in between.

use std::hint::black_box;
use std::sync::{Mutex, mpsc};

use multiprocessing::managers::{DictProxy, ListProxy, LockProxy, Manager, Namespace, QueueProxy};
use multiprocessing::{Connection, Process, Queue, StartMethod, Value, pipe};

use super::measure::{Operation, Report, Row, Settings, compare};
use super::python::{Python, python_figures};

const SCRIPT: &str = include_str!("managers.py");
const GROUP: &str = "managers";

/// One proxy operation, `per` round trips each.
struct Call<'a> {
    run: &'a dyn Fn(u64),
}

impl Operation for Call<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::managers (local server)"
    }
    fn run(&self, iterations: u64) {
        (self.run)(iterations);
    }
}

/// `per` duplex-pipe round trips to a forked echo process, per iteration.
struct RoundTrips<'a> {
    conn: &'a Connection,
    per: u64,
}

impl Operation for RoundTrips<'_> {
    fn name(&self) -> &'static str {
        "pipe(true) round trip to an echo process"
    }
    fn run(&self, iterations: u64) {
        for i in 0..iterations * self.per {
            self.conn.send_bytes(&i.to_le_bytes()).expect("send");
            black_box(self.conn.recv_bytes().expect("recv"));
        }
    }
}

struct SharedValue<'a>(&'a Value<u64>);
impl Operation for SharedValue<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::Value (shared memory)"
    }
    fn run(&self, iterations: u64) {
        for i in 0..iterations {
            self.0.set(i);
            black_box(self.0.get());
        }
    }
}

struct MutexValue(Mutex<u64>);
impl Operation for MutexValue {
    fn name(&self) -> &'static str {
        "std Mutex<u64> set+get"
    }
    fn run(&self, iterations: u64) {
        for i in 0..iterations {
            *self.0.lock().expect("lock") = i;
            black_box(*self.0.lock().expect("lock"));
        }
    }
}

struct PlainQueue<'a>(&'a Queue<u64>);
impl Operation for PlainQueue<'_> {
    fn name(&self) -> &'static str {
        "multiprocessing::Queue"
    }
    fn run(&self, iterations: u64) {
        for i in 0..iterations {
            self.0.put(i).expect("put");
            black_box(self.0.get().expect("get"));
        }
    }
}

struct Channel;
impl Operation for Channel {
    fn name(&self) -> &'static str {
        "std mpsc channel send+recv"
    }
    fn run(&self, iterations: u64) {
        let (tx, rx) = mpsc::channel();
        for i in 0..iterations {
            tx.send(i).expect("send");
            black_box(rx.recv().expect("recv"));
        }
    }
}

/// The proxies every row uses.
struct Proxies {
    dict: DictProxy<u64, u64>,
    list: ListProxy<u64>,
    namespace: Namespace,
    queue: QueueProxy<u64>,
    lock: LockProxy,
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let batch = if settings.quick { 200 } else { 2000 };
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script_file("managers.py", SCRIPT, &[quick]);
    let manager = Manager::new()?;
    let p = Proxies {
        dict: manager.dict()?,
        list: manager.list()?,
        namespace: manager.namespace()?,
        queue: manager.queue(0)?,
        lock: manager.lock()?,
    };
    p.namespace.set("x", &1u64)?;
    let (ours, theirs) = pipe(true)?;
    let echo = Process::builder().start_method(StartMethod::Fork).target(move || {
        // An empty message ends it (the child holds a copy of the parent's end too, so
        // it would never see the pipe close).
        while let Ok(message) = theirs.recv_bytes() {
            if message.is_empty() || theirs.send_bytes(&message).is_err() {
                break;
            }
        }
    });
    echo.start()?;
    type Body<'a> = Box<dyn Fn(u64) + 'a>;
    let rows: Vec<(&'static str, &'static str, u64, Body<'_>)> = vec![
        (
            "manager dict set",
            "dict_set",
            1,
            Box::new(|n| {
                for i in 0..n {
                    p.dict.set(i % 100, i).expect("set");
                }
            }),
        ),
        (
            "manager dict get",
            "dict_get",
            1,
            Box::new(|n| {
                for i in 0..n {
                    black_box(p.dict.get(&(i % 100)).expect("get"));
                }
            }),
        ),
        (
            "manager list append",
            "list_append",
            1,
            Box::new(|n| {
                for i in 0..n {
                    p.list.append(i).expect("append");
                }
            }),
        ),
        (
            "manager namespace get",
            "namespace_get",
            1,
            Box::new(|n| {
                for _ in 0..n {
                    black_box(p.namespace.get::<u64>("x").expect("get"));
                }
            }),
        ),
        (
            "manager queue put+get",
            "queue_put_get",
            2,
            Box::new(|n| {
                for i in 0..n {
                    p.queue.put(i).expect("put");
                    black_box(p.queue.get().expect("get"));
                }
            }),
        ),
        (
            "manager lock acquire+release",
            "lock_acquire_release",
            2,
            Box::new(|n| {
                for _ in 0..n {
                    p.lock.acquire().expect("acquire");
                    p.lock.release().expect("release");
                }
            }),
        ),
    ];
    for (operation, key, per, body) in &rows {
        let (pyconc, raw) = compare(
            settings,
            batch,
            &Call { run: body.as_ref() },
            &RoundTrips { conn: &ours, per: *per },
        );
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython multiprocessing.Manager()"),
        });
    }
    drop(rows);
    p.list.clear()?;
    ours.send_bytes(b"")?;
    echo.join()?;
    let value = Value::new(0u64)?;
    let (pyconc, raw) = compare(settings, batch, &SharedValue(&value), &MutexValue(Mutex::new(0)));
    report.push(Row {
        group: GROUP,
        operation: "Value set+get (no manager)",
        pyconc,
        raw,
        python: python_figures(&python_ops, "value_set_get", "CPython multiprocessing.Value"),
    });
    let queue = Queue::new(0)?;
    let (pyconc, raw) = compare(settings, batch, &PlainQueue(&queue), &Channel);
    report.push(Row {
        group: GROUP,
        operation: "Queue put+get (no manager)",
        pyconc,
        raw,
        python: python_figures(&python_ops, "plain_queue_put_get", "CPython multiprocessing.Queue"),
    });
    manager.shutdown()?;
    Ok(())
}
