//! Managers: CPython's `multiprocessing.managers` — a server process that owns shared
//! objects (dicts, lists, namespaces, queues, locks...), and proxies through which any
//! process, on this machine or another, uses them.
//!
//! | Python | Rust |
//! |---|---|
//! | `multiprocessing.Manager()` | [`Manager::new`] |
//! | `BaseManager(address, authkey).start()`, `get_context(m).Manager()` | [`Manager::builder`], [`Context::manager`](crate::Context::manager) |
//! | `BaseManager(address, authkey).connect()` | [`Manager::connect`] |
//! | `manager.address`, `manager.shutdown()` | [`Manager::address`], [`Manager::shutdown`] |
//! | `manager.dict()`, `list()`, `Namespace()`, `Queue()`, `Value()` | [`DictProxy`], [`ListProxy`], [`Namespace`], [`QueueProxy`], [`ValueProxy`] |
//! | `manager.Lock()`, `RLock()`, `Semaphore()`, `BoundedSemaphore()`, `Condition()`, `Event()`, `Barrier()` | [`LockProxy`], [`RLockProxy`], [`SemaphoreProxy`], [`ConditionProxy`], [`EventProxy`], [`BarrierProxy`] |
//!
//! How it works: the server keeps each object with a reference count (a proxy holds one;
//! a proxy sent to another process takes one for it), answers one thread per client
//! connection, and stores values as their serialized bytes — it needs none of the
//! program's types, so another program can use a remote manager. A client on this
//! machine talks to it through shared-memory rings (a duplex [`pipe`]
//! handed over after the authentication handshake), not a socket round trip per call.
//!
//! # Differences from CPython
//! - Values are serde values, compared as their serialized bytes (a dict's keys, a list's
//!   `remove`/`index`/`count`): two values are equal when they serialize alike.
//! - A server that died makes every call fail at once (the connection's end is seen),
//!   where CPython's proxies can wait on a dead socket.
//! - Requests are serde enums, never pickles: an authenticated peer can make the server
//!   store and return bytes, not run code.

mod client;
mod containers;
mod protocol;
mod proxy;
mod server;
mod sync;
mod user;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use pyconc_core::exit::Finalize;
use pyconc_core::sync::lock;

pub use containers::{DictProxy, ListProxy, Namespace, QueueProxy, ValueProxy};
pub use sync::{BarrierProxy, ConditionProxy, EventProxy, LockProxy, RLockProxy, SemaphoreProxy};
pub use user::{Failed, ProxyRef, SharedType, decode_args, encode_result};

use client::{Server, request};
use protocol::{Kind, Reply, Request};
use proxy::{BaseProxy, unexpected};
use server::ServerArgs;
use user::Registered;

use crate::connection::Address;
use crate::{Error, Process, StartMethod, pipe, sys};

/// How long a starting manager waits for its server to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `shutdown` waits for the server to exit before it terminates it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A manager: a server process that owns shared objects, and the means to make them.
///
/// Python: `multiprocessing.Manager()` (a started `SyncManager`), or a `BaseManager`
/// connected to a running server. The handle that started the server shuts it down when
/// it drops, at exit, or on [`shutdown`](Manager::shutdown); a handle from
/// [`connect`](Manager::connect) leaves it running. `Send + Sync`.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, managers::Manager};
///
/// let manager = Manager::new()?;
/// let shared = manager.list::<u32>()?;
/// let children: Vec<Process> = (0..3)
///     .map(|i| {
///         let shared = shared.clone();
///         Process::new(move || shared.append(i).unwrap())
///     })
///     .collect();
/// for child in &children { child.start()?; }
/// for child in &children { child.join()?; }
/// let mut got = shared.to_vec()?;
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Manager {
    server: Server,
    /// The server process and whether it was shut down, when this handle started it.
    owned: Option<Arc<Owned>>,
    finalizer: Option<Finalize>,
}

/// A server process this handle started.
struct Owned {
    process: Process,
    done: AtomicBool,
    /// Serializes `shutdown` calls.
    shutting: Mutex<()>,
}

impl Owned {
    /// Asks the server to exit, waits a moment, terminates it if it did not.
    fn shutdown(&self, server: &Server) -> Result<(), Error> {
        let _one = lock(&self.shutting);
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // The reply may not come: the server exits right after sending it.
        let _ = request(server, &Request::Shutdown);
        if !self.process.join_timeout(SHUTDOWN_GRACE)? {
            self.process.terminate()?;
            self.process.join()?;
        }
        Ok(())
    }
}

impl Manager {
    /// Starts a manager with the defaults: a fresh abstract Unix address, this process's
    /// [`authkey`](crate::Process::authkey), the fork start method.
    ///
    /// Python: `multiprocessing.Manager()`.
    ///
    /// # Errors
    /// The server process could not be started, or could not listen.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<String, i32>()?;
    /// d.set("answer".into(), 42)?;
    /// assert_eq!(d.get(&"answer".into())?, Some(42));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> Result<Manager, Error> {
        ManagerBuilder::new().start()
    }

    /// A builder for a manager at a given address, with a given key or start method.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{StartMethod, connection::Address, managers::Manager};
    ///
    /// let manager = Manager::builder()
    ///     .address(Address::Tcp("127.0.0.1:0".parse().unwrap()))
    ///     .authkey(b"secret")
    ///     .start_method(StartMethod::Fork)
    ///     .start()?;
    /// let Address::Tcp(bound) = manager.address() else { unreachable!() };
    /// assert_ne!(bound.port(), 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::new()
    }

    /// Connects to a running manager's server (started by another handle, process or
    /// machine). `authkey` `None`: this process's key.
    ///
    /// Python: `BaseManager(address, authkey).connect()`.
    ///
    /// # Errors
    /// [`Error::AuthenticationError`] with CPython's text for a wrong key; an OS error
    /// when nothing listens there.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::managers::Manager;
    ///
    /// let started = Manager::builder().authkey(b"k").start()?;
    /// let connected = Manager::connect(started.address(), Some(b"k"))?;
    /// let v = connected.value(5u8)?;
    /// assert_eq!(v.get()?, 5);
    /// let wrong = Manager::connect(started.address(), Some(b"nope"));
    /// assert!(matches!(wrong, Err(multiprocessing::Error::AuthenticationError(_))));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn connect(address: Address, authkey: Option<&[u8]>) -> Result<Manager, Error> {
        let authkey = authkey.map_or_else(|| crate::current_process().authkey(), <[u8]>::to_vec);
        let server = Server { address, authkey };
        client::remember_key(&server.address, &server.authkey);
        // CPython's connect makes one round trip: the address and the key work.
        match request(&server, &Request::NumberOfObjects)? {
            Reply::Count(_) => Ok(Manager { server, owned: None, finalizer: None }),
            other => Err(unexpected(&other)),
        }
    }

    /// The server's address (a TCP port 0 asked for is the port chosen).
    /// Python: `manager.address`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(matches!(manager.address(), multiprocessing::connection::Address::Abstract(_)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn address(&self) -> Address {
        self.server.address.clone()
    }

    /// Stops the server; its objects are gone, and every proxy call fails from now on.
    /// Python: `manager.shutdown()`. Also done when the handle that started the server
    /// drops, and at exit.
    ///
    /// # Errors
    /// The server process could not be waited for or terminated; for a connected
    /// handle, the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// manager.shutdown()?;
    /// assert!(d.len().is_err(), "the server is gone");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn shutdown(&self) -> Result<(), Error> {
        match &self.owned {
            Some(owned) => owned.shutdown(&self.server),
            None => match request(&self.server, &Request::Shutdown) {
                Ok(_) | Err(Error::EOFError) => Ok(()),
                Err(error) => Err(error),
            },
        }
    }

    /// The server process, when this handle started it (CPython's `manager._process`):
    /// its pid, name (`SyncManager-N`), liveness.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let server = manager.process().expect("started here");
    /// assert!(server.name().starts_with("SyncManager-") && server.is_alive());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn process(&self) -> Option<&Process> {
        self.owned.as_ref().map(|owned| &owned.process)
    }

    /// How many objects the server holds (CPython's `_number_of_objects()`, which its
    /// tests use to check that objects are freed).
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(manager.number_of_objects()?, 1);
    /// drop(d);
    /// assert_eq!(manager.number_of_objects()?, 0, "freed with its last proxy");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn number_of_objects(&self) -> Result<usize, Error> {
        match request(&self.server, &Request::NumberOfObjects)? {
            Reply::Count(n) => Ok(n as usize),
            other => Err(unexpected(&other)),
        }
    }

    /// Has the server unlink segment `name` (without its `/`) when it shuts down:
    /// CPython's `SharedMemoryServer.track_segment`, for `SharedMemoryManager`.
    pub(crate) fn track_segment(&self, name: &str) -> Result<(), Error> {
        match request(&self.server, &Request::TrackSegment(name.to_owned()))? {
            Reply::Unit => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// CPython's `release_segment`: the server no longer unlinks `name`.
    pub(crate) fn release_segment(&self, name: &str) -> Result<(), Error> {
        match request(&self.server, &Request::ReleaseSegment(name.to_owned()))? {
            Reply::Unit => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// CPython's `list_segments`: the names the server will unlink.
    pub(crate) fn list_segments(&self) -> Result<Vec<String>, Error> {
        match request(&self.server, &Request::ListSegments)? {
            Reply::Names(names) => Ok(names),
            other => Err(unexpected(&other)),
        }
    }

    fn make(&self, kind: Kind) -> Result<BaseProxy, Error> {
        BaseProxy::create(&self.server, kind)
    }

    /// A new shared dict. Python: `manager.dict()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, String>()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, Error>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        self.make(Kind::Dict).map(DictProxy::from_base)
    }

    /// A new shared list. Python: `manager.list()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.list::<u8>()?.len()?, 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn list<T>(&self) -> Result<ListProxy<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.make(Kind::List).map(ListProxy::from_base)
    }

    /// A new namespace. Python: `manager.Namespace()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(manager.namespace()?.names()?.is_empty());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn namespace(&self) -> Result<Namespace, Error> {
        self.make(Kind::Namespace).map(Namespace::from_base)
    }

    /// A new queue of at most `maxsize` items (0: no bound). Python: `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(manager.queue::<u8>(0)?.empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.make(Kind::Queue { maxsize }).map(QueueProxy::from_base)
    }

    /// A new lock. Python: `manager.Lock()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(manager.lock()?.try_acquire()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockProxy, Error> {
        self.make(Kind::Lock).map(LockProxy::from_base)
    }

    /// A new reentrant lock. Python: `manager.RLock()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let r = manager.rlock()?;
    /// assert!(r.try_acquire()? && r.try_acquire()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn rlock(&self) -> Result<RLockProxy, Error> {
        self.make(Kind::RLock).map(RLockProxy::from_base)
    }

    /// A new event. Python: `manager.Event()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(!manager.event()?.is_set()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn event(&self) -> Result<EventProxy, Error> {
        self.make(Kind::Event).map(EventProxy::from_base)
    }

    /// A new semaphore with `value` permits. Python: `manager.Semaphore(value)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(!manager.semaphore(0)?.try_acquire()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn semaphore(&self, value: u32) -> Result<SemaphoreProxy, Error> {
        self.make(Kind::Semaphore { value, bounded: false }).map(SemaphoreProxy::from_base)
    }

    /// A new bounded semaphore: releasing past `value` fails.
    /// Python: `manager.BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let s = manager.bounded_semaphore(1)?;
    /// assert_eq!(s.release().unwrap_err().to_string(), "Semaphore released too many times");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn bounded_semaphore(&self, value: u32) -> Result<SemaphoreProxy, Error> {
        self.make(Kind::Semaphore { value, bounded: true }).map(SemaphoreProxy::from_base)
    }

    /// A new condition variable (over its own reentrant lock). Python: `manager.Condition()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let c = manager.condition()?;
    /// c.acquire()?;
    /// c.release()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn condition(&self) -> Result<ConditionProxy, Error> {
        self.make(Kind::Condition).map(ConditionProxy::from_base)
    }

    /// A new barrier for `parties` callers. Python: `manager.Barrier(parties)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `parties must be > 0`; the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.barrier(0).unwrap_err().to_string(), "parties must be > 0");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn barrier(&self, parties: u32) -> Result<BarrierProxy, Error> {
        self.make(Kind::Barrier { parties }).map(BarrierProxy::from_base)
    }

    /// A new object of a type registered on the builder
    /// ([`ManagerBuilder::register`]), made in the server from `args`; its proxy.
    /// Python: `manager.TypeId(*args)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] when the server has no such type registered, or registered
    /// it with a constructor of another argument type (`create(10)` is an `i32`);
    /// [`Error::RuntimeError`] when the constructor panicked; the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// pub struct Flag(bool);
    /// multiprocessing::shared_type! {
    ///     /// A flag.
    ///     pub proxy FlagProxy for Flag { fn flip(&mut self) -> bool; }
    /// }
    /// impl Flag {
    ///     fn flip(&mut self) -> bool { self.0 = !self.0; self.0 }
    /// }
    ///
    /// let manager = multiprocessing::managers::Manager::builder()
    ///     .register::<FlagProxy, bool>(Flag)
    ///     .start()?;
    /// let flag: FlagProxy = manager.create(false)?;
    /// assert!(flag.flip()?);
    /// let unregistered = multiprocessing::managers::Manager::new()?;
    /// assert!(unregistered.create::<FlagProxy, bool>(false).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn create<P, A>(&self, args: A) -> Result<P, Error>
    where
        P: SharedType,
        A: Serialize,
    {
        let args = ByteBuf::from(crate::codec::encode(&args)?);
        let args_type = std::any::type_name::<A>().to_owned();
        let kind = Kind::User { typeid: P::TYPEID.to_owned(), args_type, args };
        self.make(kind).map(|base| P::from_proxy(ProxyRef(base)))
    }

    /// A new shared value. Python: `manager.Value(typecode, value)`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.value((1, 'a'))?.get()?, (1, 'a'));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn value<T>(&self, value: T) -> Result<ValueProxy<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let bytes = ByteBuf::from(crate::codec::encode(&value)?);
        self.make(Kind::Value(bytes)).map(ValueProxy::from_base)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(finalizer) = &self.finalizer {
            finalizer.cancel();
        }
        if let Some(owned) = &self.owned {
            let _ = owned.shutdown(&self.server);
        }
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.server.address)
            .field("started_here", &self.owned.is_some())
            .finish()
    }
}

/// Builds a [`Manager`]: CPython's `BaseManager(address=, authkey=, ctx=)` and `start()`.
///
/// # Examples
///
/// ```
/// use multiprocessing::{StartMethod, managers::Manager};
///
/// let manager = Manager::builder().start_method(StartMethod::Fork).start()?;
/// assert_eq!(manager.value(1u8)?.get()?, 1);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[must_use]
#[derive(Default)]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    start_method: Option<StartMethod>,
    registry: Vec<Registered>,
    /// The class name the server process is named after (`SyncManager-N`); `None`:
    /// `SyncManager`.
    class: Option<&'static str>,
}

impl ManagerBuilder {
    /// The defaults (see [`Manager::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::ManagerBuilder::new().start()?;
    /// # let _ = manager;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Names the server process after `class` (`SharedMemoryManager-N`).
    pub(crate) fn class(mut self, class: &'static str) -> ManagerBuilder {
        self.class = Some(class);
        self
    }

    /// Where the server listens: a Unix path, an abstract name or a TCP address (port 0:
    /// any free port). Python: `address=`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{connection::Address, managers::Manager};
    ///
    /// let name = format!("doc-manager-{}", std::process::id()).into_bytes();
    /// let manager = Manager::builder().address(Address::Abstract(name.clone())).start()?;
    /// assert_eq!(manager.address(), Address::Abstract(name));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn address(mut self, address: Address) -> ManagerBuilder {
        self.address = Some(address);
        self
    }

    /// The key clients must know (default: this process's authkey, which its children
    /// inherit). Python: `authkey=`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::builder().authkey(b"k").start()?;
    /// # let _ = manager;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn authkey(mut self, authkey: &[u8]) -> ManagerBuilder {
        self.authkey = Some(authkey.to_vec());
        self
    }

    /// How the server process starts (default: fork). Python: `ctx=`. Spawn and
    /// forkserver need [`init()`](crate::init) as the first line of `main`, as for any
    /// process.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use multiprocessing::{StartMethod, managers::Manager};
    ///
    /// let manager = Manager::builder().start_method(StartMethod::Spawn).start()?;
    /// # let _ = manager;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> ManagerBuilder {
        self.start_method = Some(method);
        self
    }

    /// Lets the server make objects of `P`'s type with `constructor` (from serialized
    /// `A`), for [`Manager::create`]: CPython's `BaseManager.register(typeid, callable)`.
    /// `P` is declared with [`shared_type!`](crate::shared_type).
    ///
    /// # Examples
    ///
    /// ```
    /// pub struct Tally(Vec<String>);
    /// impl Tally {
    ///     fn add(&mut self, name: String) -> usize { self.0.push(name); self.0.len() }
    /// }
    /// multiprocessing::shared_type! {
    ///     /// A tally in the manager.
    ///     pub proxy TallyProxy for Tally { fn add(&mut self, name: String) -> usize; }
    /// }
    ///
    /// let manager = multiprocessing::managers::Manager::builder()
    ///     .register::<TallyProxy, ()>(|()| Tally(Vec::new()))
    ///     .start()?;
    /// let tally: TallyProxy = manager.create(())?;
    /// assert_eq!(tally.add("a".into())?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn register<P, A>(mut self, constructor: fn(A) -> P::Target) -> ManagerBuilder
    where
        P: SharedType,
        A: Serialize + DeserializeOwned + 'static,
    {
        self.registry.retain(|r| r.typeid != P::TYPEID);
        self.registry.push(Registered::of::<P, A>(constructor));
        self
    }

    /// Starts the server process, named `SyncManager-N` as CPython's, and waits until it
    /// listens. Python: `manager.start()`.
    ///
    /// # Errors
    /// The process could not be started; the address could not be bound (the server's
    /// error); the server did not report within 30 seconds.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::builder().start()?;
    /// # let _ = manager;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn start(self) -> Result<Manager, Error> {
        let address = match self.address {
            Some(address) => address,
            None => {
                let mut tag = [0u8; 8];
                sys::fill_random(&mut tag)?;
                Address::Abstract(
                    format!(
                        "pyconc-manager-{}-{:016x}",
                        std::process::id(),
                        u64::from_ne_bytes(tag)
                    )
                    .into_bytes(),
                )
            }
        };
        let authkey = self.authkey.unwrap_or_else(|| crate::current_process().authkey());
        let (report, reporter) = pipe(false)?;
        let args = ServerArgs {
            address,
            authkey: authkey.clone(),
            report: reporter,
            registry: self.registry,
        };
        let process = Process::builder()
            .start_method(self.start_method.unwrap_or(StartMethod::Fork))
            .daemon(true)
            .call(server::main, args);
        let number = process.name().rsplit('-').next().unwrap_or_default().to_owned();
        process.set_name(format!("{}-{number}", self.class.unwrap_or("SyncManager")));
        process.start()?;
        let address = wait_for_report(&process, &report)?;
        client::remember_key(&address, &authkey);
        let server = Server { address, authkey };
        let owned =
            Arc::new(Owned { process, done: AtomicBool::new(false), shutting: Mutex::new(()) });
        // CPython's `Finalize(self, type(self)._finalize_manager, exitpriority=0)`.
        let (at_exit, for_exit) = (Arc::clone(&owned), server.clone());
        let finalizer = Finalize::new(move || drop(at_exit.shutdown(&for_exit)), Some(0));
        Ok(Manager { server, owned: Some(owned), finalizer: Some(finalizer) })
    }
}

/// The address the new server reports, or why it has none.
fn wait_for_report(process: &Process, report: &crate::Connection) -> Result<Address, Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if report.poll(Some(Duration::from_millis(50)))? {
            let reported = report.recv::<Result<Address, String>>();
            return match reported {
                Ok(Ok(address)) => Ok(address),
                Ok(Err(message)) => {
                    let _ = process.join();
                    Err(Error::OsError(std::io::Error::other(format!(
                        "the manager's server could not listen: {message}"
                    ))))
                }
                Err(error) => {
                    let _ = process.terminate();
                    let _ = process.join();
                    Err(error)
                }
            };
        }
        if !process.is_alive() || Instant::now() >= deadline {
            let _ = process.terminate();
            let _ = process.join();
            return Err(Error::OsError(std::io::Error::other(format!(
                "the manager's server did not start (exitcode {:?})",
                process.exitcode()
            ))));
        }
    }
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("start_method", &self.start_method)
            .finish_non_exhaustive()
    }
}
