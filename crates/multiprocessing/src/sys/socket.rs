//! Unix sockets: socket pairs, fds passed as `SCM_RIGHTS`, and checking a socket's peer.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

#[allow(unused_imports, reason = "each area uses some of them")]
use super::*;

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

/// Reads what is there of `buf` from a stream socket without taking it out and without
/// waiting (`MSG_PEEK | MSG_DONTWAIT`): `Ok(Some(0))` at the end of the stream, `Ok(None)`
/// when nothing has come.
pub(crate) fn peek(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: receives into `buf`, at most its length; the flags never block nor consume.
    nonblocking(|| unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    })
}
