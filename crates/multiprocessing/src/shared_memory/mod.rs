//! Named shared memory that any process can open: CPython's
//! `multiprocessing.shared_memory`.
//!
//! A [`SharedMemory`] is a POSIX shared-memory object (`shm_open`, a file of `/dev/shm`)
//! mapped into each process that opens it. Its name is CPython's: [`SharedMemory::create`]
//! picks a fresh `psm_` name as CPython does, and `SharedMemory(name=...)` in python3
//! opens a segment a Rust program made, and the other way round. A [`ShareableList`] has
//! CPython's byte layout, so a list made by either side is read and written by the other.
//!
//! Segments a program created and never unlinked are unlinked once the program is gone,
//! by the resource tracker — after a normal exit (with CPython's warning about leaked
//! objects) and after a `SIGKILL` too. The tracker is CPython's `resource_tracker`: a
//! helper process started on first use and shared by every process of the program (forked
//! children inherit its socket, spawn and forkserver children receive it), which unlinks
//! what is still registered once the last of them is gone. It runs in a session of its
//! own, so a signal to the program's process group does not take it down first. Attaching never registers a
//! segment, so one program never unlinks what another still uses (CPython's gh-82300);
//! [`Options::track`] opts out for created ones too (CPython 3.13's `track=False`).
//!
//! [`SharedMemoryManager`] (CPython's `multiprocessing.managers.SharedMemoryManager`)
//! unlinks every segment made through it when it shuts down.

mod list;
mod manager;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{EMBEDDED_NUL, SHM_CLOSED, SHM_EMPTY, SHM_ZERO_SIZE, os_error_on};
use crate::{Error, heap, resource_tracker, sys};

pub use list::{Item, ShareableList};
pub use manager::SharedMemoryManager;

/// CPython's prefix of the names it makes (`/psm_` and 8 hex digits).
const NAME_PREFIX: &str = "/psm_";

/// A block of named shared memory: Python's `multiprocessing.shared_memory.SharedMemory`.
///
/// `create` makes a new block (with a fresh name, or `create_named`'s), `attach` opens an
/// existing one by name — in this process, another one, or a python3 program. Reads and
/// writes are bounds-checked copies ([`read_at`](SharedMemory::read_at),
/// [`write_at`](SharedMemory::write_at)) that are sound whatever other processes do
/// meanwhile; [`as_slice`](SharedMemory::as_slice) and
/// [`as_mut_slice`](SharedMemory::as_mut_slice) are the zero-copy typed views for bulk
/// data.
///
/// # Differences from CPython
/// - `buf` (a `memoryview`) is `read_at`/`write_at` and the typed views; `close` may be
///   called while views exist: the mapping goes when the last of them does.
/// - `SharedMemory(name, create=True, size)` is `create_named`; a leading `/` of a name is
///   not doubled (`'/x'` and `'x'` name the same segment, as glibc treats them).
/// - Attaching does not register the segment with the resource tracker (CPython 3.11 does,
///   and then unlinks a segment it only attached to when it exits: gh-82300).
/// - Dropping the handle closes it, as CPython's `__del__`; it never unlinks.
/// - Serialized (as a `Process` argument, a queue item), it travels as its name and is
///   attached again on arrival, as CPython pickles it.
///
/// # Examples
///
/// ```
/// use multiprocessing::shared_memory::SharedMemory;
///
/// let shm = SharedMemory::create(1024)?;
/// shm.write_at(0, b"hello")?;
/// let other = SharedMemory::attach(shm.name())?; // by name, as another process would
/// let mut out = [0u8; 5];
/// other.read_at(0, &mut out)?;
/// assert_eq!(&out, b"hello");
/// assert!(shm.name().starts_with("psm_"));
/// shm.unlink()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct SharedMemory {
    /// The name with its leading `/`, as `shm_open` takes it.
    name: String,
    size: usize,
    /// The mapping; `None` once closed. Views hold their own reference.
    mapping: Mutex<Option<Arc<heap::SharedMemory>>>,
    /// Whether `unlink` tells the resource tracker (CPython 3.13's `track`).
    track: bool,
}

/// How a [`SharedMemory`] is opened: CPython 3.13's `track` argument.
///
/// # Examples
///
/// ```
/// use multiprocessing::shared_memory::SharedMemory;
///
/// // Not registered with the resource tracker: this program unlinks it itself.
/// let shm = SharedMemory::options().track(false).create(4096)?;
/// shm.unlink()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Options {
    track: bool,
}

impl Options {
    /// Whether a segment this creates is registered with the resource tracker (unlinked
    /// when the program is gone, unless unlinked before), and `unlink` unregisters it.
    /// Default `true`.
    pub fn track(mut self, track: bool) -> Options {
        self.track = track;
        self
    }

    /// As [`SharedMemory::create`].
    ///
    /// # Errors
    /// As `SharedMemory::create`.
    pub fn create(self, size: usize) -> Result<SharedMemory, Error> {
        if size == 0 {
            return Err(Error::value(SHM_ZERO_SIZE));
        }
        loop {
            let mut random = [0u8; 4];
            sys::fill_random(&mut random)?;
            let name = format!("{NAME_PREFIX}{}", hex(&random));
            match self.open(name, Some(size)) {
                Err(Error::OsError(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                other => return other,
            }
        }
    }

    /// As [`SharedMemory::create_named`].
    ///
    /// # Errors
    /// As `SharedMemory::create_named`.
    pub fn create_named(self, name: &str, size: usize) -> Result<SharedMemory, Error> {
        if size == 0 {
            return Err(Error::value(SHM_ZERO_SIZE));
        }
        self.open(full_name(name), Some(size))
    }

    /// As [`SharedMemory::attach`] (attaching never registers a segment).
    ///
    /// # Errors
    /// As `SharedMemory::attach`.
    pub fn attach(self, name: &str) -> Result<SharedMemory, Error> {
        self.open(full_name(name), None)
    }

    /// Opens `name` (with its `/`); creates it with `size` bytes when given.
    fn open(self, name: String, size: Option<usize>) -> Result<SharedMemory, Error> {
        let c_name =
            std::ffi::CString::new(name.clone()).map_err(|_| Error::value(EMBEDDED_NUL))?;
        let fd = sys::shm_open(&c_name, size.is_some()).map_err(|e| os_error_on(e, &name))?;
        let mapped = (|| {
            if let Some(size) = size {
                sys::set_file_size(std::os::fd::AsFd::as_fd(&fd), size)?;
            }
            if sys::file_size(std::os::fd::AsFd::as_fd(&fd))? == 0 {
                return Err(Error::value(SHM_EMPTY));
            }
            heap::SharedMemory::map(fd)
        })();
        let mapping = match mapped {
            Ok(mapping) => mapping,
            Err(error) => {
                if size.is_some() {
                    // CPython unlinks what it created when it cannot map it.
                    let _ = sys::shm_unlink(&c_name);
                }
                return Err(error);
            }
        };
        let track = self.track && size.is_some();
        if track {
            if let Err(error) = resource_tracker::register(&name) {
                let _ = sys::shm_unlink(&c_name);
                return Err(error);
            }
        }
        Ok(SharedMemory {
            size: mapping.len(),
            name,
            mapping: Mutex::new(Some(Arc::new(mapping))),
            track: self.track,
        })
    }
}

impl SharedMemory {
    /// A new block of `size` bytes (zero-filled) with a fresh name of CPython's form
    /// (`psm_` and 8 hex digits), registered with the resource tracker. Python:
    /// `SharedMemory(create=True, size=size)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `'size' must be a positive number different from zero` for 0;
    /// [`Error::OsError`] when the OS refuses (no room in `/dev/shm`, limits).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::SharedMemory;
    ///
    /// let shm = SharedMemory::create(10)?;
    /// assert_eq!(shm.size(), 10);
    /// assert_eq!(
    ///     SharedMemory::create(0).unwrap_err().to_string(),
    ///     "'size' must be a positive number different from zero"
    /// );
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn create(size: usize) -> Result<SharedMemory, Error> {
        SharedMemory::options().create(size)
    }

    /// A new block named `name`. Python: `SharedMemory(name, create=True, size=size)`.
    ///
    /// # Errors
    /// As [`create`](SharedMemory::create); `FileExistsError` (an [`Error::OsError`] of
    /// kind `AlreadyExists`, CPython's text `[Errno 17] File exists: '/name'`) when the
    /// name is taken; `[Errno 22] Invalid argument` for a name with a `/` inside;
    /// [`Error::ValueError`] `embedded null character`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::SharedMemory;
    ///
    /// let name = format!("pyconc_doc_{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 64)?;
    /// let again = SharedMemory::create_named(&name, 64).unwrap_err();
    /// assert_eq!(again.to_string(), format!("[Errno 17] File exists: '/{name}'"));
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, Error> {
        SharedMemory::options().create_named(name, size)
    }

    /// Opens the existing block `name` (with or without its leading `/`). Python:
    /// `SharedMemory(name)`. Does not register it with the resource tracker.
    ///
    /// # Errors
    /// `FileNotFoundError` (an [`Error::OsError`] of kind `NotFound`, `[Errno 2] No such
    /// file or directory: '/name'`); [`Error::ValueError`] `cannot mmap an empty file` for
    /// a block of size 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::SharedMemory;
    ///
    /// let missing = SharedMemory::attach("psm_00000000_missing").unwrap_err();
    /// assert_eq!(
    ///     missing.to_string(),
    ///     "[Errno 2] No such file or directory: '/psm_00000000_missing'"
    /// );
    /// ```
    pub fn attach(name: &str) -> Result<SharedMemory, Error> {
        SharedMemory::options().attach(name)
    }

    /// Options for opening a block (CPython 3.13's `track`).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::options().track(true).create(8)?;
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn options() -> Options {
        Options { track: true }
    }

    /// The block's name, without the leading `/` (as CPython reports it).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(8)?;
    /// assert_eq!(shm.name().len(), "psm_".len() + 8);
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// The block's size in bytes: what the OS reports for it (`fstat`), as CPython's.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(100)?;
    /// assert_eq!(shm.size(), 100);
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Copies bytes `offset..offset + out.len()` of the block into `out`. Another process
    /// may write the same bytes meanwhile: the copy may then mix old and new words, as a
    /// copy from CPython's `buf` can, but it is never undefined behaviour.
    ///
    /// # Errors
    /// [`Error::ValueError`] for a range outside the block, or after
    /// [`close`](SharedMemory::close) (`mmap closed or invalid`).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(4)?;
    /// let mut out = [9u8; 4];
    /// shm.read_at(0, &mut out)?;
    /// assert_eq!(out, [0; 4]); // a new block is zero-filled
    /// assert!(shm.read_at(1, &mut out).is_err());
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), Error> {
        let mapping = self.mapping_for(offset, out.len())?;
        mapping.load_bytes(offset, out);
        Ok(())
    }

    /// Copies `bytes` into the block at `offset` (see [`read_at`](SharedMemory::read_at)).
    ///
    /// # Errors
    /// As `read_at`.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(4)?;
    /// shm.write_at(2, &[7, 8])?;
    /// let mut out = [0u8; 4];
    /// shm.read_at(0, &mut out)?;
    /// assert_eq!(out, [0, 0, 7, 8]);
    /// assert!(shm.write_at(3, &[1, 2]).is_err());
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), Error> {
        let mapping = self.mapping_for(offset, bytes.len())?;
        mapping.store_bytes(offset, bytes);
        Ok(())
    }

    /// The block as a slice of `T` (as many whole `T`s as fit), without copying: the
    /// zero-copy view for bulk data. The mapping stays valid while the view lives, even
    /// after [`close`](SharedMemory::close).
    ///
    /// # Safety
    /// While the view lives, nothing may write the block — no thread of this process
    /// through another handle or view, and no other process (Rust or Python). Shared
    /// memory is outside Rust's aliasing rules' reach: keeping to this is the caller's
    /// protocol (write, then hand the name over; or guard the block with a cross-process
    /// lock). Reading while another writes is a data race, which is undefined behaviour.
    ///
    /// # Errors
    /// [`Error::ValueError`] after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(32)?;
    /// shm.write_at(8, &7u64.to_ne_bytes())?;
    /// // SAFETY: nothing else writes the block while `view` lives.
    /// let view = unsafe { shm.as_slice::<u64>()? };
    /// assert_eq!(view[1], 7);
    /// assert_eq!(view.len(), 4);
    /// drop(view);
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub unsafe fn as_slice<T: bytemuck::Pod>(&self) -> Result<View<T>, Error> {
        Ok(View { mapping: self.mapping()?, _type: PhantomData })
    }

    /// The block as a mutable slice of `T`, without copying (see
    /// [`as_slice`](SharedMemory::as_slice)).
    ///
    /// # Safety
    /// While the view lives, nothing else may read or write the block — no other handle
    /// or view in this process, no other process.
    ///
    /// # Errors
    /// [`Error::ValueError`] after `close`.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(4096)?;
    /// // SAFETY: no other handle, view or process uses the block meanwhile.
    /// let mut view = unsafe { shm.as_mut_slice::<f64>()? };
    /// view.fill(1.5);
    /// drop(view);
    /// let mut out = [0u8; 8];
    /// shm.read_at(8, &mut out)?;
    /// assert_eq!(f64::from_ne_bytes(out), 1.5);
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub unsafe fn as_mut_slice<T: bytemuck::Pod>(&self) -> Result<ViewMut<T>, Error> {
        Ok(ViewMut(View { mapping: self.mapping()?, _type: PhantomData }))
    }

    /// Closes this handle: the block stays for every other handle and process. Python:
    /// `SharedMemory.close()`. Reads and writes through this handle fail afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(8)?;
    /// let other = multiprocessing::shared_memory::SharedMemory::attach(shm.name())?;
    /// other.close();
    /// assert_eq!(other.write_at(0, b"x").unwrap_err().to_string(), "mmap closed or invalid");
    /// shm.write_at(0, b"x")?; // the block itself is still there
    /// shm.unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) {
        pyconc_core::sync::lock(&self.mapping).take();
    }

    /// Removes the block's name: no process can attach any more, and the memory goes
    /// once every process has closed it. Python: `SharedMemory.unlink()`; call it once,
    /// from one process. Unregisters the block from the resource tracker.
    ///
    /// # Errors
    /// `FileNotFoundError` when the name is already gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = multiprocessing::shared_memory::SharedMemory::create(8)?;
    /// shm.unlink()?;
    /// assert!(multiprocessing::shared_memory::SharedMemory::attach(shm.name()).is_err());
    /// assert!(shm.unlink().is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn unlink(&self) -> Result<(), Error> {
        let c_name =
            std::ffi::CString::new(self.name.clone()).map_err(|_| Error::value(EMBEDDED_NUL))?;
        sys::shm_unlink(&c_name).map_err(|e| os_error_on(e, &self.name))?;
        if self.track {
            resource_tracker::unregister_if_running(&self.name)?;
        }
        Ok(())
    }

    fn mapping(&self) -> Result<Arc<heap::SharedMemory>, Error> {
        pyconc_core::sync::lock(&self.mapping).clone().ok_or(Error::value(SHM_CLOSED))
    }

    fn mapping_for(&self, offset: usize, len: usize) -> Result<Arc<heap::SharedMemory>, Error> {
        let mapping = self.mapping()?;
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(mapping),
            _ => Err(Error::ValueError(
                format!(
                    "bytes {offset}..{} are outside the shared memory's {} bytes",
                    offset.saturating_add(len),
                    self.size
                )
                .into(),
            )),
        }
    }
}

impl fmt::Debug for SharedMemory {
    /// CPython's repr: `SharedMemory('psm_0a1b2c3d', size=1024)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedMemory('{}', size={})", self.name(), self.size)
    }
}

impl Serialize for SharedMemory {
    /// As CPython's `__reduce__`: the name; the receiver attaches.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedMemory, D::Error> {
        let name = String::deserialize(deserializer)?;
        SharedMemory::attach(&name)
            .map_err(|e| serde::de::Error::custom(crate::reduction::refuse(e.to_string())))
    }
}

/// A zero-copy view of a [`SharedMemory`] as `&[T]` (see [`SharedMemory::as_slice`]).
pub struct View<T> {
    mapping: Arc<heap::SharedMemory>,
    _type: PhantomData<T>,
}

impl<T: bytemuck::Pod> std::ops::Deref for View<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let len = self.mapping.len() / std::mem::size_of::<T>().max(1);
        // SAFETY: the mapping is page-aligned (any `T`'s alignment up to a page) and lives
        // as long as `self.mapping`; `len` whole `T`s fit in it; every bit pattern is a
        // valid `T` (`Pod`); the caller of `as_slice` promised that nothing writes it
        // while the view lives.
        unsafe { std::slice::from_raw_parts(self.mapping.as_ptr().cast::<T>(), len) }
    }
}

impl<T: bytemuck::Pod + fmt::Debug> fmt::Debug for View<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// A zero-copy view of a [`SharedMemory`] as `&mut [T]` (see
/// [`SharedMemory::as_mut_slice`]).
pub struct ViewMut<T>(View<T>);

impl<T: bytemuck::Pod> std::ops::Deref for ViewMut<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for ViewMut<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let len = self.0.len();
        // SAFETY: as `View::deref`, and the caller of `as_mut_slice` promised that nothing
        // else reads or writes the block while this view lives; `&mut self` makes this
        // the only slice of it from this view.
        unsafe { std::slice::from_raw_parts_mut(self.0.mapping.as_ptr().cast::<T>(), len) }
    }
}

impl<T: bytemuck::Pod + fmt::Debug> fmt::Debug for ViewMut<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewMut").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// `name` as `shm_open` takes it: one leading `/`.
fn full_name(name: &str) -> String {
    format!("/{}", name.trim_start_matches('/'))
}

/// Lower-case hex of `bytes` (CPython's `secrets.token_hex`).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
