//! Types of the user's in a manager: CPython's `BaseManager.register(typeid, callable)`.
//!
//! [`shared_type!`](crate::shared_type) declares a proxy for a type and the methods it
//! exposes (CPython's `exposed`); [`ManagerBuilder::register`](super::ManagerBuilder::register)
//! gives the server a constructor for it; [`Manager::create`](super::Manager::create) makes
//! one and returns its proxy. The methods run in the server, on the one value, one call at
//! a time; arguments and results travel serialized.
//!
//! Only what was registered when the server started can run there: a client — even a
//! remote one with the key — names a registered type and one of its exposed methods, and
//! the server checks both. The server gets the constructors and method tables from the
//! process that starts it (as code offsets, which name the same code in every process of
//! this program), never from a client.

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proxy::BaseProxy;
use crate::process::start;
use crate::{Error, codec};

/// A proxy type declared with [`shared_type!`](crate::shared_type): how the server runs
/// the exposed methods of `Target`. Implemented by the macro, not by hand.
pub trait SharedType: Sized + Send + Sync + 'static {
    /// The type the server holds.
    type Target: Send + 'static;
    /// The type's name on the server (CPython's `typeid`).
    const TYPEID: &'static str;
    /// The proxy over a reference to a new object.
    fn from_proxy(proxy: ProxyRef) -> Self;
    /// Runs exposed method `method` on `target` with serialized `args`: the serialized
    /// result, or why not (no such method: CPython's `AttributeError` text).
    fn dispatch(target: &mut Self::Target, method: &str, args: &[u8]) -> Result<Vec<u8>, Failed>;
}

/// A reference to one object of a manager, as a generated proxy holds it: `Clone`,
/// `Send + Sync`, serializable (see the proxies' reference counting in the module docs).
#[derive(Clone)]
pub struct ProxyRef(pub(crate) BaseProxy);

impl ProxyRef {
    /// Calls exposed method `method` with `args` (a tuple) on the object.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::AttributeError`] for a method the type does
    /// not expose; [`Error::RuntimeError`] when the method panicked in the server;
    /// serialization errors of the arguments or the result.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, Error> {
        let args = codec::encode(args)?;
        match self
            .0
            .invoke(super::protocol::Op::UserCall(method, serde_bytes::Bytes::new(&args)))?
        {
            super::protocol::Reply::Bytes(bytes) => codec::decode(&bytes),
            other => Err(super::proxy::unexpected(&other)),
        }
    }

    /// Writes CPython's repr of the proxy (`<Name object, typeid 'T', id N>`).
    ///
    /// # Errors
    /// The formatter's.
    pub fn describe(&self, f: &mut fmt::Formatter<'_>, class: &str) -> fmt::Result {
        self.0.describe(f, class)
    }
}

impl fmt::Debug for ProxyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f, "ProxyRef")
    }
}

impl serde::Serialize for ProxyRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ProxyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ProxyRef, D::Error> {
        BaseProxy::deserialize(deserializer).map(ProxyRef)
    }
}

/// Why a call of a user type's method has no result.
#[derive(Debug)]
pub enum Failed {
    /// The type exposes no such method.
    NoSuchMethod(String),
    /// The arguments or the result would not (de)serialize.
    Serde(String),
}

impl Failed {
    /// The text of CPython's `AttributeError` for `method` of `typeid`.
    pub fn no_such_method(typeid: &str, method: &str) -> Failed {
        Failed::NoSuchMethod(format!("'{typeid}' object has no attribute '{method}'"))
    }
}

/// Decodes a method's arguments (the macro's helper).
///
/// # Errors
/// [`Failed::Serde`] for bytes that are not an `A`.
pub fn decode_args<A: DeserializeOwned>(args: &[u8]) -> Result<A, Failed> {
    codec::decode(args).map_err(|e| Failed::Serde(e.to_string()))
}

/// Encodes a method's result (the macro's helper).
///
/// # Errors
/// [`Failed::Serde`] for a result that cannot be serialized.
pub fn encode_result<R: Serialize>(result: &R) -> Result<Vec<u8>, Failed> {
    codec::encode(result).map_err(|e| Failed::Serde(e.to_string()))
}

/// A held object of a registered type, with its method table.
pub(crate) struct Held {
    pub(crate) value: Box<dyn Any + Send>,
    pub(crate) dispatch: Dispatch,
}

/// Runs a method on a held value: `(value, method, args)`.
pub(crate) type Dispatch = fn(&mut (dyn Any + Send), &str, &[u8]) -> Result<Vec<u8>, Failed>;
/// Makes a value: `(constructor's code offset, serialized args)`.
type Construct = fn(u64, &[u8]) -> Result<Box<dyn Any + Send>, Failed>;

/// A registered type as the server gets it: code offsets of this program.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Registered {
    pub(crate) typeid: String,
    /// The constructor's argument type (`type_name`), checked against each request's.
    pub(crate) args_type: String,
    construct: u64,
    constructor: u64,
    dispatch: u64,
}

impl Registered {
    /// The registration of `P`, made by `constructor`.
    pub(crate) fn of<P, A>(constructor: fn(A) -> P::Target) -> Registered
    where
        P: SharedType,
        A: DeserializeOwned + 'static,
    {
        Registered {
            typeid: P::TYPEID.to_owned(),
            args_type: std::any::type_name::<A>().to_owned(),
            construct: start::offset(construct::<P::Target, A> as Construct as usize),
            constructor: start::offset(constructor as usize),
            dispatch: start::offset(dispatch::<P> as Dispatch as usize),
        }
    }

    /// Makes a value from `args` (in the server).
    pub(crate) fn make(&self, args: &[u8]) -> Result<Held, Failed> {
        // SAFETY: `construct` and `dispatch` were taken from a `Construct` and a
        // `Dispatch` (`Registered::of`) in the process that started this server, which
        // runs the same program (the server is its child, by any start method; see
        // `function_at`).
        let (construct, dispatch) = unsafe {
            (
                start::function_at::<Construct>(self.construct),
                start::function_at::<Dispatch>(self.dispatch),
            )
        };
        Ok(Held { value: construct(self.constructor, args)?, dispatch })
    }
}

/// Runs the user's constructor `fn(A) -> T` at `constructor` on the decoded `args`.
fn construct<T: Send + 'static, A: DeserializeOwned>(
    constructor: u64,
    args: &[u8],
) -> Result<Box<dyn Any + Send>, Failed> {
    let args = decode_args::<A>(args)?;
    // SAFETY: `Registered::of` took `constructor` from a `fn(A) -> T` with these very
    // types, together with the offset of this entry monomorphized for them, in a process
    // running this program (see `make`).
    let constructor: fn(A) -> T = unsafe { start::function_at::<fn(A) -> T>(constructor) };
    Ok(Box::new(constructor(args)))
}

/// Runs `P`'s method table on a held value (which `construct` made a `P::Target`).
fn dispatch<P: SharedType>(
    value: &mut (dyn Any + Send),
    method: &str,
    args: &[u8],
) -> Result<Vec<u8>, Failed> {
    match value.downcast_mut::<P::Target>() {
        Some(target) => P::dispatch(target, method, args),
        None => Err(Failed::Serde(format!("the object is not a {}", P::TYPEID))),
    }
}

/// Declares the proxy of a type of yours for a manager's server, and the methods it
/// exposes: CPython's `BaseManager.register(typeid, callable, exposed=...)`.
///
/// The proxy gets one method per exposed method, with the same arguments, returning
/// `Result<R, multiprocessing::Error>`; the call runs in the server. The type must be at
/// least as visible as the proxy. Register the type
/// with a constructor on the builder, then make objects with `Manager::create`.
///
/// # Examples
///
/// ```
/// use multiprocessing::managers::Manager;
///
/// #[derive(Default)]
/// pub struct Counter { hits: u64 }
///
/// impl Counter {
///     fn start_at(hits: u64) -> Counter { Counter { hits } }
///     fn hit(&mut self, by: u64) -> u64 { self.hits += by; self.hits }
///     fn hits(&self) -> u64 { self.hits }
/// }
///
/// multiprocessing::shared_type! {
///     /// A counter in the manager's server.
///     pub proxy CounterProxy for Counter {
///         fn hit(&mut self, by: u64) -> u64;
///         fn hits(&self) -> u64;
///     }
/// }
///
/// let manager = Manager::builder().register::<CounterProxy, u64>(Counter::start_at).start()?;
/// let counter: CounterProxy = manager.create(10u64)?;
/// let theirs = counter.clone();
/// let p = multiprocessing::Process::new(move || { theirs.hit(5).unwrap(); });
/// p.start()?;
/// p.join()?;
/// assert_eq!(counter.hits()?, 15);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
#[macro_export]
macro_rules! shared_type {
    (
        $(#[$meta:meta])*
        $vis:vis proxy $proxy:ident for $target:ty {
            $(
                $(#[$mmeta:meta])*
                fn $method:ident(& $(mut)? self $(, $arg:ident : $argty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $proxy($crate::managers::ProxyRef);

        impl $proxy {
            $(
                $(#[$mmeta])*
                #[allow(clippy::unused_unit)]
                pub fn $method(&self $(, $arg: $argty)*) -> ::std::result::Result<$ret, $crate::Error> {
                    self.0.call(stringify!($method), &($($arg,)*))
                }
            )*
        }

        impl $crate::managers::SharedType for $proxy {
            type Target = $target;
            const TYPEID: &'static str = stringify!($target);

            fn from_proxy(proxy: $crate::managers::ProxyRef) -> Self {
                $proxy(proxy)
            }

            #[allow(unused_variables, unused_mut)]
            fn dispatch(
                target: &mut $target,
                method: &str,
                args: &[u8],
            ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::managers::Failed> {
                match method {
                    $(
                        stringify!($method) => {
                            let ($($arg,)*): ($($argty,)*) = $crate::managers::decode_args(args)?;
                            let result: $ret = target.$method($($arg),*);
                            $crate::managers::encode_result(&result)
                        }
                    )*
                    other => ::std::result::Result::Err(
                        $crate::managers::Failed::no_such_method(stringify!($target), other),
                    ),
                }
            }
        }

        impl ::std::fmt::Debug for $proxy {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.describe(f, stringify!($proxy))
            }
        }

        impl $crate::serde::Serialize for $proxy {
            fn serialize<S: $crate::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> $crate::serde::Deserialize<'de> for $proxy {
            fn deserialize<D: $crate::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                <$crate::managers::ProxyRef as $crate::serde::Deserialize>::deserialize(deserializer).map($proxy)
            }
        }
    };
}
