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

/// A new read-write mapping of `len` bytes, where the kernel chooses: `flags` with `fd`
/// (-1 for an anonymous one). One system call and no allocation (async-signal-safe).
fn map_new(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: a fresh mapping chosen by the kernel; nothing else is at that address.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0)
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Maps `len` bytes of `fd` shared and read-write.
pub(crate) fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    map_new(len, libc::MAP_SHARED, fd.as_raw_fd())
}

/// A new anonymous mapping of `len` zero-filled bytes, shared with forked children
/// (`MAP_SHARED | MAP_ANONYMOUS`).
pub(crate) fn map_shared_anonymous(len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    map_new(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
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

/// Unmaps a mapping made by [`map_shared`] (or `map_shared_anonymous`). It fails only
/// on a range that is not whole pages, or when it would split a mapping in a process at
/// its limit of mappings: the pages are then still mapped.
///
/// # Safety
/// `ptr`/`len` must be a mapping from `map_shared` that nothing uses any more.
pub(crate) unsafe fn unmap(ptr: std::ptr::NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: forwarded to the caller.
    check(unsafe { libc::munmap(ptr.as_ptr().cast(), len) }).map(drop)
}

/// `shm_open(name, O_RDWR [| O_CREAT | O_EXCL], 0o600)`: a POSIX shared-memory object
/// (`/dev/shm`), close-on-exec (glibc opens it with `O_CLOEXEC`). `name` starts with `/`.
pub(crate) fn shm_open(name: &std::ffi::CStr, create: bool) -> io::Result<OwnedFd> {
    let flags = if create { libc::O_RDWR | libc::O_CREAT | libc::O_EXCL } else { libc::O_RDWR };
    // SAFETY: `name` is a valid C string; flags and mode are plain integers.
    let fd = check(unsafe { libc::shm_open(name.as_ptr(), flags, 0o600) })?;
    // SAFETY: a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `shm_unlink(name)`. Async-signal-safe: glibc builds the `/dev/shm` path on the stack
/// and calls `unlink`.
pub(crate) fn shm_unlink(name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid C string.
    check(unsafe { libc::shm_unlink(name.as_ptr()) }).map(drop)
}

/// Sets the size of the file behind `fd` (`ftruncate`).
pub(crate) fn set_file_size(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: ftruncate on an open fd.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// A private anonymous mapping of `len` bytes, zero-filled. Async-signal-safe (one system
/// call): the resource tracker's table, which must not use the allocator.
pub(crate) fn map_anonymous(len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    map_new(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
}

/// Grows a mapping from [`map_anonymous`] to `new_len` bytes, moving it if needed
/// (`mremap`); the new part is zero-filled. Async-signal-safe (one system call).
///
/// # Safety
/// `ptr`/`len` must be a whole mapping from `map_anonymous`; on success it may have
/// moved, so no reference into the old range may be used afterwards.
pub(crate) unsafe fn grow_mapping(
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    new_len: usize,
) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: forwarded to the caller; MREMAP_MAYMOVE picks a free range if needed.
    let moved = unsafe { libc::mremap(ptr.as_ptr().cast(), len, new_len, libc::MREMAP_MAYMOVE) };
    if moved == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(moved.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}
