//! Shared memory: CPython's `multiprocessing.heap`, one mapping per object.
//!
//! A [`SharedMemory`] is a `memfd` mapped `MAP_SHARED`: a forked child shares the mapping
//! itself; a spawn or forkserver child receives the fd with its arguments
//! ([`reduction`](crate::reduction)) and maps the same pages. (The rings of a fork pool's
//! channels are parts of one anonymous shared mapping instead: [`SharedMemory::parts`].)
//! Every cross-process object of the crate (locks, semaphores, events, queues' counters,
//! `Value`, `Array`) keeps its state there, as atomics that processes wait on with
//! process-shared futexes.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::EMPTY_SHARED_MEMORY;
use crate::{Error, reduction, sys};

/// A shared mapping of a memfd, or a part of an anonymous shared mapping.
pub(crate) struct SharedMemory {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

/// What holds a [`SharedMemory`]'s pages.
enum Backing {
    /// A memfd, mapped whole: the mapping is this value's own.
    File(OwnedFd),
    /// A part of an anonymous shared mapping, unmapped with its last part.
    Part { whole: Arc<Anonymous> },
}

/// An anonymous shared mapping (`MAP_SHARED | MAP_ANONYMOUS`), cut into the parts of
/// [`SharedMemory::parts`]. Only forked children reach it: it has no fd to send.
struct Anonymous {
    ptr: NonNull<u8>,
    len: usize,
    /// The process that mapped it (a forked child holds a copy of this value).
    pid: i32,
}

// SAFETY: the pointer is only used to unmap, once, on drop.
unsafe impl Send for Anonymous {}
// SAFETY: as above.
unsafe impl Sync for Anonymous {}

impl Drop for Anonymous {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `map_shared_anonymous`, and its last part (the only
        // way to reach it) is being dropped.
        let _ = unsafe { sys::unmap(self.ptr, self.len) };
    }
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
        // Its size is the one just set: no `fstat` (as `map` needs for a received fd).
        SharedMemory::map_len(fd, len)
    }

    /// Maps the whole file behind `fd` (its size as `fstat` gives it); an empty file is
    /// refused.
    pub(crate) fn map(fd: OwnedFd) -> Result<SharedMemory, Error> {
        let len = sys::file_size(fd.as_fd())?;
        if len == 0 {
            return Err(Error::UnpicklingError(EMPTY_SHARED_MEMORY.into()));
        }
        SharedMemory::map_len(fd, len)
    }

    /// Maps the first `len` bytes of `fd`, which holds at least that many.
    fn map_len(fd: OwnedFd, len: usize) -> Result<SharedMemory, Error> {
        let ptr = sys::map_shared(fd.as_fd(), len)?;
        Ok(SharedMemory { ptr, len, backing: Backing::File(fd) })
    }

    /// `N` zero-filled mappings of at least `len` bytes each (whole pages), made
    /// with one system call: parts of one anonymous shared mapping, which a forked child
    /// shares. Each is detached in a child on its own ([`detach_in_child`]), or two at once
    /// ([`detach_both_in_child`]); none can be sent to another process (they have no fd).
    ///
    /// A memfd each costs `memfd_create`, `ftruncate` and `mmap`, then `munmap` and
    /// `close`: most of the set-up of a fork pool's channels (`docs/BENCHMARKS.md`).
    ///
    /// [`detach_in_child`]: SharedMemory::detach_in_child
    /// [`detach_both_in_child`]: SharedMemory::detach_both_in_child
    pub(crate) fn parts<const N: usize>(len: usize) -> Result<[SharedMemory; N], Error> {
        let len = len.max(1).next_multiple_of(4096);
        let total = len.checked_mul(N).filter(|&total| total > 0);
        let total = total.ok_or_else(|| Error::value("no shared memory to map"))?;
        let ptr = sys::map_shared_anonymous(total)?;
        let whole = Arc::new(Anonymous { ptr, len: total, pid: sys::getpid().0 });
        Ok(std::array::from_fn(|k| SharedMemory {
            // SAFETY: `k * len + len <= total`: the part lies in the mapping.
            ptr: unsafe { ptr.add(k * len) },
            len,
            backing: Backing::Part { whole: Arc::clone(&whole) },
        }))
    }

    /// Whether this is a part of an anonymous shared mapping ([`parts`]) that this process
    /// made — not a forked child's copy of its parent's.
    ///
    /// [`parts`]: SharedMemory::parts
    pub(crate) fn is_own_part(&self) -> bool {
        matches!(&self.backing, Backing::Part { whole } if whole.pid == sys::getpid().0)
    }

    /// In a forked child: unmaps the whole anonymous mapping that this part belongs to
    /// (nothing, for a memfd's mapping).
    ///
    /// # Safety
    /// Nothing in this process touches any part of that mapping again, nor drops one (a
    /// drop would unmap the range again, which may hold another mapping by then).
    ///
    /// # Errors
    /// The mapping could not be unmapped: it is still there.
    pub(crate) unsafe fn unmap_whole_in_child(&self) -> std::io::Result<()> {
        match &self.backing {
            // SAFETY: the whole mapping, from `map_shared_anonymous`; the caller vouches
            // that nothing reaches it any more.
            Backing::Part { whole } => unsafe { sys::unmap(whole.ptr, whole.len) },
            Backing::File(_) => Ok(()),
        }
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

    /// The `T` at byte `offset` of the mapping, copied through atomics (see
    /// [`load_bytes`](SharedMemory::load_bytes)); a `T` of one aligned word is one atomic
    /// load, inlined into the caller.
    ///
    /// # Panics
    /// If the `T` is outside the mapping (a bug of this crate's layouts).
    #[inline]
    pub(crate) fn load<T: bytemuck::Pod>(&self, offset: usize) -> T {
        if let Some(ptr) = self.one_word::<T>(offset) {
            // SAFETY: `one_word` checked that the `T` lies in the mapping and is aligned for
            // the atomic of its width; atomics may alias memory that other processes
            // access atomically. The arm taken is the one of `T`'s width (the others are
            // never reached, and `bytemuck::cast` between equal sizes cannot fail).
            unsafe {
                match std::mem::size_of::<T>() {
                    8 => return bytemuck::cast((*ptr.cast::<AtomicU64>()).load(Ordering::Relaxed)),
                    4 => return bytemuck::cast((*ptr.cast::<AtomicU32>()).load(Ordering::Relaxed)),
                    2 => return bytemuck::cast((*ptr.cast::<AtomicU16>()).load(Ordering::Relaxed)),
                    1 => return bytemuck::cast((*ptr.cast::<AtomicU8>()).load(Ordering::Relaxed)),
                    _ => {}
                }
            }
        }
        let mut value = T::zeroed();
        self.load_bytes(offset, bytemuck::bytes_of_mut(&mut value));
        value
    }

    /// Stores `value` at byte `offset` of the mapping through atomics (see
    /// [`load`](SharedMemory::load)).
    ///
    /// # Panics
    /// If the `T` is outside the mapping (a bug of this crate's layouts).
    #[inline]
    pub(crate) fn store<T: bytemuck::Pod>(&self, offset: usize, value: T) {
        if let Some(ptr) = self.one_word::<T>(offset) {
            // SAFETY: as in `load`; the mapping is writable.
            unsafe {
                match std::mem::size_of::<T>() {
                    8 => {
                        return (*ptr.cast::<AtomicU64>())
                            .store(bytemuck::cast(value), Ordering::Relaxed);
                    }
                    4 => {
                        return (*ptr.cast::<AtomicU32>())
                            .store(bytemuck::cast(value), Ordering::Relaxed);
                    }
                    2 => {
                        return (*ptr.cast::<AtomicU16>())
                            .store(bytemuck::cast(value), Ordering::Relaxed);
                    }
                    1 => {
                        return (*ptr.cast::<AtomicU8>())
                            .store(bytemuck::cast(value), Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
        self.store_bytes(offset, bytemuck::bytes_of(&value));
    }

    /// The address of a `T` at byte `offset` if it is one aligned machine word (1, 2, 4 or
    /// 8 bytes, at a multiple of its size) inside the mapping.
    #[inline]
    fn one_word<T>(&self, offset: usize) -> Option<*mut u8> {
        let width = std::mem::size_of::<T>();
        let fits = offset.checked_add(width).is_some_and(|end| end <= self.len);
        (matches!(width, 1 | 2 | 4 | 8) && fits && offset % width == 0)
            .then(|| self.ptr.as_ptr().wrapping_add(offset))
    }

    /// Copies bytes `offset..offset + out.len()` of the mapping into `out`, through
    /// relaxed atomic loads of the widest aligned words that fit. Another thread or
    /// process may write the same bytes meanwhile (an unlocked `RawValue`): the copy may
    /// then mix old and new words, as CPython's can, but it is never a data race.
    ///
    /// # Panics
    /// If the range is outside the mapping (a bug of this crate's layouts).
    pub(crate) fn load_bytes(&self, offset: usize, out: &mut [u8]) {
        let mut done = 0;
        for word in self.words(offset, out.len()) {
            let bytes = match word {
                Word::W8(w) => &w.load(Ordering::Relaxed).to_ne_bytes()[..],
                Word::W4(w) => &w.load(Ordering::Relaxed).to_ne_bytes()[..],
                Word::W2(w) => &w.load(Ordering::Relaxed).to_ne_bytes()[..],
                Word::W1(w) => &[w.load(Ordering::Relaxed)][..],
            };
            out[done..done + bytes.len()].copy_from_slice(bytes);
            done += bytes.len();
        }
    }

    /// Copies `bytes` to `offset..` of the mapping through relaxed atomic stores (see
    /// [`load_bytes`](SharedMemory::load_bytes)).
    ///
    /// # Panics
    /// If the range is outside the mapping (a bug of this crate's layouts).
    pub(crate) fn store_bytes(&self, offset: usize, bytes: &[u8]) {
        let mut rest = bytes;
        for word in self.words(offset, bytes.len()) {
            let (chunk, after) = rest.split_at(word.width());
            rest = after;
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            match word {
                Word::W8(w) => w.store(u64::from_ne_bytes(buf), Ordering::Relaxed),
                Word::W4(w) => {
                    w.store(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]), Ordering::Relaxed)
                }
                Word::W2(w) => w.store(u16::from_ne_bytes([buf[0], buf[1]]), Ordering::Relaxed),
                Word::W1(w) => w.store(buf[0], Ordering::Relaxed),
            }
        }
    }

    /// The bytes `offset..offset + len` as a run of the widest aligned atomics that fit.
    #[inline]
    fn words(&self, offset: usize, len: usize) -> impl Iterator<Item = Word<'_>> {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "shared bytes {offset}+{len} outside the mapping"
        );
        let mut at = offset;
        let end = offset + len;
        std::iter::from_fn(move || {
            let left = end - at;
            let width = [8, 4, 2, 1].into_iter().find(|&w| left >= w && at % w == 0)?;
            let ptr = self.ptr.as_ptr().wrapping_add(at);
            at += width;
            // SAFETY: `at..at + width` lies in the mapping (asserted above); the mapping
            // is page-aligned, so `ptr` is aligned for an atomic of `width` bytes (`at`
            // is a multiple of it); atomics may alias memory that other processes access
            // atomically; the reference lives no longer than `&self`, the mapping.
            Some(unsafe {
                match width {
                    8 => Word::W8(&*ptr.cast::<AtomicU64>()),
                    4 => Word::W4(&*ptr.cast::<AtomicU32>()),
                    2 => Word::W2(&*ptr.cast::<AtomicU16>()),
                    _ => Word::W1(&*ptr.cast::<AtomicU8>()),
                }
            })
        })
    }

    /// In a forked child: lets go of the shared pages and of the memfd, keeping this value
    /// valid (its memory turns into private zeros, its fd into `null` — kept as it is
    /// without one), so that the child can no longer reach what the parent shares there.
    ///
    /// # Errors
    /// The pages could not be replaced: the child still shares them.
    pub(crate) fn detach_in_child(&self, null: Option<&sys::DevNull>) -> std::io::Result<()> {
        if let (Some(null), Backing::File(fd)) = (null, &self.backing) {
            let _ = null.put_over(fd.as_raw_fd());
        }
        // SAFETY: `ptr`/`len` is this value's whole mapping from `map_shared`, or its whole
        // part of an anonymous one (page-aligned), and it holds only atomics and bytes
        // (every layout of the crate), for which zero is valid.
        unsafe { sys::remap_private(self.ptr, self.len) }
    }

    /// [`detach_in_child`](Self::detach_in_child) of `self` and `other` at once, with
    /// one system call when they are parts of one anonymous mapping that has no other
    /// part (a fork pool channel's two rings).
    pub(crate) fn detach_both_in_child(
        &self,
        other: &SharedMemory,
        null: Option<&sys::DevNull>,
    ) -> std::io::Result<()> {
        match (&self.backing, &other.backing) {
            (Backing::Part { whole }, Backing::Part { whole: theirs })
                if Arc::ptr_eq(whole, theirs) && whole.len == self.len + other.len =>
            {
                // SAFETY: the whole mapping, from `map_shared_anonymous`, made of these two
                // parts, which hold only atomics and bytes, for which zero is valid.
                unsafe { sys::remap_private(whole.ptr, whole.len) }
            }
            _ => self.detach_in_child(null).and(other.detach_in_child(null)),
        }
    }

    /// Serializes the mapping's fd for a child (see [`reduction`]); `type_name` names the
    /// object in the refusal outside a process start.
    pub(crate) fn serialize_as<S: Serializer>(
        &self,
        type_name: &str,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match &self.backing {
            Backing::File(fd) => reduction::serialize_fd(fd.as_fd(), type_name, serializer),
            // (Only a fork pool's channels have such parts; they never leave the pool.)
            Backing::Part { .. } => Err(serde::ser::Error::custom(reduction::refuse(format!(
                "{type_name} objects of a fork pool's channel cannot be sent to another process"
            )))),
        }
    }
}

/// One aligned word of a mapping, as an atomic of its width.
enum Word<'a> {
    W8(&'a AtomicU64),
    W4(&'a AtomicU32),
    W2(&'a AtomicU16),
    W1(&'a AtomicU8),
}

impl Word<'_> {
    fn width(&self) -> usize {
        match self {
            Word::W8(_) => 8,
            Word::W4(_) => 4,
            Word::W2(_) => 2,
            Word::W1(_) => 1,
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if let Backing::File(_) = self.backing {
            // SAFETY: the mapping came from `map_shared` and `&mut self` means no reference
            // into it is alive. (A part is unmapped with the whole, by `Anonymous`.)
            let _ = unsafe { sys::unmap(self.ptr, self.len) };
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory").field("len", &self.len).finish_non_exhaustive()
    }
}

/// A mapping that serializes as [`SharedMemory::serialize_as`] does, naming the object it
/// belongs to (`SendMem(&mem, "Queue")`). The one shared-memory adapter of the crate.
pub(crate) struct SendMem<'a>(pub(crate) &'a SharedMemory, pub(crate) &'static str);

impl Serialize for SendMem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_as(self.1, serializer)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::SharedMemory;
    use crate::sys;

    /// The parts of one anonymous mapping: separate pages, zero-filled, shared with a
    /// forked child part by part. A child that detaches one part no longer reaches it
    /// (its writes there stay its own, and it reads zeros) while the others stay shared.
    #[test]
    fn parts_of_one_mapping_are_shared_with_a_forked_child_and_detached_one_by_one() {
        let parts = SharedMemory::parts::<3>(100).unwrap();
        assert!(parts.iter().all(|part| part.len() == 4096));
        for (k, part) in parts.iter().enumerate() {
            assert_eq!(part.word(0).load(Relaxed), 0);
            part.word(0).store(k as u32 + 1, Relaxed);
        }
        let in_child = || -> i32 {
            if parts[1].detach_in_child(None).is_err() {
                return 3;
            }
            let word = |k: usize| parts[k].word(0);
            if word(1).load(Relaxed) != 0 {
                return 1; // the detached part still shows the parent's value
            }
            if word(0).load(Relaxed) != 1 {
                return 2; // a part kept is not the parent's
            }
            word(0).store(10, Relaxed);
            word(1).store(20, Relaxed);
            word(2).store(30, Relaxed);
            0
        };
        sys::assert_in_forked_child(in_child);
        let words: Vec<u32> = parts.iter().map(|p| p.word(0).load(Relaxed)).collect();
        assert_eq!(words, [10, 2, 30], "the child's writes to the parts it kept, and no other");
    }

    /// A part has no fd: it cannot be sent to another process, and says so.
    #[test]
    fn a_part_of_an_anonymous_mapping_refuses_to_be_sent() {
        let [part] = SharedMemory::parts::<1>(4096).unwrap();
        let (sent, fds) = crate::reduction::collecting_fds(|| {
            postcard::to_allocvec(&super::SendMem(&part, "Connection"))
        });
        let error = sent.unwrap_err();
        assert!(fds.is_empty());
        let refusal = crate::reduction::take_refusal().unwrap_or_else(|| error.to_string());
        assert_eq!(
            refusal,
            "Connection objects of a fork pool's channel cannot be sent to another process"
        );
    }
}
