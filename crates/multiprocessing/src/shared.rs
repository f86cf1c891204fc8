//! `Value` and `Array`: plain data in shared memory, CPython's
//! `multiprocessing.sharedctypes` (`Value`, `Array`, `RawValue`, `RawArray`).
//!
//! The element type is any [`bytemuck::Pod`] type — numbers, arrays of them,
//! `#[repr(C)]` structs of them: types for which every bit pattern is a value, so another
//! process can never hand this one an invalid `T`. `get`/`set` take the object's
//! [`RLock`] (CPython's synchronized wrapper); `new_raw` objects skip it (`lock=False`).
//! Reads and writes copy the value through atomic loads and stores of its aligned words:
//! an unlocked value read while another thread or process writes it may mix old and new
//! words (CPython's `RawValue` may tear too), but it is never a data race.
//!
//! # Examples
//!
//! ```
//! use multiprocessing::{Process, Value};
//!
//! let counter = Value::new(0u64)?;
//! let procs: Vec<Process> = (0..2)
//!     .map(|_| {
//!         let counter = counter.clone();
//!         Process::new(move || {
//!             for _ in 0..1000 {
//!                 counter.update(|n| *n += 1); // read-modify-write under the lock
//!             }
//!         })
//!     })
//!     .collect();
//! for p in &procs {
//!     p.start()?;
//! }
//! threading::joinall(&procs).unwrap();
//! assert_eq!(counter.get(), 2000);
//! # Ok::<(), multiprocessing::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ARRAY_TOO_LARGE, INVALID_INDEX, SLICE_SIZE};
use crate::heap::{SendMem, SharedMemory};
use crate::{Error, RLock};

/// One `T` in shared memory: Python's `multiprocessing.Value`.
///
/// Clones share the value. `Send + Sync`; hand it to a child by moving a clone into a fork
/// child's closure, or in `Process::call`'s arguments.
///
/// # Differences from CPython
/// - The type is a Rust type (`Value<i64>`, any `bytemuck::Pod`) instead of a typecode
///   (`'i'`, `'d'`); `lock=False` is [`Value::new_raw`], `lock=rlock` is
///   [`Value::with_lock`], which takes an [`RLock`] only (CPython takes a `Lock` too; the
///   lock's type stays what [`get_lock`](Value::get_lock) returns).
/// - `value.value += 1` under the lock is [`update`](Value::update), one locked
///   read-modify-write.
pub struct Value<T: Pod> {
    mem: Arc<SharedMemory>,
    lock: RLock,
    synchronized: bool,
    _type: PhantomData<T>,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Value<T> {
        Value {
            mem: Arc::clone(&self.mem),
            lock: self.lock.clone(),
            synchronized: self.synchronized,
            _type: PhantomData,
        }
    }
}

impl<T: Pod> Value<T> {
    /// A shared `T` holding `value`, with a lock. Python: `multiprocessing.Value(type, value)`.
    ///
    /// # Errors
    /// [`Error::OsError`] when the OS refuses shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, Value};
    ///
    /// let counter = Value::new(0u64)?;
    /// let theirs = counter.clone();
    /// let p = Process::new(move || {
    ///     theirs.update(|n| *n += 1);
    /// });
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(counter.get(), 1, "the child's write is seen by the parent");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(value: T) -> Result<Value<T>, Error> {
        Value::make(value, true)
    }

    /// A shared `T` whose `get`/`set` take no lock. Python: `Value(type, value, lock=False)`
    /// / `RawValue`.
    ///
    /// # Errors
    /// As [`new`](Value::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let flag = multiprocessing::Value::new_raw(0u8)?; // RawValue: no lock
    /// flag.set(1);
    /// assert_eq!(flag.get(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new_raw(value: T) -> Result<Value<T>, Error> {
        Value::make(value, false)
    }

    /// A shared `T` holding `value`, guarded by `lock`: Python's
    /// `Value(type, value, lock=rlock)`. Several values (and arrays) given one lock change
    /// together under it.
    ///
    /// # Errors
    /// As [`new`](Value::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{RLock, Value};
    ///
    /// let lock = RLock::new();
    /// let (balance, count) = (Value::with_lock(100i64, lock.clone())?, Value::with_lock(0u32, lock.clone())?);
    /// {
    ///     let _both = lock.lock(); // one step for both values
    ///     balance.set(balance.get() - 30);
    ///     count.set(count.get() + 1);
    /// }
    /// assert_eq!((balance.get(), count.get()), (70, 1));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_lock(value: T, lock: RLock) -> Result<Value<T>, Error> {
        Value::make_with(value, true, lock)
    }

    fn make(value: T, synchronized: bool) -> Result<Value<T>, Error> {
        Value::make_with(value, synchronized, RLock::try_new()?)
    }

    fn make_with(value: T, synchronized: bool, lock: RLock) -> Result<Value<T>, Error> {
        let mem = Arc::new(SharedMemory::new(std::mem::size_of::<T>())?);
        let shared = Value { mem, lock, synchronized, _type: PhantomData };
        shared.write(value);
        Ok(shared)
    }

    fn read(&self) -> T {
        // T is Pod: every bit pattern another process wrote is a valid T.
        self.mem.load(0)
    }

    fn write(&self, value: T) {
        self.mem.store(0, value);
    }

    /// The value. Python: `v.value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::Value::new(2.5f64)?;
    /// assert_eq!(v.get(), 2.5);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> T {
        if !self.synchronized {
            return self.read();
        }
        self.lock.acquire();
        let value = self.read();
        let _ = self.lock.release();
        value
    }

    /// Stores `value`. Python: `v.value = value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::Value::new(0i32)?;
    /// v.set(-7);
    /// assert_eq!(v.get(), -7);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        if !self.synchronized {
            return self.write(value);
        }
        self.lock.acquire();
        self.write(value);
        let _ = self.lock.release();
    }

    /// Changes the value under the lock: Python's `with v.get_lock(): v.value += 1`.
    /// Returns the new value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::Value::new(10u32)?;
    /// assert_eq!(v.update(|n| *n += 5), 15); // `with v.get_lock(): v.value += 5`
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn update(&self, change: impl FnOnce(&mut T)) -> T {
        self.lock.acquire();
        let mut value = self.read();
        change(&mut value);
        self.write(value);
        let _ = self.lock.release();
        value
    }

    /// The lock that guards the value (an [`RLock`], as CPython's default).
    /// Python: `v.get_lock()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::Value::new(1u8)?;
    /// let _held = v.get_lock().lock();
    /// v.set(2); // the RLock nests: the holder may still use the value
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Under the lock, as every read of a synchronized value.
        write!(f, "<Synchronized wrapper for {:?}>", self.get())
    }
}

/// `len` values of `T` in shared memory: Python's `multiprocessing.Array`.
pub struct Array<T: Pod> {
    mem: Arc<SharedMemory>,
    lock: RLock,
    len: usize,
    synchronized: bool,
    _type: PhantomData<T>,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Array<T> {
        Array {
            mem: Arc::clone(&self.mem),
            lock: self.lock.clone(),
            len: self.len,
            synchronized: self.synchronized,
            _type: PhantomData,
        }
    }
}

impl<T: Pod> Array<T> {
    /// `len` zeroes. Python: `multiprocessing.Array(type, len)`.
    ///
    /// # Errors
    /// [`Error::OsError`] when the OS refuses shared memory; [`Error::ValueError`] for a
    /// length whose size overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<u32>::new(4)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0, 0]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(len: usize) -> Result<Array<T>, Error> {
        Array::make(len, true)
    }

    /// `len` zeroes without a lock. Python: `Array(type, len, lock=False)` / `RawArray`.
    ///
    /// # Errors
    /// As [`new`](Array::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<u8>::new_raw(2)?; // RawArray: no lock
    /// a.set(1, 9)?;
    /// assert_eq!(a.to_vec(), [0, 9]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new_raw(len: usize) -> Result<Array<T>, Error> {
        Array::make(len, false)
    }

    /// A copy of `values`. Python: `multiprocessing.Array(type, sequence)`.
    ///
    /// # Errors
    /// As [`new`](Array::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Array, Process};
    ///
    /// let a = Array::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let theirs = a.clone();
    /// let p = Process::new(move || {
    ///     for i in 0..theirs.len() {
    ///         let x = theirs.get(i).unwrap();
    ///         theirs.set(i, -x).unwrap();
    ///     }
    /// });
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(a.to_vec(), [-1.0, -2.0, -3.0]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>, Error> {
        let array = Array::make(values.len(), true)?;
        for (i, value) in values.iter().enumerate() {
            array.write(i, *value);
        }
        Ok(array)
    }

    /// `len` zeroes guarded by `lock`: Python's `Array(type, len, lock=rlock)`.
    ///
    /// # Errors
    /// As [`new`](Array::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Array, RLock, Value};
    ///
    /// let lock = RLock::new();
    /// let samples = Array::<f64>::with_lock(3, lock.clone())?;
    /// let taken = Value::with_lock(0u32, lock.clone())?;
    /// {
    ///     let _held = lock.lock();
    ///     samples.set_slice(.., &[0.5, 1.5, 2.5])?;
    ///     taken.set(3);
    /// }
    /// let _held = samples.get_lock().lock();
    /// assert!(taken.get_lock().is_owned(), "one lock for both");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn with_lock(len: usize, lock: RLock) -> Result<Array<T>, Error> {
        Array::make_with(len, true, lock)
    }

    fn make(len: usize, synchronized: bool) -> Result<Array<T>, Error> {
        Array::make_with(len, synchronized, RLock::try_new()?)
    }

    fn make_with(len: usize, synchronized: bool, lock: RLock) -> Result<Array<T>, Error> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or_else(|| Error::value(ARRAY_TOO_LARGE))?;
        let mem = Arc::new(SharedMemory::new(bytes)?);
        Ok(Array { mem, lock, len, synchronized, _type: PhantomData })
    }

    fn read(&self, index: usize) -> T {
        debug_assert!(index < self.len);
        // index < len: the element lies in the mapping; T is Pod, so every bit pattern
        // another process wrote is a valid T.
        self.mem.load(index * std::mem::size_of::<T>())
    }

    fn write(&self, index: usize, value: T) {
        debug_assert!(index < self.len);
        self.mem.store(index * std::mem::size_of::<T>(), value);
    }

    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.synchronized {
            self.lock.acquire();
        }
        let result = f();
        if self.synchronized {
            let _ = self.lock.release();
        }
        result
    }

    /// The number of elements. Python: `len(a)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<i64>::new(3)?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiprocessing::Array::<i64>::new(0)?.is_empty());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `index`, or `None` past the end. Python: `a[index]`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::from_slice(&[5u16, 6])?;
    /// assert_eq!(a.get(1), Some(6));
    /// assert_eq!(a.get(2), None);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        (index < self.len).then(|| self.locked(|| self.read(index)))
    }

    /// Stores element `index`. Python: `a[index] = value`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `invalid index` past the end (CPython's ctypes message).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<u16>::new(2)?;
    /// a.set(0, 7)?;
    /// assert_eq!(a.set(2, 7).unwrap_err().to_string(), "invalid index");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), Error> {
        if index >= self.len {
            return Err(Error::IndexError(INVALID_INDEX.into()));
        }
        self.locked(|| self.write(index, value));
        Ok(())
    }

    /// The elements in `range`, clamped to the array as Python clamps a slice, taken
    /// under the lock. Python: `a[start:stop]`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::from_slice(&[1u32, 2, 3, 4])?;
    /// assert_eq!(a.get_slice(1..3), [2, 3]);
    /// assert_eq!(a.get_slice(2..), [3, 4]);
    /// assert_eq!(a.get_slice(3..10), [4], "clamped, as a[3:10]");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_slice(&self, range: impl RangeBounds<usize>) -> Vec<T> {
        let range = self.clamp(range);
        self.locked(|| range.map(|i| self.read(i)).collect())
    }

    /// Stores `values` in `range` (clamped as Python clamps a slice), under the lock, so
    /// that no locked reader sees half of it. Python: `a[start:stop] = values`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Can only assign sequence of same size` when `values` is not
    /// as long as the clamped range (nothing is stored).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<i16>::new(4)?;
    /// a.set_slice(1..3, &[7, 8])?;
    /// assert_eq!(a.to_vec(), [0, 7, 8, 0]);
    /// let refused = a.set_slice(.., &[1]).unwrap_err();
    /// assert_eq!(refused.to_string(), "Can only assign sequence of same size");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_slice(&self, range: impl RangeBounds<usize>, values: &[T]) -> Result<(), Error> {
        let range = self.clamp(range);
        if range.len() != values.len() {
            return Err(Error::value(SLICE_SIZE));
        }
        self.locked(|| {
            for (i, value) in range.zip(values) {
                self.write(i, *value);
            }
        });
        Ok(())
    }

    fn clamp(&self, range: impl RangeBounds<usize>) -> std::ops::Range<usize> {
        slice_range(&range, self.len)
    }

    /// A copy of every element, taken under the lock. Python: `a[:]`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::from_slice(&[1i8, 2, 3])?;
    /// assert_eq!(a.to_vec(), vec![1, 2, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.locked(|| (0..self.len).map(|i| self.read(i)).collect())
    }

    /// The lock that guards the array. Python: `a.get_lock()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::Array::<u64>::new(2)?;
    /// {
    ///     let _held = a.get_lock().lock(); // several writes as one step
    ///     a.set(0, 1)?;
    ///     a.set(1, 1)?;
    /// }
    /// assert_eq!(a.to_vec(), [1, 1]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }
}

/// `range` clamped to `0..len`, as Python clamps a slice (an empty range when it starts
/// past its end). Also `dummy::Array`'s.
pub(crate) fn slice_range(range: &impl RangeBounds<usize>, len: usize) -> std::ops::Range<usize> {
    use std::ops::Bound;
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.saturating_add(1),
        Bound::Excluded(&i) => i,
        Bound::Unbounded => len,
    };
    let end = end.min(len);
    start.min(end)..end
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Under the lock, as every read of a synchronized array.
        write!(f, "<SynchronizedArray wrapper for {:?}>", self.to_vec())
    }
}

impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (SendMem(&self.mem, "Value"), &self.lock, self.synchronized).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value<T>, D::Error> {
        let (mem, lock, synchronized) = <(SharedMemory, RLock, bool)>::deserialize(deserializer)?;
        if mem.len() < std::mem::size_of::<T>() {
            return Err(serde::de::Error::custom("shared memory too small for the value"));
        }
        Ok(Value { mem: Arc::new(mem), lock, synchronized, _type: PhantomData })
    }
}

impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (SendMem(&self.mem, "Array"), &self.lock, self.len as u64, self.synchronized)
            .serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Array<T>, D::Error> {
        let (mem, lock, len, synchronized) =
            <(SharedMemory, RLock, u64, bool)>::deserialize(deserializer)?;
        let len = usize::try_from(len).map_err(serde::de::Error::custom)?;
        let fits =
            len.checked_mul(std::mem::size_of::<T>()).is_some_and(|bytes| bytes <= mem.len());
        if !fits {
            return Err(serde::de::Error::custom("shared memory too small for the array"));
        }
        Ok(Array { mem: Arc::new(mem), lock, len, synchronized, _type: PhantomData })
    }
}
