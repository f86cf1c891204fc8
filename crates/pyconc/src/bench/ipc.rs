//! `pyconc bench ipc`: pyconc's `Connection` and `Queue` vs raw pipes/socket pairs vs
//! CPython's `multiprocessing`, between the parent and one forked child.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | small messages (64 B) | `pipe(false)`: `send_bytes` → child `recv_bytes` | an OS pipe: `write(2)` of 64 B per message → child `read(2)` | `Pipe(False)`: `send_bytes` |
//! | Queue small items | `Queue::put(u64)` → child `get` | the raw pipe row's baseline | `Queue.put(int)` |
//! | 1 MiB messages | `pipe(true)`: `send_bytes(1 MiB)` | `write_all` 1 MiB on a socket pair → child `read_exact` | `Pipe(True)`: `send_bytes(1 MiB)` |
//! | round trip (both sides on CPU 0) | `send_bytes` 64 B, child echoes, `recv_bytes` | `write`/`read` on a socket pair | the same, pinned with `os.sched_setaffinity` |
//! | SharedMemory 256 MiB handoff | `SharedMemory::create` + copy 256 MiB in + name to the child, which attaches and reads it all; `unlink` | `memfd_create` + `mmap` + copy, the fd to the child (`SCM_RIGHTS`), which maps and reads it all | `Pipe(True)`: `send_bytes` of the same 256 MiB, child `recv_bytes` |
//! | SharedMemory attach, 1 MiB / 1 GiB | `SharedMemory::attach(name)` + drop | `shm_open` + `fstat` + `mmap` + `munmap` + `close` | `SharedMemory(name)` + `close()` |
//!
//! `--quick` hands off 32 MiB instead of 256 MiB.
//!
//! Each message batch ends with the child's one-byte acknowledgement, so a round
//! measures delivery, not just buffering. Round trips run pinned to one CPU (see [`pin_first_cpu`]).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use multiprocessing::shared_memory::SharedMemory;
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

/// The sum of a block's `u64` words: how the receiving side of a handoff reads all of it.
fn checksum(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |sum, &w| sum.wrapping_add(w))
}

/// pyconc: a named block made, filled, handed over by name, attached and read by the
/// child, then unlinked.
struct PyconcHandoff {
    names: Connection,
    sums: Connection,
    payload: Vec<u64>,
    _child: Child,
}

impl PyconcHandoff {
    fn new(bytes: usize) -> PyconcHandoff {
        let (their_names, names) = pipe(false).expect("pipe");
        let (sums, their_sums) = pipe(false).expect("pipe");
        let child = Child::start(move || {
            while let Ok(name) = their_names.recv::<String>() {
                let block = SharedMemory::attach(&name).expect("attach");
                // SAFETY: the parent wrote the block before sending its name and waits
                // for this sum before touching it again.
                let sum = checksum(&unsafe { block.as_slice::<u64>() }.expect("view"));
                their_sums.send(&sum).expect("sum");
            }
        });
        let payload = (0..(bytes / 8) as u64).collect();
        PyconcHandoff { names, sums, payload, _child: child }
    }
}

impl Operation for PyconcHandoff {
    fn name(&self) -> &'static str {
        "shared_memory::SharedMemory create+write+attach+read"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let block = SharedMemory::create(self.payload.len() * 8).expect("create");
            {
                // SAFETY: nobody else knows the block's name yet.
                let mut view = unsafe { block.as_mut_slice::<u64>() }.expect("view");
                view.copy_from_slice(&self.payload);
            }
            self.names.send(&block.name().to_owned()).expect("name");
            let sum: u64 = self.sums.recv().expect("sum");
            assert_eq!(sum, checksum(&self.payload));
            block.unlink().expect("unlink");
        }
    }
}

/// Raw: a memfd mapped, filled, its fd sent over a socket pair (`SCM_RIGHTS`); the child
/// maps and reads it all.
struct RawHandoff {
    socket: UnixStream,
    payload: Vec<u64>,
    _child: Child,
}

/// Maps `len` bytes of `fd` shared (the raw baseline's `mmap`).
fn map(fd: std::os::fd::BorrowedFd<'_>, len: usize) -> *mut u64 {
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of an fd this process holds; checked below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap");
    ptr.cast()
}

impl RawHandoff {
    fn new(bytes: usize) -> RawHandoff {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        use std::os::fd::{AsFd, AsRawFd, FromRawFd};
        let (socket, theirs) = UnixStream::pair().expect("socketpair");
        let child = Child::start(move || {
            let mut byte = [0u8; 1];
            loop {
                let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
                let mut iov = [std::io::IoSliceMut::new(&mut byte)];
                let Ok(msg) = recvmsg::<()>(
                    theirs.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::empty(),
                ) else {
                    return;
                };
                let Some(ControlMessageOwned::ScmRights(fds)) =
                    msg.cmsgs().ok().and_then(|mut c| c.next())
                else {
                    return;
                };
                // SAFETY: the fd just received is ours alone.
                let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
                let len = nix::sys::stat::fstat(&fd).expect("fstat").st_size as usize;
                let ptr = map(fd.as_fd(), len);
                // SAFETY: a mapping of `len` bytes that the parent finished writing.
                let sum = checksum(unsafe { std::slice::from_raw_parts(ptr, len / 8) });
                // SAFETY: the mapping made above, no longer used.
                unsafe { libc::munmap(ptr.cast(), len) };
                (&theirs).write_all(&sum.to_ne_bytes()).expect("sum");
            }
        });
        let payload = (0..(bytes / 8) as u64).collect();
        RawHandoff { socket, payload, _child: child }
    }
}

impl Operation for RawHandoff {
    fn name(&self) -> &'static str {
        "raw memfd+mmap, fd over SCM_RIGHTS"
    }
    fn run(&self, iterations: u64) {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        use std::os::fd::{AsFd, AsRawFd};
        let len = self.payload.len() * 8;
        for _ in 0..iterations {
            let fd = nix::sys::memfd::memfd_create(c"raw", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .expect("memfd");
            nix::unistd::ftruncate(&fd, len as i64).expect("ftruncate");
            let ptr = map(fd.as_fd(), len);
            // SAFETY: a fresh mapping of `len` bytes that nobody else uses yet.
            unsafe { std::slice::from_raw_parts_mut(ptr, len / 8) }.copy_from_slice(&self.payload);
            let fds = [fd.as_raw_fd()];
            let iov = [std::io::IoSlice::new(b"f")];
            sendmsg::<()>(
                self.socket.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
            .expect("sendmsg");
            let mut sum = [0u8; 8];
            (&self.socket).read_exact(&mut sum).expect("sum");
            assert_eq!(u64::from_ne_bytes(sum), checksum(&self.payload));
            // SAFETY: the mapping made above, no longer used.
            unsafe { libc::munmap(ptr.cast(), len) };
        }
    }
}

/// pyconc: attaching to an existing block by name, and closing it.
struct PyconcAttach {
    name: String,
}

impl Operation for PyconcAttach {
    fn name(&self) -> &'static str {
        "SharedMemory::attach + drop"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            drop(std::hint::black_box(SharedMemory::attach(&self.name).expect("attach")));
        }
    }
}

/// Raw: `shm_open` + `fstat` + `mmap` + `munmap` + `close`.
struct RawAttach {
    name: std::ffi::CString,
}

impl Operation for RawAttach {
    fn name(&self) -> &'static str {
        "raw shm_open+fstat+mmap+munmap+close"
    }
    fn run(&self, iterations: u64) {
        use std::os::fd::{AsFd, FromRawFd};
        for _ in 0..iterations {
            // SAFETY: a valid C string; the fd is checked and owned below.
            let fd = unsafe { libc::shm_open(self.name.as_ptr(), libc::O_RDWR, 0o600) };
            assert!(fd >= 0, "shm_open");
            // SAFETY: the fd shm_open just returned.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let len = nix::sys::stat::fstat(&fd).expect("fstat").st_size as usize;
            let ptr = map(fd.as_fd(), len);
            // SAFETY: the mapping made above.
            unsafe { libc::munmap(ptr.cast(), len) };
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
    {
        let (bytes, operation) = if settings.quick {
            (32 << 20, "SharedMemory 32 MiB handoff")
        } else {
            (256 << 20, "SharedMemory 256 MiB handoff")
        };
        let (ours, raw) = (PyconcHandoff::new(bytes), RawHandoff::new(bytes));
        push(operation, "shm_handoff", 1, &ours, &raw);
    }
    for (operation, key, bytes) in [
        ("SharedMemory attach, 1 MiB", "shm_attach_1mib", 1usize << 20),
        ("SharedMemory attach, 1 GiB", "shm_attach_1gib", 1 << 30),
    ] {
        // Never touched: the block takes no memory, whatever its size.
        let block = SharedMemory::create(bytes)?;
        let ours = PyconcAttach { name: block.name().to_owned() };
        let raw = RawAttach { name: std::ffi::CString::new(format!("/{}", block.name()))? };
        push(operation, key, 200, &ours, &raw);
        block.unlink()?;
    }
    Ok(())
}
