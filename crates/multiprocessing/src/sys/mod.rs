//! The operating-system layer: every `libc`/`nix` call of the crate lives here, one file
//! per area ([`process`], [`fd`], [`socket`], [`memory`]), each call wrapped
//! once nix-style (a [`Pid`] newtype, an [`ExitStatus`] enum, `io::Result`s), so that the
//! rest of the crate is safe code.
//!
//! Functions documented "async-signal-safe" are single system calls (or `_exit`) that
//! allocate nothing and take no lock, so they may run in a child between `fork()` and
//! `exec()`/`_exit()` of a multi-threaded parent.

mod fd;
mod memory;
mod process;
mod socket;

use std::io;

pub(crate) use fd::*;
pub(crate) use memory::*;
pub(crate) use process::*;
pub(crate) use socket::*;

/// A libc return value as an `io::Result`: -1 is `errno`.
fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// Fills `buf` with random bytes from the kernel (`getrandom(2)`, through the `getrandom`
/// crate).
pub(crate) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|error| io::Error::other(error.to_string()))
}
