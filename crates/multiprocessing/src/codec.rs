//! The one wire format of the crate: serde values encoded with `postcard` (a compact,
//! well-kept binary format), sent as length-prefixed frames.
//!
//! A frame is a 4-byte big-endian length (CPython's `Connection.send_bytes` header) and that
//! many bytes ([`Connection`](crate::Connection) reads and writes them); the frames that
//! start a spawn or forkserver child also carry fds. A reader refuses a frame longer than
//! its limit before allocating anything, so a malformed or hostile length is an error,
//! never an out-of-memory abort.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, reduction, sys};

/// The largest frame a reader accepts unless told otherwise: 64 MiB.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Serializes `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(value).map_err(|e| {
        Error::PicklingError(
            reduction::take_refusal().unwrap_or_else(|| format!("cannot serialize: {e}")),
        )
    })
}

/// Serializes `value` after the bytes already in `buffer` (one allocation for a frame).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buffer: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    postcard::to_extend(value, buffer).map_err(|e| {
        Error::PicklingError(
            reduction::take_refusal().unwrap_or_else(|| format!("cannot serialize: {e}")),
        )
    })
}

/// Deserializes a `T` from all of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    decode_borrowed(bytes)
}

/// [`decode`] for a value that may borrow from `bytes` (`&str`, `&[u8]` fields).
pub(crate) fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::UnpicklingError(format!(
            "cannot deserialize: {} bytes left over",
            rest.len()
        ))),
        Err(e) => Err(Error::UnpicklingError(
            reduction::take_refusal().unwrap_or_else(|| format!("cannot deserialize: {e}")),
        )),
    }
}

/// The most fds one frame may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// Sends one frame with `fds` attached (`SCM_RIGHTS`) on a Unix stream socket. The header
/// is the length and the fd count, 4 bytes each, big-endian; the fds ride on it.
pub(crate) fn send_frame_with_fds(
    socket: &UnixStream,
    payload: &[u8],
    fds: &[RawFd],
) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many file descriptors"));
    }
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&length.to_be_bytes());
    header[4..].copy_from_slice(&(fds.len() as u32).to_be_bytes());
    sys::send_with_fds(socket.as_fd(), &header, fds)?;
    (&*socket).write_all(payload)
}

/// Receives a frame sent by [`send_frame_with_fds`], of at most `max` bytes.
pub(crate) fn recv_frame_with_fds(
    socket: &UnixStream,
    max: usize,
) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut header = [0u8; 8];
    let (n, fds) = sys::recv_with_fds(socket.as_fd(), &mut header, MAX_FDS)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    (&*socket).read_exact(&mut header[n..])?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if count != fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected {count} file descriptors with the frame, got {}", fds.len()),
        ));
    }
    if length > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad message length: {length} bytes (the limit is {max})"),
        ));
    }
    let mut payload = vec![0u8; length];
    (&*socket).read_exact(&mut payload)?;
    Ok((payload, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_its_fds() {
        use std::os::fd::AsRawFd;
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = crate::sys::pipe().unwrap();
        send_frame_with_fds(&a, b"payload", &[r.as_raw_fd(), w.as_raw_fd()]).unwrap();
        let (payload, fds) = recv_frame_with_fds(&b, MAX_FRAME).unwrap();
        assert_eq!(payload, b"payload");
        assert_eq!(fds.len(), 2);
        let mut out = std::fs::File::from(fds.into_iter().nth(1).unwrap());
        out.write_all(b"x").unwrap();
        let mut byte = [0u8];
        std::fs::File::from(r).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn values_round_trip_and_trailing_bytes_are_refused() {
        let bytes = encode(&(7u32, String::from("x"))).unwrap();
        assert_eq!(decode::<(u32, String)>(&bytes).unwrap(), (7, "x".to_owned()));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode::<(u32, String)>(&longer), Err(Error::UnpicklingError(_))));
    }
}
