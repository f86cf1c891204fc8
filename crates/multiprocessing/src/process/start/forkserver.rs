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
//! the target's arguments attached. The request is taken by a child the server forked
//! ahead of it (the *spare*, which waits on the control socket): it hands the passed
//! socket to the server over a socket of its own, writes its pid into it, reads its
//! payload and runs it. Without a spare (a fork failed), the server takes the request
//! and forks on demand; the child writes its pid the same way. A child that ends by
//! returning or exiting writes the raw wait status of its `_exit` into the passed socket
//! just before it; when the child's pidfd says it ended, the server reaps it, writes the
//! status it got (the only one for a child killed by a signal) and closes the socket.
//! The parent keeps the first status to come — without waiting for the server, which may
//! be busy forking the next spare. The parent's end of the pair is the sentinel: readable
//! once a status came. A start waits for one
//! message to the spare and its answer — no `fork`, and no wake-up of the server: the
//! server forks the next spare while the child runs. (CPython's server forks on each
//! request.) A spare holds nothing of the parent's: it is a copy of the server, and it
//! ends when the parent does (the control socket's end of stream); one killed before use
//! is reaped and replaced.
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
    Ok(Launched { pid: Pid(pid), waiter: Some(Waiter::Server(ours)), records: None })
}

/// A child of the server, as the server tracks it.
struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    status: UnixStream,
}

/// A child the server forked ahead of the next request. It takes the request itself —
/// it waits on the control socket — hands the request's socket to the server over
/// `socket` (the server reports its end there), and answers the parent with its pid:
/// starting a child costs the parent one message to the spare and the spare's answer,
/// and the server forks the next spare while the child runs.
struct Spare {
    pid: Pid,
    pidfd: OwnedFd,
    socket: UnixStream,
}

/// Forks a spare; `None` if that fails (the server then takes requests itself and forks
/// on demand).
fn fork_spare(control: &UnixStream, children: &mut Vec<Child>) -> Option<Spare> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    // SAFETY: the server is single-threaded, so the child may run any code.
    match unsafe { sys::fork() } {
        Ok(Fork::Child) => {
            // The other children's sockets and pidfds are the server's.
            children.clear();
            drop(ours);
            let mut byte = [0u8; 1];
            let request = sys::recv_with_fds(control.as_fd(), &mut byte, 1);
            // Then the control socket is the server's alone.
            // SAFETY: this child never returns into the frames that own `control` (it
            // ends in `run_child` or `exit_now`, which run no destructors), so its fd is
            // closed once, here, and not used again.
            unsafe { libc::close(control.as_raw_fd()) };
            let status = match request {
                Ok((1, mut fds)) => match fds.pop() {
                    Some(fd) => UnixStream::from(fd),
                    None => sys::exit_now(1),
                },
                // The parent is gone (end of stream): nothing will be asked.
                _ => sys::exit_now(0),
            };
            // The server first, then the parent: once the parent knows the pid it may
            // signal this process, whose end the server must then be able to report.
            if sys::send_with_fds(theirs.as_fd(), b"T", &[status.as_raw_fd()]).is_err() {
                // The server is gone: so is whoever would report this child's end.
                sys::exit_now(1);
            }
            drop(theirs);
            run_child(status)
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

/// The raw wait status the server reports for a child it reaped (255 if `wait` failed).
fn wait_status(pid: Pid) -> i32 {
    sys::wait(pid).unwrap_or(sys::ExitStatus::Exited(255)).to_raw()
}

/// The fork server's main loop; never returns. Exits when the parent closes the control
/// socket.
pub(crate) fn serve(control: OwnedFd) -> ! {
    sys::hold_interrupts(true);
    // Every child points its stdin at it (see `sys::keep_dev_null`).
    sys::keep_dev_null();
    let control = UnixStream::from(control);
    let mut children: Vec<Child> = Vec::new();
    let mut spare = fork_spare(&control, &mut children);
    loop {
        // While a spare waits, it takes the requests: the server watches the control
        // socket only for its end.
        let control_events = if spare.is_some() { libc::POLLRDHUP } else { libc::POLLIN };
        let mut fds = vec![(control.as_fd(), control_events)];
        fds.extend(children.iter().map(|c| (c.pidfd.as_fd(), libc::POLLIN)));
        let spare_at = spare.as_ref().map(|s| {
            fds.push((s.socket.as_fd(), libc::POLLIN));
            fds.push((s.pidfd.as_fd(), libc::POLLIN));
            fds.len() - 2
        });
        let ready = sys::wait_any_of(&fds, None).unwrap_or_default();
        drop(fds);
        let mut ended: Vec<usize> =
            ready.iter().filter(|&&i| i > 0 && i <= children.len()).map(|i| i - 1).collect();
        ended.sort_unstable_by(|a, b| b.cmp(a));
        for index in ended {
            let Child { pid, pidfd, status } = children.swap_remove(index);
            let raw = wait_status(pid);
            let _ = (&status).write_all(&raw.to_ne_bytes());
            // The end of the stream right after the status.
            drop(status);
            drop(pidfd);
        }
        if spare_at.is_some() && ready.contains(&0) {
            // The control socket was watched for its end only: the parent is gone, and
            // so is the server (the spare sees the same end). Daemonic children die
            // with it.
            sys::exit_now(0);
        }
        if spare_at.is_some_and(|at| ready.contains(&at) || ready.contains(&(at + 1))) {
            // The spare took a request (it sends its socket), or ended.
            if let Some(taken) = spare.take() {
                let mut byte = [0u8; 1];
                match sys::recv_with_fds(taken.socket.as_fd(), &mut byte, 1) {
                    Ok((1, mut fds)) if !fds.is_empty() => {
                        let status = UnixStream::from(fds.swap_remove(0));
                        children.push(Child { pid: taken.pid, pidfd: taken.pidfd, status });
                    }
                    // It ended without taking a request (killed): reap it.
                    _ => {
                        let _ = sys::wait(taken.pid);
                    }
                }
            }
            spare = fork_spare(&control, &mut children);
        }
        if spare_at.is_some() || !ready.contains(&0) {
            continue;
        }
        let mut byte = [0u8; 1];
        let (n, mut fds) = match sys::recv_with_fds(control.as_fd(), &mut byte, 1) {
            Ok(received) => received,
            Err(_) => sys::exit_now(0),
        };
        if n == 0 {
            // The parent is gone: so is the server (and the spare, which sees the same
            // end). Daemonic children die with it.
            sys::exit_now(0);
        }
        let Some(status) = fds.pop().map(UnixStream::from) else { continue };
        // SAFETY: the server is single-threaded, so the child may run any code.
        match unsafe { sys::fork() } {
            Ok(Fork::Child) => {
                drop(control);
                drop(children);
                run_child(status)
            }
            Ok(Fork::Parent(pid)) => match sys::pidfd_open(pid) {
                Ok(pidfd) => children.push(Child { pid, pidfd, status }),
                Err(_) => {
                    // Untracked, it could not be reported: it goes, and the parent sees
                    // the end of the stream without a status (an error of its `join`).
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::wait(pid);
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

/// In a child of the server (a spare that took a request, or one forked on demand):
/// answer the parent with the pid — before anything else it writes there, its exit
/// status — read the payload, then run it.
fn run_child(status: UnixStream) -> ! {
    let _ = (&status).write_all(&sys::getpid().0.to_ne_bytes());
    sys::hold_interrupts(false);
    let server = sys::getppid();
    let (payload, fds) = match super::spawn::read_payload(&status) {
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
    super::spawn::run_payload(payload, fds, Ending::Reported(status))
}
