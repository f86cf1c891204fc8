//! The data proxies: `dict`, `list`, `Namespace`, `Value` and `Queue` of a manager
//! (CPython's `DictProxy`, `ListProxy`, `NamespaceProxy`, `ValueProxy`, and the queue's
//! `AutoProxy`). Each call is a round trip to the server; values travel serialized.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::Bytes;

use super::protocol::{Failure, Op, Reply, Wait};
use super::proxy::{boolean, copying, count, proxy_type, unexpected, unit};
use crate::repr::repr;
use crate::{Error, codec};

/// A value taken out of the server (a queue's item, a popped one).
fn decode<T: DeserializeOwned>(reply: Reply) -> Result<T, Error> {
    match reply {
        Reply::Bytes(bytes) => codec::decode(&bytes),
        other => Err(unexpected(&other)),
    }
}

/// A copy of a value the server keeps (see `proxy.rs` on proxies stored in containers).
fn copy<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    copying(|| codec::decode(bytes))
}

fn copy_one<T: DeserializeOwned>(reply: Reply) -> Result<T, Error> {
    match reply {
        Reply::Bytes(bytes) => copy(&bytes),
        other => Err(unexpected(&other)),
    }
}

fn copy_all<T: DeserializeOwned>(reply: Reply) -> Result<Vec<T>, Error> {
    match reply {
        Reply::List(items) => items.iter().map(|item| copy(item)).collect(),
        other => Err(unexpected(&other)),
    }
}

/// A Python index as the server takes it.
fn at(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

proxy_type! {
    /// A dict in a manager's server, shared by every process that holds a proxy to it.
    ///
    /// Python: `Manager().dict()` (a `DictProxy`). Keys are compared as their serialized
    /// bytes (equal values serialize alike; unlike Python, `1` and `1.0` are different
    /// keys) and keep their insertion order, as Python's. Every call is a round trip to
    /// the server, so every method returns a `Result`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, managers::Manager};
    ///
    /// let manager = Manager::new()?;
    /// let scores = manager.dict::<String, u32>()?;
    /// let theirs = scores.clone();
    /// let p = Process::new(move || theirs.set("child".into(), 7).unwrap());
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(scores.get(&"child".to_string())?, Some(7));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    DictProxy<K, V>
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    /// The value of `key`, if there is one. Python: `d.get(key)`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::UnpicklingError`] for a value that is not a `V`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, char>()?;
    /// assert_eq!(d.get(&1)?, None);
    /// d.set(1, 'a')?;
    /// assert_eq!(d.get(&1)?, Some('a'));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let key = codec::encode(key)?;
        match self.base.invoke(Op::DictGet(Bytes::new(&key)))? {
            Reply::MaybeBytes(value) => value.map(|v| copy(&v)).transpose(),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets `key` to `value`. Python: `d[key] = value`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`] for a key or value that
    /// cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict()?;
    /// d.set("k".to_string(), vec![1, 2])?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, key: K, value: V) -> Result<(), Error> {
        let (key, value) = (codec::encode(&key)?, codec::encode(&value)?);
        unit(self.base.invoke(Op::DictSet(Bytes::new(&key), Bytes::new(&value)))?)
    }

    /// Removes `key` and returns its value. Python: `d.pop(key)` / `del d[key]`.
    ///
    /// # Errors
    /// [`Error::KeyError`] with the key as Python shows it (`'missing'`) when there is no
    /// such key.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<String, u8>()?;
    /// d.set("a".into(), 1)?;
    /// assert_eq!(d.remove(&"a".into())?, 1);
    /// assert_eq!(d.remove(&"a".into()).unwrap_err().to_string(), "'a'");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<V, Error> {
        let bytes = codec::encode(key)?;
        match self.base.call(Op::DictRemove(Bytes::new(&bytes)))? {
            Ok(reply) => decode(reply),
            Err(Failure::KeyError) => Err(Error::KeyError(repr(key))),
            Err(failure) => Err(super::client::failure(failure)),
        }
    }

    /// The value of `key`, set to `default` first if there was none.
    /// Python: `d.setdefault(key, default)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(d.setdefault(1, 10)?, 10);
    /// assert_eq!(d.setdefault(1, 20)?, 10);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn setdefault(&self, key: K, default: V) -> Result<V, Error> {
        let (key, default) = (codec::encode(&key)?, codec::encode(&default)?);
        copy_one(self.base.invoke(Op::DictSetDefault(Bytes::new(&key), Bytes::new(&default)))?)
    }

    /// Whether there is a value for `key`. Python: `key in d`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, ()>()?;
    /// d.set(3, ())?;
    /// assert!(d.contains_key(&3)? && !d.contains_key(&4)?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        let key = codec::encode(key)?;
        boolean(self.base.invoke(Op::DictContains(Bytes::new(&key)))?)
    }

    /// The number of keys. Python: `len(d)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.dict::<u8, u8>()?.len()?, 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize, Error> {
        count(self.base.invoke(Op::Len)?)
    }

    /// Whether there is no key. Python: `not d`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(manager.dict::<u8, u8>()?.is_empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order. Python: `list(d.keys())`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<char, u8>()?;
    /// d.set('b', 1)?;
    /// d.set('a', 2)?;
    /// assert_eq!(d.keys()?, ['b', 'a']);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        copy_all(self.base.invoke(Op::DictKeys)?)
    }

    /// The values, in their keys' insertion order. Python: `list(d.values())`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<char, u8>()?;
    /// d.set('x', 5)?;
    /// assert_eq!(d.values()?, [5]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn values(&self) -> Result<Vec<V>, Error> {
        copy_all(self.base.invoke(Op::DictValues)?)
    }

    /// The pairs, in insertion order. Python: `list(d.items())`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, bool>()?;
    /// d.set(1, true)?;
    /// assert_eq!(d.items()?, [(1, true)]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        match self.base.invoke(Op::DictItems)? {
            Reply::Pairs(pairs) => pairs.iter().map(|(k, v)| Ok((copy(k)?, copy(v)?))).collect(),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes every key. Python: `d.clear()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// d.set(1, 1)?;
    /// d.clear()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::Clear)?)
    }
}

proxy_type! {
    /// A list in a manager's server, shared by every process that holds a proxy to it.
    ///
    /// Python: `Manager().list()` (a `ListProxy`). Every call is a round trip to the
    /// server, so every method returns a `Result`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list::<String>()?;
    /// l.append("a".into())?;
    /// l.extend(["b".to_string(), "c".to_string()])?;
    /// assert_eq!(l.to_vec()?, ["a", "b", "c"]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ListProxy<T>
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// Appends `value`. Python: `l.append(value)`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.append(1u8)?;
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn append(&self, value: T) -> Result<(), Error> {
        let value = codec::encode(&value)?;
        unit(self.base.invoke(Op::ListAppend(Bytes::new(&value)))?)
    }

    /// Appends every value of `values`, in one call. Python: `l.extend(values)`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend(0..3u8)?;
    /// assert_eq!(l.to_vec()?, [0, 1, 2]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<(), Error> {
        let values =
            values.into_iter().map(|v| codec::encode(&v)).collect::<Result<Vec<_>, _>>()?;
        unit(self.base.invoke(Op::ListExtend(values.iter().map(|v| Bytes::new(v)).collect()))?)
    }

    /// The value at `index`. Python: `l[index]`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `list index out of range`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.append('x')?;
    /// assert_eq!(l.get(0)?, 'x');
    /// assert_eq!(l.get(1).unwrap_err().to_string(), "list index out of range");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<T, Error> {
        copy_one(self.base.invoke(Op::ListGet(at(index)))?)
    }

    /// Replaces the value at `index`. Python: `l[index] = value`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `list assignment index out of range`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.append(1)?;
    /// l.set(0, 2)?;
    /// assert_eq!(l.get(0)?, 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), Error> {
        let value = codec::encode(&value)?;
        unit(self.base.invoke(Op::ListSet(at(index), Bytes::new(&value)))?)
    }

    /// Inserts `value` before `index` (at the end past it). Python: `l.insert(index, value)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend([1, 3])?;
    /// l.insert(1, 2)?;
    /// assert_eq!(l.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn insert(&self, index: usize, value: T) -> Result<(), Error> {
        let value = codec::encode(&value)?;
        unit(self.base.invoke(Op::ListInsert(at(index), Bytes::new(&value)))?)
    }

    /// Removes and returns the last value. Python: `l.pop()`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `pop from empty list`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list::<u8>()?;
    /// assert_eq!(l.pop().unwrap_err().to_string(), "pop from empty list");
    /// l.append(9)?;
    /// assert_eq!(l.pop()?, 9);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn pop(&self) -> Result<T, Error> {
        decode(self.base.invoke(Op::ListPop(None))?)
    }

    /// Removes and returns the value at `index`. Python: `l.pop(index)`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `pop index out of range` (`pop from empty list` when empty).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend(['a', 'b'])?;
    /// assert_eq!(l.pop_at(0)?, 'a');
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn pop_at(&self, index: usize) -> Result<T, Error> {
        decode(self.base.invoke(Op::ListPop(Some(at(index))))?)
    }

    /// Removes the first value equal to `value`. Python: `l.remove(value)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `list.remove(x): x not in list`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend([1, 2, 1])?;
    /// l.remove(&1)?;
    /// assert_eq!(l.to_vec()?, [2, 1]);
    /// assert!(l.remove(&5).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn remove(&self, value: &T) -> Result<(), Error> {
        let value = codec::encode(value)?;
        unit(self.base.invoke(Op::ListRemove(Bytes::new(&value)))?)
    }

    /// The index of the first value equal to `value`. Python: `l.index(value)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `<value> is not in list`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend(["x".to_string(), "y".to_string()])?;
    /// assert_eq!(l.index(&"y".to_string())?, 1);
    /// assert_eq!(l.index(&"z".to_string()).unwrap_err().to_string(), "'z' is not in list");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn index(&self, value: &T) -> Result<usize, Error> {
        let bytes = codec::encode(value)?;
        match self.base.call(Op::ListIndex(Bytes::new(&bytes)))? {
            Ok(reply) => count(reply),
            Err(Failure::ValueError(_)) => {
                Err(Error::ValueError(format!("{} is not in list", repr(value)).into()))
            }
            Err(failure) => Err(super::client::failure(failure)),
        }
    }

    /// How many values equal `value`. Python: `l.count(value)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend([1, 1, 2])?;
    /// assert_eq!(l.count(&1)?, 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn count(&self, value: &T) -> Result<usize, Error> {
        let value = codec::encode(value)?;
        count(self.base.invoke(Op::ListCount(Bytes::new(&value)))?)
    }

    /// The number of values. Python: `len(l)`.
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
    pub fn len(&self) -> Result<usize, Error> {
        count(self.base.invoke(Op::Len)?)
    }

    /// Whether the list is empty. Python: `not l`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert!(manager.list::<u8>()?.is_empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Removes every value. Python: `l.clear()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.append(1)?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::Clear)?)
    }

    /// Every value, in order. Python: `list(l)` / `l[:]`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let l = manager.list()?;
    /// l.extend([3, 1])?;
    /// assert_eq!(l.to_vec()?, [3, 1]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        copy_all(self.base.invoke(Op::ListItems)?)
    }
}

proxy_type! {
    /// Named values in a manager's server: CPython's `Manager().Namespace()`.
    ///
    /// Each attribute holds a value of any serde type; reading it back asks for the type.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", &10)?;
    /// ns.set("name", &"pyconc")?;
    /// assert_eq!(ns.get::<i32>("x")?, 10);
    /// assert_eq!(
    ///     ns.get::<i32>("y").unwrap_err().to_string(),
    ///     "'Namespace' object has no attribute 'y'"
    /// );
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    Namespace
}

impl Namespace {
    /// Sets attribute `name`. Python: `ns.name = value`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("ready", &true)?;
    /// assert!(ns.get::<bool>("ready")?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        let value = codec::encode(value)?;
        unit(self.base.invoke(Op::NsSet(name, Bytes::new(&value)))?)
    }

    /// Attribute `name`. Python: `ns.name`.
    ///
    /// # Errors
    /// [`Error::AttributeError`] `'Namespace' object has no attribute 'name'`;
    /// [`Error::UnpicklingError`] when it holds no `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("n", &3u8)?;
    /// assert_eq!(ns.get::<u8>("n")?, 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        copy_one(self.base.invoke(Op::NsGet(name))?)
    }

    /// Deletes attribute `name`. Python: `del ns.name`.
    ///
    /// # Errors
    /// [`Error::AttributeError`] when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("gone", &1)?;
    /// ns.del("gone")?;
    /// assert!(ns.get::<i32>("gone").is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn del(&self, name: &str) -> Result<(), Error> {
        unit(self.base.invoke(Op::NsDel(name))?)
    }

    /// The attributes' names, in the order they were first set. Python: `vars(ns)`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("b", &1)?;
    /// ns.set("a", &2)?;
    /// assert_eq!(ns.names()?, ["b", "a"]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn names(&self) -> Result<Vec<String>, Error> {
        match self.base.invoke(Op::NsNames)? {
            Reply::Names(names) => Ok(names),
            other => Err(unexpected(&other)),
        }
    }
}

proxy_type! {
    /// A value in a manager's server: CPython's `Manager().Value(typecode, value)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let v = manager.value(1.5f64)?;
    /// v.set(2.5)?;
    /// assert_eq!(v.get()?, 2.5);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ValueProxy<T>
}

impl<T> ValueProxy<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// The value. Python: `v.value`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.value("text".to_string())?.get()?, "text");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        copy_one(self.base.invoke(Op::ValueGet)?)
    }

    /// Replaces the value. Python: `v.value = x`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let v = manager.value(0u32)?;
    /// v.set(5)?;
    /// assert_eq!(v.get()?, 5);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, value: T) -> Result<(), Error> {
        let value = codec::encode(&value)?;
        unit(self.base.invoke(Op::ValueSet(Bytes::new(&value)))?)
    }
}

proxy_type! {
    /// A queue in a manager's server: CPython's `Manager().Queue(maxsize)` (a
    /// `queue.Queue`, with `task_done` and `join`).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, managers::Manager};
    ///
    /// let manager = Manager::new()?;
    /// let q = manager.queue::<String>(0)?;
    /// let theirs = q.clone();
    /// let p = Process::new(move || theirs.put("hello".into()).unwrap());
    /// p.start()?;
    /// assert_eq!(q.get()?, "hello");
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    QueueProxy<T>
}

impl<T> QueueProxy<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn put_with(&self, item: T, wait: Wait) -> Result<(), Error> {
        let item = codec::encode(&item)?;
        unit(self.base.invoke(Op::QueuePut(Bytes::new(&item), wait))?)
    }

    fn get_with(&self, wait: Wait) -> Result<T, Error> {
        decode(self.base.invoke(Op::QueueGet(wait))?)
    }

    /// Appends `item`, waiting for room in a bounded queue. Python: `q.put(item)`.
    ///
    /// # Errors
    /// The server cannot be reached; [`Error::PicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(0)?;
    /// q.put(1u8)?;
    /// assert_eq!(q.qsize()?, 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.put_with(item, Wait::Forever)
    }

    /// Appends `item`, waiting at most `timeout` for room. Python: `q.put(item, timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Full`] when no room came in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(1)?;
    /// q.put(1u8)?;
    /// assert!(matches!(q.put_timeout(2, Duration::from_millis(10)), Err(multiprocessing::Error::Full)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.put_with(item, Wait::For(timeout))
    }

    /// Appends `item` if there is room now. Python: `q.put_nowait(item)`.
    ///
    /// # Errors
    /// [`Error::Full`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(1)?;
    /// q.put_nowait('a')?;
    /// assert!(q.put_nowait('b').is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.put_with(item, Wait::No)
    }

    /// Removes and returns the first item, waiting for one. Python: `q.get()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(0)?;
    /// q.put(vec![1, 2])?;
    /// assert_eq!(q.get()?, [1, 2]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.get_with(Wait::Forever)
    }

    /// Removes and returns the first item, waiting at most `timeout`.
    /// Python: `q.get(timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when none came in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue::<u8>(0)?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(multiprocessing::Error::Empty)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.get_with(Wait::For(timeout))
    }

    /// Removes and returns the first item if there is one. Python: `q.get_nowait()`.
    ///
    /// # Errors
    /// [`Error::Empty`].
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue::<u8>(0)?;
    /// assert!(q.get_nowait().is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.get_with(Wait::No)
    }

    /// The number of items. Python: `q.qsize()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// assert_eq!(manager.queue::<u8>(0)?.qsize()?, 0);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn qsize(&self) -> Result<usize, Error> {
        count(self.base.invoke(Op::QueueSize)?)
    }

    /// Whether the queue is empty. Python: `q.empty()`.
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
    pub fn empty(&self) -> Result<bool, Error> {
        boolean(self.base.invoke(Op::QueueEmpty)?)
    }

    /// Whether a bounded queue is full. Python: `q.full()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(1)?;
    /// q.put(0u8)?;
    /// assert!(q.full()?);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn full(&self) -> Result<bool, Error> {
        boolean(self.base.invoke(Op::QueueFull)?)
    }

    /// Marks one item taken with `get` as processed. Python: `q.task_done()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `task_done() called too many times`.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// let q = manager.queue(0)?;
    /// q.put(1u8)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::QueueTaskDone)?)
    }

    /// Waits until every item put was marked done. Python: `q.join()`.
    ///
    /// # Errors
    /// The server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = multiprocessing::managers::Manager::new()?;
    /// manager.queue::<u8>(0)?.join()?; // nothing was put
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        unit(self.base.invoke(Op::QueueJoin)?)
    }
}
