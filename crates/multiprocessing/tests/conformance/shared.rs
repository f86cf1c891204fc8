//! `Value` and `Array`, ported from `_TestValue` and `_TestArray` in CPython 3.11's
//! `_test_multiprocessing.py` (test_value, test_rawvalue, test_getobj_getlock, test_array,
//! test_array_from_size, test_rawarray, test_getobj_getlock_obj) for each start method.

use multiprocessing::{Array, Error, StartMethod, Value};

use crate::each_start_method;
use crate::support::call;

fn set_values((int, float, byte): (Value<i32>, Value<f64>, Value<u8>)) {
    int.set(int.get() + 1);
    float.set(float.get() * 2.0);
    byte.set(b'x');
}

fn add_in_child((counter, rounds): (Value<u64>, u64)) {
    for _ in 0..rounds {
        counter.update(|n| *n += 1);
    }
}

fn fill_array(array: Array<i64>) {
    for i in 0..array.len() {
        let value = array.get(i).unwrap();
        array.set(i, value * 10 + i as i64).unwrap();
    }
}

each_start_method! {
    a_child_changes_values_the_parent_sees => a_child_changes_values_the_parent_sees;
    updates_under_the_lock_are_not_lost => updates_under_the_lock_are_not_lost;
    a_child_changes_an_array_the_parent_sees => a_child_changes_an_array_the_parent_sees;
    raw_values_and_arrays_reach_children_too => raw_values_and_arrays_reach_children_too;
    a_given_lock_is_shared_by_what_it_guards => a_given_lock_is_shared_by_what_it_guards;
}

/// test_value.
fn a_child_changes_values_the_parent_sees(method: StartMethod) {
    let values =
        (Value::new(-1i32).unwrap(), Value::new(1.25f64).unwrap(), Value::new(b'a').unwrap());
    let p = call(method, set_values, values.clone());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!((values.0.get(), values.1.get(), values.2.get()), (0, 2.5, b'x'));
}

/// The shared counter with a lock: two processes, no update lost.
fn updates_under_the_lock_are_not_lost(method: StartMethod) {
    let counter = Value::new(0u64).unwrap();
    let procs: Vec<_> =
        (0..2).map(|_| call(method, add_in_child, (counter.clone(), 2000))).collect();
    for p in &procs {
        p.start().unwrap();
    }
    for p in &procs {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    assert_eq!(counter.get(), 4000);
}

/// test_array.
fn a_child_changes_an_array_the_parent_sees(method: StartMethod) {
    let array = Array::from_slice(&[1i64, 2, 3, 4, 5]).unwrap();
    let p = call(method, fill_array, array.clone());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(array.to_vec(), [10, 21, 32, 43, 54]);
}

fn touch_raw((value, array): (Value<u32>, Array<u16>)) {
    value.set(7);
    array.set(2, 9).unwrap();
}

/// test_rawvalue / test_rawarray.
fn raw_values_and_arrays_reach_children_too(method: StartMethod) {
    let value = Value::new_raw(0u32).unwrap();
    let array = Array::<u16>::new_raw(4).unwrap();
    let p = call(method, touch_raw, (value.clone(), array.clone()));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(value.get(), 7);
    assert_eq!(array.to_vec(), [0, 0, 9, 0]);
}

/// test_array (its slice reads and writes) and test_rawarray: `arr[2:7]`, `arr[4:8] = ...`,
/// `arr[:]`; a slice of another length is refused with ctypes' text.
#[test]
fn slices_read_and_write_like_python_slices() {
    let seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    for array in [Array::<i32>::from_slice(&seq).unwrap(), {
        let raw = Array::<i32>::new_raw(seq.len()).unwrap();
        raw.set_slice(.., &seq).unwrap();
        raw
    }] {
        assert_eq!(array.len(), seq.len());
        assert_eq!(array.get(3), Some(seq[3]));
        assert_eq!(array.get_slice(2..7), seq[2..7]);
        array.set_slice(4..8, &[1, 2, 3, 4]).unwrap();
        let mut expected = seq;
        expected[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(array.get_slice(..), expected);
        assert_eq!(array.get_slice(8..100), expected[8..], "clamped like a[8:100]");
        assert_eq!(array.get_slice(20..30), [] as [i32; 0]);
        let err = array.set_slice(0..2, &[1]).unwrap_err();
        assert_eq!(err.to_string(), "Can only assign sequence of same size");
        assert_eq!(array.get_slice(..), expected, "a refused assignment stores nothing");
    }
}

fn shares_the_lock((value, array): (Value<u64>, Array<u64>)) {
    let _held = value.get_lock().lock();
    assert!(array.get_lock().is_owned(), "the array's lock is the value's");
    array.set(0, value.get()).unwrap();
}

/// test_getobj_getlock's `Value('i', 5, lock=lock)`: values and arrays made with one lock
/// share it, in this process and in a child that receives them.
fn a_given_lock_is_shared_by_what_it_guards(method: StartMethod) {
    let lock = multiprocessing::RLock::new();
    let value = Value::with_lock(7u64, lock.clone()).unwrap();
    let array = Array::<u64>::with_lock(1, lock.clone()).unwrap();
    {
        let _held = lock.lock();
        assert!(value.get_lock().is_owned() && array.get_lock().is_owned());
    }
    let p = call(method, shares_the_lock, (value, array.clone()));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(array.get(0), Some(7));
}

/// test_array_from_size, indexing, test_getobj_getlock.
#[test]
fn arrays_start_zeroed_and_refuse_bad_indices() {
    let array = Array::<f32>::new(3).unwrap();
    assert_eq!(array.len(), 3);
    assert_eq!(array.to_vec(), [0.0; 3]);
    assert_eq!(array.get(3), None);
    let err = array.set(3, 1.0).unwrap_err();
    assert!(matches!(err, Error::IndexError(_)));
    assert_eq!(err.to_string(), "invalid index");
    let lock = array.get_lock();
    lock.acquire();
    assert!(lock.is_owned());
    array.set(0, 1.5).unwrap(); // an RLock: the same thread may take it again
    lock.release().unwrap();
    assert_eq!(array.get(0), Some(1.5));
    let value = Value::new(3u8).unwrap();
    assert_eq!(value.update(|v| *v *= 2), 6);
    assert!(!value.get_lock().locked());
}

/// Issue 14, item 12: `Debug` of a synchronized `Value`/`Array` reads under its lock, as
/// every read of it does (before the fix it read the memory while another thread held
/// the lock in the middle of an update).
#[test]
fn debug_of_a_synchronized_value_waits_for_its_lock() {
    use std::time::Duration;
    let value = Value::new(7u32).unwrap();
    let array = Array::from_slice(&[1u8, 2]).unwrap();
    value.get_lock().acquire();
    array.get_lock().acquire();
    let (v, a) = (value.clone(), array.clone());
    let reader = std::thread::spawn(move || (format!("{v:?}"), format!("{a:?}")));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!reader.is_finished(), "Debug read the value without its lock");
    value.get_lock().release().unwrap();
    array.get_lock().release().unwrap();
    let (v, a) = reader.join().unwrap();
    assert_eq!(v, "<Synchronized wrapper for 7>");
    assert_eq!(a, "<SynchronizedArray wrapper for [1, 2]>");
}

/// Unlocked (`RawValue`) access from several threads at once is well-defined: each
/// aligned word is copied atomically, so a `u64` written whole is read whole.
#[test]
fn raw_values_written_by_threads_are_read_whole() {
    let value = Value::new_raw(0u64).unwrap();
    let writers: Vec<_> = (1..=2u64)
        .map(|k| {
            let value = value.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    value.set(u64::MAX / 3 * k);
                }
            })
        })
        .collect();
    for _ in 0..20_000 {
        let seen = value.get();
        assert!([0, u64::MAX / 3, u64::MAX / 3 * 2].contains(&seen), "torn word {seen:#x}");
    }
    for w in writers {
        w.join().unwrap();
    }
}
