//! The resource tracker: CPython's `multiprocessing.resource_tracker`. Named shared-memory
//! segments a program created and never unlinked are unlinked once the program is gone —
//! after a normal exit and also after a `SIGKILL`.
//!
//! The tracker is a helper process started on first use, or before the program's first
//! child starts. The program holds one end of a socket pair (close-on-exec); forked
//! children inherit it, spawn and forkserver children receive it with their target
//! (`process::start`), so the whole program — every process of it — talks to one tracker. Each creation sends `REGISTER:/name:shared_memory`, each
//! `unlink` sends `UNREGISTER:...` (CPython's messages). When every process of the program
//! has ended, the kernel closes the last copy of that end, the tracker reads end-of-file,
//! warns as CPython does (`resource_tracker: There appear to be N leaked shared_memory
//! objects to clean up at shutdown`) and unlinks what is still registered. A segment a
//! child created therefore outlives that child, as in CPython.
//!
//! Beyond CPython: the tracker runs in a session of its own and ignores SIGHUP as well, so
//! neither a terminal hang-up nor a signal to the program's process group takes it down
//! before it has cleaned up; it is started through an intermediate process that exits at
//! once, so it is never a zombie of the program; and it reads packets (`SOCK_SEQPACKET`),
//! so a message is never torn, and a full or dead tracker never raises SIGPIPE in the
//! program. A tracker that died is started again, with CPython's warning.
//!
//! Why the tracker is written by hand: it is forked from a program that may run other
//! threads, so until it exits it may only make async-signal-safe calls — no allocator, no
//! locks. Its table of names lives in an anonymous mapping it grows with `mremap`.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use pyconc_core::fork::ForkMutex;

use crate::Error;
use crate::sys::{self, Fork};

/// The only kind of resource this tracker knows (CPython's `rtype`).
pub(crate) const SHARED_MEMORY: &str = "shared_memory";

/// The longest message: CPython's limit, within `PIPE_BUF`.
const MAX_MESSAGE: usize = 512;

/// How long a new tracker may take to report that it runs.
const TRACKER_START: std::time::Duration = std::time::Duration::from_secs(10);

/// The program's end of the tracker's socket, if a tracker was started (or inherited).
/// A forked child keeps it: it talks to the same tracker.
static TRACKER: ForkMutex<Option<OwnedFd>> = ForkMutex::new(None, 37, |_| {});

/// Registers the segment `name` (with its leading `/`) for unlinking when the program is
/// gone, starting the tracker if none runs.
pub(crate) fn register(name: &str) -> Result<(), Error> {
    send("REGISTER", name)
}

/// Unregisters `name`: the program unlinked it itself. Without a tracker this process
/// registered nothing (a forked or started child has its parent's), so nothing is sent.
pub(crate) fn unregister_if_running(name: &str) -> Result<(), Error> {
    if TRACKER.lock().is_none() {
        return Ok(());
    }
    send("UNREGISTER", name)
}

/// Starts the tracker if none runs, so that processes started afterwards share it
/// (CPython's `ensure_running`, which its spawn and forkserver launchers call; here every
/// child start does, and bpo-36867: a `SharedMemoryManager`'s server must use its
/// program's tracker).
pub(crate) fn ensure_running() -> Result<(), Error> {
    let mut tracker = TRACKER.lock();
    if tracker.is_none() {
        *tracker = Some(start()?);
    }
    Ok(())
}

/// A copy of the program's end of the tracker's socket for a spawn or forkserver child
/// being started, if a tracker runs.
pub(crate) fn fd_for_child() -> Option<OwnedFd> {
    let tracker = TRACKER.lock();
    tracker.as_ref().and_then(|fd| fd.try_clone().ok())
}

/// Makes `fd`, received from the parent, this process's way to the program's tracker.
pub(crate) fn adopt(fd: OwnedFd) {
    let _ = sys::set_cloexec(fd.as_fd());
    *TRACKER.lock() = Some(fd);
}

fn send(command: &str, name: &str) -> Result<(), Error> {
    let message = format!("{command}:{name}:{SHARED_MEMORY}\n");
    if message.len() > MAX_MESSAGE {
        return Err(Error::value("msg too long"));
    }
    let mut tracker = TRACKER.lock();
    if let Some(fd) = tracker.as_ref() {
        match sys::send_packet(fd.as_fd(), message.as_bytes()) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                sys::write_stderr(
                    b"pyconc: UserWarning: resource_tracker: process died unexpectedly, \
                      relaunching.  Some resources might leak.\n",
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    let fd = start()?;
    sys::send_packet(fd.as_fd(), message.as_bytes())?;
    *tracker = Some(fd);
    Ok(())
}

/// Starts a tracker; returns the program's end of its socket.
fn start() -> Result<OwnedFd, Error> {
    let (ours, theirs) = sys::socketpair(libc::SOCK_SEQPACKET)?;
    // SAFETY: in each child the library's fork handlers run first (they reset what the
    // `ForkMutex`es guard, which this thread held across the fork; glibc keeps `malloc`
    // usable), as in every fork child of this crate. After them the intermediate child
    // only forks again and exits, and the grandchild runs `serve`, which makes
    // async-signal-safe calls only (see its comment): neither touches a lock that another
    // thread of this process may have held at the fork.
    match unsafe { sys::fork() }? {
        Fork::Child => {
            // SAFETY: as above; this intermediate process has one thread.
            if let Ok(Fork::Child) = unsafe { sys::fork() } {
                serve(theirs.as_raw_fd());
            }
            sys::exit_now(0)
        }
        Fork::Parent(pid) => {
            drop(theirs);
            // The intermediate process exits at once; the tracker is reparented.
            sys::wait(pid)?;
            // The tracker says when it is in its own session: from then on a signal to
            // the program's process group no longer reaches it.
            let mut ready = [0u8; 1];
            let answered = sys::poll_one(ours.as_fd(), libc::POLLIN, Some(TRACKER_START))? != 0
                && sys::recv_packet(ours.as_raw_fd(), &mut ready)? == 1;
            if !answered {
                return Err(Error::OsError(std::io::Error::other(
                    "the resource tracker did not start",
                )));
            }
            Ok(ours)
        }
    }
}

/// The tracker's life: read messages until every process of the program is gone, then
/// unlink what is still registered. Async-signal-safe throughout: system calls, stack
/// buffers and the table's own mapping — no allocator, no lock, no formatting machinery.
fn serve(socket: std::os::fd::RawFd) -> ! {
    const SOCKET: std::os::fd::RawFd = 3;
    sys::detach_helper();
    if sys::keep_only(socket, SOCKET).is_err() || sys::send_packet_raw(SOCKET, b"R").is_err() {
        sys::exit_now(1);
    }
    let mut table = Table::new();
    let mut packet = [0u8; MAX_MESSAGE];
    while let Ok(n) = sys::recv_packet(SOCKET, &mut packet) {
        if n == 0 {
            break;
        }
        handle(&mut table, &packet[..n]);
    }
    let leaked = table.len();
    if leaked > 0 {
        let mut digits = [0u8; 20];
        warn(&[
            b"resource_tracker: There appear to be ",
            decimal(leaked, &mut digits),
            b" leaked shared_memory objects to clean up at shutdown",
        ]);
    }
    for i in 0..leaked {
        let mut path = [0u8; NAME_MAX + 1];
        let name = table.get(i);
        path[..name.len()].copy_from_slice(name);
        let Ok(c_name) = CStr::from_bytes_until_nul(&path) else { continue };
        if let Err(e) = sys::shm_unlink(c_name) {
            let mut digits = [0u8; 20];
            let errno = e.raw_os_error().unwrap_or(0);
            warn(&[
                b"resource_tracker: '",
                name,
                b"': [Errno ",
                decimal(errno.unsigned_abs() as usize, &mut digits),
                b"] ",
                errno_text(errno),
                b": '",
                name,
                b"'",
            ]);
        }
    }
    sys::exit_now(0)
}

/// Applies one message (`CMD:name:rtype`, CPython's).
fn handle(table: &mut Table, packet: &[u8]) {
    let line = packet.strip_suffix(b"\n").unwrap_or(packet);
    let (Some(first), Some(last)) =
        (line.iter().position(|&b| b == b':'), line.iter().rposition(|&b| b == b':'))
    else {
        return warn(&[b"resource_tracker: malformed message ignored"]);
    };
    if first == last {
        return warn(&[b"resource_tracker: malformed message ignored"]);
    }
    let (command, name, kind) = (&line[..first], &line[first + 1..last], &line[last + 1..]);
    if command == b"PROBE" {
        return;
    }
    if kind != SHARED_MEMORY.as_bytes() {
        return warn(&[
            b"resource_tracker: Cannot register ",
            name,
            b" for automatic cleanup: unknown resource type ",
            kind,
        ]);
    }
    if !valid_name(name) {
        return warn(&[b"resource_tracker: invalid name ignored"]);
    }
    match command {
        b"REGISTER" => {
            if !table.add(name) {
                warn(&[b"resource_tracker: out of memory; not tracked: ", name]);
            }
        }
        b"UNREGISTER" => table.remove(name),
        _ => warn(&[b"resource_tracker: unrecognized command ", command]),
    }
}

/// The longest name of a shared-memory object (the kernel's `NAME_MAX`, with the `/`).
pub(crate) const NAME_MAX: usize = 255;

/// Whether `name` can name a shared-memory object: `/`, then 1 to 254 bytes with no `/`
/// and no NUL.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    name.len() >= 2
        && name.len() <= NAME_MAX
        && name[0] == b'/'
        && !name[1..].iter().any(|&b| b == b'/' || b == 0)
}

/// Writes `pyconc: UserWarning: ` and `parts` on a line of stderr, as CPython's
/// `warnings.warn` from its tracker.
fn warn(parts: &[&[u8]]) {
    let mut line = [0u8; 1024];
    let mut len = 0;
    for part in
        [b"pyconc: UserWarning: ".as_slice()].iter().chain(parts).chain([b"\n".as_slice()].iter())
    {
        let take = part.len().min(line.len() - len);
        line[len..len + take].copy_from_slice(&part[..take]);
        len += take;
    }
    sys::write_stderr(&line[..len]);
}

/// `n` in decimal, written into `digits`.
fn decimal(mut n: usize, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[at..];
        }
    }
}

/// `strerror` for the errors `shm_unlink` gives (strerror itself may allocate).
fn errno_text(errno: i32) -> &'static [u8] {
    match errno {
        libc::ENOENT => b"No such file or directory",
        libc::EACCES => b"Permission denied",
        libc::EPERM => b"Operation not permitted",
        libc::ENAMETOOLONG => b"File name too long",
        libc::EINVAL => b"Invalid argument",
        _ => b"Error",
    }
}

/// The tracker's set of names, in slots of `NAME_MAX + 1` bytes (a length byte, then the
/// name) of an anonymous mapping that doubles when full.
struct Table {
    slots: Option<std::ptr::NonNull<u8>>,
    capacity: usize,
    len: usize,
}

const SLOT: usize = NAME_MAX + 1;

impl Table {
    fn new() -> Table {
        Table { slots: None, capacity: 0, len: 0 }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> &[u8] {
        match self.slots {
            // SAFETY: the mapping holds `capacity` slots, all initialized (zero-filled by
            // the kernel), and only this table refers to it.
            Some(ptr) => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.capacity * SLOT) },
            None => &[],
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self.slots {
            // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
            Some(ptr) => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), self.capacity * SLOT)
            },
            None => &mut [],
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        let slot = &self.bytes()[i * SLOT..(i + 1) * SLOT];
        &slot[1..1 + usize::from(slot[0])]
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        (0..self.len).find(|&i| self.get(i) == name)
    }

    /// Adds `name` (a set: once); false when the table cannot grow.
    fn add(&mut self, name: &[u8]) -> bool {
        if self.find(name).is_some() {
            return true;
        }
        if self.len == self.capacity {
            let capacity = (self.capacity * 2).max(64);
            let grown = match self.slots {
                None => sys::map_anonymous(capacity * SLOT),
                // SAFETY: the whole mapping made by `map_anonymous` (or grown before); the
                // slices into it are gone (`&mut self`).
                Some(ptr) => unsafe {
                    sys::grow_mapping(ptr, self.capacity * SLOT, capacity * SLOT)
                },
            };
            match grown {
                Ok(ptr) => {
                    self.slots = Some(ptr);
                    self.capacity = capacity;
                }
                Err(_) => return false,
            }
        }
        let at = self.len * SLOT;
        let slot = &mut self.bytes_mut()[at..at + SLOT];
        // `valid_name` bounds the length to NAME_MAX, which fits the length byte.
        slot[0] = name.len() as u8;
        slot[1..1 + name.len()].copy_from_slice(name);
        self.len += 1;
        true
    }

    /// Removes `name` if present (the last slot moves into its place).
    fn remove(&mut self, name: &[u8]) {
        if let Some(i) = self.find(name) {
            let last = self.len - 1;
            self.bytes_mut().copy_within(last * SLOT..(last + 1) * SLOT, i * SLOT);
            self.len = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_set_that_grows_and_shrinks() {
        let mut table = Table::new();
        let names: Vec<String> = (0..200).map(|i| format!("/psm_{i:08x}")).collect();
        for name in &names {
            assert!(table.add(name.as_bytes()));
            assert!(table.add(name.as_bytes()));
        }
        assert_eq!(table.len(), 200);
        for name in names.iter().step_by(2) {
            table.remove(name.as_bytes());
        }
        table.remove(b"/never-added");
        assert_eq!(table.len(), 100);
        let mut left: Vec<&[u8]> = (0..table.len()).map(|i| table.get(i)).collect();
        left.sort();
        let mut odd: Vec<&[u8]> = names.iter().skip(1).step_by(2).map(|n| n.as_bytes()).collect();
        odd.sort();
        assert_eq!(left, odd);
    }

    #[test]
    fn messages_apply_as_cpythons_tracker_reads_them() {
        let mut table = Table::new();
        handle(&mut table, b"REGISTER:/psm_1:shared_memory\n");
        handle(&mut table, b"REGISTER:/psm_2:shared_memory\n");
        handle(&mut table, b"PROBE:0:noop\n");
        handle(&mut table, b"REGISTER:/psm_3:semaphore\n");
        handle(&mut table, b"REGISTER:/a/b:shared_memory\n");
        handle(&mut table, b"UNREGISTER:/psm_1:shared_memory\n");
        handle(&mut table, b"garbage");
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(0), b"/psm_2");
    }

    #[test]
    fn names_are_checked_before_use() {
        assert!(valid_name(b"/psm_0123abcd"));
        assert!(!valid_name(b"/"));
        assert!(!valid_name(b"psm"));
        assert!(!valid_name(b"/a/b"));
        assert!(!valid_name(b"/a\0b"));
        assert!(!valid_name(format!("/{}", "x".repeat(255)).as_bytes()));
        assert!(valid_name(format!("/{}", "x".repeat(254)).as_bytes()));
    }

    #[test]
    fn decimal_writes_digits() {
        let mut d = [0u8; 20];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(1234, &mut d), b"1234");
        assert_eq!(decimal(usize::MAX, &mut d), usize::MAX.to_string().as_bytes());
    }
}
