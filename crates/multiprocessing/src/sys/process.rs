//! Processes and threads: ids, `fork`, waiting, signals, and who a process is (its start
//! time, for the robust locks' liveness checks).

use std::io::{self};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[allow(unused_imports, reason = "each area uses some of them")]
use super::*;

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

    /// The raw `wait` status of this ending (what [`from_raw`](ExitStatus::from_raw)
    /// decodes).
    pub(crate) fn to_raw(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => (code & 0xff) << 8,
            ExitStatus::Signaled(signal) => signal & 0x7f,
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

/// The cached pid (0: not read yet in this process).
static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// `/proc/self/task`, kept open for [`thread_count`]: the fd, or -1.
static TASK_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Forgets this module's per-process caches in every forked child, whoever forks (one of
/// `pyconc_core::fork`'s hooks). The caches are atomics, never locks, so no fork can
/// leave one locked.
struct ForgetCaches;

impl pyconc_core::fork::AtFork for ForgetCaches {
    fn prepare(&'static self) {
        use std::sync::atomic::Ordering;
        if TICK_NS.load(Ordering::Relaxed) == 0 {
            // SAFETY: sysconf has no preconditions.
            let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            let tick =
                u64::try_from(per_second).ok().filter(|&t| t > 0).map_or(0, |t| 1_000_000_000 / t);
            TICK_NS.store(tick, Ordering::Relaxed);
        }
        FORKED_AT.store(boottime_ns().unwrap_or(0), Ordering::Relaxed);
    }
    fn parent(&'static self) {}
    fn child(&'static self) {
        use std::sync::atomic::Ordering;
        // SAFETY: getpid has no preconditions and cannot fail.
        let pid = unsafe { libc::getpid() };
        PID.store(pid, Ordering::Relaxed);
        // The kernel stamps a new process with `CLOCK_BOOTTIME` during the fork, and
        // `/proc/PID/stat` shows that stamp in clock ticks: between the parent's reading
        // before the fork and this one after it. When both fall in the same tick, that
        // tick is the start time, with no `/proc` read (an open of procfs is the dearest
        // system call a pool worker made at its start). Otherwise it is read on first use.
        let (before, tick) = (FORKED_AT.load(Ordering::Relaxed), TICK_NS.load(Ordering::Relaxed));
        if let (Some(after), true) = (boottime_ns(), before > 0 && tick > 0) {
            let start = before / tick;
            if after / tick == start && start >> START_BITS == 0 {
                IDENTITY.store((pid as u64) << START_BITS | start, Ordering::Release);
            }
        }
        let task = TASK_FD.swap(-1, Ordering::Relaxed);
        if task >= 0 {
            // SAFETY: the child's copy of the parent's `/proc/PID/task` fd, owned by this
            // module alone; the child runs one thread.
            unsafe { libc::close(task) };
        }
    }
}

/// `CLOCK_BOOTTIME` in nanoseconds; async-signal-safe (the vDSO).
fn boottime_ns() -> Option<u64> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    Some(u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?)
}

/// `CLOCK_BOOTTIME` just before this process's last fork (ns; 0: unknown), and the length
/// of a clock tick (`sysconf(_SC_CLK_TCK)`, in ns): a forked child derives its start time
/// from them (see [`ForgetCaches`]).
static FORKED_AT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static TICK_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers [`ForgetCaches`], once.
fn register_fork_handler() {
    static HANDLER: pyconc_core::fork::Registration = pyconc_core::fork::Registration::new();
    HANDLER.ensure(0, &ForgetCaches);
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

/// Whether the calling thread is the process's first thread, whose end ends the process.
/// Async-signal-safe (two system calls).
pub(crate) fn on_main_thread() -> bool {
    pyconc_core::sys::gettid() == pyconc_core::sys::getpid()
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

/// For tests: runs `check` in a forked child, which exits with what it returns, and
/// asserts that it returned 0 (each other code names what the child found wrong).
#[cfg(test)]
pub(crate) fn assert_in_forked_child(check: impl FnOnce() -> i32) {
    // SAFETY: the child runs the test's check, which touches only the test's own state,
    // and ends in `_exit`.
    match unsafe { fork() }.unwrap() {
        Fork::Child => exit_now(check()),
        Fork::Parent(pid) => assert_eq!(wait(pid).unwrap(), ExitStatus::Exited(0)),
    }
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

/// A pidfd of this process's parent `parent`, or `None` if `parent` no longer is the
/// parent (it ended: the process was handed to a reaper) or cannot be opened. The pid is
/// checked after the open: while it is still the parent's pid, the parent (or its zombie)
/// holds it, so the pidfd cannot name a process that reused it.
pub(crate) fn parent_pidfd(parent: Pid) -> Option<OwnedFd> {
    let fd = pidfd_open(parent).ok()?;
    (getppid() == parent).then_some(fd)
}

/// A pidfd of this process's child `pid`, opened after the child started, or `None` if
/// `pid` no longer is a child of ours to wait for: someone else reaped it (a `wait` of
/// the user's, or `SIGCHLD` ignored), so the pid may name another process by now. While
/// we have not reaped our child its pid stays its own, and `waitid(P_PIDFD, WNOWAIT)`
/// says whether the pidfd names a child of ours, without reaping it.
pub(crate) fn child_pidfd(pid: Pid) -> Option<OwnedFd> {
    let fd = pidfd_open(pid).ok()?;
    // SAFETY: an all-zero `siginfo_t` is a valid value of the plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid out-pointer; WNOHANG never blocks and WNOWAIT reaps
    // nothing.
    let ours =
        unsafe { libc::waitid(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t, &mut info, flags) };
    (ours == 0).then_some(fd)
}

/// Waits until our child `pid` has ended, without reaping it (`waitid(P_PID, WEXITED |
/// WNOWAIT)`): any number of threads may wait so, and one of them reaps it afterwards
/// with [`try_wait`]. `ECHILD` if it is not (or no longer) a child of ours to wait for.
pub(crate) fn wait_ended(pid: Pid) -> io::Result<()> {
    loop {
        // SAFETY: an all-zero `siginfo_t` is a valid value of the plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child unreaped.
        let result = unsafe {
            libc::waitid(libc::P_PID, pid.0 as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if result == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
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

/// Points fd 0 at `/dev/null`, as CPython's child bootstrap replaces `sys.stdin`: the
/// `/dev/null` the parent kept (`fstat` and `dup2`), or one opened here (three system
/// calls). No allocation (every child runs this first).
pub(crate) fn stdin_from_dev_null() -> io::Result<()> {
    let null = DevNull::open()?;
    // SAFETY: both fds are open; dup2 replaces fd 0 atomically (and leaves it inheritable,
    // as a stdin is).
    check(unsafe { libc::dup2(null.as_raw_fd(), 0) }).map(drop)
}

/// Whether the process runs in secure-execution mode (`getauxval(AT_SECURE)`: a set-user-ID
/// or set-group-ID program, or one with file capabilities), where its environment and
/// inherited fds come from a less privileged user.
pub(crate) fn secure_execution() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; it has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// This process's effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// How many threads this process runs, as CPython 3.12 counts them for its fork warning:
/// procfs gives `/proc/self/task` a link count of 2 plus the number of threads (the
/// thread count of `/proc/self/stat`, without formatting the 50 other fields). The
/// directory stays open (per process: `/proc/self` names the process that opened it, and
/// the fork handler closes a child's copy), so a check costs one `fstat`. No lock: a child
/// forked while another thread checks finds it free. 1 when it cannot tell.
pub(crate) fn thread_count() -> usize {
    use std::sync::atomic::Ordering;
    register_fork_handler();
    let mut fd = TASK_FD.load(Ordering::Acquire);
    if fd < 0 {
        // SAFETY: a NUL-terminated path and plain flags; returns a new fd or -1.
        let opened = unsafe {
            libc::open(
                c"/proc/self/task".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if opened < 0 {
            return 1;
        }
        fd = match TASK_FD.compare_exchange(-1, opened, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => opened,
            Err(theirs) => {
                // SAFETY: `opened` is ours alone; another thread installed its own fd.
                unsafe { libc::close(opened) };
                theirs
            }
        };
    }
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid out-pointer; the fd stays open (only the fork handler
    // closes it, in a child with no other thread).
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_nlink < 3 {
        return 1;
    }
    usize::try_from(stat.st_nlink - 2).unwrap_or(1)
}

/// Holds SIGINT back (`true`: blocked, so a Ctrl-C in a terminal reaches the program and
/// its children, not the fork server) or lets it through with its default action, as
/// CPython's fork server ignores it and restores it in each child. Blocked rather than
/// ignored: a forked child inherits the mask, and Linux keeps a blocked signal pending even
/// where it would be ignored, so a SIGINT sent to a child before it restored the default
/// is delivered then instead of lost. Async-signal-safe.
pub(crate) fn hold_interrupts(hold: bool) {
    // SAFETY: builds a signal set on the stack, then changes the calling thread's mask
    // (the fork server and its fresh children are single-threaded) or installs SIG_DFL,
    // which runs no code of ours; all three calls are async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        if hold {
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        } else {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
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

/// Reads into a buffer on the stack (an open, one or two reads, a close — every pool
/// worker and ring user reads it once): `std::fs::read_to_string` would `statx` the file
/// and read it in growing pieces, procfs files having no size.
fn own_start(path: &std::ffi::CStr) -> u64 {
    // SAFETY: a NUL-terminated path and plain flags; returns a new fd or -1.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    // SAFETY: the fd was just opened and is ours alone; it closes when this drops.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    // A stat line is a few hundred bytes (the command name is at most 64).
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: reads into the unfilled rest of `buf`, from an fd this function owns.
        let n = unsafe {
            libc::read(file.as_raw_fd(), buf[len..].as_mut_ptr().cast(), buf.len() - len)
        };
        match usize::try_from(n) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return 0,
        }
    }
    if len == buf.len() {
        // Longer than any stat line should be: read it whole, the slow way.
        let path = path.to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(path).unwrap_or_default();
        return parse_stat(&stat).map_or(0, |(s, _)| s);
    }
    // (A command name is bytes, not always UTF-8; the fields after it are ASCII.)
    parse_stat(&String::from_utf8_lossy(&buf[..len])).map_or(0, |(s, _)| s)
}

/// [`process_identity`]'s cache: the pid (high 22 bits: `pid_max` is at most 2^22) and
/// the start time (low 42 bits: 2^42 ticks is over a century) in one word, so that racing
/// threads agree. A forked child's is set by [`ForgetCaches`] when it can be.
static IDENTITY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const START_BITS: u32 = 42;

/// This process's [`Identity`]. The start time is read once per process (a forked child
/// has its own pid, so it reads its own, unless it derived it at the fork: see
/// [`ForgetCaches`]) and kept even when it could not be read (0): an identity must not
/// change while the process may hold a lock under it. The cache is one atomic word, never
/// a lock, so a child forked at any moment finds it usable.
pub(crate) fn process_identity() -> Identity {
    use std::sync::atomic::Ordering;
    let pid = getpid().0;
    let unpack = |packed: u64| Identity { id: pid as u32, start: packed & ((1 << START_BITS) - 1) };
    let cached = IDENTITY.load(Ordering::Acquire);
    if cached >> START_BITS == pid as u64 {
        return unpack(cached);
    }
    let start = own_start(c"/proc/self/stat");
    let start = if start >> START_BITS == 0 { start } else { 0 };
    let packed = (pid as u64) << START_BITS | start;
    // The first thread of this process to publish wins; the others use its value.
    match IDENTITY.compare_exchange(cached, packed, Ordering::AcqRel, Ordering::Acquire) {
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
        static ME: Cell<(i32, u32, u64)> = const { Cell::new((0, 0, 0)) };
    }
    let pid = getpid().0;
    let (of, tid, start) = ME.with(Cell::get);
    if of == pid {
        return Identity { id: tid, start };
    }
    // A kernel thread id is a positive `pid_t`: it fits.
    let tid = pyconc_core::sys::gettid() as u32;
    let start = own_start(c"/proc/thread-self/stat");
    ME.with(|me| me.set((pid, tid, start)));
    Identity { id: tid, start }
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

/// Runs `program` with `args` (`args[0]` is the child's `argv[0]`) and the environment
/// `env` through `posix_spawn`, which glibc implements with `clone(CLONE_VM |
/// CLONE_VFORK)`: unlike `fork`, it copies no page tables, so what it costs does not grow
/// with this process's memory. In the child, `keep` is duplicated onto fd `as_fd` without
/// close-on-exec (`as_fd` must be an fd of this process that is close-on-exec, or
/// unused), stdin is `/dev/null`, the signal mask is empty and SIGPIPE has its default
/// action (as std's `Command` leaves them).
pub(crate) fn spawn_program(
    program: &std::ffi::CStr,
    args: &[std::ffi::CString],
    env: &[std::ffi::CString],
    keep: RawFd,
    as_fd: RawFd,
) -> io::Result<Pid> {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
    let nix_error = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    let mut actions = PosixSpawnFileActions::init().map_err(nix_error)?;
    actions.add_dup2(keep, as_fd).map_err(nix_error)?;
    actions
        .add_open(0, c"/dev/null", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty())
        .map_err(nix_error)?;
    let mut attr = PosixSpawnAttr::init().map_err(nix_error)?;
    attr.set_sigmask(&nix::sys::signal::SigSet::empty()).map_err(nix_error)?;
    let mut default = nix::sys::signal::SigSet::empty();
    default.add(nix::sys::signal::Signal::SIGPIPE);
    attr.set_sigdefault(&default).map_err(nix_error)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )
    .map_err(nix_error)?;
    let pid = posix_spawn(program, &actions, &attr, args, env).map_err(nix_error)?;
    Ok(Pid(pid.as_raw()))
}

/// Ignores SIGINT in this process (a manager's server, as CPython's `_run_server`).
pub(crate) fn ignore_interrupts() {
    // SAFETY: installs SIG_IGN, which runs no code of ours.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
}

/// Makes the calling process a helper that outlives its program on purpose (the resource
/// tracker): a session of its own (`setsid`), so that a signal to the program's process
/// group or a terminal hang-up does not reach it, with SIGINT and SIGTERM ignored (as
/// CPython's tracker ignores them). Async-signal-safe.
pub(crate) fn detach_helper() {
    // SAFETY: setsid and signal(SIG_IGN) take no pointers and run no code of ours; both
    // are async-signal-safe.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forked child knows its start time from the fork's two clock readings, without
    /// reading `/proc` — in all but the forks whose readings straddle a clock tick (about
    /// one in a hundred) — and it is the one `/proc/self/stat` shows, in every fork. Each
    /// child answers with its exit code.
    #[test]
    fn a_forked_child_knows_its_start_time_as_proc_shows_it() {
        use std::sync::atomic::Ordering;
        getpid(); // registers the fork hook that reads the clock
        let (mut derived, rounds) = (0, 40);
        for _ in 0..rounds {
            // SAFETY: the child reads its own state and ends in `_exit`.
            match unsafe { fork() }.unwrap() {
                Fork::Child => {
                    let known = IDENTITY.load(Ordering::Acquire) >> START_BITS == getpid().0 as u64;
                    let same = process_identity().start == own_start(c"/proc/self/stat");
                    exit_now(match (same, known) {
                        (false, _) => 1,
                        (true, true) => 2,
                        (true, false) => 3,
                    });
                }
                Fork::Parent(pid) => match wait(pid).unwrap() {
                    ExitStatus::Exited(2) => derived += 1,
                    ExitStatus::Exited(3) => {}
                    other => panic!("the derived start time is not /proc's: {other:?}"),
                },
            }
        }
        assert!(derived >= rounds / 2, "derived in only {derived} of {rounds} forks");
    }

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
