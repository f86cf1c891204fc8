//! Criterion benches of the synchronisation primitives next to what they replace, in one
//! run: `Lock` vs parking_lot's and std's `Mutex` (uncontended and 2-thread contended),
//! `Event` and `Semaphore` wake-up round trips vs a std `Mutex` + `Condvar` version.
//! `cargo bench -p pyconc-threading --bench sync`.

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock uncontended acquire+release");
    let lock = threading::Lock::new();
    group.bench_function("threading::Lock", |b| {
        b.iter(|| {
            lock.acquire();
            lock.release().unwrap();
        })
    });
    let rlock = threading::RLock::new();
    group.bench_function("threading::RLock", |b| {
        b.iter(|| {
            rlock.acquire();
            rlock.release().unwrap();
        })
    });
    let rlock_nested = threading::RLock::new();
    rlock_nested.acquire();
    group.bench_function("threading::RLock, nested level", |b| {
        b.iter(|| {
            rlock_nested.acquire();
            rlock_nested.release().unwrap();
        })
    });
    let pl = parking_lot::Mutex::new(());
    group.bench_function("parking_lot::Mutex", |b| b.iter(|| drop(black_box(pl.lock()))));
    let pl_reentrant = parking_lot::ReentrantMutex::new(());
    group.bench_function("parking_lot::ReentrantMutex", |b| {
        b.iter(|| drop(black_box(pl_reentrant.lock())))
    });
    let std_mutex = Mutex::new(());
    group.bench_function("std::sync::Mutex", |b| b.iter(|| drop(black_box(std_mutex.lock()))));
    group.finish();
}

/// Two threads each doing `per_thread` lock/unlock pairs around a tiny critical section.
fn contended_run(per_thread: u64, lock: impl Fn() + Send + Sync + 'static) -> Duration {
    let lock = Arc::new(lock);
    let start = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    lock();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock contended, 2 threads (time per pair)");
    group.bench_function("threading::Lock", |b| {
        b.iter_custom(|iters| {
            let lock = threading::Lock::new();
            let counter = std::sync::atomic::AtomicU64::new(0);
            let state = Arc::new((lock, counter));
            contended_run(iters.div_ceil(2), move || {
                state.0.acquire();
                // A plain increment under the lock, as the Mutex benches do.
                let v = state.1.load(std::sync::atomic::Ordering::Relaxed);
                state.1.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                state.0.release().unwrap();
            })
        })
    });
    group.bench_function("std::sync::Mutex", |b| {
        b.iter_custom(|iters| {
            let m = Arc::new(Mutex::new(0u64));
            contended_run(iters.div_ceil(2), move || *m.lock().unwrap() += 1)
        })
    });
    group.bench_function("parking_lot::Mutex", |b| {
        b.iter_custom(|iters| {
            let m = Arc::new(parking_lot::Mutex::new(0u64));
            contended_run(iters.div_ceil(2), move || *m.lock() += 1)
        })
    });
    group.finish();
}

/// A std-only event: what one writes without pyconc.
#[derive(Default)]
struct CondvarEvent {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl CondvarEvent {
    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn wait_and_clear(&self) {
        let mut flag = self.flag.lock().unwrap();
        while !*flag {
            flag = self.cv.wait(flag).unwrap();
        }
        *flag = false;
    }
}

/// Round trips between two threads: this one signals `there` and waits on `back`, the
/// peer waits on `there` and signals `back`; returns the time of `iters` round trips.
fn ping_pong<S: Send + Sync + 'static>(
    iters: u64,
    make: fn() -> S,
    signal: fn(&S),
    wait: fn(&S),
) -> Duration {
    let there = Arc::new(make());
    let back = Arc::new(make());
    let (t, b) = (Arc::clone(&there), Arc::clone(&back));
    let peer = std::thread::spawn(move || {
        for _ in 0..iters {
            wait(&t);
            signal(&b);
        }
    });
    let start = Instant::now();
    for _ in 0..iters {
        signal(&there);
        wait(&back);
    }
    let elapsed = start.elapsed();
    peer.join().unwrap();
    elapsed
}

fn event_ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("event set->wait round trip (2 threads)");
    group.bench_function("threading::Event", |b| {
        b.iter_custom(|iters| {
            ping_pong(iters, threading::Event::new, threading::Event::set, |e| {
                e.wait();
                e.clear();
            })
        })
    });
    group.bench_function("std Mutex+Condvar event", |b| {
        b.iter_custom(|iters| {
            ping_pong(iters, CondvarEvent::default, CondvarEvent::set, CondvarEvent::wait_and_clear)
        })
    });
    group.finish();
}

/// A std-only counting semaphore.
#[derive(Default)]
struct CondvarSemaphore {
    value: Mutex<usize>,
    cv: Condvar,
}

impl CondvarSemaphore {
    fn acquire(&self) {
        let mut value = self.value.lock().unwrap();
        while *value == 0 {
            value = self.cv.wait(value).unwrap();
        }
        *value -= 1;
    }
    fn release(&self) {
        *self.value.lock().unwrap() += 1;
        self.cv.notify_one();
    }
}

fn semaphore(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore");
    let sem = threading::Semaphore::new(1);
    group.bench_function("threading::Semaphore acquire+release", |b| {
        b.iter(|| {
            sem.acquire();
            sem.release();
        })
    });
    let std_sem = CondvarSemaphore { value: Mutex::new(1), cv: Condvar::new() };
    group.bench_function("std Mutex+Condvar acquire+release", |b| {
        b.iter(|| {
            std_sem.acquire();
            std_sem.release();
        })
    });
    group.bench_function("threading::Semaphore ping-pong", |b| {
        b.iter_custom(|iters| {
            ping_pong(
                iters,
                || threading::Semaphore::new(0),
                threading::Semaphore::release,
                threading::Semaphore::acquire,
            )
        })
    });
    group.bench_function("std Mutex+Condvar ping-pong", |b| {
        b.iter_custom(|iters| {
            ping_pong(
                iters,
                CondvarSemaphore::default,
                CondvarSemaphore::release,
                CondvarSemaphore::acquire,
            )
        })
    });
    group.finish();
}

#[allow(missing_docs, reason = "criterion_group! generates an undocumented function")]
mod group {
    use super::*;
    criterion_group!(benches, uncontended, contended, event_ping_pong, semaphore);
}
use group::benches;
criterion_main!(benches);
