//! The cross-process primitives' uncontended paths, next to `std::sync::Mutex` (the raw
//! baseline, a private futex): `cargo bench -p pyconc-multiprocessing --bench sync`.
//! Each pyconc figure is read as a ratio to the `std` one measured in the same run.

use std::hint::black_box;
use std::sync::Mutex;

use criterion::{Criterion, criterion_group, criterion_main};
use multiprocessing::{BoundedSemaphore, Event, Lock, RLock, Semaphore, Value};

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    let mutex = Mutex::new(0u64);
    group.bench_function("std Mutex lock+unlock", |b| {
        b.iter(|| drop(black_box(&mutex).lock()));
    });
    let lock = Lock::new();
    group.bench_function("pyconc Lock acquire+release", |b| {
        b.iter(|| {
            black_box(&lock).acquire();
            let _ = lock.release();
        });
    });
    let rlock = RLock::new();
    group.bench_function("pyconc RLock acquire+release", |b| {
        b.iter(|| {
            black_box(&rlock).acquire();
            let _ = rlock.release();
        });
    });
    let value = Value::new(7u64).unwrap();
    group.bench_function("pyconc Value get (locked)", |b| b.iter(|| black_box(&value).get()));
    let raw = Value::new_raw(7u64).unwrap();
    group.bench_function("pyconc Value get (raw)", |b| b.iter(|| black_box(&raw).get()));
    let semaphore = Semaphore::new(1);
    group.bench_function("pyconc Semaphore acquire+release", |b| {
        b.iter(|| {
            black_box(&semaphore).acquire();
            semaphore.release();
        });
    });
    let bounded = BoundedSemaphore::new(1);
    group.bench_function("pyconc BoundedSemaphore acquire+release", |b| {
        b.iter(|| {
            black_box(&bounded).acquire();
            let _ = bounded.release();
        });
    });
    let event = Event::new();
    group.bench_function("pyconc Event set+is_set+clear", |b| {
        b.iter(|| {
            black_box(&event).set();
            black_box(event.is_set());
            event.clear();
        });
    });
    group.finish();
}

#[allow(missing_docs, reason = "criterion_group! generates an undocumented function")]
mod group {
    use super::*;
    criterion_group! {
        name = benches;
        config = Criterion::default()
            .sample_size(50)
            .measurement_time(std::time::Duration::from_secs(2));
        targets = uncontended
    }
}
use group::benches;
criterion_main!(benches);
