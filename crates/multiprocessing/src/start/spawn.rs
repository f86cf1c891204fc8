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
//! Between `fork` and `exec` (std's `Command` with `pre_exec`) the child only clears
//! close-on-exec on the socket and, for a daemonic child, arms the parent-death signal:
//! async-signal-safe system calls.

use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::{ChildSpec, Launched, Payload, Portable, Waiter};
use crate::bootstrap::{self, Ending};
use crate::codec::{self, MAX_FRAME};
use crate::context::{self, set_start_method_force};
use crate::error::MISSING_INIT;
use crate::sys::{self, Pid};
use crate::{Error, children};

/// The environment variable that tells `init()` what this process is for.
pub(crate) const MARKER: &str = "PYCONC_MULTIPROCESSING_FORK";

/// What a process started by spawn or forkserver is for.
#[derive(Debug)]
pub(crate) enum ChildRole {
    /// Run the target read from this pipe, then exit.
    Spawn(OwnedFd),
    /// Serve fork requests on this socket.
    ForkServer(OwnedFd),
}

/// Whether this process was started by spawn and has not reached `init()` yet: it must
/// not start children (CPython's `_check_not_importing_main`).
pub(crate) fn bootstrapping() -> bool {
    std::env::var_os(MARKER).is_some()
}

/// Reads and removes the marker: `Some` in a child started by spawn or forkserver.
pub(crate) fn take_child_role() -> Option<ChildRole> {
    let value = std::env::var_os(MARKER)?;
    // SAFETY: `init()` runs as the first line of `main` (or before it), before the program
    // starts threads that could read the environment concurrently.
    unsafe { std::env::remove_var(MARKER) };
    let value = value.to_string_lossy().into_owned();
    let (role, fd) = value.split_once(':')?;
    let fd: RawFd = fd.parse().ok().filter(|fd| *fd > 2)?;
    // The fd must be open here (the parent cleared its close-on-exec flag).
    sys::clear_cloexec(fd).ok()?;
    // SAFETY: the parent handed this fd to us for this purpose; nothing else in this
    // process knows its number.
    let fd = unsafe { sys::own_fd(fd) };
    match role {
        "spawn" => Some(ChildRole::Spawn(fd)),
        "forkserver" => Some(ChildRole::ForkServer(fd)),
        _ => None,
    }
}

/// Becomes what the marker said; never returns.
pub(crate) fn run_child_role(role: ChildRole) -> ! {
    match role {
        ChildRole::Spawn(pipe) => run_spawned(pipe),
        ChildRole::ForkServer(socket) => super::forkserver::serve(socket),
    }
}

fn run_spawned(socket: OwnedFd) -> ! {
    match read_payload(socket) {
        Ok((payload, fds)) => run_payload(payload, fds, Ending::Normal),
        Err(error) => {
            eprintln!("multiprocessing: a spawned child could not read its target: {error}");
            std::process::exit(1);
        }
    }
}

/// Reads the one frame a spawn or forkserver child receives, with the fds of the objects
/// in its arguments, and decodes it.
pub(crate) fn read_payload(from: OwnedFd) -> Result<(Payload, Vec<OwnedFd>), Error> {
    let (bytes, fds) = codec::recv_frame_with_fds(&UnixStream::from(from), MAX_FRAME)?;
    Ok((codec::decode(&bytes)?, fds))
}

/// Runs a decoded payload as this process's target (spawn and forkserver children).
pub(crate) fn run_payload(payload: Payload, fds: Vec<OwnedFd>, ending: Ending) -> ! {
    let Payload { spec, target } = payload;
    set_start_method_force(spec.method);
    children::become_child(&mut children::state(), &spec);
    bootstrap::run(ending, move || target.run(fds))
}

/// The command that runs this program again with `role` (`spawn:FD` or `forkserver:FD`);
/// `fd` is left open across `exec`, and a daemonic child gets the parent-death signal.
pub(crate) fn command(role: &str, fd: RawFd, daemon: bool) -> Command {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| OsString::from("pyconc-child"));
    let mut command = Command::new("/proc/self/exe");
    command.arg0(program).args(args).env(MARKER, format!("{role}:{fd}")).stdin(Stdio::null());
    let parent = sys::getpid();
    let hook = move || -> io::Result<()> {
        sys::clear_cloexec(fd)?;
        if daemon {
            sys::set_parent_death_signal(libc::SIGKILL)?;
            if sys::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec; it only makes the
    // async-signal-safe system calls fcntl, prctl and getppid, and allocates nothing
    // (`from_raw_os_error` builds an error without allocating).
    unsafe { command.pre_exec(hook) };
    command
}

/// Starts this program again as a child that runs `target`; `fds` travel with it.
pub(crate) fn launch(spec: ChildSpec, target: Portable, fds: &[RawFd]) -> Result<Launched, Error> {
    if !context::init_called() {
        return Err(Error::runtime(MISSING_INIT));
    }
    let daemon = spec.daemon;
    // Serialize first: an argument that cannot be serialized starts nothing.
    let payload = codec::encode(&Payload { spec, target })?;
    let (ours, theirs) = UnixStream::pair()?;
    let child = command("spawn", theirs.as_raw_fd(), daemon).spawn()?;
    drop(theirs);
    let pid = Pid(child.id() as i32);
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
        _ => Ok(Launched { pid, waiter: Waiter::Pidfd(pidfd) }),
    }
}
