//! What every proxy is: a reference to one object of a manager — CPython's `BaseProxy`
//! and its `Token` — counted by the server (`incref`/`decref`), so that the object lives
//! while some proxy refers to it, in whatever process.
//!
//! The count: the proxy made by `Manager::dict()` holds one reference; its clones share
//! it, and the last one to go gives it back. A proxy serialized for another process
//! takes a reference for the receiver, which the deserialized proxy holds. A fork child
//! inherits its parent's proxies and takes a reference of its own before it first uses
//! one (CPython's `BaseProxy._after_fork`); one it never used, it drops without a word.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use super::client::{Server, request};
use super::protocol::{Failure, Kind, Op, Reply, Request};
use crate::connection::Address;
use crate::{Error, reduction, sys};

/// One object of one manager.
struct Referent {
    server: Server,
    id: u64,
    typeid: String,
    /// The process that holds a reference for this proxy (0: none yet).
    holder: AtomicI32,
}

impl Drop for Referent {
    fn drop(&mut self) {
        if self.holder.load(Ordering::Acquire) == sys::getpid().0 {
            // Best effort: a server that is gone has nothing left to free.
            let _ = request(&self.server, &Request::Decref(self.id));
        }
    }
}

/// The reference a typed proxy wraps. `Clone` shares it.
#[derive(Clone)]
pub(crate) struct BaseProxy(Arc<Referent>);

impl BaseProxy {
    /// Makes an object of `kind` on `server`; the proxy holds its first reference.
    pub(crate) fn create(server: &Server, kind: Kind) -> Result<BaseProxy, Error> {
        let typeid = kind.name().to_owned();
        match request(server, &Request::Create(kind))? {
            Reply::Id(id) => Ok(BaseProxy(Arc::new(Referent {
                server: server.clone(),
                id,
                typeid,
                holder: AtomicI32::new(sys::getpid().0),
            }))),
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
        self.incref().map_err(|e| S::Error::custom(format!("cannot send a proxy: {e}")))?;
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
            return Err(D::Error::custom("not a proxy"));
        }
        let authkey =
            wire.authkey.map_or_else(|| crate::current_process().authkey(), ByteBuf::into_vec);
        Ok(BaseProxy(Arc::new(Referent {
            server: Server { address: wire.address, authkey },
            id: wire.id,
            typeid: wire.typeid,
            holder: AtomicI32::new(sys::getpid().0),
        })))
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
