//! The manager's server: CPython's `managers.Server` — the process that owns the
//! objects. It accepts authenticated connections (one thread each, so that one client's
//! slow or blocking call stalls no other) and answers requests; a local client moves its
//! connection onto shared-memory rings first ([`Hello::Upgrade`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use pyconc_core::sync::lock;

use super::protocol::{Failure, Hello, Kind, Op, Reply, Request, Wait};
use super::user::{Failed, Held, Registered};
use crate::connection::{Address, Listener, recv_handle};
use crate::dummy::Queue;
use crate::{Connection, codec, resource_tracker, sys};

/// What the process that starts a server gives it.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerArgs {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    /// Where the server reports the address it bound (or why it could not).
    pub(crate) report: Connection,
    /// The types of the user's it can make.
    pub(crate) registry: Vec<Registered>,
}

/// The server process's body.
pub(crate) fn main(args: ServerArgs) {
    // bpo-36368: a Ctrl-C meant for the program does not take its manager down.
    sys::ignore_interrupts();
    let listener = match Listener::bind(args.address, Some(&args.authkey)) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = args.report.send(&Err::<Address, String>(error.to_string()));
            return;
        }
    };
    if args.report.send(&Ok::<Address, String>(listener.address())).is_err() {
        return;
    }
    drop(args.report);
    let store = Arc::new(Store {
        objects: Mutex::default(),
        next: AtomicU64::new(0),
        registry: args.registry.into_iter().map(|r| (r.typeid.clone(), r)).collect(),
        segments: Mutex::default(),
    });
    loop {
        // A peer with a wrong key, or one that hung up during the handshake, is
        // refused; the server goes on.
        let Ok(conn) = listener.accept() else { continue };
        let store = Arc::clone(&store);
        // Not a `std::thread`: this server may be a forked child (see
        // `pyconc_core::os_thread`).
        let spawned =
            pyconc_core::os_thread::spawn(Some("pyconc-manager-serve"), None, move || {
                serve(&store, conn)
            });
        if spawned.is_err() {
            // No thread for this client: it sees its connection close.
            continue;
        }
    }
}

/// Answers the requests of one client until it goes.
fn serve(store: &Store, conn: Connection) {
    let conn = match conn.recv::<Hello>() {
        Ok(Hello::Stay) => conn,
        Ok(Hello::Upgrade) => match recv_handle::<Connection>(&conn) {
            Ok(rings) => {
                rings.set_idle_spin(super::client::REPLY_SPIN);
                rings
            }
            Err(_) => return,
        },
        Err(_) => return,
    };
    let mut out = Vec::new();
    loop {
        let Ok(frame) = conn.recv_bytes() else { return };
        let reply = match codec::decode_borrowed::<Request<'_>>(&frame) {
            Ok(Request::Shutdown) => {
                store.unlink_segments();
                let _ = conn.send(&Reply::Unit);
                // CPython's server exits its process on `shutdown`.
                std::process::exit(0);
            }
            Ok(request) => store.handle(request),
            Err(error) => Reply::Failed(Failure::BadRequest(error.to_string())),
        };
        out.clear();
        out = match codec::encode_into(&reply, std::mem::take(&mut out)) {
            Ok(encoded) => encoded,
            Err(_) => return,
        };
        if conn.send_bytes(&out).is_err() {
            return;
        }
    }
}

/// A manager's object.
enum Object {
    Dict(Mutex<IndexMap<Vec<u8>, Vec<u8>>>),
    List(Mutex<Vec<Vec<u8>>>),
    Namespace(Mutex<IndexMap<String, Vec<u8>>>),
    Queue(Queue<Vec<u8>>),
    Lock(threading::Lock),
    RLock(threading::RLock),
    Event(threading::Event),
    Semaphore(threading::Semaphore),
    BoundedSemaphore(threading::BoundedSemaphore),
    Condition(threading::Condition),
    Barrier(threading::Barrier),
    Value(Mutex<Vec<u8>>),
    User(Mutex<Held>),
}

impl Object {
    fn new(kind: Kind, registry: &HashMap<String, Registered>) -> Result<Object, Failure> {
        Ok(match kind {
            Kind::Dict => Object::Dict(Mutex::default()),
            Kind::List => Object::List(Mutex::default()),
            Kind::Namespace => Object::Namespace(Mutex::default()),
            Kind::Queue { maxsize } => Object::Queue(Queue::new(maxsize)),
            Kind::Lock => Object::Lock(threading::Lock::new()),
            Kind::RLock => Object::RLock(threading::RLock::new()),
            Kind::Event => Object::Event(threading::Event::new()),
            Kind::Semaphore { value, bounded: false } => {
                Object::Semaphore(threading::Semaphore::new(value as usize))
            }
            Kind::Semaphore { value, bounded: true } => {
                Object::BoundedSemaphore(threading::BoundedSemaphore::new(value as usize))
            }
            Kind::Condition => Object::Condition(threading::Condition::new()),
            Kind::Barrier { parties } => Object::Barrier(
                threading::Barrier::try_new(parties as usize)
                    .map_err(|e| Failure::ValueError(e.to_string()))?,
            ),
            Kind::Value(bytes) => Object::Value(Mutex::new(bytes.into_vec())),
            Kind::User { typeid, args_type, args } => {
                let registered = registry.get(&typeid).ok_or_else(|| {
                    Failure::ValueError(format!(
                        "the manager's server has no type '{typeid}' registered"
                    ))
                })?;
                if registered.args_type != args_type {
                    return Err(Failure::ValueError(format!(
                        "'{typeid}' is made from a {}, not a {args_type}",
                        registered.args_type
                    )));
                }
                // The user's constructor runs here: a panic fails the call, not the server.
                let made = pyconc_core::panic::catch_panic(|| registered.make(&args))
                    .map_err(|panic| Failure::RuntimeError(panic.describe()))?;
                Object::User(Mutex::new(made.map_err(failed)?))
            }
        })
    }
}

struct Entry {
    object: Arc<Object>,
    refs: u64,
}

/// The objects, by id, with their reference counts.
struct Store {
    objects: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    /// The types of the user's, by typeid.
    registry: HashMap<String, Registered>,
    /// Shared-memory segments to unlink at shutdown (a `SharedMemoryManager`'s).
    segments: Mutex<Vec<String>>,
}

impl Store {
    /// CPython's `SharedMemoryServer.shutdown`: unlinks every tracked segment.
    fn unlink_segments(&self) {
        for name in std::mem::take(&mut *lock(&self.segments)) {
            let full = format!("/{name}");
            pyconc_core::logging::debug(|| {
                format!("Destroy segment '{name}' in pid {}", std::process::id())
            });
            if let Ok(c_name) = std::ffi::CString::new(full.clone()) {
                if sys::shm_unlink(&c_name).is_ok() {
                    let _ = resource_tracker::unregister_if_running(&full);
                }
            }
        }
    }
}

/// A user method's failure as the client sees it.
fn failed(failure: Failed) -> Failure {
    match failure {
        Failed::NoSuchMethod(message) => Failure::AttributeError(message),
        Failed::Serde(message) => Failure::ValueError(message),
    }
}

impl Store {
    fn handle(&self, request: Request<'_>) -> Reply {
        match request {
            Request::Create(kind) => match Object::new(kind, &self.registry) {
                Ok(object) => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
                    let entry = Entry { object: Arc::new(object), refs: 1 };
                    lock(&self.objects).insert(id, entry);
                    Reply::Id(id)
                }
                Err(failure) => Reply::Failed(failure),
            },
            Request::Incref(id) => match lock(&self.objects).get_mut(&id) {
                Some(entry) => {
                    entry.refs += 1;
                    Reply::Unit
                }
                None => Reply::Failed(Failure::NoSuchObject(id)),
            },
            Request::Decref(id) => {
                let mut objects = lock(&self.objects);
                let gone = match objects.get_mut(&id) {
                    Some(entry) => {
                        entry.refs -= 1;
                        entry.refs == 0
                    }
                    None => return Reply::Failed(Failure::NoSuchObject(id)),
                };
                // Dropped outside the lock: a big container takes a while to free.
                let freed = if gone { objects.remove(&id) } else { None };
                drop(objects);
                drop(freed);
                Reply::Unit
            }
            Request::NumberOfObjects => Reply::Count(lock(&self.objects).len() as u64),
            Request::TrackSegment(name) => {
                if !resource_tracker::valid_name(format!("/{name}").as_bytes()) {
                    return Reply::Failed(Failure::ValueError(format!(
                        "invalid segment name {name:?}"
                    )));
                }
                let mut segments = lock(&self.segments);
                if !segments.contains(&name) {
                    segments.push(name);
                }
                Reply::Unit
            }
            Request::ReleaseSegment(name) => {
                lock(&self.segments).retain(|tracked| *tracked != name);
                Reply::Unit
            }
            Request::ListSegments => Reply::Names(lock(&self.segments).clone()),
            Request::Call(id, op) => {
                let object = lock(&self.objects).get(&id).map(|entry| Arc::clone(&entry.object));
                match object {
                    // The object's lock, not the store's, is held while it works (a
                    // blocking call waits without stalling the others).
                    Some(object) => call(&object, op).unwrap_or_else(Reply::Failed),
                    None => Reply::Failed(Failure::NoSuchObject(id)),
                }
            }
            Request::Shutdown => Reply::Unit,
        }
    }
}

fn bytes(value: &[u8]) -> ByteBuf {
    ByteBuf::from(value.to_vec())
}

/// Python's index into a list of `len` (negative from the end); `None` out of range.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    usize::try_from(i).ok().filter(|&i| i < len)
}

fn mismatch(object: &Object, op: &Op<'_>) -> Failure {
    let kind = match object {
        Object::Dict(_) => "dict",
        Object::List(_) => "list",
        Object::Namespace(_) => "Namespace",
        Object::Queue(_) => "Queue",
        Object::Lock(_) => "Lock",
        Object::RLock(_) => "RLock",
        Object::Event(_) => "Event",
        Object::Semaphore(_) => "Semaphore",
        Object::BoundedSemaphore(_) => "BoundedSemaphore",
        Object::Condition(_) => "Condition",
        Object::Barrier(_) => "Barrier",
        Object::Value(_) => "Value",
        Object::User(_) => "a registered type",
    };
    Failure::BadRequest(format!("a {kind} has no method {op:?}"))
}

/// Waits as `wait` says for `acquire` (blocking), `try_acquire`, `acquire_timeout`.
fn acquire_with(
    wait: Wait,
    block: impl FnOnce(),
    try_once: impl FnOnce() -> bool,
    timed: impl FnOnce(std::time::Duration) -> bool,
) -> Reply {
    Reply::Bool(match wait {
        Wait::Forever => {
            block();
            true
        }
        Wait::No => try_once(),
        Wait::For(timeout) => timed(timeout),
    })
}

fn runtime(error: threading::Error) -> Failure {
    match error {
        threading::Error::ValueError(m) => Failure::ValueError(m.into_owned()),
        threading::Error::AssertionError(m) => Failure::AssertionError(m.into_owned()),
        threading::Error::BrokenBarrierError => Failure::BrokenBarrierError,
        other => Failure::RuntimeError(other.to_string()),
    }
}

fn call(object: &Object, op: Op<'_>) -> Result<Reply, Failure> {
    Ok(match (object, op) {
        (Object::Dict(dict), op) => {
            let mut dict = lock(dict);
            match op {
                Op::DictGet(key) => Reply::MaybeBytes(dict.get(key.as_ref()).map(|v| bytes(v))),
                Op::DictSet(key, value) => {
                    dict.insert(key.to_vec(), value.to_vec());
                    Reply::Unit
                }
                Op::DictSetDefault(key, value) => {
                    let stored = dict.entry(key.to_vec()).or_insert_with(|| value.to_vec());
                    Reply::Bytes(bytes(stored))
                }
                Op::DictRemove(key) => match dict.shift_remove(key.as_ref()) {
                    Some(value) => Reply::Bytes(ByteBuf::from(value)),
                    None => return Err(Failure::KeyError),
                },
                Op::DictContains(key) => Reply::Bool(dict.contains_key(key.as_ref())),
                Op::DictKeys => Reply::List(dict.keys().map(|k| bytes(k)).collect()),
                Op::DictValues => Reply::List(dict.values().map(|v| bytes(v)).collect()),
                Op::DictItems => {
                    Reply::Pairs(dict.iter().map(|(k, v)| (bytes(k), bytes(v))).collect())
                }
                Op::Len => Reply::Count(dict.len() as u64),
                Op::Clear => {
                    dict.clear();
                    Reply::Unit
                }
                op => return Err(mismatch(object, &op)),
            }
        }
        (Object::List(list), op) => {
            let mut list = lock(list);
            let out_of_range = || Failure::IndexError("list index out of range".into());
            match op {
                Op::ListAppend(value) => {
                    list.push(value.to_vec());
                    Reply::Unit
                }
                Op::ListExtend(values) => {
                    list.extend(values.into_iter().map(|v| v.to_vec()));
                    Reply::Unit
                }
                Op::ListGet(i) => match index(i, list.len()) {
                    Some(i) => Reply::Bytes(bytes(&list[i])),
                    None => return Err(out_of_range()),
                },
                Op::ListSet(i, value) => match index(i, list.len()) {
                    Some(i) => {
                        list[i] = value.to_vec();
                        Reply::Unit
                    }
                    None => {
                        return Err(Failure::IndexError(
                            "list assignment index out of range".into(),
                        ));
                    }
                },
                Op::ListInsert(i, value) => {
                    // Python clamps an insertion index to the list.
                    let len = list.len() as i64;
                    let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
                    list.insert(at as usize, value.to_vec());
                    Reply::Unit
                }
                Op::ListPop(at) => {
                    if list.is_empty() {
                        return Err(Failure::IndexError("pop from empty list".into()));
                    }
                    let i = match at {
                        None => list.len() - 1,
                        Some(i) => index(i, list.len())
                            .ok_or_else(|| Failure::IndexError("pop index out of range".into()))?,
                    };
                    Reply::Bytes(ByteBuf::from(list.remove(i)))
                }
                Op::ListRemove(value) => match list.iter().position(|v| v == value.as_ref()) {
                    Some(i) => {
                        list.remove(i);
                        Reply::Unit
                    }
                    None => {
                        return Err(Failure::ValueError("list.remove(x): x not in list".into()));
                    }
                },
                Op::ListIndex(value) => match list.iter().position(|v| v == value.as_ref()) {
                    Some(i) => Reply::Count(i as u64),
                    None => return Err(Failure::ValueError("is not in list".into())),
                },
                Op::ListCount(value) => {
                    Reply::Count(list.iter().filter(|v| *v == value.as_ref()).count() as u64)
                }
                Op::ListItems => Reply::List(list.iter().map(|v| bytes(v)).collect()),
                Op::Len => Reply::Count(list.len() as u64),
                Op::Clear => {
                    list.clear();
                    Reply::Unit
                }
                op => return Err(mismatch(object, &op)),
            }
        }
        (Object::Namespace(names), op) => {
            let mut names = lock(names);
            let missing = |name: &str| {
                Failure::AttributeError(format!("'Namespace' object has no attribute '{name}'"))
            };
            match op {
                Op::NsGet(name) => match names.get(name) {
                    Some(value) => Reply::Bytes(bytes(value)),
                    None => return Err(missing(name)),
                },
                Op::NsSet(name, value) => {
                    names.insert(name.to_owned(), value.to_vec());
                    Reply::Unit
                }
                Op::NsDel(name) => match names.shift_remove(name) {
                    Some(_) => Reply::Unit,
                    None => return Err(missing(name)),
                },
                Op::NsNames => Reply::Names(names.keys().cloned().collect()),
                op => return Err(mismatch(object, &op)),
            }
        }
        (Object::Queue(queue), op) => match op {
            Op::QueuePut(value, wait) => {
                let value = value.to_vec();
                match wait {
                    Wait::Forever => queue.put(value),
                    Wait::No => queue.put_nowait(value),
                    Wait::For(timeout) => queue.put_timeout(value, timeout),
                }
                .map_err(|_| Failure::Full)?;
                Reply::Unit
            }
            Op::QueueGet(wait) => {
                let got = match wait {
                    Wait::Forever => queue.get(),
                    Wait::No => queue.get_nowait(),
                    Wait::For(timeout) => queue.get_timeout(timeout),
                };
                Reply::Bytes(ByteBuf::from(got.map_err(|_| Failure::Empty)?))
            }
            Op::QueueSize => Reply::Count(queue.qsize() as u64),
            Op::QueueEmpty => Reply::Bool(queue.empty()),
            Op::QueueFull => Reply::Bool(queue.full()),
            Op::QueueTaskDone => {
                queue.task_done().map_err(|e| Failure::ValueError(e.to_string()))?;
                Reply::Unit
            }
            Op::QueueJoin => {
                queue.join();
                Reply::Unit
            }
            op => return Err(mismatch(object, &op)),
        },
        (Object::Lock(l), Op::Acquire(wait)) => {
            acquire_with(wait, || l.acquire(), || l.try_acquire(), |t| l.acquire_timeout(t))
        }
        (Object::Lock(l), Op::Release) => {
            l.release().map_err(runtime)?;
            Reply::Unit
        }
        (Object::RLock(l), Op::Acquire(wait)) => {
            acquire_with(wait, || l.acquire(), || l.try_acquire(), |t| l.acquire_timeout(t))
        }
        (Object::RLock(l), Op::Release) => {
            l.release().map_err(runtime)?;
            Reply::Unit
        }
        (Object::Semaphore(s), Op::Acquire(wait)) => {
            acquire_with(wait, || s.acquire(), || s.try_acquire(), |t| s.acquire_timeout(t))
        }
        (Object::Semaphore(s), Op::Release) => {
            s.release();
            Reply::Unit
        }
        (Object::BoundedSemaphore(s), Op::Acquire(wait)) => {
            acquire_with(wait, || s.acquire(), || s.try_acquire(), |t| s.acquire_timeout(t))
        }
        (Object::BoundedSemaphore(s), Op::Release) => {
            s.release().map_err(runtime)?;
            Reply::Unit
        }
        (Object::Condition(c), Op::Acquire(wait)) => {
            acquire_with(wait, || c.acquire(), || c.try_acquire(), |t| c.acquire_timeout(t))
        }
        (Object::Condition(c), Op::Release) => {
            c.release().map_err(runtime)?;
            Reply::Unit
        }
        (Object::Condition(c), Op::CondWait(timeout)) => Reply::Bool(
            match timeout {
                None => c.wait().map(|()| true),
                Some(timeout) => c.wait_timeout(timeout),
            }
            .map_err(runtime)?,
        ),
        (Object::Condition(c), Op::CondNotify(n)) => {
            c.notify(n as usize).map_err(runtime)?;
            Reply::Unit
        }
        (Object::Condition(c), Op::CondNotifyAll) => {
            c.notify_all().map_err(runtime)?;
            Reply::Unit
        }
        (Object::Event(e), op) => match op {
            Op::EventSet => {
                e.set();
                Reply::Unit
            }
            Op::EventClear => {
                e.clear();
                Reply::Unit
            }
            Op::EventIsSet => Reply::Bool(e.is_set()),
            Op::EventWait(None) => {
                e.wait();
                Reply::Bool(true)
            }
            Op::EventWait(Some(timeout)) => Reply::Bool(e.wait_timeout(timeout)),
            op => return Err(mismatch(object, &op)),
        },
        (Object::Barrier(b), op) => match op {
            Op::BarrierWait(timeout) => Reply::Count(
                match timeout {
                    None => b.wait(),
                    Some(timeout) => b.wait_timeout(timeout),
                }
                .map_err(runtime)? as u64,
            ),
            Op::BarrierAbort => {
                b.abort();
                Reply::Unit
            }
            Op::BarrierReset => {
                b.reset();
                Reply::Unit
            }
            Op::BarrierState => {
                Reply::Barrier(b.parties() as u32, b.n_waiting() as u32, b.broken())
            }
            op => return Err(mismatch(object, &op)),
        },
        (Object::User(held), Op::UserCall(method, args)) => {
            let mut held = lock(held);
            let Held { value, dispatch } = &mut *held;
            let outcome =
                pyconc_core::panic::catch_panic(|| dispatch(value.as_mut(), method, args))
                    .map_err(|panic| Failure::RuntimeError(panic.describe()))?;
            Reply::Bytes(ByteBuf::from(outcome.map_err(failed)?))
        }
        (Object::Value(v), Op::ValueGet) => Reply::Bytes(bytes(&lock(v))),
        (Object::Value(v), Op::ValueSet(value)) => {
            *lock(v) = value.to_vec();
            Reply::Unit
        }
        (object, op) => return Err(mismatch(object, &op)),
    })
}
