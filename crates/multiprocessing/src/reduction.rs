//! Sending objects that own file descriptors to a child: CPython's
//! `multiprocessing.reduction`.
//!
//! A `Connection`, a `Queue` or a shared-memory object owns fds. Inside `Process::call`'s
//! arguments for a spawn or forkserver child, its `Serialize` impl puts each fd into the
//! *fd table* of the message being built (it writes the fd's index in the table); the
//! table travels beside the bytes as `SCM_RIGHTS`, and in the child the `Deserialize` impl
//! takes the received fd at that index. Serialized anywhere else — outside a process
//! start — such an object refuses, with CPython's message:
//! `Connection objects should only be shared between processes through inheritance`.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    /// While a process start serializes its arguments: the fds collected so far.
    static SINK: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
    /// While a child deserializes its arguments: the fds received with them.
    static SOURCE: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    /// While the arguments of a child being started are serialized.
    static TO_CHILD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The text of the last refusal, which postcard's error type cannot carry.
    static REFUSAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records why a value refused to (de)serialize, for [`take_refusal`] (postcard's error
/// type cannot carry the text).
pub(crate) fn refuse(message: String) -> String {
    let _ = REFUSAL.try_with(|r| *r.borrow_mut() = Some(message.clone()));
    message
}

/// The text of the last refusal on this thread, if any (the codec's error message).
pub(crate) fn take_refusal() -> Option<String> {
    REFUSAL.try_with(|r| r.borrow_mut().take()).ok().flatten()
}

/// Runs `encode` with an fd table; returns its result and the fds it referenced. The fds
/// stay owned by their objects, which must outlive the sending of the message.
pub(crate) fn collecting_fds<R>(encode: impl FnOnce() -> R) -> (R, Vec<RawFd>) {
    let outer = SINK.try_with(|sink| sink.borrow_mut().replace(Vec::new())).ok().flatten();
    let result = encode();
    let fds = SINK
        .try_with(|sink| std::mem::replace(&mut *sink.borrow_mut(), outer))
        .ok()
        .flatten()
        .unwrap_or_default();
    (result, fds)
}

/// Runs `encode` for the arguments of a child being started: what is serialized may then
/// carry secrets the child is entitled to (a manager proxy's authkey, as CPython's
/// proxies carry theirs when spawning).
pub(crate) fn to_child<R>(encode: impl FnOnce() -> R) -> R {
    let outer = TO_CHILD.try_with(|flag| flag.replace(true)).unwrap_or(false);
    let result = encode();
    let _ = TO_CHILD.try_with(|flag| flag.set(outer));
    result
}

/// Whether [`to_child`] runs on this thread.
pub(crate) fn encoding_for_child() -> bool {
    TO_CHILD.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// Runs `decode` with `fds` as the fd table of the message it decodes. Fds it does not
/// take are closed.
pub(crate) fn providing_fds<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    let table = fds.into_iter().map(Some).collect();
    let outer = SOURCE.try_with(|source| source.borrow_mut().replace(table)).ok().flatten();
    let result = decode();
    let _ = SOURCE.try_with(|source| *source.borrow_mut() = outer);
    result
}

/// Serializes `fd` as an index into the current fd table; `type_name` names the object
/// in the error when there is no table.
pub(crate) fn serialize_fd<S: Serializer>(
    fd: BorrowedFd<'_>,
    type_name: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let index = SINK.try_with(|sink| {
        sink.borrow_mut().as_mut().map(|fds| {
            fds.push(fd.as_raw_fd());
            fds.len() - 1
        })
    });
    match index.ok().flatten() {
        Some(index) => (index as u32).serialize(serializer),
        None => Err(S::Error::custom(refuse(format!(
            "{type_name} objects should only be shared between processes through inheritance"
        )))),
    }
}

/// Takes the fd at the serialized index out of the current fd table.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    let fd = SOURCE.try_with(|source| {
        source.borrow_mut().as_mut().and_then(|fds| fds.get_mut(index)).and_then(Option::take)
    });
    fd.ok().flatten().ok_or_else(|| {
        D::Error::custom(refuse(format!("no file descriptor #{index} came with the message")))
    })
}

/// An fd that serializes with [`serialize_fd`]: a field of an object that travels to a
/// child with its fds (`SendFd(fd, "Queue")`). The one fd adapter of the crate.
pub(crate) struct SendFd<'a>(pub(crate) BorrowedFd<'a>, pub(crate) &'static str);

impl Serialize for SendFd<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_fd(self.0, self.1, serializer)
    }
}

/// An fd that deserializes with [`deserialize_fd`].
pub(crate) struct RecvFd(pub(crate) OwnedFd);

impl<'de> Deserialize<'de> for RecvFd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RecvFd, D::Error> {
        deserialize_fd(deserializer).map(RecvFd)
    }
}
