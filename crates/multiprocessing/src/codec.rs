//! The one wire format of the crate: serde values encoded with `postcard` (a compact,
//! well-kept binary format), sent as length-prefixed frames.
//!
//! A frame is a 4-byte big-endian length (CPython's `Connection.send_bytes` header) and that
//! many bytes. A reader refuses a frame longer than its limit before allocating anything,
//! so a malformed or hostile length is an error, never an out-of-memory abort.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The largest frame a reader accepts unless told otherwise: 64 MiB.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Serializes `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(value).map_err(|e| Error::PicklingError(format!("cannot serialize: {e}")))
}

/// Deserializes a `T` from all of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::UnpicklingError(format!(
            "cannot deserialize: {} bytes left over",
            rest.len()
        ))),
        Err(e) => Err(Error::UnpicklingError(format!("cannot deserialize: {e}"))),
    }
}

/// Writes one frame.
pub(crate) fn write_frame(mut out: impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// Reads one frame of at most `max` bytes.
pub(crate) fn read_frame(mut input: impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    input.read_exact(&mut header)?;
    let length = u32::from_be_bytes(header) as usize;
    if length > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad message length: {length} bytes (the limit is {max})"),
        ));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        assert_eq!(&wire[..4], &[0, 0, 0, 5]);
        assert_eq!(read_frame(&wire[..], MAX_FRAME).unwrap(), b"hello");
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let wire = [0x7f, 0xff, 0xff, 0xff];
        let err = read_frame(&wire[..], 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_truncated_frame_is_an_eof_error() {
        let wire = [0, 0, 0, 9, 1, 2];
        assert_eq!(read_frame(&wire[..], 1024).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
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
