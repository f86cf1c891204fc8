//! What travels between a manager's proxies and its server: one request, one reply, each
//! a postcard frame on the connection. Values are opaque to the server: the proxy
//! serializes them, the server stores and compares the bytes, so the server needs none of
//! the program's types (a remote client may be another program).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};

/// The first message on a new connection, after the authentication handshake.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Hello {
    /// Go on over this connection.
    Stay,
    /// A duplex `pipe()` end follows (through `send_handle`): serve the requests there,
    /// through shared-memory rings.
    Upgrade,
}

/// The kinds of object a manager holds, with what their construction needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Queue {
        maxsize: usize,
    },
    Lock,
    RLock,
    Event,
    Semaphore {
        value: u32,
        bounded: bool,
    },
    Condition,
    Barrier {
        parties: u32,
    },
    Value(ByteBuf),
    /// A registered type of the user's (`shared_type!`), made from serialized args.
    User {
        typeid: String,
        args_type: String,
        args: ByteBuf,
    },
}

impl Kind {
    /// CPython's type id of the proxy (`'dict'`, `'Lock'`...): its name in messages.
    pub(crate) fn name(&self) -> String {
        let name = match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "Namespace",
            Kind::Queue { .. } => "Queue",
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Event => "Event",
            Kind::Semaphore { bounded: false, .. } => "Semaphore",
            Kind::Semaphore { bounded: true, .. } => "BoundedSemaphore",
            Kind::Condition => "Condition",
            Kind::Barrier { .. } => "Barrier",
            Kind::Value(_) => "Value",
            Kind::User { typeid, .. } => return typeid.clone(),
        };
        name.to_owned()
    }
}

/// A request to the server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// Makes an object with one reference: `Reply::Id`.
    Create(Kind),
    /// One more reference to the object (a proxy sent to another process).
    Incref(u64),
    /// One reference fewer; the object goes with the last.
    Decref(u64),
    /// A method of the object.
    Call(u64, #[serde(borrow)] Op<'a>),
    /// How many objects the server holds (CPython's `_number_of_objects`).
    NumberOfObjects,
    /// A shared-memory segment to unlink at shutdown (`SharedMemoryServer.track_segment`;
    /// the name without its `/`).
    TrackSegment(String),
    /// No longer unlink it at shutdown (`release_segment`).
    ReleaseSegment(String),
    /// The tracked segments' names (`list_segments`): `Reply::Names`.
    ListSegments,
    /// Stops the server (CPython's `shutdown`).
    Shutdown,
}

/// A method call; values are serialized bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op<'a> {
    // dict
    DictGet(#[serde(borrow)] &'a Bytes),
    DictSet(&'a Bytes, &'a Bytes),
    DictRemove(&'a Bytes),
    DictContains(&'a Bytes),
    DictKeys,
    DictValues,
    DictItems,
    DictSetDefault(&'a Bytes, &'a Bytes),
    // list
    ListAppend(&'a Bytes),
    ListExtend(Vec<&'a Bytes>),
    ListGet(i64),
    ListSet(i64, &'a Bytes),
    ListInsert(i64, &'a Bytes),
    ListPop(Option<i64>),
    ListRemove(&'a Bytes),
    ListIndex(&'a Bytes),
    ListCount(&'a Bytes),
    ListItems,
    // dict and list
    Len,
    Clear,
    // namespace
    NsGet(&'a str),
    NsSet(&'a str, &'a Bytes),
    NsDel(&'a str),
    NsNames,
    // queue
    QueuePut(&'a Bytes, Wait),
    QueueGet(Wait),
    QueueSize,
    QueueEmpty,
    QueueFull,
    QueueTaskDone,
    QueueJoin,
    // lock, rlock, semaphore, condition
    Acquire(Wait),
    Release,
    // event
    EventSet,
    EventClear,
    EventIsSet,
    EventWait(Option<Duration>),
    // condition
    CondWait(Option<Duration>),
    CondNotify(u32),
    CondNotifyAll,
    // barrier
    BarrierWait(Option<Duration>),
    BarrierAbort,
    BarrierReset,
    BarrierState,
    // value
    ValueGet,
    ValueSet(&'a Bytes),
    // a registered type: an exposed method and its serialized arguments
    UserCall(&'a str, &'a Bytes),
}

/// How long a call may wait: not at all, at most this long, or as long as it takes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Wait {
    No,
    For(Duration),
    Forever,
}

/// The server's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Unit,
    Id(u64),
    Bool(bool),
    Count(u64),
    Bytes(ByteBuf),
    MaybeBytes(Option<ByteBuf>),
    List(Vec<ByteBuf>),
    Pairs(Vec<(ByteBuf, ByteBuf)>),
    Names(Vec<String>),
    /// A barrier's (parties, waiting, broken).
    Barrier(u32, u32, bool),
    Failed(Failure),
}

/// Why a call failed, as the Python exception it stands for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// No such key (the proxy renders the key).
    KeyError,
    IndexError(String),
    /// No such attribute of a namespace.
    AttributeError(String),
    ValueError(String),
    RuntimeError(String),
    AssertionError(String),
    BrokenBarrierError,
    Empty,
    Full,
    /// The server holds no object with this id (it was freed, or never made).
    NoSuchObject(u64),
    /// The request could not be understood.
    BadRequest(String),
}
