//! What every proxy is: a reference to one object of a manager — CPython's `BaseProxy`
//! and its `Token` — counted by the server (`incref`/`decref`), so that the object lives
//! while some proxy refers to it, in whatever process.
//!
//! The count: the proxy made by `Manager::dict()` holds one reference; its clones share
//! it, and the last one to go gives it back. A proxy serialized takes a reference for
//! the receiver, which the deserialized proxy holds — a child's arguments, a queue item,
//! a message are read once. A proxy stored in a manager's container is read as a copy
//! (`get`, `items`...): each copy takes a reference of its own, and the stored one keeps
//! the object alive while it is stored; taken out with `pop`/`remove`, it hands its
//! reference to the reader. (A stored proxy overwritten or cleared keeps its object
//! until the server shuts down: the server does not look into values.) A fork child
//! inherits its parent's proxies and takes a reference of its own before it first uses
//! one (CPython's `BaseProxy._after_fork`); one it never used, it drops without a word.

use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use pyconc_core::exit::Finalize;
use pyconc_core::sync::lock;

use super::client::{Server, request};
use super::protocol::{Failure, Kind, Op, Reply, Request};
use crate::connection::Address;
use crate::{Error, reduction, sys};

thread_local! {
    /// While values read as copies from a manager are deserialized.
    static COPYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `decode` on a value read as a copy from a manager's container: proxies in it
/// take references of their own instead of the stored one.
pub(crate) fn copying<R>(decode: impl FnOnce() -> R) -> R {
    let outer = COPYING.try_with(|flag| flag.replace(true)).unwrap_or(false);
    let result = decode();
    let _ = COPYING.try_with(|flag| flag.set(outer));
    result
}

/// One object of one manager.
struct Referent {
    server: Server,
    id: u64,
    typeid: String,
    /// The process that holds a reference for this proxy.
    holder: AtomicI32,
    /// Gives the reference back when the proxy drops, or at exit (CPython's
    /// `Finalize(self, BaseProxy._decref, exitpriority=10)`): a fork child's copies of
    /// its parent's proxies are never dropped, but the child's exit runs this. A parent's
    /// release inherited by a fork child is not the child's: it does nothing there.
    release: Mutex<Option<Finalize>>,
}

impl Referent {
    fn new(server: Server, id: u64, typeid: String) -> Referent {
        let release = Mutex::new(Some(release(&server, id)));
        Referent { server, id, typeid, holder: AtomicI32::new(sys::getpid().0), release }
    }
}

/// The finalizer that gives back this process's reference to object `id`.
fn release(server: &Server, id: u64) -> Finalize {
    let server = server.clone();
    Finalize::new(
        move || {
            // Best effort: a server that is gone has nothing left to free.
            let _ = request(&server, &Request::Decref(id));
        },
        Some(10),
    )
}

/// The reference a typed proxy wraps. `Clone` shares it.
#[derive(Clone)]
pub(crate) struct BaseProxy(Arc<Referent>);

impl BaseProxy {
    /// Makes an object of `kind` on `server`; the proxy holds its first reference.
    pub(crate) fn create(server: &Server, kind: Kind) -> Result<BaseProxy, Error> {
        let typeid = kind.name();
        match request(server, &Request::Create(kind))? {
            Reply::Id(id) => Ok(BaseProxy(Arc::new(Referent::new(server.clone(), id, typeid)))),
            Reply::Failed(failure) => Err(super::client::failure(failure)),
            other => Err(unexpected(&other)),
        }
    }

    /// Takes a reference for this process if it holds none (a fork child's first use).
    fn hold(&self) -> Result<(), Error> {
        let me = sys::getpid().0;
        let holder = self.0.holder.load(Ordering::Acquire);
        if holder != me
            && self
                .0
                .holder
                .compare_exchange(holder, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            if let Err(error) = self.incref() {
                self.0.holder.store(holder, Ordering::Release);
                return Err(error);
            }
            // The parent's release is inert here; this one is the child's.
            *lock(&self.0.release) = Some(release(&self.0.server, self.0.id));
        }
        Ok(())
    }

    fn incref(&self) -> Result<(), Error> {
        match request(&self.0.server, &Request::Incref(self.0.id))? {
            Reply::Unit => Ok(()),
            Reply::Failed(failure) => Err(super::client::failure(failure)),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls `op` on the object: the reply, or the server's failure as it is (for the
    /// caller to word, as a `KeyError` needs the key).
    pub(crate) fn call(&self, op: Op<'_>) -> Result<Result<Reply, Failure>, Error> {
        self.hold()?;
        Ok(match request(&self.0.server, &Request::Call(self.0.id, op))? {
            Reply::Failed(failure) => Err(failure),
            reply => Ok(reply),
        })
    }

    /// [`call`](BaseProxy::call), with every failure as an `Error`.
    pub(crate) fn invoke(&self, op: Op<'_>) -> Result<Reply, Error> {
        self.call(op)?.map_err(super::client::failure)
    }

    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>, class: &str) -> fmt::Result {
        write!(f, "<{class} object, typeid '{}', id {}>", self.0.typeid, self.0.id)
    }
}

/// The reply of a call that returns nothing.
pub(crate) fn unit(reply: Reply) -> Result<(), Error> {
    match reply {
        Reply::Unit => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// The reply of a call that returns a number.
pub(crate) fn count(reply: Reply) -> Result<usize, Error> {
    match reply {
        Reply::Count(n) => Ok(n as usize),
        other => Err(unexpected(&other)),
    }
}

/// The reply of a call that returns yes or no.
pub(crate) fn boolean(reply: Reply) -> Result<bool, Error> {
    match reply {
        Reply::Bool(b) => Ok(b),
        other => Err(unexpected(&other)),
    }
}

/// A reply of another shape than the call has (a server of another version).
pub(crate) fn unexpected(reply: &Reply) -> Error {
    Error::ValueError(format!("unexpected reply from the manager: {reply:?}").into())
}

/// A proxy as it travels.
#[derive(Serialize, Deserialize)]
struct Wire {
    address: Address,
    id: u64,
    typeid: String,
    /// Only to a child being started (CPython sends the key only when spawning); anyone
    /// else uses its own process's key.
    authkey: Option<ByteBuf>,
}

impl Serialize for BaseProxy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The reference the receiver will hold.
        self.incref().map_err(|e| {
            S::Error::custom(reduction::refuse(format!("cannot send a proxy: {e}")))
        })?;
        let authkey =
            reduction::encoding_for_child().then(|| ByteBuf::from(self.0.server.authkey.clone()));
        Wire {
            address: self.0.server.address.clone(),
            id: self.0.id,
            typeid: self.0.typeid.clone(),
            authkey,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BaseProxy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BaseProxy, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        if wire.typeid.len() > 64 {
            return Err(D::Error::custom(reduction::refuse("not a proxy".into())));
        }
        let authkey = match wire.authkey {
            Some(key) => {
                super::client::remember_key(&wire.address, key.as_ref());
                key.into_vec()
            }
            None => super::client::key_for(&wire.address),
        };
        let server = Server { address: wire.address, authkey };
        let proxy = BaseProxy(Arc::new(Referent::new(server, wire.id, wire.typeid)));
        if COPYING.try_with(std::cell::Cell::get).unwrap_or(false) {
            // A copy of a stored proxy: a reference of its own.
            proxy.incref().map_err(|e| {
                D::Error::custom(reduction::refuse(format!("cannot receive a proxy: {e}")))
            })?;
        }
        Ok(proxy)
    }
}

/// Defines a typed proxy: a [`BaseProxy`] with the type's parameters, `Clone`, `Debug`
/// (CPython's repr), `Serialize` and `Deserialize`, `Send + Sync` whatever the types.
macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident $(<$($param:ident),+>)?) => {
        $(#[$doc])*
        pub struct $name $(<$($param),+>)? {
            base: $crate::managers::proxy::BaseProxy,
            $(types: std::marker::PhantomData<fn() -> ($($param,)+)>,)?
        }

        impl $(<$($param),+>)? $name $(<$($param),+>)? {
            pub(crate) fn from_base(base: $crate::managers::proxy::BaseProxy) -> Self {
                $name { base, $(types: std::marker::PhantomData::<fn() -> ($($param,)+)>,)? }
            }
        }

        impl $(<$($param),+>)? Clone for $name $(<$($param),+>)? {
            fn clone(&self) -> Self {
                Self::from_base(self.base.clone())
            }
        }

        impl $(<$($param),+>)? std::fmt::Debug for $name $(<$($param),+>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.base.describe(f, stringify!($name))
            }
        }

        impl $(<$($param),+>)? serde::Serialize for $name $(<$($param),+>)? {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.base.serialize(serializer)
            }
        }

        impl<'de $($(, $param)+)?> serde::Deserialize<'de> for $name $(<$($param),+>)? {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::managers::proxy::BaseProxy::deserialize(deserializer).map(Self::from_base)
            }
        }
    };
}

pub(crate) use proxy_type;
