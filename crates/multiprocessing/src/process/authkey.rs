//! The process's authentication key: CPython's `current_process().authkey`.
//!
//! The main process draws 32 random bytes (`getrandom`) on first use; every child starts
//! with the key of the `Process` object that started it, which is its creator's key unless
//! [`Process::set_authkey`](crate::Process::set_authkey) changed it. Managers and listeners
//! that want "this program's key" use it.

use pyconc_core::fork::ForkMutex;

/// The current process's key; `None` until it is first read or a parent gave one. Held
/// across `fork()` at order 15 (after the process table, which `become_child` holds while
/// it installs the key a parent sent); a forked child keeps it until `become_child`
/// replaces it with the one its `Process` object carried.
static KEY: ForkMutex<Option<Vec<u8>>> = ForkMutex::new(None, 15, |_| {});

/// The number of random bytes in a fresh key, as CPython's `os.urandom(32)`.
const KEY_LEN: usize = 32;

/// The current process's key, drawn on first use.
pub(crate) fn current() -> Vec<u8> {
    KEY.lock().get_or_insert_with(fresh).clone()
}

/// Replaces the current process's key (`current_process().authkey = key`).
pub(crate) fn set_current(key: &[u8]) {
    *KEY.lock() = Some(key.to_vec());
}

/// Gives a new child the key its `Process` object carried. The key it had (a forked
/// child's copy of its parent's) is let go of without a drop, which would write a heap
/// page that the child does not use (a copy-on-write fault).
pub(crate) fn install(key: Vec<u8>) {
    std::mem::forget(KEY.lock().replace(key));
}

/// 32 bytes from the kernel's random number generator (the `getrandom` crate, as the
/// connection handshake's challenges).
///
/// # Panics
/// If the kernel cannot provide randomness: a key that is not random would fail open,
/// so there is none.
fn fresh() -> Vec<u8> {
    let mut key = vec![0; KEY_LEN];
    if let Err(error) = getrandom::fill(&mut key) {
        panic!("no randomness for the process's authkey: {error}");
    }
    key
}
