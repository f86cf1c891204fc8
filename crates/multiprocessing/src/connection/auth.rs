//! CPython's connection authentication: `deliver_challenge` and `answer_challenge` of
//! `Lib/multiprocessing/connection.py`, in the 3.12+ protocol that still talks to 3.11.
//!
//! The side that delivers sends `#CHALLENGE#` + `{sha256}` + 40 random bytes; the other
//! answers with `{sha256}` + HMAC-SHA256(authkey, all of that message after `#CHALLENGE#`),
//! and gets `#WELCOME#` or `#FAILURE#`. A 3.11 peer speaks the legacy form: a 20-byte
//! challenge without a prefix, answered with a bare 16-byte HMAC-MD5. Lengths tell the
//! forms apart (CPython's `_get_digest_name_and_payload`): a prefixed message is always
//! longer than 20 bytes. Every handshake message is limited to 256 bytes, as CPython's
//! `recv_bytes(256)`, and must arrive before a deadline. MACs come from the `hmac`, `sha2`
//! and `md-5` crates; the comparison is theirs, in constant time.

use std::os::fd::AsFd;
use std::time::Instant;

use hmac::{Hmac, Mac};

use super::Connection;
use crate::Error;
use crate::sys;

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
/// Random bytes in a challenge (CPython 3.12's `MESSAGE_LENGTH`).
const MESSAGE_LENGTH: usize = 40;
/// A 3.11 server's challenge length, and a 3.11 client's HMAC-MD5 length.
const LEGACY_LENGTHS: [usize; 2] = [20, 16];
/// The longest digest name CPython allows (`sha3_256`, `sha3_384`).
const MAX_DIGEST_NAME: usize = 8;
/// The longest handshake message either side reads (CPython's `recv_bytes(256)`).
const MAX_MESSAGE: usize = 256;

/// The MACs of the protocol. CPython also allows `sha3_256` and `sha3_384`; a peer that
/// asks for them is refused as unsupported (CPython's own servers ask for `sha256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha256,
    Sha384,
}

impl Digest {
    fn of_name(name: &[u8]) -> Option<Digest> {
        match name {
            b"md5" => Some(Digest::Md5),
            b"sha256" => Some(Digest::Sha256),
            b"sha384" => Some(Digest::Sha384),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes a key of any length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
        }
    }

    /// Checks `mac` in constant time.
    fn verify(self, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], mac: &[u8]) -> bool {
            let Ok(mut check) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
                return false;
            };
            check.update(message);
            check.verify_slice(mac).is_ok()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message, mac),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message, mac),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message, mac),
        }
    }

    fn len(self) -> usize {
        match self {
            Digest::Md5 => 16,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
        }
    }
}

fn auth_error(message: impl Into<String>) -> Error {
    Error::AuthenticationError(message.into().into())
}

/// Python's `repr()` of a bytes object, for CPython's messages.
fn bytes_repr(bytes: &[u8]) -> String {
    let mut out = String::from("b'");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

/// CPython's `_get_digest_name_and_payload`: `None` for the legacy (MD5, unprefixed) form.
fn digest_and_payload(message: &[u8]) -> Result<(Option<Digest>, &[u8]), Error> {
    if LEGACY_LENGTHS.contains(&message.len()) {
        return Ok((None, message));
    }
    if message.first() == Some(&b'{') {
        let end = message.len().min(MAX_DIGEST_NAME + 2);
        if let Some(curly) = message[1..end].iter().position(|&b| b == b'}').map(|i| i + 1) {
            let name = &message[1..curly];
            if let Some(digest) = Digest::of_name(name) {
                return Ok((Some(digest), &message[curly + 1..]));
            }
            if matches!(name, b"sha3_256" | b"sha3_384") {
                return Err(auth_error(format!(
                    "response_digest='{}' unsupported",
                    String::from_utf8_lossy(name)
                )));
            }
        }
    }
    Err(auth_error(format!(
        "unsupported message length, missing digest prefix, or unsupported digest: message={}",
        bytes_repr(message)
    )))
}

/// CPython's `_create_response`: the MAC of `message` in the form the challenger asked for.
fn create_response(key: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    match digest_and_payload(message)?.0 {
        None => Ok(Digest::Md5.mac(key, message)),
        Some(digest) => {
            let mut response = format!("{{{}}}", digest.name()).into_bytes();
            response.extend(digest.mac(key, message));
            Ok(response)
        }
    }
}

/// CPython's `_verify_challenge`.
fn verify_challenge(key: &[u8], message: &[u8], response: &[u8]) -> Result<(), Error> {
    let (digest, mac) = digest_and_payload(response)?;
    let digest = digest.unwrap_or(Digest::Md5);
    if mac.len() != digest.len() {
        return Err(auth_error(format!(
            "expected '{}' of length {} got {}",
            digest.name(),
            digest.len(),
            mac.len()
        )));
    }
    if digest.verify(key, message, mac) {
        Ok(())
    } else {
        Err(auth_error("digest received was wrong"))
    }
}

/// One handshake message, at most [`MAX_MESSAGE`] bytes, before `deadline`.
fn recv_message(conn: &Connection, deadline: Instant) -> Result<Vec<u8>, Error> {
    let mut message = Vec::new();
    loop {
        if conn.try_recv_bytes_into(&mut message)?.is_some() {
            return Ok(message);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(auth_error("the peer did not complete the handshake in time"));
        }
        sys::poll_one(conn.as_fd(), libc::POLLIN, Some(left))?;
    }
}

/// Runs `handshake` with the connection's frame limit at [`MAX_MESSAGE`] (a hostile
/// length is refused before anything is allocated), then puts the limit back.
fn limited<R>(conn: &Connection, handshake: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
    let before = conn.max_frame();
    conn.set_max_frame(MAX_MESSAGE);
    let outcome = handshake();
    conn.set_max_frame(before);
    outcome
}

/// A fresh challenge: the frame to send and the message whose MAC the peer must return.
fn new_challenge() -> Result<(Vec<u8>, Vec<u8>), Error> {
    let mut random = [0u8; MESSAGE_LENGTH];
    sys::fill_random(&mut random)?;
    let mut message = b"{sha256}".to_vec();
    message.extend_from_slice(&random);
    let mut challenge = CHALLENGE.to_vec();
    challenge.extend_from_slice(&message);
    Ok((challenge, message))
}

/// Checks the peer's `response` to `message`, and tells it the verdict.
fn judge_response(
    conn: &Connection,
    key: &[u8],
    message: &[u8],
    response: &[u8],
) -> Result<(), Error> {
    match verify_challenge(key, message, response) {
        Ok(()) => conn.send_bytes(WELCOME),
        Err(error) => {
            let _ = conn.send_bytes(FAILURE);
            Err(error)
        }
    }
}

/// Answers the peer's challenge `frame` with the MAC of its message.
fn answer(conn: &Connection, key: &[u8], frame: &[u8]) -> Result<(), Error> {
    let Some(message) = frame.strip_prefix(CHALLENGE) else {
        return Err(auth_error(format!(
            "Protocol error, expected challenge: message={}",
            bytes_repr(frame)
        )));
    };
    if message.len() < LEGACY_LENGTHS[0] {
        return Err(auth_error(format!("challenge too short: {} bytes", message.len())));
    }
    conn.send_bytes(&create_response(key, message)?)
}

/// The peer's verdict on our answer.
fn welcomed(frame: &[u8]) -> Result<(), Error> {
    if frame == WELCOME { Ok(()) } else { Err(auth_error("digest sent was rejected")) }
}

/// CPython's `deliver_challenge`: makes the peer prove that it knows `key`.
pub(crate) fn deliver_challenge(
    conn: &Connection,
    key: &[u8],
    deadline: Instant,
) -> Result<(), Error> {
    limited(conn, || {
        let (challenge, message) = new_challenge()?;
        conn.send_bytes(&challenge)?;
        let response = recv_message(conn, deadline)?;
        judge_response(conn, key, &message, &response)
    })
}

/// CPython's `answer_challenge`: proves to the peer that this side knows `key`.
pub(crate) fn answer_challenge(
    conn: &Connection,
    key: &[u8],
    deadline: Instant,
) -> Result<(), Error> {
    limited(conn, || {
        answer(conn, key, &recv_message(conn, deadline)?)?;
        welcomed(&recv_message(conn, deadline)?)
    })
}

/// The accepting side's whole handshake — `deliver_challenge`, then `answer_challenge` —
/// as a state machine that never blocks, so that one thread drives many handshakes
/// from a poll loop (see `Listener`). [`advance`](ServerHandshake::advance) takes in
/// what has arrived whenever the connection is readable.
#[derive(Debug)]
pub(crate) struct ServerHandshake {
    step: Awaiting,
    /// The connection's frame limit before the handshake (restored when it succeeds).
    max_frame: usize,
}

#[derive(Debug)]
/// What the handshake waits for next.
enum Awaiting {
    /// Our challenge is out; the peer's response to this message is awaited.
    Response(Vec<u8>),
    /// We welcomed the peer; its challenge is awaited.
    Challenge,
    /// We answered its challenge; its verdict is awaited.
    Verdict,
}

impl ServerHandshake {
    /// Sends the challenge (a small write into a fresh socket's buffer: it does not block).
    pub(crate) fn start(conn: &Connection) -> Result<ServerHandshake, Error> {
        let max_frame = conn.max_frame();
        conn.set_max_frame(MAX_MESSAGE);
        let (challenge, message) = new_challenge()?;
        conn.send_bytes(&challenge)?;
        Ok(ServerHandshake { step: Awaiting::Response(message), max_frame })
    }

    /// Takes in every whole message that has arrived; `Ok(true)` once the peer is
    /// authenticated (and has authenticated us). A wrong or malformed message is an
    /// error; the connection is then to be dropped.
    pub(crate) fn advance(&mut self, conn: &Connection, key: &[u8]) -> Result<bool, Error> {
        let mut frame = Vec::new();
        while conn.try_recv_bytes_into(&mut frame)?.is_some() {
            match &self.step {
                Awaiting::Response(message) => {
                    judge_response(conn, key, message, &frame)?;
                    self.step = Awaiting::Challenge;
                }
                Awaiting::Challenge => {
                    answer(conn, key, &frame)?;
                    self.step = Awaiting::Verdict;
                }
                Awaiting::Verdict => {
                    welcomed(&frame)?;
                    conn.set_max_frame(self.max_frame);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPython 3.11's answer to a legacy challenge is a bare HMAC-MD5 (RFC 2104 test
    /// vector 2 of RFC 2202: key "Jefe").
    #[test]
    fn legacy_response_is_bare_hmac_md5() {
        let message = b"what do ya want for nothing?";
        // A 28-byte message is neither legacy length nor prefixed: refused as CPython does.
        assert!(create_response(b"Jefe", message).is_err());
        let challenge = [7u8; 20];
        let response = create_response(b"Jefe", &challenge).unwrap();
        assert_eq!(response.len(), 16);
        assert!(verify_challenge(b"Jefe", &challenge, &response).is_ok());
        assert_eq!(
            Digest::Md5.mac(b"Jefe", message),
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
    }

    #[test]
    fn modern_response_names_its_digest_and_a_wrong_key_is_refused() {
        let message = b"{sha256}0123456789012345678901234567890123456789";
        let response = create_response(b"key", message).unwrap();
        assert!(response.starts_with(b"{sha256}"));
        assert_eq!(response.len(), 8 + 32);
        assert!(verify_challenge(b"key", message, &response).is_ok());
        let err = verify_challenge(b"other", message, &response).unwrap_err();
        assert_eq!(err.to_string(), "digest received was wrong");
        let err = verify_challenge(b"key", message, b"{sha256}short").unwrap_err();
        assert_eq!(err.to_string(), "expected 'sha256' of length 32 got 5");
        let err = digest_and_payload(b"{whirlpool}0123456789abcdef0123").unwrap_err();
        assert!(err.to_string().starts_with("unsupported message length"), "{err}");
    }
}
