//! Shared memory: `memfd`s and their mappings.

use std::io::{self};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[allow(unused_imports, reason = "each area uses some of them")]
use super::*;

/// A new anonymous shared-memory file of `len` bytes (`memfd_create`), close-on-exec.
pub(crate) fn memfd(len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid C string; flags are plain integers.
    let fd = check(unsafe { libc::memfd_create(c"pyconc".as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: a new fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate on the fd just created.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    Ok(fd)
}

/// The size of the file behind `fd`.
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: `stat` is plain data, filled by fstat.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid out-pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
    Ok(stat.st_size as usize)
}

/// Maps `len` bytes of `fd` shared and read-write.
pub(crate) fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: a fresh mapping chosen by the kernel; nothing else is at that address.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Replaces the pages of a shared mapping by private zero-filled ones at the same
/// address: the memory stays valid for whatever still points into it, but no longer
/// reaches the shared pages (a forked child letting go of its parent's channels).
///
/// # Safety
/// `ptr`/`len` must be a whole mapping made by [`map_shared`]; its contents turn to zeros
/// under every reference into it, so it may hold only types for which zero is a valid
/// value (the crate's atomics and bytes).
pub(crate) unsafe fn remap_private(ptr: std::ptr::NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: MAP_FIXED over a range that the caller guarantees is our own whole mapping,
    // so nothing else is replaced.
    let result = unsafe {
        libc::mmap(
            ptr.as_ptr().cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if result == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
/// `ptr`/`len` must be a mapping from `map_shared` that nothing uses any more.
pub(crate) unsafe fn unmap(ptr: std::ptr::NonNull<u8>, len: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}
