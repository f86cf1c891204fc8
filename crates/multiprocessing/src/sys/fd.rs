//! File descriptors: pipes, close-on-exec, `poll`, eventfds, non-blocking reads and writes.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

#[allow(unused_imports, reason = "each area uses some of them")]
use super::*;

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    pipe_with(0)
}

/// [`pipe`] with more of `pipe2`'s flags (`O_NONBLOCK`: both ends, in the same call).
pub(crate) fn pipe_with(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) })?;
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Marks `fd` close-on-exec.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an open fd.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

/// A close-on-exec duplicate of `fd`, which must be open (an fd an object of this process
/// owns; EBADF otherwise).
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd number; an invalid fd gives EBADF.
    let copy = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: fcntl succeeded, so `copy` is a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Takes ownership of an fd number handed to this process by its parent.
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process.
pub(crate) unsafe fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: forwarded to the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Waits until `fd` is readable (or hung up), at most `timeout` (`None`: forever).
/// Returns whether it is.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    // No allocation: a join waits here right after a fork, when each heap page written
    // is copied (the child still shares it).
    let mut pollfd = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    poll_fds(&mut pollfd, timeout)
}

/// Waits until one of `fds` is readable (or hung up), at most `timeout`; returns the
/// indices of the ready ones (empty on timeout).
pub(crate) fn wait_any_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    wait_any_readable_raw(&raw, timeout)
}

/// Waits until one of `fds` has one of its own `events` (`POLLIN`, `POLLRDHUP`; the
/// end of the other side and errors always count) or `timeout` passes; the indices of
/// the ready ones.
pub(crate) fn wait_any_of(
    fds: &[(BorrowedFd<'_>, libc::c_short)],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    ready_indices(fds.iter().map(|(fd, events)| (fd.as_raw_fd(), *events)), timeout)
}

/// `poll` of `(fd, events)` pairs until one is ready or `timeout` passes; the indices of
/// the ready ones.
fn ready_indices(
    fds: impl Iterator<Item = (RawFd, libc::c_short)>,
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let mut pollfds: Vec<libc::pollfd> =
        fds.map(|(fd, events)| libc::pollfd { fd, events, revents: 0 }).collect();
    poll_fds(&mut pollfds, timeout)?;
    Ok(pollfds.iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect())
}

/// [`wait_any_readable`] for raw fds (a caller that knows they stay open meanwhile).
pub(crate) fn wait_any_readable_raw(
    fds: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    ready_indices(fds.iter().map(|&fd| (fd, libc::POLLIN)), timeout)
}

/// `poll(2)` on `pollfds` until one is ready or `timeout` passes (`None`: no limit),
/// restarting after signals with the time left. Returns whether any is ready.
fn poll_fds(pollfds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let wait_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up so that a wait never ends before its deadline.
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: pollfds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, wait_ms) };
        if n > 0 {
            return Ok(true);
        }
        if n == -1 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// An eventfd: a counter whose fd is readable while it is non-zero.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes an initial value and flags.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a valid buffer; a full counter (EAGAIN) is still readable.
    let _ = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// Resets an eventfd to zero.
pub(crate) fn eventfd_clear(fd: BorrowedFd<'_>) {
    let mut value = [0u8; 8];
    // SAFETY: reads 8 bytes into a valid buffer; the fd is non-blocking.
    let _ = unsafe { libc::read(fd.as_raw_fd(), value.as_mut_ptr().cast(), value.len()) };
}

/// Makes `fd` refer to `/dev/null`, closing what it referred to, while the number stays
/// valid for whoever else holds it (see [`DevNull::put_over`]).
pub(crate) fn replace_with_dev_null(fd: RawFd) -> io::Result<()> {
    DevNull::open()?.put_over(fd)
}

/// `/dev/null`, open, to put over several fds — one `dup3` each: a forked pool worker lets
/// go of three fds of every other worker's channel this way, where an `open` per fd made
/// a number of them that grew with the square of the pool's size — or over stdin: the
/// kept one ([`keep_dev_null`]) while it still is that, else one opened for this use.
pub(crate) enum DevNull {
    Kept(BorrowedFd<'static>),
    Opened(OwnedFd),
}

impl DevNull {
    /// The kept `/dev/null`, or the device opened.
    pub(crate) fn open() -> io::Result<DevNull> {
        match kept_dev_null() {
            Some(kept) => Ok(DevNull::Kept(kept)),
            None => open_dev_null().map(DevNull::Opened),
        }
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        match self {
            DevNull::Kept(fd) => fd.as_raw_fd(),
            DevNull::Opened(fd) => fd.as_raw_fd(),
        }
    }

    /// Makes `fd` refer to `/dev/null`, closing what it referred to, while the number
    /// stays valid for whoever else holds it. The number stays close-on-exec (`dup3` with
    /// `O_CLOEXEC`; `dup2` would clear the flag and leak the fd into every program exec'd
    /// later).
    pub(crate) fn put_over(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: dup3 onto an fd number this process owns; the old file is closed
        // atomically.
        check(unsafe { libc::dup3(self.as_raw_fd(), fd, libc::O_CLOEXEC) }).map(drop)
    }
}

/// The `/dev/null` a process that forks children keeps open (close-on-exec), so that
/// each child points its stdin at it with one `dup2` instead of opening the device: an
/// `open` is the dearest system call a forked child makes (the path walk and a new file,
/// ~3 µs on a warm CPU, more in a new process). -1 until [`keep_dev_null`].
static KEPT_DEV_NULL: AtomicI32 = AtomicI32::new(-1);

/// Opens the kept `/dev/null` if this process has none yet; called before a fork whose
/// child will [`stdin_from_dev_null`] or [`DevNull::open`]. Without it (no fd left, say)
/// children open the device themselves.
pub(crate) fn keep_dev_null() {
    if KEPT_DEV_NULL.load(Ordering::Acquire) >= 0 {
        return;
    }
    let Ok(null) = open_dev_null() else { return };
    let raw = null.as_raw_fd();
    if KEPT_DEV_NULL.compare_exchange(-1, raw, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // Kept for the life of the process (and inherited by forked children).
        std::mem::forget(null);
    }
}

/// The kept `/dev/null`, if it still is that. Any code may close an fd number or reuse
/// it for another file, so the number is trusted only if it names the character device
/// 1:3, which is `/dev/null` on Linux (fails closed: an fd that cannot be checked is not
/// used). One `fstat`; async-signal-safe.
fn kept_dev_null() -> Option<BorrowedFd<'static>> {
    let fd = KEPT_DEV_NULL.load(Ordering::Acquire);
    // SAFETY: the number is open (`names_dev_null` checked it) and names `/dev/null`; it
    // is borrowed for a `dup2`, never closed through this handle.
    (fd >= 0 && names_dev_null(fd)).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Whether `fd` is open and names `/dev/null`: the character device 1:3 on Linux. One
/// `fstat` system call: glibc's `fstat` is `fstatat(fd, "", AT_EMPTY_PATH)`, whose empty
/// path the kernel reads from libc's read-only data (one more page fault in a forked
/// child). Async-signal-safe.
fn names_dev_null(fd: RawFd) -> bool {
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid out-pointer; on a number that is not open, fstat fails.
    let open = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut stat) } == 0;
    open && stat.st_mode & libc::S_IFMT == libc::S_IFCHR && stat.st_rdev == libc::makedev(1, 3)
}

/// `/dev/null`, open for reading, close-on-exec: one system call and no allocation (a
/// forked child runs it first thing).
pub(crate) fn open_dev_null() -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated path and plain flags; returns a new fd or -1.
    let fd = check(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: the fd was just opened and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets `O_NONBLOCK` on the file description of `fd` (shared with every process that has
/// a copy of it).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on an open fd.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Runs a `read`/`write`-like call until it is not interrupted: the byte count, or
/// `Ok(None)` when it would block.
pub(super) fn nonblocking(mut call: impl FnMut() -> isize) -> io::Result<Option<usize>> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(error),
        }
    }
}

/// `read` into `buf`; `Ok(None)` when it would block.
pub(crate) fn read_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: reads at most buf.len() bytes into a valid buffer.
    nonblocking(|| unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `writev` of `parts`; `Ok(None)` when it would block.
pub(crate) fn write_nonblocking(
    fd: BorrowedFd<'_>,
    parts: &[IoSlice<'_>],
) -> io::Result<Option<usize>> {
    if let [one] = parts {
        // One segment: plain write(2), a little cheaper than writev(2).
        // SAFETY: writes from a valid buffer of the given length.
        return nonblocking(|| unsafe {
            libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len())
        });
    }
    let count = parts.len().min(1024) as libc::c_int;
    // SAFETY: IoSlice is ABI-compatible with iovec; the count is within the slice.
    nonblocking(|| unsafe { libc::writev(fd.as_raw_fd(), parts.as_ptr().cast(), count) })
}

/// Polls one fd for `events` (`POLLIN`, `POLLOUT`), at most `timeout`; returns `revents`
/// (0 on timeout).
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: i16,
    timeout: Option<Duration>,
) -> io::Result<i16> {
    let mut pollfd = [libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 }];
    poll_fds(&mut pollfd, timeout)?;
    Ok(pollfd[0].revents)
}

/// Sets a pipe's capacity (`F_SETPIPE_SZ`); best effort.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) {
    // SAFETY: fcntl on an open fd; failure leaves the default size.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes as libc::c_int) };
}

/// `read` into the spare capacity of `buf` (at most `max` bytes), extending its length by
/// what was read, without zero-filling first; `Ok(None)` when it would block.
pub(crate) fn read_into_spare(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<usize>> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: reads at most `want` bytes into the vector's spare capacity, which is
    // allocated and at least that long; `read` never reads the old contents.
    let read =
        nonblocking(|| unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want) })?;
    if let Some(n) = read {
        // SAFETY: the kernel initialized the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
    }
    Ok(read)
}

/// Makes `keep` the process's fd `to` (`dup2`) and closes every fd above `to`
/// (`close_range`), and fds 0 and 1 too: a helper process that must hold nothing of its
/// parent's but one fd and stderr. Async-signal-safe (system calls only).
pub(crate) fn keep_only(keep: RawFd, to: RawFd) -> io::Result<()> {
    if keep != to {
        // SAFETY: dup2 onto a number above stderr; an invalid fd gives EBADF.
        check(unsafe { libc::dup2(keep, to) })?;
    }
    // SAFETY: close_range on numbers this process owns; nothing refers to them afterwards
    // (the caller keeps only `to` and stderr).
    check(unsafe { libc::syscall(libc::SYS_close_range, to + 1, u32::MAX, 0) } as libc::c_int)?;
    // SAFETY: closing stdin and stdout, which the helper never uses.
    unsafe {
        libc::close(0);
        libc::close(1);
    }
    Ok(())
}

/// `recv` of one packet into `buf` (a `SOCK_SEQPACKET` socket), retried on `EINTR`: its
/// length, 0 at end of file. Async-signal-safe.
pub(crate) fn recv_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: receives at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Sends one packet (`SOCK_SEQPACKET`) without raising SIGPIPE when the peer is gone
/// (`EPIPE` instead).
pub(crate) fn send_packet(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    send_packet_raw(fd.as_raw_fd(), bytes)
}

/// [`send_packet`] on an fd number. Async-signal-safe.
pub(crate) fn send_packet_raw(fd: RawFd, bytes: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: sends `bytes`, a valid slice, on an fd number (EBADF if it is closed).
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Writes `bytes` to stderr, best effort (no lock, no allocation). Async-signal-safe.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes from a valid slice to fd 2.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::{DevNull, check, names_dev_null};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A socket pair's ends, owned.
    fn socket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        // SAFETY: socketpair fills two fds into a valid array.
        check(unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) }).unwrap();
        // SAFETY: both fds were just made and are ours alone.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// The kept `/dev/null` is trusted only while its number names the device. Once other
    /// code put a pipe under that number, a child's stdin is opened afresh, and the pipe
    /// is left alone. Run in a forked child, whose fds the test may change; it answers
    /// with its exit code (no panics between `fork` and `_exit`).
    #[test]
    fn a_kept_dev_null_whose_number_names_another_file_is_not_used() {
        let in_child = || -> i32 {
            super::keep_dev_null();
            let Some(kept) = super::kept_dev_null().map(|fd| fd.as_raw_fd()) else { return 2 };
            let Ok((read, _write)) = super::pipe() else { return 3 };
            // SAFETY: dup3/dup2 onto numbers this process owns; the old files close
            // atomically. Stdin is the pipe too then.
            let moved = unsafe {
                libc::dup3(read.as_raw_fd(), kept, libc::O_CLOEXEC) >= 0
                    && libc::dup2(read.as_raw_fd(), 0) == 0
            };
            if !moved {
                return 4;
            }
            if super::kept_dev_null().is_some() {
                return 5; // a pipe passed for /dev/null
            }
            if crate::sys::stdin_from_dev_null().is_err() || !names_dev_null(0) {
                return 6; // stdin is not /dev/null
            }
            if names_dev_null(kept) {
                return 7; // the pipe under the kept number was replaced
            }
            0
        };
        crate::sys::assert_in_forked_child(in_child);
    }

    /// One `/dev/null` put over the fds of two socket pairs: each number then names
    /// `/dev/null` (the character device 1:3) and stays close-on-exec, and the sockets it
    /// named are closed — their peers can no longer send.
    #[test]
    fn dev_null_put_over_fds_closes_their_files_and_keeps_their_numbers_close_on_exec() {
        let (pairs, null) = ([socket_pair(), socket_pair()], DevNull::open().unwrap());
        for (ours, _) in &pairs {
            null.put_over(ours.as_raw_fd()).unwrap();
        }
        for (ours, peer) in &pairs {
            assert!(names_dev_null(ours.as_raw_fd()));
            // SAFETY: F_GETFD on an open fd.
            let flags = unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETFD) };
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
            // SAFETY: sends one byte from a valid buffer; MSG_NOSIGNAL: EPIPE, no signal.
            let sent = unsafe {
                libc::send(peer.as_raw_fd(), [1u8].as_ptr().cast(), 1, libc::MSG_NOSIGNAL)
            };
            assert_eq!(sent, -1);
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPIPE));
        }
    }
}
