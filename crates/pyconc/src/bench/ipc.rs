//! `pyconc bench ipc`: pyconc's `Connection` and `Queue` vs raw pipes/socket pairs vs
//! CPython's `multiprocessing`, between the parent and one forked child.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | small messages (64 B) | `pipe(false)`: `send_bytes` → child `recv_bytes` | an OS pipe: `write(2)` of 64 B per message → child `read(2)` | `Pipe(False)`: `send_bytes` |
//! | Queue small items | `Queue::put(u64)` → child `get` | the raw pipe row's baseline | `Queue.put(int)` |
//! | 1 MiB messages | `pipe(true)`: `send_bytes(1 MiB)` | `write_all` 1 MiB on a socket pair → child `read_exact` | `Pipe(True)`: `send_bytes(1 MiB)` |
//! | round trip (both sides on CPU 0) | `send_bytes` 64 B, child echoes, `recv_bytes` | `write`/`read` on a socket pair | the same, pinned with `os.sched_setaffinity` |
//!
//! Each message batch ends with the child's one-byte acknowledgement, so a round
//! measures delivery, not just buffering. Round trips run pinned to one CPU (see [`pin_first_cpu`]).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use multiprocessing::{Connection, Process, Queue, pipe};

use super::measure::{Operation, Report, Row, Settings, compare};
use super::python::{Python, python_figures};

const SCRIPT: &str = include_str!("ipc.py");
const GROUP: &str = "ipc";
const SMALL: usize = 64;
const BIG: usize = 1 << 20;

/// Placement moves these figures as much as the IPC
/// does (same core: a context switch per message; two cores: a cross-core wake-up, which
/// may include an idle-state exit), and the scheduler's choice differs from run to run.
/// Round trips are bimodal without pinning, so both sides run on CPU 0 there (CPython's
/// too). Throughput rows run where the scheduler puts them, as users' programs do; their
/// spread between runs is reported in docs, not hidden by pinning.
///
/// Pins the calling thread to CPU 0; returns the affinity it had, for [`restore`].
fn pin_first_cpu() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it, CPU_ZERO/CPU_SET write
    // within it; the calls only read and change the calling thread's affinity.
    unsafe {
        let mut previous: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut previous);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        previous
    }
}

/// Gives the calling thread back the affinity [`pin_first_cpu`] returned (the groups
/// after this one measure parallel work).
fn restore(previous: &libc::cpu_set_t) {
    // SAFETY: `previous` is a cpu_set_t filled by sched_getaffinity; the call only
    // changes the calling thread's affinity.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), previous);
    }
}

/// A child process that serves one kind of operation until its connection closes.
struct Child {
    process: Process,
}

impl Child {
    fn start(body: impl FnOnce() + Send + 'static) -> Child {
        let process = Process::new(body);
        process.start().expect("start the bench child");
        Child { process }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.join();
    }
}

/// pyconc: counted batches of messages of `size` bytes, acknowledged on a second
/// connection: small ones over a one-way `pipe(false)` (an OS pipe, as the raw baseline),
/// 1 MiB ones over a duplex `pipe(true)` (a socket pair, as the raw baseline).
struct PyconcMessages {
    data: Connection,
    acks: Connection,
    size: usize,
    _child: Child,
}

impl PyconcMessages {
    fn new(size: usize) -> PyconcMessages {
        let (their_data, data) = pipe(size != SMALL).expect("pipe");
        let (acks, their_acks) = pipe(false).expect("pipe");
        let child = Child::start(move || {
            let mut buf = Vec::new();
            while let Ok(n) = their_data.recv::<u64>() {
                for _ in 0..n {
                    their_data.recv_bytes_into(&mut buf).expect("recv");
                }
                their_acks.send(&true).expect("ack");
            }
        });
        PyconcMessages { data, acks, size, _child: child }
    }
}

impl Operation for PyconcMessages {
    fn name(&self) -> &'static str {
        if self.size == SMALL {
            "Connection::send_bytes (64 B)"
        } else {
            "Connection::send_bytes (1 MiB)"
        }
    }
    fn run(&self, iterations: u64) {
        let message = vec![b'x'; self.size];
        self.data.send(&iterations).expect("count");
        for _ in 0..iterations {
            self.data.send_bytes(&message).expect("send");
        }
        self.acks.recv::<bool>().expect("ack");
    }
}

/// Raw: the same batches with one `write` per message of a fixed size, on an OS pipe
/// (small) or a socket pair (1 MiB); the child acknowledges on a socket pair.
struct RawMessages {
    data: std::fs::File,
    ack: UnixStream,
    size: usize,
    _child: Child,
}

impl RawMessages {
    fn new(size: usize) -> RawMessages {
        let (ack, mut their_ack) = UnixStream::pair().expect("socketpair");
        let (data, mut their_data): (std::fs::File, std::fs::File) = if size == SMALL {
            let (r, w) = nix::unistd::pipe().expect("pipe");
            (w.into(), r.into())
        } else {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            (OwnedFd::from(ours).into(), OwnedFd::from(theirs).into())
        };
        let child = Child::start(move || {
            let mut count = [0u8; 8];
            let mut buf = vec![0u8; size];
            while their_ack.read_exact(&mut count).is_ok() {
                for _ in 0..u64::from_ne_bytes(count) {
                    their_data.read_exact(&mut buf).expect("read");
                }
                their_ack.write_all(b"k").expect("ack");
            }
        });
        RawMessages { data, ack, size, _child: child }
    }
}

impl Operation for RawMessages {
    fn name(&self) -> &'static str {
        if self.size == SMALL {
            "raw pipe, one write per message"
        } else {
            "raw socketpair write_all"
        }
    }
    fn run(&self, iterations: u64) {
        let message = vec![b'x'; self.size];
        (&self.ack).write_all(&iterations.to_ne_bytes()).expect("count");
        for _ in 0..iterations {
            (&self.data).write_all(&message).expect("write");
        }
        let mut ack = [0u8; 1];
        (&self.ack).read_exact(&mut ack).expect("ack");
    }
}

/// pyconc: batches of `u64` items through a `Queue` to a consuming child.
struct PyconcQueue {
    queue: Queue<u64>,
    ack: Queue<bool>,
    _child: Child,
}

impl PyconcQueue {
    fn new() -> PyconcQueue {
        let queue = Queue::<u64>::new(0).expect("queue");
        let ack = Queue::<bool>::new(0).expect("queue");
        let (q, a) = (queue.clone(), ack.clone());
        let child = Child::start(move || {
            while let Ok(n) = q.get() {
                for _ in 0..n {
                    q.get().expect("get");
                }
                a.put(true).expect("ack");
            }
        });
        PyconcQueue { queue, ack, _child: child }
    }
}

impl Operation for PyconcQueue {
    fn name(&self) -> &'static str {
        "multiprocessing::Queue put/get"
    }
    fn run(&self, iterations: u64) {
        self.queue.put(iterations).expect("count");
        for i in 0..iterations {
            self.queue.put(i).expect("put");
        }
        self.ack.get().expect("ack");
    }
}

/// pyconc: a 64-byte round trip through an echoing child.
struct PyconcRoundTrip {
    conn: Connection,
    _child: Child,
}

impl PyconcRoundTrip {
    fn new() -> PyconcRoundTrip {
        let (conn, theirs) = pipe(true).expect("pipe");
        let child = Child::start(move || {
            pin_first_cpu();
            let mut buf = Vec::new();
            while theirs.recv_bytes_into(&mut buf).is_ok() {
                theirs.send_bytes(&buf).expect("echo");
            }
        });
        PyconcRoundTrip { conn, _child: child }
    }
}

impl Operation for PyconcRoundTrip {
    fn name(&self) -> &'static str {
        "Connection send_bytes+recv_bytes"
    }
    fn run(&self, iterations: u64) {
        let message = [b'x'; SMALL];
        let mut buf = Vec::new();
        for _ in 0..iterations {
            self.conn.send_bytes(&message).expect("send");
            self.conn.recv_bytes_into(&mut buf).expect("recv");
        }
    }
}

/// Raw: the same round trip with `write`/`read` on a socket pair.
struct RawRoundTrip {
    stream: UnixStream,
    _child: Child,
}

impl RawRoundTrip {
    fn new() -> RawRoundTrip {
        let (stream, mut theirs) = UnixStream::pair().expect("socketpair");
        let child = Child::start(move || {
            pin_first_cpu();
            let mut buf = [0u8; SMALL];
            while theirs.read_exact(&mut buf).is_ok() {
                theirs.write_all(&buf).expect("echo");
            }
        });
        RawRoundTrip { stream, _child: child }
    }
}

impl Operation for RawRoundTrip {
    fn name(&self) -> &'static str {
        "raw socketpair write+read"
    }
    fn run(&self, iterations: u64) {
        let message = [b'x'; SMALL];
        let mut buf = [0u8; SMALL];
        for _ in 0..iterations {
            (&self.stream).write_all(&message).expect("write");
            (&self.stream).read_exact(&mut buf).expect("read");
        }
    }
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script_file("ipc.py", SCRIPT, &[quick]);
    let mut push = |operation: &'static str,
                    key: &str,
                    batch: u64,
                    ours: &dyn Operation,
                    raw: &dyn Operation| {
        let (pyconc, raw) = compare(settings, batch, ours, raw);
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython multiprocessing"),
        });
    };
    {
        let (ours, raw) = (PyconcMessages::new(SMALL), RawMessages::new(SMALL));
        push("Pipe small message (64 B)", "pipe_small", 2000, &ours, &raw);
    }
    {
        let (ours, raw) = (PyconcQueue::new(), RawMessages::new(SMALL));
        push("Queue small item", "queue_small", 2000, &ours, &raw);
    }
    {
        let (ours, raw) = (PyconcMessages::new(BIG), RawMessages::new(BIG));
        push("Pipe 1 MiB message", "pipe_1mib", 8, &ours, &raw);
    }
    {
        let (ours, raw) = (PyconcRoundTrip::new(), RawRoundTrip::new());
        let previous = pin_first_cpu();
        push("Pipe round trip (64 B), one CPU", "round_trip", 500, &ours, &raw);
        restore(&previous);
    }
    Ok(())
}
