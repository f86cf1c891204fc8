//! Shared memory: CPython's `multiprocessing.heap`, one mapping per object.
//!
//! A [`SharedMemory`] is a `memfd` mapped `MAP_SHARED`: a forked child shares the mapping
//! itself; a spawn or forkserver child receives the fd with its arguments
//! ([`reduction`](crate::reduction)) and maps the same pages. Every cross-process object of
//! the crate (locks, semaphores, events, queues' counters, `Value`, `Array`) keeps its
//! state there, as atomics that processes wait on with process-shared futexes.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, reduction, sys};

/// A shared mapping of a memfd.
pub(crate) struct SharedMemory {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory, accessed only through atomics or under the
// objects' own cross-process locks; the pointer stays valid until drop.
unsafe impl Send for SharedMemory {}
// SAFETY: as above.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// A zero-filled mapping of at least `len` bytes (a whole page at least).
    pub(crate) fn new(len: usize) -> Result<SharedMemory, Error> {
        let len = len.max(1).next_multiple_of(4096);
        let fd = sys::memfd(len)?;
        SharedMemory::map(fd)
    }

    fn map(fd: OwnedFd) -> Result<SharedMemory, Error> {
        let len = sys::file_size(fd.as_fd())?;
        if len == 0 {
            return Err(Error::UnpicklingError("empty shared memory".into()));
        }
        let ptr = sys::map_shared(fd.as_fd(), len)?;
        Ok(SharedMemory { ptr, len, fd })
    }

    /// The mapping's length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The `index`th 32-bit word of the mapping, as an atomic.
    ///
    /// # Panics
    /// If the word is outside the mapping (a bug of this crate's layouts).
    pub(crate) fn word(&self, index: usize) -> &AtomicU32 {
        assert!((index + 1) * 4 <= self.len, "shared word {index} outside the mapping");
        // SAFETY: in bounds (checked), 4-aligned (the mapping is page-aligned), and
        // `AtomicU32` may alias memory that other processes access atomically.
        unsafe { &*self.ptr.as_ptr().add(index * 4).cast::<AtomicU32>() }
    }

    /// The 64-bit word at byte offset `8 * index` of the mapping, as an atomic.
    ///
    /// # Panics
    /// If the word is outside the mapping (a bug of this crate's layouts).
    pub(crate) fn word64(&self, index: usize) -> &AtomicU64 {
        assert!((index + 1) * 8 <= self.len, "shared word64 {index} outside the mapping");
        // SAFETY: in bounds (checked), 8-aligned (the mapping is page-aligned), and
        // `AtomicU64` may alias memory that other processes access atomically.
        unsafe { &*self.ptr.as_ptr().add(index * 8).cast::<AtomicU64>() }
    }

    /// Serializes the mapping's fd for a child (see [`reduction`]); `type_name` names the
    /// object in the refusal outside a process start.
    pub(crate) fn serialize_as<S: Serializer>(
        &self,
        type_name: &str,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        reduction::serialize_fd(self.fd.as_fd(), type_name, serializer)
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `map_shared` and `&mut self` means no reference
        // into it is alive.
        unsafe { sys::unmap(self.ptr, self.len) };
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_as("SharedMemory", serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedMemory, D::Error> {
        let fd = reduction::deserialize_fd(deserializer)?;
        SharedMemory::map(fd).map_err(serde::de::Error::custom)
    }
}
