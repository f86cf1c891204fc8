//! Process start+join per start method against the raw system calls, with criterion.
//! `cargo bench -p pyconc-multiprocessing --bench process`. Side-by-side figures with CPython
//! are in `pyconc bench processes`.

use criterion::{Criterion, criterion_group, criterion_main};
use multiprocessing::{Process, StartMethod};

// Spawn and forkserver children run this bench binary again; they run their target
// before criterion's `main`.
multiprocessing::init_before_main!();

fn empty(_: ()) {}

fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("process start+join");
    group.sample_size(30);
    group.bench_function("raw fork+_exit+waitpid", |b| {
        b.iter(|| {
            // SAFETY: the child only calls `_exit`, which is async-signal-safe.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just created; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        })
    });
    for method in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn] {
        group.bench_function(format!("pyconc {method}"), |b| {
            b.iter(|| {
                let p = Process::builder().start_method(method).call(empty, ());
                p.start().unwrap();
                p.join().unwrap();
            })
        });
    }
    group.finish();
}

#[allow(missing_docs, reason = "criterion_group! generates an undocumented function")]
mod group {
    use super::*;
    criterion_group!(benches, start_join);
}
use group::benches;
criterion_main!(benches);
