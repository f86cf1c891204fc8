//! `Pool` — ported from CPython 3.11's `_TestPool`, `_TestPoolWorkerErrors`,
//! `_TestPoolWorkerLifetime` and `TestPoolNotLeakOnFailure` (`_test_multiprocessing.py`),
//! plus the faults CPython's pool hangs on (a worker killed, aborted or exiting mid-task:
//! python/cpython#96062). Every test runs once per start method.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use multiprocessing::{Callbacks, Error, Pool, StartMethod};
use serde::{Deserialize, Serialize};

use crate::each_start_method;
use crate::support::TempPath;

fn pool(method: StartMethod, processes: usize) -> Pool {
    Pool::builder().processes(Some(processes)).start_method(method).build().unwrap()
}

/// A pool whose workers exit after `maxtasks` tasks each.
fn pool_with_maxtasks(method: StartMethod, processes: usize, maxtasks: usize) -> Pool {
    Pool::builder()
        .processes(Some(processes))
        .maxtasksperchild(maxtasks)
        .start_method(method)
        .build()
        .unwrap()
}

/// Runs `body` in a forked child, which exits with the code it returns (no panics
/// between `fork` and the exit); that exit code. For tests that count what a process
/// holds (its threads, its fds) without the test harness's own.
fn exit_code_in_a_fork_child(body: impl FnOnce() -> i32 + Send + 'static) -> Option<i32> {
    let p = multiprocessing::Process::builder()
        .start_method(StartMethod::Fork)
        .target(move || std::process::exit(body()));
    p.start().unwrap();
    p.join().unwrap();
    p.exitcode()
}

fn sqr(x: i64) -> i64 {
    x * x
}

fn sqr_slowly((x, millis): (i64, u64)) -> i64 {
    std::thread::sleep(Duration::from_millis(millis));
    x * x
}

fn mul((a, b): (i64, i64)) -> i64 {
    a * b
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

fn fail_on_three(x: i64) -> i64 {
    assert!(x != 3, "bad {x}");
    x
}

fn raising(_: ()) -> i64 {
    panic!("key error 123")
}

/// Writes the worker's pid to the file, then sleeps: the test kills it meanwhile.
fn announce_then_sleep(path: String) -> u32 {
    crate::support::append(&path, &std::process::id().to_string());
    std::thread::sleep(Duration::from_secs(30));
    0
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Death {
    Kill,
    Abort,
    Exit(i32),
}

/// Dies in the way asked for when `x` is 3; other items are squared.
fn die_on_three((x, death): (i64, Death)) -> i64 {
    if x == 3 {
        match death {
            Death::Kill => unsafe_free_kill_self(),
            Death::Abort => std::process::abort(),
            Death::Exit(code) => std::process::exit(code),
        }
    }
    x * x
}

fn unsafe_free_kill_self() -> ! {
    let _ =
        std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
    std::thread::sleep(Duration::from_secs(30));
    unreachable!("SIGKILL did not arrive");
}

/// A value whose serialization always fails (CPython's unpicklable object).
#[derive(Debug, Deserialize)]
struct Unserializable(#[allow(dead_code, reason = "only its failing Serialize matters")] u8);

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("Unserializable cannot travel"))
    }
}

fn unserializable_result(_: ()) -> Unserializable {
    Unserializable(1)
}

fn takes_unserializable(_: Unserializable) -> i64 {
    1
}

/// An item whose value 3 cannot be serialized.
#[derive(Deserialize)]
struct NotThree(i64);

impl Serialize for NotThree {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(serde::ser::Error::custom("three cannot travel"));
        }
        serializer.serialize_newtype_struct("NotThree", &self.0)
    }
}

fn value_of(item: NotThree) -> i64 {
    item.0
}

/// A result whose value 5 cannot be decoded where it arrives.
#[derive(Debug, Serialize)]
struct LandsButFive(i64);

impl<'de> Deserialize<'de> for LandsButFive {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match i64::deserialize(deserializer)? {
            5 => Err(serde::de::Error::custom("five cannot land")),
            value => Ok(LandsButFive(value)),
        }
    }
}

fn lands_but_five(x: i64) -> LandsButFive {
    LandsButFive(x)
}

fn record_initializer(path: String) {
    crate::support::append(&path, "init");
}

fn panicking_initializer(_: ()) {
    panic!("initializer went wrong");
}

fn wait_worker_pid(path: &TempPath) -> i32 {
    let text = path.wait_lines(1);
    text.lines().next().expect("the task announces its pid").trim().parse().unwrap()
}

fn kill(pid: i32) {
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
}

// _TestPool.test_apply
fn apply(method: StartMethod) {
    let pool = pool(method, 4);
    assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
}

// _TestPool.test_map
fn map(method: StartMethod) {
    let pool = pool(method, 4);
    let expected: Vec<i64> = (0..10).map(sqr).collect();
    assert_eq!(pool.map(sqr, 0..10).unwrap(), expected);
    let expected: Vec<i64> = (0..100).map(sqr).collect();
    assert_eq!(pool.map_chunked(sqr, 0..100, 20).unwrap(), expected);
}

// _TestPool.test_starmap, test_starmap_async: a two-argument function by name, on every
// start method (a function item travels as an entry monomorphized for it).
fn starmap(method: StartMethod) {
    fn mul2(a: i64, b: i64) -> i64 {
        a * b
    }
    let pool = pool(method, 4);
    let pairs: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
    let expected: Vec<i64> = pairs.iter().map(|&p| mul(p)).collect();
    assert_eq!(pool.starmap(mul2, pairs.clone()).unwrap(), expected);
    assert_eq!(pool.map(mul, pairs).unwrap(), expected, "map over tuples is the same");
    let pairs: Vec<(i64, i64)> = (0..100).zip((0..100).rev()).collect();
    let expected: Vec<i64> = pairs.iter().map(|&p| mul(p)).collect();
    assert_eq!(pool.starmap_async(mul2, pairs.clone()).get().unwrap(), expected);
    assert_eq!(pool.starmap(|a: i64, b: i64, c: i64| a + b + c, [(1, 2, 3)]).unwrap(), [6]);
}

// _TestPool.test_map_async, test_map_async_callbacks
fn map_async_callbacks(method: StartMethod) {
    let pool = pool(method, 4);
    let expected: Vec<i64> = (0..10).map(sqr).collect();
    assert_eq!(pool.map_async(sqr, 0..10).get().unwrap(), expected);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let on_success = Arc::clone(&seen);
    let callbacks =
        Callbacks::new().on_success(move |r: &Vec<i64>| on_success.lock().unwrap().push(r.clone()));
    pool.map_async_with(sqr, 0..10, Some(3), callbacks).wait();
    assert_eq!(*seen.lock().unwrap(), vec![expected]);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let on_error = Arc::clone(&errors);
    let callbacks =
        Callbacks::new().on_error(move |e: &Error| on_error.lock().unwrap().push(e.to_string()));
    let result = pool.map_async_with(fail_on_three, 0..10, None, callbacks);
    result.wait();
    assert!(!result.successful().unwrap());
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("bad 3"), "{}", errors[0]);
}

// _TestPool.test_map_chunksize, test_empty_iterable
fn empty_iterable(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.map(sqr, Vec::new()).unwrap(), Vec::<i64>::new());
    assert_eq!(
        pool.map_async_with(sqr, Vec::new(), Some(1), Callbacks::new()).get().unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(pool.imap(sqr, Vec::new()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
    let err = pool.map_chunked(sqr, 0..3, 0).unwrap_err();
    assert_eq!(err.to_string(), "Chunksize must be 1+, not 0");
    assert_eq!(
        pool.imap_chunked(sqr, 0..3, 0).unwrap_err().to_string(),
        "Chunksize must be 1+, not 0"
    );
}

// _TestPool.test_async
fn async_result(method: StartMethod) {
    let pool = pool(method, 2);
    let started = Instant::now();
    let result = pool.apply_async(sqr_slowly, (7, 200));
    assert!(!result.ready());
    assert_eq!(result.get().unwrap(), 49);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

// _TestPool.test_async_timeout
fn async_timeout(method: StartMethod) {
    let pool = pool(method, 2);
    let result = pool.apply_async(sqr_slowly, (6, 1000));
    let started = Instant::now();
    assert!(matches!(result.get_timeout(Duration::from_millis(100)), Err(Error::TimeoutError)));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(!result.wait_timeout(Duration::from_millis(10)));
    let err = result.successful().unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    let text = err.to_string();
    assert!(
        text.starts_with("<multiprocessing.pool.ApplyResult object at 0x")
            && text.ends_with("> not ready"),
        "{text}"
    );
    assert_eq!(result.get_timeout(Duration::from_secs(20)).unwrap(), 36);
    assert!(result.successful().unwrap());
    assert_eq!(
        result.get_timeout(Duration::ZERO).unwrap_err().to_string(),
        "the result was already taken by get_timeout()"
    );
}

// _TestPool.test_imap
fn imap(method: StartMethod) {
    let pool = pool(method, 4);
    let expected: Vec<i64> = (0..10).map(sqr).collect();
    let got: Vec<i64> = pool.imap(sqr, 0..10).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, expected);
    let mut it = pool.imap(sqr, 0..10).unwrap();
    for i in 0..10 {
        assert_eq!(it.next_timeout(Duration::from_secs(20)).unwrap().unwrap(), sqr(i));
    }
    assert!(it.next().is_none());
    let expected: Vec<i64> = (0..1000).map(sqr).collect();
    let got: Vec<i64> = pool.imap_chunked(sqr, 0..1000, 100).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, expected);
}

// _TestPool.test_imap_unordered
fn imap_unordered(method: StartMethod) {
    let pool = pool(method, 4);
    let mut got: Vec<i64> = pool.imap_unordered(sqr, 0..10).unwrap().map(Result::unwrap).collect();
    got.sort_unstable();
    assert_eq!(got, (0..10).map(sqr).collect::<Vec<_>>());
    let mut got: Vec<i64> =
        pool.imap_unordered_chunked(sqr, 0..1000, 100).unwrap().map(Result::unwrap).collect();
    got.sort_unstable();
    assert_eq!(got, (0..1000).map(sqr).collect::<Vec<_>>());
    // Completion order: the slow first item comes last.
    let items = vec![(1, 300), (2, 0), (3, 0)];
    let got: Vec<i64> =
        pool.imap_unordered(sqr_slowly, items).unwrap().map(Result::unwrap).collect();
    assert_eq!(got.last(), Some(&1));
}

// _TestPool.test_imap_handle_iterable_exception (an item that fails does not end the
// iteration; the others still come, in order)
fn imap_item_failure(method: StartMethod) {
    let pool = pool(method, 2);
    let got: Vec<Result<i64, Error>> = pool.imap(fail_on_three, 0..6).unwrap().collect();
    assert_eq!(got.len(), 6);
    for (i, r) in got.iter().enumerate() {
        if i == 3 {
            assert!(r.as_ref().unwrap_err().to_string().contains("bad 3"));
        } else {
            assert_eq!(*r.as_ref().unwrap(), i as i64);
        }
    }
    // An endless input is read lazily.
    let first: Vec<i64> = pool.imap(sqr, 0..).unwrap().take(5).map(Result::unwrap).collect();
    assert_eq!(first, vec![0, 1, 4, 9, 16]);
}

// _TestPool.test_make_pool, test_pool_maxtasksperchild_invalid
fn make_pool(method: StartMethod) {
    let err = Pool::builder().processes(Some(0)).start_method(method).build().unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert_eq!(err.to_string(), "Number of processes must be at least 1");
    let err = Pool::builder()
        .processes(Some(1))
        .maxtasksperchild(0)
        .start_method(method)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "maxtasksperchild must be a positive int or None");
    let pool = pool(method, 3);
    assert_eq!(pool.processes(), 3);
    assert_eq!(format!("{pool:?}"), "<multiprocessing.pool.Pool state=RUN pool_size=3>");
    pool.close();
    assert_eq!(format!("{pool:?}"), "<multiprocessing.pool.Pool state=CLOSE pool_size=3>");
    pool.join().unwrap();
}

// _TestPool.test_terminate: 10 000 long tasks, terminate returns promptly; beyond
// CPython, the pending results fail instead of never becoming ready.
fn terminate(method: StartMethod) {
    let pool = pool(method, 4);
    let result = pool.map_async(sqr_slowly, (0..10_000).map(|i| (i, 10_000)));
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let err = result.get_timeout(Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.to_string(), "the pool was terminated before this task finished");
}

// _TestPool.test_context, test_enter: a pool that is not running refuses work.
fn not_running(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.join().unwrap_err().to_string(), "Pool is still running");
    pool.close();
    for err in [
        pool.map(sqr, 0..3).unwrap_err(),
        pool.apply(sqr, 1).unwrap_err(),
        pool.apply_async(sqr, 1).get().unwrap_err(),
        pool.map_async(sqr, 0..3).get().unwrap_err(),
        pool.imap(sqr, 0..3).unwrap_err(),
    ] {
        assert!(matches!(err, Error::ValueError(_)));
        assert_eq!(err.to_string(), "Pool not running");
    }
    pool.join().unwrap();
    pool.terminate();
    assert_eq!(pool.map(sqr, 0..3).unwrap_err().to_string(), "Pool not running");
}

// _TestPool.test_traceback, test_wrapped_exception: a panic reaches get() with its text
// and place; the worker survives.
fn traceback(method: StartMethod) {
    let pool = pool(method, 1);
    let before = pool.apply(pid, 0).unwrap();
    let err = pool.apply(raising, ()).unwrap_err();
    let Error::RemoteTraceback(panic) = &err else { panic!("{err:?}") };
    assert_eq!(panic.message, "key error 123");
    assert!(panic.file.as_deref().is_some_and(|f| f.ends_with("pool.rs")), "{panic:?}");
    assert!(panic.worker.contains("PoolWorker-"), "{panic:?}");
    assert!(err.to_string().contains("panicked at"), "{err}");
    assert_eq!(pool.apply(pid, 0).unwrap(), before);
}

// _TestPool.test_map_no_failfast: the error comes only after every item is done.
fn map_no_failfast(method: StartMethod) {
    let pool = pool(method, 2);
    let started = Instant::now();
    let items: Vec<(i64, u64)> = (0..4).map(|i| (i, if i == 0 { 0 } else { 300 })).collect();
    let result = pool.map_async_with(
        |(x, millis): (i64, u64)| fail_on_three(sqr_slowly((x, millis)) / x.max(1)),
        items,
        Some(1),
        Callbacks::new(),
    );
    let err = result.get().unwrap_err();
    assert!(err.to_string().contains("bad 3"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

// _TestPoolWorkerErrors.test_async_error_callback, test_unpickleable_result
fn error_callback_and_unserializable_result(method: StartMethod) {
    let pool = pool(method, 1);
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let result = pool.apply_async_with(
        raising,
        (),
        Callbacks::new().on_error(move |e: &Error| *record.lock().unwrap() = Some(e.to_string())),
    );
    result.wait();
    assert!(seen.lock().unwrap().as_deref().is_some_and(|e| e.contains("key error 123")));
    let before = pool.apply(pid, 0).unwrap();
    let err = pool.apply(unserializable_result, ()).unwrap_err();
    assert!(matches!(err, Error::MaybeEncodingError(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("Error sending result: '<")
            && text.contains("Unserializable>'. Reason: '"),
        "{text}"
    );
    // An argument that cannot be serialized fails its own task only.
    let err = pool.apply(takes_unserializable, Unserializable(0)).unwrap_err();
    assert!(matches!(err, Error::PicklingError(_)), "{err:?}");
    assert_eq!(pool.apply(pid, 0).unwrap(), before, "the worker survives");
}

/// Bytes that serialize as one byte string (fast, even in a debug build).
#[derive(Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Blob, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Blob, E> {
                Ok(Blob(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

const MIB: usize = 1 << 20;

fn blob_of(len: usize) -> Blob {
    Blob(vec![7; len])
}

fn blob_len(blob: Blob) -> usize {
    blob.0.len()
}

fn take_blob(_: Blob) {}

/// Issue 14, item 10: a result larger than a message to the pool may be fails that task at
/// once with "result too large", and the pool goes on (before the fix the worker blocked
/// on the send, the pool waited forever, and `get_timeout` timed out); arguments are
/// split into chunks that fit, an argument that fits no message fails alone, and a spawn
/// or forkserver child whose arguments are over the limit is refused before it starts.
fn oversized_results_and_arguments_fail_alone(method: StartMethod) {
    let pool = pool(method, 1);
    let before = pool.apply(pid, 0).unwrap();
    let began = Instant::now();
    let err = pool.apply_async(blob_of, 65 * MIB).get_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(matches!(err, Error::MaybeEncodingError(_)), "{err:?}");
    assert!(err.to_string().starts_with("result too large"), "{err}");
    assert!(began.elapsed() < Duration::from_secs(20));
    assert_eq!(pool.apply(pid, 0).unwrap(), before, "the worker goes on");
    assert_eq!(pool.apply(blob_of, 3 * MIB).unwrap().0.len(), 3 * MIB);
    // Two 40 MiB items in one chunk would make an 80 MiB message: they go in two.
    let lens = pool.map_chunked(blob_len, vec![blob_of(40 * MIB), blob_of(40 * MIB)], 2).unwrap();
    assert_eq!(lens, [40 * MIB, 40 * MIB]);
    let err = pool.apply(blob_len, blob_of(65 * MIB)).unwrap_err();
    assert!(matches!(err, Error::PicklingError(_)), "{err:?}");
    assert!(err.to_string().contains("over the"), "{err}");
    assert_eq!(pool.apply(pid, 0).unwrap(), before);
    if method != StartMethod::Fork {
        let p = multiprocessing::Process::builder()
            .start_method(method)
            .call(take_blob, blob_of(65 * MIB));
        let err = p.start().unwrap_err();
        assert!(matches!(err, Error::PicklingError(_)), "{err:?}");
        assert!(err.to_string().contains("limit of what starts a process"), "{err}");
    }
}

/// The rings this process maps shared (a memfd of a ring's size each, or a fork pool
/// channel's anonymous mapping of two: `connection/ring.rs`) and the sockets it has.
fn channels_here(_: u32) -> (usize, usize) {
    const RING: usize = 4096 + 1024 * 1024; // a ring: its control words and data, in whole pages
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let rings = maps
        .lines()
        .filter(|line| {
            line.contains("memfd:pyconc")
                || (line.contains("/dev/zero (deleted)") && line.contains(" rw-s "))
        })
        .map(|line| {
            let range = line.split_whitespace().next().unwrap_or("");
            let (from, to) = range.split_once('-').unwrap_or(("0", "0"));
            let size = usize::from_str_radix(to, 16).unwrap_or(0)
                - usize::from_str_radix(from, 16).unwrap_or(0);
            if size % RING == 0 { size / RING } else { 0 }
        })
        .sum();
    let sockets = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count();
    (rings, sockets)
}

/// Issue 14, item 4: a forked pool worker keeps only its own channel. It inherits the
/// pool ends of its siblings' channels (rings and sockets) and lets go of them, so one
/// misbehaving worker cannot write into another's. Run in a fork child, so that the
/// baseline counts only what that child inherited. (Before the fix the fourth worker
/// mapped the rings of all four workers: 8 more than the baseline.)
#[test]
fn a_forked_worker_keeps_only_its_own_channel() {
    let _serial = crate::support::serial();
    let code = exit_code_in_a_fork_child(|| {
        let (rings, sockets) = channels_here(0);
        let pool = pool(StartMethod::Fork, 4);
        let seen = pool.map_chunked(channels_here, 0..16, 1).unwrap();
        let ok = seen.iter().all(|&(r, s)| r <= rings + 2 && s <= sockets + 1);
        if !ok {
            eprintln!("baseline ({rings}, {sockets}); workers saw {seen:?}");
        }
        if ok { 0 } else { 9 }
    });
    assert_eq!(code, Some(0), "a worker kept its siblings' channels");
}

// _TestPool.test_pool_initializer: runs once in each worker.
fn initializer(method: StartMethod) {
    let path = TempPath::new("pool-init");
    let pool = Pool::builder()
        .processes(Some(2))
        .initializer(record_initializer, path.arg())
        .start_method(method)
        .build()
        .unwrap();
    assert_eq!(pool.map(sqr, 0..20).unwrap().len(), 20);
    pool.close();
    pool.join().unwrap();
    assert_eq!(path.read().lines().filter(|l| *l == "init").count(), 2, "{}", path.read());
}

// Beyond CPython (which starts worker after worker forever): a panicking initializer
// fails every task with its panic.
fn initializer_panics(method: StartMethod) {
    let pool = Pool::builder()
        .processes(Some(2))
        .initializer(panicking_initializer, ())
        .start_method(method)
        .build()
        .unwrap();
    let err = pool.map(sqr, 0..10).unwrap_err();
    assert!(err.to_string().contains("initializer went wrong"), "{err}");
    let err = pool.apply(sqr, 1).unwrap_err();
    assert!(err.to_string().contains("initializer went wrong"), "{err}");
}

// _TestPoolWorkerLifetime.test_pool_worker_lifetime, test_pool_maxtasksperchild
fn worker_lifetime(method: StartMethod) {
    let pool = pool_with_maxtasks(method, 2, 1);
    let pids = pool.map_chunked(pid, 0..6, 1).unwrap();
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 6, "{pids:?}");
    let pool = pool_with_maxtasks(method, 3, 10);
    let expected: Vec<i64> = (0..100).map(sqr).collect();
    let results: Vec<i64> =
        (0..100).map(|i| pool.apply_async(sqr, i)).map(|r| r.get().unwrap()).collect();
    assert_eq!(results, expected);
    assert_eq!(pool.map_chunked(sqr, 0..100, 1).unwrap(), expected);
    pool.close();
    pool.join().unwrap();
}

// Beyond CPython: a worker that dies mid-task fails that task within a second and is
// replaced; the pool stays usable (python/cpython#96062 hangs here).
fn worker_dies_in_map(method: StartMethod) {
    let pool = pool(method, 2);
    for death in [Death::Kill, Death::Abort, Death::Exit(3)] {
        let started = Instant::now();
        let items: Vec<(i64, Death)> = (0..8).map(|i| (i, death)).collect();
        let err = pool.map_chunked(die_on_three, items, 1).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        let Error::WorkerDied(text) = &err else { panic!("{err:?}") };
        let how = match death {
            Death::Kill => "killed by signal 9 (SIGKILL)",
            Death::Abort => "killed by signal 6 (SIGABRT)",
            Death::Exit(_) => "exited with code 3",
        };
        assert!(text.contains("PoolWorker-") && text.contains(how), "{text}");
        assert_eq!(pool.map(sqr, 0..10).unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
    }
    let stats = pool.stats();
    assert_eq!(stats.failed, 3);
    assert_eq!(stats.running, 0);
    assert_eq!(stats.submitted, stats.done + stats.failed);
}

fn worker_dies_in_imap(method: StartMethod) {
    let pool = pool(method, 2);
    let items: Vec<(i64, Death)> = (0..8).map(|i| (i, Death::Kill)).collect();
    let got: Vec<Result<i64, Error>> = pool.imap(die_on_three, items).unwrap().collect();
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, sqr(i as i64)),
            Err(e) => {
                assert_eq!(i, 3);
                assert!(matches!(e, Error::WorkerDied(_)));
            }
        }
    }
    assert!(got[3].is_err());
}

fn worker_killed_during_apply_async(method: StartMethod) {
    let pool = pool(method, 2);
    let path = TempPath::new("pool-kill");
    let result = pool.apply_async(announce_then_sleep, path.arg());
    let victim = wait_worker_pid(&path);
    let started = Instant::now();
    kill(victim);
    let err = result.get_timeout(Duration::from_secs(5)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(matches!(err, Error::WorkerDied(_)), "{err:?}");
    assert!(err.to_string().contains(&format!("(pid {victim})")), "{err}");
    // Replaced: the pool still has two workers, neither of them the dead one.
    let pids: HashSet<u32> = pool
        .map_chunked(sqr_then_pid, (0..40).collect::<Vec<u64>>(), 1)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!pids.contains(&(victim as u32)));
    assert!(pids.len() <= 2);
    pool.close();
    pool.join().unwrap();
}

fn sqr_then_pid(millis: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(millis % 3));
    std::process::id()
}

fn sleep_then_pid(millis: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(millis));
    std::process::id()
}

/// Beyond CPython's one shared queue: a worker holds a window of chunks, sized by how long
/// the submission's own chunks take — one chunk a worker until the first comes back, not
/// the thousand that the tiny tasks run before would call for. So a map of one long task
/// and seven short ones leaves the long one alone on its worker, and the short ones all
/// run on the other (a window from the tiny tasks would have handed each worker half).
fn windows_follow_each_submission_not_the_one_before(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.map_chunked(sqr, 0..20_000, 1).unwrap().len(), 20_000);
    let millis: Vec<u64> = std::iter::once(600).chain([5; 7]).collect();
    let pids = pool.map_chunked(sleep_then_pid, millis, 1).unwrap();
    assert!(pids[1..].iter().all(|&pid| pid != pids[0]), "{pids:?}");
}

// Live counters.
fn stats(method: StartMethod) {
    let pool = pool(method, 2);
    let result =
        pool.map_async_with(sqr_slowly, (0..4).map(|i| (i, 200)), Some(1), Callbacks::new());
    std::thread::sleep(Duration::from_millis(100));
    let during = pool.stats();
    assert_eq!(during.submitted, 4);
    assert!(during.running >= 1, "{during:?}");
    result.get().unwrap();
    let _ = pool.apply(fail_on_three, 3);
    let after = pool.stats();
    assert_eq!((after.submitted, after.running, after.done, after.failed), (5, 0, 4, 1));
}

// Beyond CPython (which cannot pickle a closure): a closure that captures nothing (and a
// `fn` pointer) runs on every start method; closures that capture values, on a pool of
// forked workers; other start methods refuse them.
fn closures(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.map(|x: i64| x * 2, 0..5).unwrap(), [0, 2, 4, 6, 8]);
    let add_one: fn(i64) -> i64 = |x| x + 1;
    assert_eq!(pool.map(add_one, 0..3).unwrap(), [1, 2, 3]);
    assert_eq!(pool.apply(|s: String| s.len(), "four".to_owned()).unwrap(), 4);
    let offset = 1000i64;
    let names = ["zero".to_string(), "one".to_string(), "two".to_string()];
    if method != StartMethod::Fork {
        let err = pool.apply(move |x: i64| x + offset, 1).unwrap_err();
        assert!(matches!(err, Error::ValueError(_)));
        assert!(
            err.to_string().starts_with("a closure task needs a pool with the fork start method")
        );
        assert!(pool.map(move |i: usize| names[i].clone(), [0]).is_err());
        return;
    }
    let before: HashSet<u32> = pool.map_chunked(pid, 0..20, 1).unwrap().into_iter().collect();
    assert_eq!(pool.apply(move |x: i64| x + offset, 1).unwrap(), 1001);
    let got = pool.map(move |i: usize| names[i].clone(), [2, 0, 1]).unwrap();
    assert_eq!(got, ["two", "zero", "one"]);
    // The workers that knew no closure were replaced by newly forked ones.
    let after: HashSet<u32> = pool.map_chunked(pid, 0..20, 1).unwrap().into_iter().collect();
    assert!(before.is_disjoint(&after), "{before:?} {after:?}");
    // Many closures, one after another, each with its own captures.
    for k in 0..10i64 {
        let got: Vec<i64> =
            pool.imap(move |x: i64| x * k, 0..5).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, (0..5).map(|x| x * k).collect::<Vec<_>>());
    }
    let mut got: Vec<i64> =
        pool.imap_unordered(move |x: i64| x - offset, 0..5).unwrap().map(Result::unwrap).collect();
    got.sort_unstable();
    assert_eq!(got, (0..5).map(|x| x - offset).collect::<Vec<_>>());
    // A closure's panic and a worker dying in a closure task behave as for a fn.
    let err = pool.apply(move |x: i64| fail_on_three(x + offset - 1000), 3).unwrap_err();
    assert!(matches!(err, Error::RemoteTraceback(_)), "{err:?}");
    let err =
        pool.map(move |x: i64| die_on_three((x + offset - 1000, Death::Abort)), 0..6).unwrap_err();
    assert!(matches!(err, Error::WorkerDied(_)), "{err:?}");
    assert_eq!(pool.apply_async(move |x: i64| x + offset, 5).get().unwrap(), 1005);
    pool.close();
    pool.join().unwrap();
}

/// Counts `0..end` while its `size_hint` claims exactly `claims` items.
struct Lying {
    next: i64,
    end: i64,
    claims: usize,
}

impl Iterator for Lying {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claims, Some(self.claims))
    }
}

/// Beyond CPython: `map` serializes the items straight from an iterator that says how
/// many it holds, collecting only one that does not (CPython's `list(iterable)`). An
/// iterator whose exact size is wrong still has every item mapped, in order.
fn map_from_any_iterator(method: StartMethod) {
    let pool = pool(method, 2);
    let expected: Vec<i64> = (0..1000).map(sqr).collect();
    let unknown_size = (0..2000).filter(|x| x % 2 == 0).map(|x| x / 2);
    assert_eq!(pool.map(sqr, unknown_size).unwrap(), expected);
    for claims in [0, 3, 999, 1001, 5000] {
        let lying = Lying { next: 0, end: 1000, claims };
        assert_eq!(pool.map(sqr, lying).unwrap(), expected, "claims {claims}");
        let lying = Lying { next: 0, end: 1000, claims };
        assert_eq!(pool.map_chunked(sqr, lying, 7).unwrap(), expected, "claims {claims}");
    }
    let none = Lying { next: 0, end: 0, claims: 10 };
    assert_eq!(pool.map(sqr, none).unwrap(), Vec::<i64>::new());
    // A size no memory could hold: no allocation of that size is attempted.
    let huge = Lying { next: 0, end: 1000, claims: usize::MAX };
    assert_eq!(pool.map_chunked(sqr, huge, 100).unwrap(), expected);
    let huge = Lying { next: 0, end: 1000, claims: usize::MAX };
    assert_eq!(pool.map(sqr, huge).unwrap(), expected);
}

/// Beyond CPython: small chunks of a submission share one buffer for their items, a
/// large one (over 4 KiB of items) has its own and goes out without a copy. A map whose
/// chunks are of both kinds, interleaved in every batch the submission queues, gets
/// every result in its place — and so does a second map while the first one's shared
/// buffers may still be in use.
fn small_and_large_chunks_of_one_map_come_back_in_order(method: StartMethod) {
    let pool = pool(method, 2);
    let lens: Vec<usize> = (0..300).map(|i| if i % 7 == 3 { 5000 + i } else { i % 50 }).collect();
    let blobs = || lens.iter().map(|&len| blob_of(len));
    for chunksize in [1, 2, 5] {
        assert_eq!(pool.map_chunked(blob_len, blobs(), chunksize).unwrap(), lens, "{chunksize}");
    }
    let first = pool.map_async(blob_len, blobs().collect::<Vec<_>>());
    let second: Vec<_> = pool.imap_chunked(blob_len, blobs(), 1).unwrap().collect();
    assert_eq!(second.into_iter().map(Result::unwrap).collect::<Vec<_>>(), lens);
    assert_eq!(first.get().unwrap(), lens);
}

/// A chunk's results travel plain until an item fails, then one `Result` each: items
/// before, at and after the failure (and the failure of a later chunk) come back right.
fn failure_in_the_middle_of_a_chunk(method: StartMethod) {
    let pool = pool(method, 2);
    let results: Vec<_> = pool
        .imap_chunked(fail_on_three, 0..8, 8)
        .unwrap()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    for (x, result) in results.iter().enumerate() {
        match x {
            3 => assert!(result.as_ref().unwrap_err().contains("bad 3"), "{result:?}"),
            _ => assert_eq!(result.as_ref().unwrap(), &(x as i64)),
        }
    }
    let err = pool.map_chunked(fail_on_three, 0..100, 8).unwrap_err();
    assert!(err.to_string().contains("bad 3"), "{err}");
    let later: Vec<i64> = (4..100).collect();
    assert_eq!(pool.map_chunked(fail_on_three, later.clone(), 8).unwrap(), later);
}

/// `_test_multiprocessing`'s test_map_unplicklable, per item: an item that cannot be
/// serialized in the middle of a chunk fails alone, the items before and after it in the
/// same chunk run, and `map` reports its PicklingError.
fn an_item_that_cannot_be_serialized_fails_alone_in_its_chunk(method: StartMethod) {
    let pool = pool(method, 2);
    let results: Vec<_> = pool.imap_chunked(value_of, (0..8).map(NotThree), 8).unwrap().collect();
    for (x, result) in results.iter().enumerate() {
        match x {
            3 => {
                let err = result.as_ref().unwrap_err();
                assert!(matches!(err, Error::PicklingError(_)), "{err:?}");
                assert!(err.to_string().starts_with("cannot serialize a task's argument"), "{err}");
            }
            _ => assert_eq!(result.as_ref().unwrap(), &(x as i64)),
        }
    }
    let err = pool.map_chunked(value_of, (0..100).map(NotThree), 8).unwrap_err();
    assert!(err.to_string().starts_with("cannot serialize a task's argument"), "{err}");
    let others: Vec<i64> = (4..100).collect();
    assert_eq!(pool.map(value_of, others.iter().map(|&x| NotThree(x))).unwrap(), others);
}

/// A result that does not decode fails its item and the rest of its chunk (the bytes
/// after it cannot be trusted) with an UnpicklingError; the other chunks, and the pool,
/// go on. `map` reports the failure; its counters count every item once.
fn a_result_that_cannot_be_decoded_fails_the_rest_of_its_chunk(method: StartMethod) {
    let pool = pool(method, 2);
    let results: Vec<_> = pool.imap_chunked(lands_but_five, 0..20, 10).unwrap().collect();
    for (x, result) in results.iter().enumerate() {
        match x {
            5..=9 => {
                let err = result.as_ref().unwrap_err();
                assert!(matches!(err, Error::UnpicklingError(_)), "{x}: {err:?}");
                assert!(err.to_string().starts_with("cannot deserialize a task's result"));
            }
            _ => assert_eq!(result.as_ref().unwrap().0, x as i64),
        }
    }
    let before = pool.stats();
    let err = pool.map_chunked(lands_but_five, 0..20, 10).unwrap_err();
    assert!(matches!(err, Error::UnpicklingError(_)), "{err:?}");
    assert!(err.to_string().starts_with("cannot deserialize a task's result"), "{err}");
    let after = pool.stats();
    assert_eq!(after.done - before.done, 15, "{before:?} {after:?}");
    assert_eq!(after.failed - before.failed, 5, "{before:?} {after:?}");
    let later: Vec<i64> =
        pool.map(lands_but_five, 6..100).unwrap().into_iter().map(|r| r.0).collect();
    assert_eq!(later, (6..100).collect::<Vec<i64>>());
}

/// Beyond CPython: a thread waiting for a `map`'s list decodes the results of large
/// chunks itself, which the handler hands over (it is otherwise idle). The lists come out
/// whole and in order, with one waiter or several, and a failure is still the first
/// failed item's, after every chunk.
fn waiting_threads_decode_large_results(method: StartMethod) {
    let pool = Arc::new(pool(method, 2));
    let expected: Vec<i64> = (0..40_000).map(sqr).collect();
    // Chunks of 10 000 results of 3 to 5 bytes each: handed over.
    assert_eq!(pool.map_chunked(sqr, 0..40_000, 10_000).unwrap(), expected);
    let result = Arc::new(pool.map_async(sqr, 0..40_000));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let result = Arc::clone(&result);
            std::thread::spawn(move || result.wait())
        })
        .collect();
    result.wait();
    for waiter in waiters {
        waiter.join().unwrap();
    }
    let result = Arc::into_inner(result).unwrap();
    assert_eq!(result.get().unwrap(), expected);
    let err = pool.map_chunked(fail_on_three, 0..40_000, 10_000).unwrap_err();
    assert!(err.to_string().contains("bad 3"), "{err}");
    // With callbacks, the handler thread decodes and runs them, as CPython's does.
    let ran_in = Arc::new(Mutex::new(None));
    let record = Arc::clone(&ran_in);
    // The OS name of the thread (the library's threads are not std's, whose
    // `thread::current().name()` would be `None` there).
    let thread_name = || std::fs::read_to_string("/proc/thread-self/comm").ok();
    let callbacks = Callbacks::new().on_success(move |_: &Vec<i64>| {
        *record.lock().unwrap() = thread_name();
    });
    let main = thread_name();
    assert_eq!(
        pool.map_async_with(sqr, 0..40_000, Some(10_000), callbacks).get().unwrap(),
        expected
    );
    let ran_in = ran_in.lock().unwrap().clone();
    assert!(ran_in.is_some() && ran_in != main, "callback ran in {ran_in:?}");
}

/// A thread decoding a map's results as it waits still returns when the pool is
/// terminated from another thread.
fn terminate_while_a_waiting_thread_decodes(method: StartMethod) {
    let pool = Arc::new(pool(method, 2));
    // Three chunks of quick items, then one whose last item sleeps a long time.
    let items = (0..40_000).map(|i| (i, if i == 39_999 { 60_000 } else { 0 }));
    let terminator = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            pool.terminate();
        })
    };
    let started = Instant::now();
    let err = pool.map_chunked(sqr_slowly, items, 10_000).unwrap_err();
    assert_eq!(err.to_string(), "the pool was terminated before this task finished");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    terminator.join().unwrap();
    pool.join().unwrap();
}

/// `0..end`, saying so exactly, but slow to say it has no more.
struct SlowToEnd {
    next: i64,
    end: i64,
}

impl Iterator for SlowToEnd {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        if self.next == self.end {
            std::thread::sleep(Duration::from_millis(300));
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next) as usize;
        (left, Some(left))
    }
}

/// CPython runs a map's callbacks in the pool's result handler thread, never in the
/// thread that submitted the map — even when the workers are done before the submission
/// returns (the pool learns the number of items before it queues the last chunk). Here
/// the iterator takes its time to say it has no more items, while the first is mapped.
fn callbacks_run_in_the_handler_thread(method: StartMethod) {
    let pool = pool(method, 2);
    let main = std::thread::current().id();
    for (round, items) in [1i64, 2, 5].into_iter().enumerate() {
        let ran_in = Arc::new(Mutex::new(None));
        let record = Arc::clone(&ran_in);
        let callbacks = Callbacks::new().on_success(move |_: &Vec<i64>| {
            *record.lock().unwrap() = Some(std::thread::current().id());
        });
        let slow_to_end = SlowToEnd { next: 0, end: items };
        let expected: Vec<i64> = (0..items).map(sqr).collect();
        let result = pool.map_async_with(sqr, slow_to_end, Some(1), callbacks);
        assert_eq!(result.get().unwrap(), expected);
        let ran_in = (*ran_in.lock().unwrap()).expect("the callback ran");
        assert_ne!(ran_in, main, "round {round}: the callback ran in the submitting thread");
    }
}

/// The threads of this process (`/proc/self/task`).
fn threads_here() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// A pool whose callers all wait for their results (`apply`, `map`, `starmap`, `join`)
/// runs without a thread of its own: the caller hands out its tasks and reads the
/// results. Work whose caller goes on (`apply_async`) starts the pool's thread, as
/// CPython's pool has its handler threads. Run in a fork child, whose only thread is the
/// test's own.
#[test]
fn a_pool_used_only_by_callers_that_wait_starts_no_thread() {
    let _serial = crate::support::serial();
    let code = exit_code_in_a_fork_child(|| {
        let pool = pool(StartMethod::Fork, 2);
        let waited = pool.map(sqr, 0..10).unwrap() == (0..10).map(sqr).collect::<Vec<_>>()
            && pool.apply(sqr, 7).unwrap() == 49
            && pool.starmap(|a: i64, b: i64| a * b, [(2, 3)]).unwrap() == [6];
        let alone = threads_here() == 1;
        let result = pool.apply_async(sqr, 8);
        let threaded = threads_here() == 2 && result.get().unwrap() == 64;
        pool.close();
        pool.join().unwrap();
        let second = self::pool(StartMethod::Fork, 1);
        let quiet = second.apply(sqr, 3).unwrap() == 9 && threads_here() == 1;
        second.close();
        second.join().unwrap();
        match (waited, alone, threaded, quiet) {
            (true, true, true, true) => 0,
            (false, ..) => 1,
            (_, false, ..) => 2,
            (_, _, false, _) => 3,
            _ => 4,
        }
    });
    assert_eq!(code, Some(0));
}

/// A forked child's copy of its parent's pool takes no work, as CPython's refuses to be
/// pickled: it neither drives the parent's workers nor starts a thread for them, and the
/// parent's pool goes on.
#[test]
fn a_fork_childs_copy_of_a_pool_refuses_work_and_leaves_the_parents_workers_alone() {
    let _serial = crate::support::serial();
    let pool = Arc::new(pool(StartMethod::Fork, 2));
    assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    let copy = Arc::clone(&pool);
    let code = exit_code_in_a_fork_child(move || {
        let foreign = "pool objects cannot be passed between processes or pickled";
        let refused = copy.map(sqr, 0..4).is_err_and(|e| e.to_string() == foreign)
            && copy.apply(sqr, 2).is_err_and(|e| e.to_string() == foreign)
            && copy.apply_async(sqr, 2).get().is_err_and(|e| e.to_string() == foreign)
            && copy.join().is_err();
        match (refused, threads_here() == 1) {
            (true, true) => 0,
            (false, _) => 1,
            (true, false) => 2,
        }
    });
    assert_eq!(code, Some(0));
    assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    pool.close();
    pool.join().unwrap();
}

// Callbacks run in the pool's thread (CPython's result handler), never in a caller that
// drives the pool while it waits for its own results.
fn callbacks_run_in_the_pools_thread_while_a_caller_drives_it(method: StartMethod) {
    let pool = Arc::new(pool(method, 2));
    let driver = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            let slow = pool.map_chunked(sqr_slowly, [(1, 400), (2, 400)], 1).unwrap();
            (slow, std::thread::current().id())
        })
    };
    std::thread::sleep(Duration::from_millis(100)); // the driver waits for its tasks
    let ran_in = Arc::new(Mutex::new(None));
    let record = Arc::clone(&ran_in);
    let callbacks = Callbacks::new().on_success(move |_: &i64| {
        *record.lock().unwrap() = Some(std::thread::current().id());
    });
    assert_eq!(pool.apply_async_with(sqr, 5, callbacks).get().unwrap(), 25);
    let (slow, driver_id) = driver.join().unwrap();
    assert_eq!(slow, [1, 4]);
    let ran_in = (*ran_in.lock().unwrap()).expect("the callback ran");
    assert_ne!(ran_in, driver_id, "the callback ran in the thread that drove the pool");
    assert_ne!(ran_in, std::thread::current().id(), "the callback ran in the submitting thread");
}

// A caller waits only for its own tasks: another caller's slow `map`, which drove the
// pool until this one came (and then handed it over to the pool's thread), does not
// hold back its quick calls, which the other worker runs.
fn a_quick_call_is_not_held_back_by_another_callers_slow_map(method: StartMethod) {
    let pool = Arc::new(pool(method, 2));
    let slow = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.map_chunked(sqr_slowly, [(3, 3000)], 1).unwrap())
    };
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..20 {
        assert_eq!(pool.apply(sqr, round).unwrap(), sqr(round));
    }
    assert!(!slow.is_finished(), "the quick calls waited for the slow map");
    assert_eq!(slow.join().unwrap(), [9]);
}

// A worker killed while nobody used the pool is found dead and replaced before the next
// task is given out: that task runs (it does not fail as if the worker had died running
// it).
fn a_worker_killed_while_the_pool_is_idle_is_replaced_before_the_next_task(method: StartMethod) {
    let pool = pool(method, 2);
    let before: HashSet<u32> = pool
        .map_chunked(sqr_then_pid, (0..40).collect::<Vec<u64>>(), 1)
        .unwrap()
        .into_iter()
        .collect();
    let victim = *before.iter().next().unwrap();
    kill(victim as i32);
    std::thread::sleep(Duration::from_millis(200)); // dead, not reaped: nobody watches
    for _ in 0..3 {
        assert_eq!(pool.map(sqr, 0..10).unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
    }
    let after: HashSet<u32> = pool
        .map_chunked(sqr_then_pid, (0..40).collect::<Vec<u64>>(), 1)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!after.contains(&victim), "{victim} in {after:?}");
    let stats = pool.stats();
    assert_eq!(stats.failed, 0);
    pool.close();
    pool.join().unwrap();
}

// A worker that exits after `maxtasksperchild` tasks is reaped (and replaced) without
// another call to the pool: no zombie is left while the pool sits idle.
fn a_worker_at_maxtasksperchild_is_reaped_while_the_pool_is_idle(method: StartMethod) {
    let pool = pool_with_maxtasks(method, 1, 1);
    let first = pool.apply(pid, 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reaped = loop {
        // A zombie still has its `/proc` entry (state `Z`); a reaped process has none.
        match std::fs::read_to_string(format!("/proc/{first}/stat")) {
            Err(_) => break true,
            Ok(_) if Instant::now() > deadline => break false,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    assert!(reaped, "worker {first} was not reaped");
    assert_ne!(pool.apply(pid, 0).unwrap(), first);
    pool.close();
    pool.join().unwrap();
}

each_start_method! {
    test_closures => closures;
    test_apply => apply;
    test_map => map;
    test_starmap => starmap;
    test_map_async_callbacks => map_async_callbacks;
    test_empty_iterable => empty_iterable;
    test_async => async_result;
    test_async_timeout => async_timeout;
    test_imap => imap;
    test_imap_unordered => imap_unordered;
    test_imap_item_failure => imap_item_failure;
    test_make_pool => make_pool;
    test_terminate => terminate;
    test_not_running => not_running;
    test_traceback => traceback;
    test_map_no_failfast => map_no_failfast;
    test_error_callback_and_unserializable_result => error_callback_and_unserializable_result;
    test_pool_initializer => initializer;
    test_initializer_panics => initializer_panics;
    test_pool_worker_lifetime => worker_lifetime;
    test_worker_dies_in_map => worker_dies_in_map;
    test_worker_dies_in_imap => worker_dies_in_imap;
    test_worker_killed_during_apply_async => worker_killed_during_apply_async;
    test_stats => stats;
    test_callbacks_run_in_the_handler_thread => callbacks_run_in_the_handler_thread;
    test_waiting_threads_decode_large_results => waiting_threads_decode_large_results;
    test_terminate_while_a_waiting_thread_decodes => terminate_while_a_waiting_thread_decodes;
    test_map_from_any_iterator => map_from_any_iterator;
    test_failure_in_the_middle_of_a_chunk => failure_in_the_middle_of_a_chunk;
    test_an_item_that_cannot_be_serialized_fails_alone_in_its_chunk => an_item_that_cannot_be_serialized_fails_alone_in_its_chunk;
    test_a_result_that_cannot_be_decoded_fails_the_rest_of_its_chunk => a_result_that_cannot_be_decoded_fails_the_rest_of_its_chunk;
    test_oversized_results_and_arguments_fail_alone => oversized_results_and_arguments_fail_alone;
    test_small_and_large_chunks_of_one_map_come_back_in_order => small_and_large_chunks_of_one_map_come_back_in_order;
    test_windows_follow_each_submission_not_the_one_before => windows_follow_each_submission_not_the_one_before;
    test_callbacks_run_in_the_pools_thread_while_a_caller_drives_it => callbacks_run_in_the_pools_thread_while_a_caller_drives_it;
    test_a_quick_call_is_not_held_back_by_another_callers_slow_map => a_quick_call_is_not_held_back_by_another_callers_slow_map;
    test_a_worker_killed_while_the_pool_is_idle_is_replaced_before_the_next_task => a_worker_killed_while_the_pool_is_idle_is_replaced_before_the_next_task;
    test_a_worker_at_maxtasksperchild_is_reaped_while_the_pool_is_idle => a_worker_at_maxtasksperchild_is_reaped_while_the_pool_is_idle;
}

/// Runs `body` on tokio's single-threaded runtime beside a task that counts ticks every
/// 5 ms; `body` gets the count, which grows only while `body` does not block the thread.
fn beside_a_ticker<F: std::future::Future<Output = ()>>(body: impl FnOnce(Arc<AtomicU32>) -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let ticks = Arc::new(AtomicU32::new(0));
    runtime.block_on(async {
        let counter = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        body(ticks).await;
        ticker.abort();
    });
}

/// Beyond CPython: an `AsyncResult` is a `Future`. Under tokio's single-threaded runtime
/// the awaiting task does not block the runtime's thread: another task keeps running
/// while a slow result is on its way, and results and failures arrive through `.await`.
#[test]
fn async_results_are_awaited_without_blocking_the_executor() {
    let _serial = crate::support::serial();
    let pool = Pool::new(Some(2)).unwrap();
    beside_a_ticker(|ticks| async move {
        let slow = pool.apply_async(sqr_slowly, (7, 300));
        let squares = pool.map_async(sqr, 0..10);
        let (slow, squares) = tokio::join!(slow, squares);
        assert_eq!(slow.unwrap(), 49);
        assert_eq!(squares.unwrap(), (0..10).map(sqr).collect::<Vec<_>>());
        assert!(ticks.load(Ordering::SeqCst) > 1, "the other task ran while we awaited");
        let failed = pool.apply_async(fail_on_three, 3).await;
        assert!(failed.unwrap_err().to_string().contains("bad 3"), "a panic arrives as Err");
    });
}

/// Beyond CPython (feature `futures`): an `imap`'s results as a `Stream`, in order for
/// `imap` and as they finish for `imap_unordered`, polled by tokio's single-threaded
/// runtime while another task keeps running.
#[test]
fn imap_results_stream_without_blocking_the_executor() {
    let _serial = crate::support::serial();
    use futures_util::StreamExt;
    let pool = Pool::new(Some(2)).unwrap();
    beside_a_ticker(|ticks| async move {
        let mut ordered = pool.imap(sqr_slowly, (0..6).map(|i| (i, 50))).unwrap();
        let mut seen = Vec::new();
        while let Some(result) = StreamExt::next(&mut ordered).await {
            seen.push(result.unwrap());
        }
        assert_eq!(seen, [0, 1, 4, 9, 16, 25]);
        assert!(ticks.load(Ordering::SeqCst) > 1, "the other task ran while we awaited");
        let unordered = pool.imap_unordered(fail_on_three, 0..6).unwrap();
        let mut outcomes: Vec<Result<i64, multiprocessing::Error>> =
            StreamExt::collect(unordered).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1, "item 3 fails alone");
        outcomes.retain(Result::is_ok);
        let mut values: Vec<i64> = outcomes.into_iter().map(Result::unwrap).collect();
        values.sort_unstable();
        assert_eq!(values, [0, 1, 2, 4, 5]);
    });
}
