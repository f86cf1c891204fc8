//! `ThreadPool` — CPython 3.11's `_TestPool` as its `ThreadsMixin` runs it
//! (`test_threads` of `_test_multiprocessing.py`: `multiprocessing.pool.ThreadPool`), plus
//! what threads allow and processes do not (closures that capture, items that cannot be
//! serialized) and what our in-place `map` must get right (each value dropped once,
//! whatever fails).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use multiprocessing::{Callbacks, Error, ThreadPool};

fn sqr(x: i64) -> i64 {
    x * x
}

fn sqr_slowly((x, millis): (i64, u64)) -> i64 {
    std::thread::sleep(Duration::from_millis(millis));
    x * x
}

fn fail_on_three(x: i64) -> i64 {
    assert!(x != 3, "bad {x}");
    x
}

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::new(Some(workers)).unwrap()
}

/// Counts its drops: every value made must be dropped exactly once.
#[derive(Debug)]
struct Tracked {
    value: i64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// _TestPool.test_apply
#[test]
fn apply_returns_the_result() {
    let pool = pool(4);
    assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
    assert_eq!(pool.apply(|(a, b): (i64, i64)| a * b, (6, 7)).unwrap(), 42);
}

// _TestPool.test_map (and map_chunked over chunk sizes that do and do not divide)
#[test]
fn map_keeps_the_items_order_for_every_chunk_size() {
    let pool = pool(4);
    let expected: Vec<i64> = (0..10).map(sqr).collect();
    assert_eq!(pool.map(sqr, 0..10).unwrap(), expected);
    let expected: Vec<i64> = (0..1000).map(sqr).collect();
    for chunksize in [1, 7, 20, 999, 1000, 5000] {
        assert_eq!(pool.map_chunked(sqr, 0..1000, chunksize).unwrap(), expected, "{chunksize}");
    }
    let strings = pool.map(|i: usize| "x".repeat(i), 0..50).unwrap();
    assert!(strings.iter().enumerate().all(|(i, s)| s.len() == i));
}

// _TestPool.test_starmap, test_starmap_async
#[test]
fn starmap_calls_with_the_parts_of_each_tuple() {
    let pool = pool(4);
    let pairs: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
    let expected: Vec<i64> = pairs.iter().map(|&(a, b)| a * b).collect();
    assert_eq!(pool.starmap(|a: i64, b: i64| a * b, pairs.clone()).unwrap(), expected);
    assert_eq!(pool.starmap_async(|a: i64, b: i64| a * b, pairs).get().unwrap(), expected);
}

// _TestPool.test_map_async, test_map_async_callbacks
#[test]
fn map_async_runs_the_callbacks_before_get_returns() {
    let pool = pool(4);
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
    assert_eq!(errors.lock().unwrap().len(), 1);
    assert!(errors.lock().unwrap()[0].contains("bad 3"));
}

// _TestPool.test_map_chunksize, test_empty_iterable
#[test]
fn empty_input_and_a_zero_chunksize() {
    let pool = pool(2);
    assert_eq!(pool.map(sqr, Vec::new()).unwrap(), Vec::<i64>::new());
    assert_eq!(pool.imap(sqr, Vec::new()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
    assert_eq!(
        pool.map_chunked(sqr, 0..3, 0).unwrap_err().to_string(),
        "Chunksize must be 1+, not 0"
    );
    assert_eq!(
        pool.imap_chunked(sqr, 0..3, 0).unwrap_err().to_string(),
        "Chunksize must be 1+, not 0"
    );
}

// _TestPool.test_async, test_async_timeout
#[test]
fn async_results_wait_and_time_out() {
    let pool = pool(2);
    let started = Instant::now();
    let result = pool.apply_async(sqr_slowly, (7, 200));
    assert!(!result.ready());
    assert!(matches!(result.get_timeout(Duration::from_millis(20)), Err(Error::TimeoutError)));
    let err = result.successful().unwrap_err();
    assert!(err.to_string().ends_with("> not ready"), "{err}");
    assert_eq!(result.get_timeout(Duration::from_secs(20)).unwrap(), 49);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(result.successful().unwrap());
}

// _TestPool.test_imap, test_imap_unordered
#[test]
fn imap_yields_in_order_and_imap_unordered_as_items_finish() {
    let pool = pool(4);
    let got: Vec<i64> = pool.imap(sqr, 0..10).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, (0..10).map(sqr).collect::<Vec<_>>());
    let mut it = pool.imap_chunked(sqr, 0..1000, 100).unwrap();
    for i in 0..1000 {
        assert_eq!(it.next_timeout(Duration::from_secs(20)).unwrap().unwrap(), sqr(i));
    }
    assert!(it.next().is_none());
    let mut got: Vec<i64> =
        pool.imap_unordered_chunked(sqr, 0..1000, 53).unwrap().map(Result::unwrap).collect();
    got.sort_unstable();
    assert_eq!(got, (0..1000).map(sqr).collect::<Vec<_>>());
    let got: Vec<i64> = pool
        .imap_unordered(sqr_slowly, vec![(1, 300), (2, 0), (3, 0)])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.last(), Some(&1), "the slow first item comes last");
}

// _TestPool.test_imap_handle_iterable_exception: a failed item does not end the
// iteration; an endless input is read lazily.
#[test]
fn imap_goes_on_after_a_failed_item_and_reads_endless_input_lazily() {
    let pool = pool(2);
    let got: Vec<Result<i64, Error>> = pool.imap(fail_on_three, 0..6).unwrap().collect();
    assert_eq!(got.len(), 6);
    assert!(got[3].as_ref().unwrap_err().to_string().contains("bad 3"));
    assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 5);
    let first: Vec<i64> = pool.imap(sqr, 0..).unwrap().take(5).map(Result::unwrap).collect();
    assert_eq!(first, vec![0, 1, 4, 9, 16]);
}

// _TestPool.test_make_pool, test_pool_maxtasksperchild_invalid; repr
#[test]
fn make_pool_checks_its_arguments_and_shows_its_state() {
    let err = ThreadPool::new(Some(0)).unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert_eq!(err.to_string(), "Number of processes must be at least 1");
    let err = ThreadPool::builder().maxtasksperchild(0).build().unwrap_err();
    assert_eq!(err.to_string(), "maxtasksperchild must be a positive int or None");
    let pool = pool(3);
    assert_eq!(pool.processes(), 3);
    assert_eq!(format!("{pool:?}"), "<multiprocessing.pool.ThreadPool state=RUN pool_size=3>");
    pool.close();
    assert_eq!(format!("{pool:?}"), "<multiprocessing.pool.ThreadPool state=CLOSE pool_size=3>");
    pool.join().unwrap();
    pool.terminate();
    assert_eq!(
        format!("{pool:?}"),
        "<multiprocessing.pool.ThreadPool state=TERMINATE pool_size=3>"
    );
}

// _TestPool.test_terminate: running tasks finish (threads cannot be stopped), the ones
// not started fail at once — CPython leaves them pending forever.
#[test]
fn terminate_fails_what_has_not_started_and_waits_for_what_runs() {
    let pool = pool(2);
    let result =
        pool.map_async_with(sqr_slowly, (0..10_000).map(|i| (i, 100)), Some(1), Callbacks::new());
    std::thread::sleep(Duration::from_millis(30));
    let started = Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let err = result.get_timeout(Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.to_string(), "the pool was terminated before this task finished");
    let stats = pool.stats();
    assert_eq!(stats.submitted, 10_000);
    assert_eq!(stats.done + stats.failed, 10_000, "{stats:?}");
    assert!(stats.done >= 2 && stats.done < 100, "{stats:?}");
}

// _TestPool.test_context, test_enter: a pool that is not running refuses work.
#[test]
fn a_pool_that_is_not_running_refuses_work() {
    let pool = pool(2);
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
}

// _TestPool.test_wrapped_exception, test_traceback: a panic fails its task alone and
// names the worker thread; the worker lives on.
#[test]
fn a_panicking_task_fails_alone_and_the_worker_goes_on() {
    let pool = pool(1);
    let before = pool.apply(|_: ()| threading::get_ident(), ()).unwrap();
    let err = pool.apply(|_: ()| -> i64 { panic!("key error 123") }, ()).unwrap_err();
    let Error::RemoteTraceback(panic) = &err else { panic!("{err:?}") };
    assert_eq!(panic.message, "key error 123");
    assert!(panic.file.as_deref().is_some_and(|f| f.ends_with("thread_pool.rs")), "{panic:?}");
    assert!(
        panic.worker.starts_with("Thread-") && panic.worker.ends_with(" (worker)"),
        "{panic:?}"
    );
    assert_eq!(pool.apply(|_: ()| threading::get_ident(), ()).unwrap(), before);
    // In a chunk, the items after the one that panicked still run.
    let got: Vec<Result<i64, Error>> = pool.imap_chunked(fail_on_three, 0..8, 8).unwrap().collect();
    assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 7);
}

// _TestPool.test_map_no_failfast: the error comes only after every item is done.
#[test]
fn map_fails_only_after_every_item_is_done() {
    let pool = pool(2);
    let started = Instant::now();
    let items: Vec<(i64, u64)> = (0..4).map(|i| (i, if i == 0 { 0 } else { 300 })).collect();
    let err = pool
        .map_chunked(
            |(x, millis): (i64, u64)| fail_on_three(sqr_slowly((x, millis)) / x.max(1)),
            items,
            1,
        )
        .unwrap_err();
    assert!(err.to_string().contains("bad 3"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

// _TestPool.test_release_task_refs: the pool keeps nothing of a finished task.
#[test]
fn the_pool_keeps_nothing_of_a_finished_task() {
    let pool = pool(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let made: Vec<Tracked> =
        (0..100).map(|value| Tracked { value, drops: Arc::clone(&drops) }).collect();
    let values = pool.map_chunked(|t: Tracked| t.value, made, 7).unwrap();
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    assert_eq!(drops.load(Ordering::SeqCst), 100, "every item dropped once, in the worker");
    let counter = Arc::clone(&drops);
    let results = pool.map(move |i: i64| Tracked { value: i, drops: Arc::clone(&counter) }, 0..50);
    drop(results);
    assert_eq!(drops.load(Ordering::SeqCst), 150);
}

#[test]
fn a_failed_map_drops_each_result_made_once() {
    let pool = pool(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&drops);
    let made = Arc::new(AtomicUsize::new(0));
    let making = Arc::clone(&made);
    let err = pool
        .map_chunked(
            move |i: i64| {
                assert!(i % 10 != 3, "bad {i}");
                making.fetch_add(1, Ordering::SeqCst);
                Tracked { value: i, drops: Arc::clone(&counter) }
            },
            0..100,
            4,
        )
        .unwrap_err();
    assert!(err.to_string().contains("bad 3"), "the lowest failed item's error: {err}");
    assert_eq!(made.load(Ordering::SeqCst), 90);
    assert_eq!(drops.load(Ordering::SeqCst), 90, "the results made were dropped, once each");
}

#[test]
fn terminate_drops_the_items_no_worker_took() {
    let pool = pool(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Barrier::new(2));
    let entered = Arc::clone(&gate);
    let items: Vec<Tracked> =
        (0..1000).map(|value| Tracked { value, drops: Arc::clone(&drops) }).collect();
    let result = pool.map_async_with(
        move |t: Tracked| {
            if t.value == 0 {
                entered.wait();
                std::thread::sleep(Duration::from_millis(50));
            }
            t.value
        },
        items,
        Some(1),
        Callbacks::new(),
    );
    gate.wait();
    pool.terminate();
    assert!(result.get().is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
}

#[test]
fn closures_capture_and_items_need_not_serialize() {
    let pool = pool(3);
    let (sender, receiver) = std::sync::mpsc::channel::<i64>();
    let offset = 100;
    assert_eq!(pool.map(move |x: i64| x + offset, 0..3).unwrap(), [100, 101, 102]);
    let cells = pool.map(|i: u8| std::cell::Cell::new(i), 0..3).unwrap();
    assert_eq!(cells[2].get(), 2);
    pool.apply(move |x: i64| sender.send(x).unwrap(), 5).unwrap();
    assert_eq!(receiver.recv().unwrap(), 5, "a task owns a channel's sender");
    assert_eq!(pool.map(|_: u16| (), 0..1000).unwrap().len(), 1000, "zero-sized results");
}

#[test]
fn workers_are_daemon_threads_named_as_cpythons() {
    let pool = pool(2);
    let names: HashSet<(String, bool)> = pool
        .map_chunked(
            |_: u8| {
                std::thread::sleep(Duration::from_millis(20));
                let me = threading::current_thread();
                (me.name(), me.daemon())
            },
            0..8,
            1,
        )
        .unwrap()
        .into_iter()
        .collect();
    assert!(names.iter().all(|(name, daemon)| {
        *daemon && name.starts_with("Thread-") && name.ends_with(" (worker)")
    }));
}

#[test]
fn the_initializer_runs_in_each_worker_and_one_that_panics_breaks_the_pool() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let pool = ThreadPool::builder()
        .processes(Some(3))
        .initializer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(pool.map(sqr, 0..10).unwrap().len(), 10);
    pool.close();
    pool.join().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);

    let pool = ThreadPool::builder()
        .processes(Some(2))
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let err = pool.apply(sqr, 2).unwrap_err();
    assert!(err.to_string().contains("no database"), "{err}");
    let err = pool.map(sqr, 0..5).unwrap_err();
    assert!(err.to_string().contains("no database"), "{err}");
}

// _TestPoolWorkerLifetime.test_pool_worker_lifetime, as threads.
#[test]
fn maxtasksperchild_replaces_workers() {
    let pool = ThreadPool::builder().processes(Some(2)).maxtasksperchild(2).build().unwrap();
    let idents: HashSet<u64> =
        pool.map_chunked(|_: u8| threading::get_ident(), 0..20, 1).unwrap().into_iter().collect();
    assert!(idents.len() >= 10, "a worker runs 2 tasks then leaves: {} workers", idents.len());
    pool.close();
    pool.join().unwrap();
    assert_eq!(pool.stats().done, 20);
}

#[test]
fn many_threads_submit_at_once() {
    let pool = Arc::new(pool(3));
    let submitters: Vec<_> = (0..6)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for round in 0..50 {
                    let base = t * 1000 + round;
                    let got = pool.map_chunked(move |x: i64| x + base, 0..37, 3).unwrap();
                    assert_eq!(got, (0..37).map(|x| x + base).collect::<Vec<_>>());
                    assert_eq!(pool.apply(move |x: i64| x * 2, base).unwrap(), base * 2);
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.submitted, stats.done);
}

#[test]
fn a_task_may_drop_the_last_handle_of_its_own_pool() {
    let pool = Arc::new(pool(2));
    let own = Mutex::new(Some(Arc::clone(&pool)));
    let result = pool.apply_async(
        move |_: ()| {
            std::thread::sleep(Duration::from_millis(50));
            drop(own.lock().unwrap().take());
            7
        },
        (),
    );
    drop(pool);
    // Dropping the pool in its worker terminates it without waiting for that worker.
    assert_eq!(result.get_timeout(Duration::from_secs(10)).unwrap(), 7);
}

#[test]
fn a_fork_child_refuses_its_parents_thread_pool() {
    let _serial = crate::support::serial();
    let pool = pool(1);
    let status = multiprocessing::Process::builder()
        .start_method(multiprocessing::StartMethod::Fork)
        .target(move || {
            let err = pool.apply(sqr, 2).unwrap_err();
            assert_eq!(
                err.to_string(),
                "pool objects cannot be passed between processes or pickled"
            );
            std::mem::forget(pool);
        });
    status.start().unwrap();
    status.join().unwrap();
    assert_eq!(status.exitcode(), Some(0));
}

#[test]
fn awaiting_a_thread_pool_result_does_not_block_the_executor() {
    let pool = pool(2);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let value = runtime.block_on(async {
        let slow = pool.apply_async(sqr_slowly, (9, 100));
        let ticker = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            1
        });
        let value = slow.await.unwrap();
        assert_eq!(ticker.await.unwrap(), 1);
        value
    });
    assert_eq!(value, 81);
}
