//! The spawn start method: CPython's `popen_spawn_posix.Popen` and `spawn.spawn_main`.
//!
//! The parent runs this very program again (`/proc/self/exe`, with the parent's arguments)
//! with the environment variable `PYCONC_MULTIPROCESSING_FORK=spawn:FD`, where FD is one
//! end of a Unix socket pair left open across `exec`. It writes one frame to the socket: a
//! [`Payload`] (who the child is, and the target as a [`Portable`]), with the fds of the
//! objects in the target's arguments attached (`SCM_RIGHTS`, see
//! [`reduction`](crate::reduction)). In the child,
//! [`init()`](crate::init) — the first line of `main` — finds the variable, reads the
//! frame, runs the target and exits; `main` itself never runs in the child.
//!
//! The same variable with `forkserver:FD` makes `init()` become the fork server
//! ([`forkserver`](super::forkserver)).
//!
//! The child is started with `posix_spawn` (`clone(CLONE_VM | CLONE_VFORK)` in glibc),
//! not `fork`: no page table of the parent is copied, so starting a child costs the same
//! from a parent holding gigabytes. The socket reaches the child through the spawn's file
//! actions (a `dup2` that clears close-on-exec); a daemonic child arms its parent-death
//! signal itself, first thing in `init()` (the marker ends in `:daemon`), and then checks
//! that its parent is still the process that made the socket.

use std::ffi::CString;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{ChildSpec, Launched, Payload, Portable, Waiter};
use crate::Error;
use crate::codec::{self, MAX_FRAME};
use crate::error::MISSING_INIT;
use crate::process::bootstrap::{self, Ending};
use crate::process::children;
use crate::start_method::set_start_method_force;
use crate::sys::{self, Pid};

/// The environment variable that tells `init()` what this process is for.
pub(crate) const MARKER: &str = "PYCONC_MULTIPROCESSING_FORK";

/// What a process started by spawn or forkserver is for.
#[derive(Debug)]
pub(crate) enum ChildRole {
    /// Run the target read from this socket, then exit.
    Spawn(OwnedFd),
    /// Serve fork requests on this socket.
    ForkServer(OwnedFd),
}

/// Whether `init()` has looked at the marker in this process (or in the process it was
/// forked from). The environment is left as it is: changing it is unsound once threads
/// run, and `init()` cannot know that none do.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Whether this process was started by spawn and has not reached `init()` yet: it must
/// not start children (CPython's `_check_not_importing_main`).
pub(crate) fn bootstrapping() -> bool {
    !TAKEN.load(Ordering::Acquire) && marked_role().is_some()
}

/// Makes the [`ChildRole`] the marker names from its fd.
type MakeRole = fn(OwnedFd) -> ChildRole;

/// What the marker asks this process to be, its fd, and whether it is daemonic — if the
/// marker is genuine.
///
/// The marker comes from the environment and names an inherited fd: both are whatever
/// the process that ran this program chose. A forged one must not make `init()` read a
/// payload and run code at an offset it names, so the marker counts only if:
/// - the process does not run in secure-execution mode (a set-user-ID or file-capability
///   program, run by a less privileged user);
/// - the fd is an `AF_UNIX` socket whose peer, the process that made the socket pair, is
///   this process's parent, running as this process's user (`SO_PEERCRED`).
///
/// These checks only look at the fd. Anything else — no marker, a malformed one, an fd
/// that is closed, a pipe, another process's socket — and `main` runs as a normal program.
fn marked_role() -> Option<(MakeRole, RawFd)> {
    let (role, fd, _) = parse_marker()?;
    from_parent(fd).then_some((role, fd))
}

/// Whether `fd` is a Unix socket that this process's parent made, under this user.
fn from_parent(fd: RawFd) -> bool {
    sys::is_unix_socket_from(fd, sys::getppid(), sys::geteuid())
}

/// The marker's parts (`spawn:FD`, `forkserver:FD`, either with `:daemon:PARENT_PID` for a
/// daemonic child), unchecked; nothing outside secure-execution mode.
fn parse_marker() -> Option<(MakeRole, RawFd, Option<i32>)> {
    if sys::secure_execution() {
        return None;
    }
    let value = std::env::var_os(MARKER)?;
    let mut parts = value.to_str()?.split(':');
    let role: MakeRole = match parts.next()? {
        "spawn" => ChildRole::Spawn,
        "forkserver" => ChildRole::ForkServer,
        _ => return None,
    };
    let fd: RawFd = parts.next()?.parse().ok().filter(|fd| *fd > 2)?;
    let daemon = match parts.next() {
        None => None,
        Some("daemon") => Some(parts.next()?.parse().ok()?),
        Some(_) => return None,
    };
    parts.next().is_none().then_some((role, fd, daemon))
}

/// Takes the role the marker gives, once per process: `Some` in a genuine child of spawn
/// or forkserver (see [`marked_role`] for what counts).
pub(crate) fn take_child_role() -> Option<ChildRole> {
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // A daemonic child dies with its parent. Armed first; a parent that died before that
    // is no longer this process's parent, and the child ends as the signal would have
    // ended it (rather than run `main`).
    let (role, fd, daemon) = parse_marker()?;
    if let Some(parent) = daemon {
        if sys::set_parent_death_signal(libc::SIGKILL).is_err() || sys::getppid().0 != parent {
            sys::exit_now(1);
        }
    }
    if !from_parent(fd) {
        return None;
    }
    // SAFETY: `from_parent` checked that `fd` is an open socket that our parent made and
    // left open for us across exec, for this purpose; nothing else in this process knows
    // its number, and `TAKEN` makes sure it is owned once.
    let fd = unsafe { sys::own_fd(fd) };
    // Programs this process runs later must not inherit it.
    sys::set_cloexec(fd.as_fd()).ok()?;
    Some(role(fd))
}

/// Becomes what the marker said; never returns.
pub(crate) fn run_child_role(role: ChildRole) -> ! {
    match role {
        ChildRole::Spawn(pipe) => run_spawned(pipe),
        ChildRole::ForkServer(socket) => super::forkserver::serve(socket),
    }
}

fn run_spawned(socket: OwnedFd) -> ! {
    match read_payload(&UnixStream::from(socket)) {
        Ok((payload, fds)) => run_payload(payload, fds, Ending::Normal),
        Err(error) => {
            eprintln!("multiprocessing: a spawned child could not read its target: {error}");
            std::process::exit(1);
        }
    }
}

/// Reads the one frame a spawn or forkserver child receives, with the fds of the objects
/// in its arguments, and decodes it.
pub(crate) fn read_payload(from: &UnixStream) -> Result<(Payload, Vec<OwnedFd>), Error> {
    let (bytes, fds) = codec::recv_frame_with_fds(from, MAX_FRAME)?;
    Ok((codec::decode(&bytes)?, fds))
}

/// Runs a decoded payload as this process's target (spawn and forkserver children).
pub(crate) fn run_payload(payload: Payload, fds: Vec<OwnedFd>, ending: Ending) -> ! {
    let Payload { spec, target } = payload;
    if let Some(fd) = spec.tracker.and_then(|i| fds.get(i as usize)) {
        if let Ok(copy) = fd.try_clone() {
            crate::resource_tracker::adopt(copy);
        }
    }
    set_start_method_force(spec.method);
    children::become_child(children::ChildRecords::new(spec));
    bootstrap::run(ending, move || target.run(fds))
}

/// Runs this program again (`/proc/self/exe`, with this process's arguments) with
/// `role` (`spawn` or `forkserver`): `socket` becomes an fd of the child, which the marker
/// names. A daemonic child gets the parent-death signal (armed by its `init()`).
pub(crate) fn spawn_self(role: &str, socket: BorrowedFd<'_>, daemon: bool) -> io::Result<Pid> {
    // The number the socket gets in the child: a close-on-exec copy reserves it here,
    // and the spawn's `dup2` replaces it there with an inheritable one.
    let reserved = sys::dup_cloexec(socket.as_raw_fd())?;
    let as_fd = reserved.as_raw_fd();
    let marker = if daemon {
        format!("{role}:{as_fd}:daemon:{}", sys::getpid().0)
    } else {
        format!("{role}:{as_fd}")
    };
    let c_string = |bytes: Vec<u8>| {
        CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    };
    let mut args = Vec::new();
    for (i, arg) in std::env::args_os().enumerate() {
        args.push(c_string(arg.into_vec())?);
        if i == 0 && args[0].as_bytes().is_empty() {
            args[0] = c"pyconc-child".to_owned();
        }
    }
    if args.is_empty() {
        args.push(c"pyconc-child".to_owned());
    }
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key != MARKER {
            let mut entry = key.into_vec();
            entry.push(b'=');
            entry.extend(value.into_vec());
            // An entry with a NUL cannot be passed on (std's `Command` refuses it too).
            env.extend(c_string(entry).ok());
        }
    }
    env.push(c_string(format!("{MARKER}={marker}").into_bytes())?);
    sys::spawn_program(c"/proc/self/exe", &args, &env, socket.as_raw_fd(), as_fd)
}

/// Starts this program again as a child that runs `target`; `fds` travel with it.
pub(crate) fn launch(spec: ChildSpec, target: Portable, fds: &[RawFd]) -> Result<Launched, Error> {
    if !super::init_called() {
        return Err(Error::runtime(MISSING_INIT));
    }
    let daemon = spec.daemon;
    // Serialize first: an argument that cannot be serialized starts nothing.
    let payload = super::encode_payload(spec, target)?;
    let (ours, theirs) = UnixStream::pair()?;
    let pid = spawn_self("spawn", theirs.as_fd(), daemon)?;
    drop(theirs);
    let pidfd = match sys::pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(error) => {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait(pid);
            return Err(error.into());
        }
    };
    match codec::send_frame_with_fds(&ours, &payload, fds) {
        // A child that died before reading reports itself through its exit code.
        Err(error) if error.kind() != ErrorKind::BrokenPipe => {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait(pid);
            Err(error.into())
        }
        _ => Ok(Launched { pid, waiter: Some(Waiter::Pidfd(pidfd)), records: None }),
    }
}
