//! The operating-system layer: every `libc`/`nix` call of the crate lives in [`unix`],
//! wrapped nix-style (a [`Pid`] newtype, an [`ExitStatus`] enum, `io::Result`s), so that the
//! rest of the crate is safe code.

mod unix;

pub(crate) use unix::*;
