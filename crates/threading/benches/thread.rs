//! Criterion benches: pyconc's `threading` next to the `std` code it replaces, in one run.
//! `cargo bench -p pyconc-threading`. See also `pyconc bench threads`, which adds CPython.

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("thread start+join");
    group.bench_function("threading::Thread", |b| {
        b.iter(|| {
            let t = threading::Thread::new(|| {});
            t.start().unwrap();
            t.join().unwrap();
        })
    });
    group.bench_function("std::thread::spawn", |b| {
        b.iter(|| std::thread::spawn(|| {}).join().unwrap())
    });
    group.finish();
}

fn current(c: &mut Criterion) {
    let mut group = c.benchmark_group("current thread");
    group.bench_function("threading::current_thread", |b| {
        b.iter(|| black_box(threading::current_thread()))
    });
    group.bench_function("std::thread::current", |b| b.iter(|| black_box(std::thread::current())));
    group.bench_function("threading::get_ident", |b| b.iter(|| black_box(threading::get_ident())));
    group.finish();
}

fn timer(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer start+cancel+join");
    group.bench_function("threading::Timer", |b| {
        b.iter(|| {
            let t = threading::Timer::new(Duration::from_secs(1), || {});
            t.start().unwrap();
            t.cancel();
            t.join().unwrap();
        })
    });
    group.bench_function("std thread + Condvar", |b| {
        b.iter(|| {
            let shared = Arc::new((Mutex::new(false), Condvar::new()));
            let theirs = Arc::clone(&shared);
            let handle = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(1);
                let mut cancelled = theirs.0.lock().unwrap();
                while !*cancelled && Instant::now() < deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    cancelled = theirs.1.wait_timeout(cancelled, left).unwrap().0;
                }
            });
            *shared.0.lock().unwrap() = true;
            shared.1.notify_all();
            handle.join().unwrap();
        })
    });
    group.finish();
}

#[allow(missing_docs, reason = "criterion_group! generates an undocumented function")]
mod group {
    use super::*;
    criterion_group!(benches, start_join, current, timer);
}
use group::benches;
criterion_main!(benches);
