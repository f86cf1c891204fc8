//! The forkserver start method: CPython's `forkserver.py` and `popen_forkserver.Popen`.
//!
//! On first use the parent spawns a fork server — this program run again, whose `init()`
//! serves instead of running `main`. It has a single thread, so forking it is safe, and
//! it is cheap to fork because it holds nothing of the parent. It is connected to the
//! parent by a Unix socket pair (the *control* socket); it lives until the parent closes
//! its end (the parent exits or dies).
//!
//! To start a child, the parent makes a socket pair per child and sends one end to the
//! server over the control socket (`SCM_RIGHTS`, with a one-byte message); then it
//! writes the child's [`Payload`] frame into its own end, with the fds of the objects in
//! the target's arguments attached. The server hands that socket to a child it forked
//! ahead (the *spare*, waiting on a socket of its own), or forks one on demand if it has
//! none; the child reads its payload from the passed socket and runs it; the server
//! writes the child's pid into that socket, and — when the child's pidfd says it ended —
//! its raw wait status. The parent's end of the pair is the sentinel: readable once the
//! status came. After handing a spare out, the server forks the next one, while the
//! child runs: a start waits for two messages, not for a `fork`. (CPython forks on each
//! request.) A spare holds nothing of the parent's: it is a copy of the server, and it
//! ends when the server does (its socket's end of stream); one killed before use is
//! reaped and replaced.
//!
//! Daemonic children get the parent-death signal from the server; the server exits when
//! the parent dies, so they die with the parent.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use pyconc_core::fork::{ForkMutex, ForkMutexGuard};
use std::time::Duration;

use super::{ChildSpec, Launched, Portable, Waiter};
use crate::Error;
use crate::codec;
use crate::error::MISSING_INIT;
use crate::process::bootstrap::Ending;
use crate::sys::{self, Fork, Pid};

/// The parent's connection to its fork server.
#[derive(Debug)]
pub(crate) struct Server {
    control: Mutex<UnixStream>,
    /// The control socket's fd number, readable without the mutex (which a forked child
    /// may find locked forever, by a parent thread that does not exist there).
    control_fd: RawFd,
    pid: Pid,
    pidfd: OwnedFd,
}

impl Server {
    /// In a forked child of the parent: the server belongs to the parent. The control
    /// socket is replaced by `/dev/null` (not closed: other copies of this `Server` may
    /// still name the fd), so the server sees the end of the parent alone — whether or
    /// not a parent thread held the control mutex when it forked.
    pub(crate) fn forget_in_child(&self) {
        let _ = sys::replace_with_dev_null(self.control_fd);
    }

    fn alive(&self) -> bool {
        !sys::wait_readable(self.pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
    }
}

/// The fork server of this process. Held across `fork()` (order 30); a forked child lets
/// go of its parent's server.
static SERVER: ForkMutex<Option<Arc<Server>>> = ForkMutex::new(None, 30, |slot| {
    if let Some(server) = slot.take() {
        server.forget_in_child();
    }
});

fn server_slot() -> ForkMutexGuard<Option<Arc<Server>>> {
    SERVER.lock()
}

/// The running fork server, started (or restarted, if it died) as needed.
fn server() -> Result<Arc<Server>, Error> {
    let mut slot = server_slot();
    if let Some(server) = &*slot {
        if server.alive() {
            return Ok(Arc::clone(server));
        }
        let _ = sys::try_wait(server.pid);
    }
    let (ours, theirs) = UnixStream::pair()?;
    let pid = super::spawn::spawn_self("forkserver", theirs.as_fd(), false)?;
    drop(theirs);
    let pidfd = sys::pidfd_open(pid)?;
    let control_fd = ours.as_raw_fd();
    let server = Arc::new(Server { control: Mutex::new(ours), control_fd, pid, pidfd });
    *slot = Some(Arc::clone(&server));
    Ok(server)
}

/// Asks the fork server for a child that runs `target`.
pub(crate) fn launch(spec: ChildSpec, target: Portable, fds: &[RawFd]) -> Result<Launched, Error> {
    if !super::init_called() {
        return Err(Error::runtime(MISSING_INIT));
    }
    let payload = super::encode_payload(spec, target)?;
    let server = server()?;
    let (ours, theirs) = UnixStream::pair()?;
    {
        let control = pyconc_core::sync::lock(&server.control);
        sys::send_with_fds(control.as_fd(), b"F", &[theirs.as_raw_fd()])?;
    }
    drop(theirs);
    codec::send_frame_with_fds(&ours, &payload, fds)?;
    let mut pid = [0u8; 4];
    (&ours).read_exact(&mut pid).map_err(|e| {
        io::Error::new(e.kind(), format!("the fork server did not start the child: {e}"))
    })?;
    let pid = i32::from_ne_bytes(pid);
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(-pid).into());
    }
    ours.set_nonblocking(true)?;
    Ok(Launched { pid: Pid(pid), waiter: Waiter::Server(ours) })
}

/// A child of the server, as the server tracks it.
struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    status: UnixStream,
}

/// A child the server forked ahead of the next request: it waits on `socket` for the
/// socket of its request, so that starting a child costs the parent a message to the
/// server and its answer, not a `fork` (which then happens while the child runs).
struct Spare {
    pid: Pid,
    pidfd: OwnedFd,
    socket: UnixStream,
}

/// Forks a spare; `None` if that fails (the next request then forks on demand).
fn fork_spare(control: &UnixStream, children: &mut Vec<Child>) -> Option<Spare> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    // SAFETY: the server is single-threaded, so the child may run any code.
    match unsafe { sys::fork() } {
        Ok(Fork::Child) => {
            // What the server holds belongs to it: the control socket (so that the
            // server alone sees the parent end), the other children's sockets and pidfds.
            // SAFETY: this child never returns into the frames that own `control` (it
            // ends in `run_child` or `exit_now`, which run no destructors), so its fd is
            // closed once, here, and not used again.
            unsafe { libc::close(control.as_raw_fd()) };
            children.clear();
            drop(ours);
            let mut byte = [0u8; 1];
            match sys::recv_with_fds(theirs.as_fd(), &mut byte, 1) {
                Ok((1, mut fds)) => match fds.pop() {
                    Some(status) => run_child(UnixStream::from(status)),
                    None => sys::exit_now(1),
                },
                // The server ended (end of stream) or failed: nothing will be asked.
                _ => sys::exit_now(0),
            }
        }
        Ok(Fork::Parent(pid)) => match sys::pidfd_open(pid) {
            Ok(pidfd) => Some(Spare { pid, pidfd, socket: ours }),
            Err(_) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::wait(pid);
                None
            }
        },
        Err(_) => None,
    }
}

/// The raw wait status the server reports for a child it reaped.
fn wait_status(pid: Pid) -> i32 {
    match sys::wait(pid) {
        Ok(sys::ExitStatus::Exited(code)) => code << 8,
        Ok(sys::ExitStatus::Signaled(signal)) => signal,
        Err(_) => 255 << 8,
    }
}

/// The fork server's main loop; never returns. Exits when the parent closes the control
/// socket.
pub(crate) fn serve(control: OwnedFd) -> ! {
    sys::hold_interrupts(true);
    let control = UnixStream::from(control);
    let mut children: Vec<Child> = Vec::new();
    let mut spare = fork_spare(&control, &mut children);
    loop {
        let mut fds = vec![control.as_fd()];
        fds.extend(children.iter().map(|c| c.pidfd.as_fd()));
        let spare_index = spare.as_ref().map(|s| {
            fds.push(s.pidfd.as_fd());
            fds.len() - 1
        });
        let ready = sys::wait_any_readable(&fds, None).unwrap_or_default();
        drop(fds);
        if spare_index.is_some_and(|i| ready.contains(&i)) {
            // The spare ended before it was asked for (killed): reap it; the next
            // request forks again.
            if let Some(dead) = spare.take() {
                let _ = sys::wait(dead.pid);
            }
        }
        let mut ended: Vec<usize> =
            ready.iter().filter(|&&i| i > 0 && Some(i) != spare_index).map(|i| i - 1).collect();
        ended.sort_unstable_by(|a, b| b.cmp(a));
        for index in ended {
            let child = children.swap_remove(index);
            let raw = wait_status(child.pid);
            let _ = (&child.status).write_all(&raw.to_ne_bytes());
        }
        if !ready.contains(&0) {
            continue;
        }
        let mut byte = [0u8; 1];
        let (n, mut fds) = match sys::recv_with_fds(control.as_fd(), &mut byte, 1) {
            Ok(received) => received,
            Err(_) => sys::exit_now(0),
        };
        if n == 0 {
            // The parent is gone: so is the server (and the spare, which sees the end of
            // its socket). Daemonic children die with it.
            sys::exit_now(0);
        }
        let Some(status) = fds.pop().map(UnixStream::from) else { continue };
        if let Some(ready) = spare.take() {
            if sys::send_with_fds(ready.socket.as_fd(), b"F", &[status.as_raw_fd()]).is_ok() {
                let _ = (&status).write_all(&ready.pid.0.to_ne_bytes());
                children.push(Child { pid: ready.pid, pidfd: ready.pidfd, status });
                drop(ready.socket);
                spare = fork_spare(&control, &mut children);
                continue;
            }
            // The spare is gone: reap it and fork on demand.
            drop(ready.socket);
            let _ = sys::wait(ready.pid);
        }
        // SAFETY: the server is single-threaded, so the child may run any code.
        match unsafe { sys::fork() } {
            Ok(Fork::Child) => {
                drop(control);
                drop(children);
                run_child(status)
            }
            Ok(Fork::Parent(pid)) => match sys::pidfd_open(pid) {
                Ok(pidfd) => {
                    let _ = (&status).write_all(&pid.0.to_ne_bytes());
                    children.push(Child { pid, pidfd, status });
                }
                Err(error) => {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::wait(pid);
                    let errno = error.raw_os_error().unwrap_or(libc::EIO);
                    let _ = (&status).write_all(&(-errno).to_ne_bytes());
                }
            },
            Err(error) => {
                let errno = error.raw_os_error().unwrap_or(libc::EIO);
                let _ = (&status).write_all(&(-errno).to_ne_bytes());
            }
        }
        if spare.is_none() {
            spare = fork_spare(&control, &mut children);
        }
    }
}

/// In a child of the server: read the payload, then run it.
fn run_child(status: UnixStream) -> ! {
    sys::hold_interrupts(false);
    let server = sys::getppid();
    let (payload, fds) = match super::spawn::read_payload(OwnedFd::from(status)) {
        Ok(received) => received,
        Err(error) => {
            eprintln!("multiprocessing: a forkserver child could not read its target: {error}");
            sys::exit_now(1);
        }
    };
    if payload.spec.daemon {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != server {
            sys::exit_now(1);
        }
    }
    super::spawn::run_payload(payload, fds, Ending::Immediate)
}
