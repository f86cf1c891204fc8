//! `Value` and `Array` of `multiprocessing.dummy`: a value and a list shared by threads.

use std::fmt;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use pyconc_core::sync::lock;

use crate::Error;
use crate::error::{INVALID_INDEX, SLICE_SIZE};
use crate::shared::slice_range;

/// A value shared by the threads that hold a clone.
///
/// Python: `multiprocessing.dummy.Value(typecode, value)` (the type is `T`'s). Each read
/// and write is whole (a mutex inside; CPython's relies on the GIL). `Send + Sync` when
/// `T: Send`.
///
/// # Examples
///
/// ```
/// use multiprocessing::dummy::{Process, Value};
///
/// let counter = Value::new(0u64);
/// let workers: Vec<Process> = (0..4)
///     .map(|_| {
///         let counter = counter.clone();
///         Process::new(move || for _ in 0..1000 { counter.update(|n| *n += 1); })
///     })
///     .collect();
/// for w in &workers { w.start()?; }
/// for w in &workers { w.join()?; }
/// assert_eq!(counter.get(), 4000);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Value<T> {
    value: Arc<Mutex<T>>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Value<T> {
        Value { value: Arc::clone(&self.value) }
    }
}

impl<T> Value<T> {
    /// A shared `value`. Python: `Value(typecode, value)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::dummy::Value::new(1.5);
    /// assert_eq!(v.get(), 1.5);
    /// ```
    pub fn new(value: T) -> Value<T> {
        Value { value: Arc::new(Mutex::new(value)) }
    }

    /// A copy of the value. Python: `v.value`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::dummy::Value::new('x').get(), 'x');
    /// ```
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        lock(&self.value).clone()
    }

    /// Replaces the value. Python: `v.value = x`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::dummy::Value::new(1);
    /// v.set(2);
    /// assert_eq!(v.get(), 2);
    /// ```
    pub fn set(&self, value: T) {
        *lock(&self.value) = value;
    }

    /// Changes the value in one step (no other thread's change comes between the read and
    /// the write); returns a copy of the new value. Python: `with v.get_lock(): v.value += 1`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = multiprocessing::dummy::Value::new(1);
    /// assert_eq!(v.update(|n| *n *= 10), 10);
    /// ```
    pub fn update(&self, change: impl FnOnce(&mut T)) -> T
    where
        T: Clone,
    {
        let mut value = lock(&self.value);
        change(&mut value);
        value.clone()
    }
}

impl<T: fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Value({:?})>", *lock(&self.value))
    }
}

/// A fixed-length list shared by the threads that hold a clone.
///
/// Python: `multiprocessing.dummy.Array(typecode, sequence)` (an `array.array`). Each
/// read and write is whole (a mutex inside). `Send + Sync` when `T: Send`.
///
/// # Examples
///
/// ```
/// let squares = multiprocessing::dummy::Array::from_slice(&[0u32; 4]);
/// let pool = multiprocessing::dummy::Pool::new(Some(2))?;
/// let shared = squares.clone();
/// pool.map(move |i: usize| shared.set(i, (i * i) as u32).unwrap(), 0..4)?;
/// assert_eq!(squares.to_vec(), [0, 1, 4, 9]);
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Array<T> {
    values: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Array<T> {
        Array { values: Arc::clone(&self.values) }
    }
}

impl<T: Clone> Array<T> {
    /// `len` default values (zeros for numbers). Python: `Array(typecode, size)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a: multiprocessing::dummy::Array<i32> = multiprocessing::dummy::Array::new(3);
    /// assert_eq!(a.to_vec(), [0, 0, 0]);
    /// ```
    pub fn new(len: usize) -> Array<T>
    where
        T: Default,
    {
        Array { values: Arc::new(Mutex::new(vec![T::default(); len])) }
    }

    /// A copy of `values`. Python: `Array(typecode, sequence)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::dummy::Array::from_slice(&[1, 2]);
    /// assert_eq!(a.len(), 2);
    /// ```
    pub fn from_slice(values: &[T]) -> Array<T> {
        Array { values: Arc::new(Mutex::new(values.to_vec())) }
    }

    /// The number of values. Python: `len(a)`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::dummy::Array::from_slice(&[1, 2, 3]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.values).len()
    }

    /// Whether it holds no value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiprocessing::dummy::Array::<u8>::from_slice(&[]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the value at `index`, if there is one. Python: `a[i]`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::dummy::Array::from_slice(&[5, 6]);
    /// assert_eq!(a.get(1), Some(6));
    /// assert_eq!(a.get(2), None);
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        lock(&self.values).get(index).cloned()
    }

    /// Replaces the value at `index`. Python: `a[i] = x`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `invalid index` past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::dummy::Array::from_slice(&[0, 0]);
    /// a.set(1, 9)?;
    /// assert!(a.set(2, 9).is_err());
    /// assert_eq!(a.to_vec(), [0, 9]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<(), Error> {
        let mut values = lock(&self.values);
        let place = values.get_mut(index).ok_or(Error::IndexError(INVALID_INDEX.into()))?;
        *place = value;
        Ok(())
    }

    /// Copies of the values in `range` (clamped to the length, as a Python slice).
    /// Python: `a[i:j]`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::dummy::Array::from_slice(&[1, 2, 3, 4]);
    /// assert_eq!(a.get_slice(1..3), [2, 3]);
    /// assert_eq!(a.get_slice(2..), [3, 4]);
    /// assert_eq!(a.get_slice(3..99), [4]);
    /// ```
    pub fn get_slice(&self, range: impl RangeBounds<usize>) -> Vec<T> {
        let values = lock(&self.values);
        values[slice_range(&range, values.len())].to_vec()
    }

    /// Replaces the values in `range` (clamped to the length) with `new`, one for one.
    /// Python: `a[i:j] = seq`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `Can only assign sequence of same size`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = multiprocessing::dummy::Array::from_slice(&[1, 2, 3]);
    /// a.set_slice(..2, &[7, 8])?;
    /// assert_eq!(a.to_vec(), [7, 8, 3]);
    /// assert!(a.set_slice(.., &[1]).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set_slice(&self, range: impl RangeBounds<usize>, new: &[T]) -> Result<(), Error> {
        let mut values = lock(&self.values);
        let range = slice_range(&range, values.len());
        if range.len() != new.len() {
            return Err(Error::value(SLICE_SIZE));
        }
        values[range].clone_from_slice(new);
        Ok(())
    }

    /// A copy of every value. Python: `a[:]`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::dummy::Array::from_slice(&[1, 2]).to_vec(), [1, 2]);
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        lock(&self.values).clone()
    }
}

impl<T: fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Array({:?})>", *lock(&self.values))
    }
}
