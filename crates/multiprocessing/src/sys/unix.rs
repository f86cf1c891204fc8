//! Linux system calls, each wrapped once.
//!
//! Functions documented "async-signal-safe" are single system calls (or `_exit`) that
//! allocate nothing and take no lock, so they may run in a child between `fork()` and
//! `exec()`/`_exit()` of a multi-threaded parent.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// A process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pid(pub(crate) i32);

/// How a child ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// It called `exit(code)` (or returned from `main`).
    Exited(i32),
    /// Signal N killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// Python's `os.waitstatus_to_exitcode`: the code, or minus the signal number.
    pub(crate) fn exitcode(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => -signal,
        }
    }

    /// Decodes a raw `wait` status.
    pub(crate) fn from_raw(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// The cached pid (0: not read yet in this process).
static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// `/proc/self/stat`, kept open for [`thread_count`]: the fd, or -1.
static STAT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Registers, once, the fork handler that forgets this module's per-process caches in
/// every child, whoever forks. The caches are atomics, never locks, so no fork can leave
/// one locked.
fn register_fork_handler() {
    use std::sync::atomic::Ordering;
    static HANDLER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget_in_child() {
        PID.store(0, Ordering::Relaxed);
        let stat = STAT_FD.swap(-1, Ordering::Relaxed);
        if stat >= 0 {
            // SAFETY: the child's copy of the parent's `/proc/PID/stat` fd, owned by this
            // module alone; `close` is async-signal-safe, and the child runs one thread.
            unsafe { libc::close(stat) };
        }
    }
    HANDLER.call_once(|| {
        // SAFETY: registers a 'static `extern "C" fn` that only touches atomics and calls
        // `close`, which is async-signal-safe in the child of a fork.
        unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
    });
}

/// This process's id, cached (glibc does not cache it, and queues ask per item). A fork
/// handler clears the cache in every child, whoever forks. Async-signal-safe.
pub(crate) fn getpid() -> Pid {
    use std::sync::atomic::Ordering;
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return Pid(cached);
    }
    // SAFETY: getpid has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    // The first call registers the fork handler (the parent's `start()` calls this before
    // it forks, so a child's async-signal-safe section never gets here with the `Once`
    // unfinished).
    register_fork_handler();
    PID.store(pid, Ordering::Relaxed);
    Pid(pid)
}

/// The parent's process id. Async-signal-safe.
pub(crate) fn getppid() -> Pid {
    // SAFETY: getppid has no preconditions and cannot fail.
    Pid(unsafe { libc::getppid() })
}

/// The calling thread's kernel id. Async-signal-safe.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Whether the calling thread is the process's first thread, whose end ends the process.
pub(crate) fn on_main_thread() -> bool {
    gettid() == getpid().0
}

/// What `fork` returned in this process.
#[derive(Debug)]
pub(crate) enum Fork {
    /// In the parent: the child's pid.
    Parent(Pid),
    /// In the child.
    Child,
}

/// `fork()`.
///
/// # Safety
/// In a multi-threaded parent the child has only the calling thread, and every lock that
/// another thread held stays locked in it forever. Until it execs or `_exit`s, the child
/// may only call async-signal-safe functions, or touch state whose locks the caller held
/// across the fork (as `start/fork.rs` does).
pub(crate) unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: forwarded to the caller (above).
    match check(unsafe { libc::fork() })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(Pid(pid))),
    }
}

/// Ends the process at once with `code`: no atexit handlers, no stdio flush.
/// Async-signal-safe.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it does not return.
    unsafe { libc::_exit(code) }
}

/// A pidfd for `pid` (`pidfd_open`): readable once the process has ended.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.0, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it. pidfds are
    // opened close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `waitpid(pid, WNOHANG)`: the status if the child has ended (and reaps it), else `None`.
pub(crate) fn try_wait(pid: Pid) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer; WNOHANG never blocks.
        match unsafe { libc::waitpid(pid.0, &mut status, libc::WNOHANG) } {
            0 => return Ok(None),
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            -1 => return Err(io::Error::last_os_error()),
            _ => return Ok(Some(ExitStatus::from_raw(status))),
        }
    }
}

/// Blocking `waitpid(pid)`, for the fork server, which waits only for children whose
/// pidfd reported their end.
pub(crate) fn wait(pid: Pid) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        if unsafe { libc::waitpid(pid.0, &mut status, 0) } != -1 {
            return Ok(ExitStatus::from_raw(status));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub(crate) fn kill(pid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    match check(unsafe { libc::kill(pid.0, signal) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// Asks the kernel to send `signal` to this process when the thread that created it
/// ends (`PR_SET_PDEATHSIG`). Async-signal-safe.
pub(crate) fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; the unused arguments are 0.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// Points fd 0 at `/dev/null`, as CPython's child bootstrap replaces `sys.stdin`.
pub(crate) fn stdin_from_dev_null() -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: both fds are open; dup2 replaces fd 0 atomically.
    check(unsafe { libc::dup2(null.as_raw_fd(), 0) }).map(drop)
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Lets `fd` survive `exec`. Async-signal-safe (for `pre_exec`).
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an fd number; an invalid fd gives EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Marks `fd` close-on-exec.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an open fd.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

/// Whether the process runs in secure-execution mode (`getauxval(AT_SECURE)`: a set-user-ID
/// or set-group-ID program, or one with file capabilities), where its environment and
/// inherited fds come from a less privileged user.
pub(crate) fn secure_execution() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; it has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Whether `fd` is an open `AF_UNIX` socket whose peer — the process that made the
/// socket pair — is `peer` running with user id `uid` (`SO_PEERCRED`). Looks only: it
/// changes nothing about the fd, which may be anything (an fd number named by the
/// environment). Any doubt is a "no".
pub(crate) fn is_unix_socket_from(fd: RawFd, peer: Pid, uid: u32) -> bool {
    fn int_option(fd: RawFd, option: libc::c_int) -> Option<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes to `value`; an fd that is not an
        // open socket gives EBADF or ENOTSOCK.
        let result = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, option, (&raw mut value).cast(), &mut len)
        };
        (result == 0).then_some(value)
    }
    if fd < 0 || int_option(fd, libc::SO_DOMAIN) != Some(libc::AF_UNIX) {
        return false;
    }
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a `ucred` of `len` bytes on an open Unix socket.
    let result = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len)
    };
    result == 0
        && len as usize == std::mem::size_of::<libc::ucred>()
        && cred.pid == peer.0
        && cred.uid == uid
}

/// This process's effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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
    let ready = wait_any_readable(&[fd], timeout)?;
    Ok(!ready.is_empty())
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

/// [`wait_any_readable`] for raw fds (a caller that knows they stay open meanwhile).
pub(crate) fn wait_any_readable_raw(
    fds: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let mut pollfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    poll_fds(&mut pollfds, timeout)?;
    Ok(pollfds.iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect())
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

/// Sends `data` and `fds` (as `SCM_RIGHTS`) in one message on a Unix socket.
pub(crate) fn send_with_fds(socket: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short sendmsg")),
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Receives a message of at most `buf.len()` bytes and up to `max_fds` passed fds (opened
/// close-on-exec). Returns the byte count (0 at end of stream) and the fds.
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = vec![0u8; cmsg_space_for(max_fds)];
    let mut iov = [IoSliceMut::new(buf)];
    let message = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => break message,
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    };
    let mut fds = Vec::new();
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel installed these fds in this process for this message.
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok((message.bytes, fds))
}

fn cmsg_space_for(fds: usize) -> usize {
    let payload = (fds.max(1) * std::mem::size_of::<RawFd>()) as libc::c_uint;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(payload) };
    space as usize
}

/// How many threads this process runs (`/proc/self/stat`, field 20), as CPython 3.12
/// counts them for its fork warning. The file stays open (per process: `/proc/self` names
/// the process that opened it, and the fork handler closes a child's copy), so a check
/// costs one `pread`. No lock: a child forked while another thread checks finds it free.
pub(crate) fn thread_count() -> usize {
    use std::sync::atomic::Ordering;
    register_fork_handler();
    let mut fd = STAT_FD.load(Ordering::Acquire);
    if fd < 0 {
        // SAFETY: a NUL-terminated path and plain flags; returns a new fd or -1.
        let opened =
            unsafe { libc::open(c"/proc/self/stat".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if opened < 0 {
            return 1;
        }
        fd = match STAT_FD.compare_exchange(-1, opened, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => opened,
            Err(theirs) => {
                // SAFETY: `opened` is ours alone; another thread installed its own fd.
                unsafe { libc::close(opened) };
                theirs
            }
        };
    }
    let mut buf = [0u8; 1024];
    // SAFETY: reads at most `buf.len()` bytes into `buf`; the fd stays open (only the
    // fork handler closes it, in a child with no other thread).
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    let Ok(n) = usize::try_from(n) else { return 1 };
    let stat = String::from_utf8_lossy(&buf[..n]);
    stat_fields(&stat).and_then(|mut fields| fields.nth(17)?.parse().ok()).unwrap_or(1)
}

/// Makes `fd` refer to `/dev/null`, closing what it referred to, while the number stays
/// valid for whoever else holds it. The number stays close-on-exec (`dup3` with
/// `O_CLOEXEC`; `dup2` would clear the flag and leak the fd into every program exec'd
/// later).
pub(crate) fn replace_with_dev_null(fd: RawFd) -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: dup3 onto an fd number this process owns; the old file is closed atomically.
    check(unsafe { libc::dup3(null.as_raw_fd(), fd, libc::O_CLOEXEC) }).map(drop)
}

/// Ignores SIGINT (`true`) or restores its default action, as CPython's fork server does
/// so that Ctrl-C in a terminal reaches the program and its children, not the server.
pub(crate) fn ignore_interrupts(ignore: bool) {
    let action = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: installs SIG_IGN or SIG_DFL, which run no code of ours.
    unsafe { libc::signal(libc::SIGINT, action) };
}

/// A connected pair of Unix sockets of `kind` (`SOCK_STREAM`, `SOCK_SEQPACKET`),
/// close-on-exec.
pub(crate) fn socketpair(kind: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for socketpair to fill.
    check(unsafe {
        libc::socketpair(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: socketpair succeeded, so both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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
fn nonblocking(mut call: impl FnMut() -> isize) -> io::Result<Option<usize>> {
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

/// A new anonymous shared-memory file of `len` bytes (`memfd_create`), close-on-exec.
pub(crate) fn memfd(len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid C string; flags are plain integers.
    let fd = check(unsafe { libc::memfd_create(c"pyconc".as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: a new fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate on the fd just created.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    Ok(fd)
}

/// The size of the file behind `fd`.
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: `stat` is plain data, filled by fstat.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid out-pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
    Ok(stat.st_size as usize)
}

/// Maps `len` bytes of `fd` shared and read-write.
pub(crate) fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: a fresh mapping chosen by the kernel; nothing else is at that address.
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
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Replaces the pages of a shared mapping by private zero-filled ones at the same
/// address: the memory stays valid for whatever still points into it, but no longer
/// reaches the shared pages (a forked child letting go of its parent's channels).
///
/// # Safety
/// `ptr`/`len` must be a whole mapping made by [`map_shared`]; its contents turn to zeros
/// under every reference into it, so it may hold only types for which zero is a valid
/// value (the crate's atomics and bytes).
pub(crate) unsafe fn remap_private(ptr: std::ptr::NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: MAP_FIXED over a range that the caller guarantees is our own whole mapping,
    // so nothing else is replaced.
    let result = unsafe {
        libc::mmap(
            ptr.as_ptr().cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if result == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
/// `ptr`/`len` must be a mapping from `map_shared` that nothing uses any more.
pub(crate) unsafe fn unmap(ptr: std::ptr::NonNull<u8>, len: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

/// Sleeps while the shared word at `word` holds `expected`, until woken or `deadline`
/// (a process-shared futex: the word may be mapped at other addresses in other
/// processes). Returns false on timeout.
pub(crate) fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
) -> bool {
    use linux_futex::{Futex, Shared, TimedWaitError};
    // SAFETY: `Futex<Shared>` is `repr(transparent)` over `AtomicU32`.
    let futex = unsafe { &*(word as *const std::sync::atomic::AtomicU32).cast::<Futex<Shared>>() };
    match deadline {
        None => {
            let _ = futex.wait(expected);
            true
        }
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            !matches!(futex.wait_for(expected, left), Err(TimedWaitError::TimedOut))
        }
    }
}

/// Wakes up to `n` sleepers of a shared futex word.
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32, n: i32) {
    use linux_futex::{Futex, Shared};
    // SAFETY: `Futex<Shared>` is `repr(transparent)` over `AtomicU32`.
    let futex = unsafe { &*(word as *const std::sync::atomic::AtomicU32).cast::<Futex<Shared>>() };
    futex.wake(n);
}

/// Who holds a robust lock: a process or thread id and the moment it started (`/proc`'s
/// `starttime`, in clock ticks since boot), so that an id the kernel gave again to a new
/// process or thread is not mistaken for the holder. A `start` of 0 means "unknown" (no
/// `/proc`): the check then falls back to the id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) id: u32,
    pub(crate) start: u64,
}

/// The fields of a `/proc/.../stat` line from field 3 (the state) on. The command name
/// (field 2) may hold spaces and parentheses; the fields after it follow its last ')'.
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat.rsplit_once(')')?.1.split_whitespace())
}

/// The `starttime` field (22) of a `/proc/.../stat` line, and whether its state (field 3)
/// says the task has ended (zombie or dead).
fn parse_stat(stat: &str) -> Option<(u64, bool)> {
    let mut fields = stat_fields(stat)?;
    let ended = fields.next()?.starts_with(['Z', 'X']);
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, ended))
}

fn own_start(path: &str) -> u64 {
    std::fs::read_to_string(path).ok().and_then(|stat| parse_stat(&stat)).map_or(0, |(s, _)| s)
}

/// This process's [`Identity`]. The start time is read once per process (a forked child
/// has its own pid, so it reads its own) and kept even when it could not be read (0): an
/// identity must not change while the process may hold a lock under it. The cache is two
/// atomics, never a lock, so a child forked at any moment finds it usable.
pub(crate) fn process_identity() -> Identity {
    use std::sync::atomic::{AtomicU64, Ordering};
    /// The pid (high 22 bits: `pid_max` is at most 2^22) and the start time (low 42
    /// bits: 2^42 ticks is over a century) in one word, so that racing threads agree.
    static CACHED: AtomicU64 = AtomicU64::new(0);
    const START_BITS: u32 = 42;
    let pid = getpid().0;
    let unpack = |packed: u64| Identity { id: pid as u32, start: packed & ((1 << START_BITS) - 1) };
    let cached = CACHED.load(Ordering::Acquire);
    if cached >> START_BITS == pid as u64 {
        return unpack(cached);
    }
    let start = own_start("/proc/self/stat");
    let start = if start >> START_BITS == 0 { start } else { 0 };
    let packed = (pid as u64) << START_BITS | start;
    // The first thread of this process to publish wins; the others use its value.
    match CACHED.compare_exchange(cached, packed, Ordering::AcqRel, Ordering::Acquire) {
        Err(theirs) if theirs >> START_BITS == pid as u64 => unpack(theirs),
        _ => unpack(packed),
    }
}

/// The calling thread's [`Identity`] (its kernel thread id and start time), read once per
/// thread and kept, like [`process_identity`], even when the start time could not be
/// read; a forked child's thread (a new tid in a new pid) reads its own.
pub(crate) fn thread_identity() -> Identity {
    use std::cell::Cell;
    thread_local! {
        /// (pid, tid, start) as read in the process `pid`.
        static ME: Cell<(i32, i32, u64)> = const { Cell::new((0, 0, 0)) };
    }
    let pid = getpid().0;
    let (of, tid, start) = ME.with(Cell::get);
    if of == pid {
        return Identity { id: tid as u32, start };
    }
    let tid = gettid();
    let start = own_start("/proc/thread-self/stat");
    ME.with(|me| me.set((pid, tid, start)));
    Identity { id: tid as u32, start }
}

/// Whether the process (or thread) `holder` still runs. Fails closed: only a definite
/// answer that it is gone — no such id, a zombie, or that id now belongs to a task that
/// started at another time — counts as dead; a check that cannot tell (no `/proc`, out
/// of fds, `hidepid`, no permission) says it runs.
pub(crate) fn alive(holder: Identity) -> bool {
    let Ok(id) = i32::try_from(holder.id) else { return true };
    if id <= 0 {
        return true;
    }
    let gone = || {
        // SAFETY: kill with signal 0 only checks for existence.
        let result = unsafe { libc::kill(id, 0) };
        result == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    };
    if gone() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Ok(stat) => match parse_stat(&stat) {
            Some((_, true)) => false,
            Some((start, false)) => holder.start == 0 || start == holder.start,
            None => true,
        },
        // It may have ended since `kill` found it; ask again rather than trust a missing
        // directory (hidepid hides other users' processes the same way).
        Err(e) if e.kind() == io::ErrorKind::NotFound => !gone(),
        Err(_) => true,
    }
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

/// `sched_yield()`: lets another runnable thread of this CPU run first.
pub(crate) fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

/// How many CPUs the calling thread may run on (its affinity mask; 1 if unknown). One
/// system call — unlike `std::thread::available_parallelism`, which also reads cgroup files.
pub(crate) fn cpus_allowed() -> usize {
    // SAFETY: cpu_set_t is plain data that sched_getaffinity fills; CPU_COUNT reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set).max(1) as usize
    }
}

/// The name of signal `number` (`SIGKILL`), or `signal N` for one nix does not know.
pub(crate) fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map_or_else(|_| format!("signal {number}"), |signal| signal.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identities robust locks record: stable across calls, naming this process and
    /// thread, and a reused id with another start time is not "alive" as the holder.
    #[test]
    fn identities_are_stable_and_tell_a_reused_id_apart() {
        let me = process_identity();
        assert_eq!(me, process_identity());
        assert_eq!(me.id, std::process::id());
        assert_ne!(me.start, 0, "/proc/self/stat has a start time");
        assert!(alive(me));
        assert!(!alive(Identity { start: me.start + 1, ..me }), "another start time: not it");
        let thread = thread_identity();
        assert_eq!(thread, thread_identity());
        let other = std::thread::spawn(thread_identity).join().unwrap();
        assert_ne!(other.id, thread.id);
        assert!(!alive(other), "the thread has ended");
        assert!(alive(Identity { id: 1, start: 0 }), "an unknown start goes by the id alone");
    }
}
