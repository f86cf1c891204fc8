//! `SharedMemoryManager`: CPython's `multiprocessing.managers.SharedMemoryManager` — a
//! manager's server that remembers the segments made through it and unlinks them all when
//! it shuts down.

use std::fmt;

use super::{Item, ShareableList, SharedMemory};
use crate::Error;
use crate::connection::Address;
use crate::managers::{Manager, ManagerBuilder};

/// A manager whose server unlinks, when it shuts down, every [`SharedMemory`] and
/// [`ShareableList`] made through it. Python:
/// `multiprocessing.managers.SharedMemoryManager`.
///
/// The segments are created in the calling process (as CPython does) and their names
/// handed to the server. Shutting down — [`shutdown`](SharedMemoryManager::shutdown), or
/// the exit function for a manager left running — unlinks them; handles still open keep
/// their mappings, but nobody can attach any more.
///
/// # Differences from CPython
/// - `smm.SharedMemory(size)` and `smm.ShareableList(seq)` are
///   [`shared_memory`](SharedMemoryManager::shared_memory) and
///   [`shareable_list`](SharedMemoryManager::shareable_list); there is no `with` block:
///   call `shutdown` (or let the program's exit do it).
/// - The server is the managers' one (`managers::Manager`'s), started with the fork start
///   method unless [`with_builder`](SharedMemoryManager::with_builder) says otherwise.
///
/// # Examples
///
/// ```
/// use multiprocessing::shared_memory::{Item, SharedMemory, SharedMemoryManager};
///
/// let smm = SharedMemoryManager::new()?;
/// let shm = smm.shared_memory(128)?;
/// let list = smm.shareable_list(vec![Item::Int(1), "two".into()])?;
/// assert_eq!(smm.list_segments()?.len(), 2);
/// smm.shutdown()?;
/// assert!(SharedMemory::attach(shm.name()).is_err(), "unlinked by the server");
/// # let _ = list;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct SharedMemoryManager {
    manager: Manager,
}

impl SharedMemoryManager {
    /// Starts a server with the defaults of [`Manager::new`]. Python:
    /// `SharedMemoryManager(); smm.start()`.
    ///
    /// # Errors
    /// The server could not be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// assert!(smm.process().unwrap().name().starts_with("SharedMemoryManager-"));
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> Result<SharedMemoryManager, Error> {
        SharedMemoryManager::with_builder(ManagerBuilder::new())
    }

    /// Starts a server configured by `builder` (address, key, start method).
    ///
    /// # Errors
    /// The server could not be started.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::managers::ManagerBuilder;
    /// use multiprocessing::shared_memory::SharedMemoryManager;
    ///
    /// let smm = SharedMemoryManager::with_builder(ManagerBuilder::new().authkey(b"key"))?;
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_builder(builder: ManagerBuilder) -> Result<SharedMemoryManager, Error> {
        // The server unlinks segments this program registered through the program's own
        // tracker (bpo-36867): every child start, the server's too, makes sure it runs.
        let manager = builder.class("SharedMemoryManager").start()?;
        pyconc_core::logging::debug(|| {
            format!(
                "SharedMemoryServer started by pid {}",
                manager.process().map_or(0, |p| p.pid().unwrap_or(0))
            )
        });
        Ok(SharedMemoryManager { manager })
    }

    /// Connects to a running `SharedMemoryManager`'s server (another program's, perhaps).
    ///
    /// # Errors
    /// As [`Manager::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::SharedMemoryManager;
    ///
    /// let smm = SharedMemoryManager::new()?;
    /// let key = multiprocessing::current_process().authkey();
    /// let other = SharedMemoryManager::connect(smm.address(), Some(&key))?;
    /// let shm = other.shared_memory(16)?;
    /// assert_eq!(smm.list_segments()?, vec![shm.name().to_owned()]);
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn connect(address: Address, authkey: Option<&[u8]>) -> Result<SharedMemoryManager, Error> {
        Ok(SharedMemoryManager { manager: Manager::connect(address, authkey)? })
    }

    /// A new block of `size` bytes that the server unlinks at shutdown. Python:
    /// `smm.SharedMemory(size)`.
    ///
    /// # Errors
    /// As [`SharedMemory::create`]; the server cannot be reached (the block is then
    /// unlinked again, as CPython does).
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// let shm = smm.shared_memory(64)?;
    /// assert_eq!(shm.size(), 64);
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory, Error> {
        let shm = SharedMemory::create(size)?;
        self.track(shm.name(), || shm.unlink())?;
        Ok(shm)
    }

    /// A new [`ShareableList`] that the server unlinks at shutdown. Python:
    /// `smm.ShareableList(sequence)`.
    ///
    /// # Errors
    /// As [`ShareableList::new`] and [`shared_memory`](SharedMemoryManager::shared_memory).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, SharedMemoryManager};
    ///
    /// let smm = SharedMemoryManager::new()?;
    /// let list = smm.shareable_list(vec![Item::Float(0.5)])?;
    /// assert_eq!(list.get(0)?, Item::Float(0.5));
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn shareable_list(&self, items: Vec<Item>) -> Result<ShareableList, Error> {
        let list = ShareableList::new(items)?;
        self.track(list.shm().name(), || list.shm().unlink())?;
        Ok(list)
    }

    /// The names of the segments the server will unlink (CPython's server method
    /// `list_segments`).
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// assert!(smm.list_segments()?.is_empty());
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn list_segments(&self) -> Result<Vec<String>, Error> {
        self.manager.list_segments()
    }

    /// Has the server forget `name`: it will not unlink it (CPython's
    /// `release_segment`). The segment is then the caller's to unlink.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// let shm = smm.shared_memory(8)?;
    /// smm.release_segment(shm.name())?;
    /// smm.shutdown()?;
    /// shm.unlink()?; // still there: released
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn release_segment(&self, name: &str) -> Result<(), Error> {
        self.manager.release_segment(name)
    }

    /// Unlinks every segment made through this manager and stops its server. Python:
    /// `smm.shutdown()`.
    ///
    /// # Errors
    /// As [`Manager::shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// smm.shutdown()?;
    /// assert!(smm.shared_memory(8).is_err(), "the server is gone");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn shutdown(&self) -> Result<(), Error> {
        self.manager.shutdown()
    }

    /// The server's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// let _address = smm.address();
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn address(&self) -> Address {
        self.manager.address()
    }

    /// The server process, when this handle started it (`SharedMemoryManager-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// let smm = multiprocessing::shared_memory::SharedMemoryManager::new()?;
    /// assert!(smm.process().unwrap().is_alive());
    /// smm.shutdown()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn process(&self) -> Option<&crate::Process> {
        self.manager.process()
    }

    /// Hands `name` to the server; undoes the creation (`unlink`) if it cannot.
    fn track(&self, name: &str, unlink: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
        if let Err(error) = self.manager.track_segment(name) {
            let _ = unlink();
            return Err(error);
        }
        Ok(())
    }
}

impl fmt::Debug for SharedMemoryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemoryManager").field("address", &self.address()).finish()
    }
}
