//! `multiprocessing::dummy` — the cases of CPython 3.11's `_test_multiprocessing.py` that
//! its `ThreadsMixin` runs (`test_threads`: `multiprocessing.dummy`): `_TestProcess`,
//! `_TestQueue`, `_TestConnection`, `_TestPoll`; plus what we add (EOF instead of a hang).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use multiprocessing::Error;
use multiprocessing::dummy::{
    Array, JoinableQueue, Lock, Pool, Process, Queue, Value, active_children, current_process, pipe,
};

// _TestProcess.test_current (threads): the current "process" is the current thread.
#[test]
fn the_current_process_is_the_current_thread() {
    let me = current_process();
    assert_eq!(me.ident(), Some(threading::get_ident()));
    assert!(me.is_alive());
}

// _TestProcess.test_process (threads)
#[test]
fn a_process_runs_its_target_and_reports_like_a_process() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let gate = Arc::new(Lock::new());
    gate.acquire();
    let held = Arc::clone(&gate);
    let p = Process::builder().name("SomeProcess").target(move || {
        sender.send((threading::current_thread().name(), 1, 2)).unwrap();
        held.acquire();
    });
    assert_eq!(p.exitcode(), None);
    assert!(!p.is_alive());
    assert!(!active_children().iter().any(|c| c.ident() == p.ident() && p.ident().is_some()));
    p.start().unwrap();
    assert_eq!(p.exitcode(), None);
    assert!(p.is_alive());
    assert!(active_children().iter().any(|c| c.ident() == p.ident()));
    assert_eq!(receiver.recv().unwrap(), ("SomeProcess".to_owned(), 1, 2));
    gate.release().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(!active_children().iter().any(|c| c.ident() == p.ident()));
}

// DummyProcess.start: only the thread that made it may start it.
#[test]
fn only_the_creating_thread_may_start_a_process() {
    let p = Process::new(|| ());
    let err = std::thread::scope(|s| s.spawn(|| p.start().unwrap_err()).join().unwrap());
    let text = err.to_string();
    assert!(matches!(err, Error::RuntimeError(_)));
    assert!(text.starts_with("Parent is <") && text.contains("but current_process is <"), "{text}");
    p.start().unwrap();
    assert_eq!(p.start().unwrap_err().to_string(), "threads can only be started once");
    p.join().unwrap();
}

// _TestQueue.test_put, test_get
#[test]
fn a_bounded_queue_blocks_and_times_out_as_queue_queue() {
    let queue = Queue::new(6);
    assert!(queue.empty() && !queue.full() && queue.qsize() == 0);
    for i in 1..=6 {
        match i % 3 {
            0 => queue.put(i).unwrap(),
            1 => queue.put_nowait(i).unwrap(),
            _ => queue.put_timeout(i, Duration::from_millis(1)).unwrap(),
        }
    }
    assert!(queue.full());
    assert_eq!(queue.qsize(), 6);
    assert!(matches!(queue.put_nowait(7), Err(Error::Full)));
    let started = Instant::now();
    assert!(matches!(queue.put_timeout(7, Duration::from_millis(100)), Err(Error::Full)));
    assert!(started.elapsed() >= Duration::from_millis(100));
    let got: Vec<i32> = (0..6).map(|_| queue.get().unwrap()).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6], "first in, first out");
    assert!(matches!(queue.get_nowait(), Err(Error::Empty)));
    let started = Instant::now();
    assert!(matches!(queue.get_timeout(Duration::from_millis(100)), Err(Error::Empty)));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // A blocked put goes on when a place comes free.
    let full = Queue::new(1);
    full.put(0).unwrap();
    let producer = full.clone();
    let p = Process::new(move || producer.put(1).unwrap());
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(p.is_alive(), "blocked on a full queue");
    assert_eq!(full.get().unwrap(), 0);
    p.join().unwrap();
    assert_eq!(full.get().unwrap(), 1);
}

// _TestQueue.test_task_done
#[test]
fn join_waits_until_every_task_is_done() {
    let queue = JoinableQueue::new(0);
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<Process> = (0..4)
        .map(|_| {
            let (queue, done) = (queue.clone(), Arc::clone(&done));
            Process::new(move || {
                while let Ok(Some(n)) = queue.get() {
                    std::thread::sleep(Duration::from_millis(1));
                    done.fetch_add(n, Ordering::SeqCst);
                    queue.task_done().unwrap();
                }
                queue.task_done().unwrap();
            })
        })
        .collect();
    for worker in &workers {
        worker.start().unwrap();
    }
    for i in 1..=10usize {
        queue.put(Some(i)).unwrap();
    }
    queue.join();
    assert_eq!(done.load(Ordering::SeqCst), 55, "join returned after every task_done");
    for _ in &workers {
        queue.put(None).unwrap();
    }
    for worker in &workers {
        worker.join().unwrap();
    }
    assert_eq!(queue.task_done().unwrap_err().to_string(), "task_done() called too many times");
}

// _TestConnection.test_connection (threads), _TestPoll
#[test]
fn a_pipe_moves_values_both_ways_and_polls() {
    let (a, b) = pipe::<Vec<u8>>(true);
    assert!(!a.poll(Some(Duration::ZERO)).unwrap());
    let started = Instant::now();
    assert!(!a.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(started.elapsed() >= Duration::from_millis(100));
    b.send(b"abc".to_vec()).unwrap();
    assert!(a.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(a.recv().unwrap(), b"abc");
    a.send(Vec::new()).unwrap();
    assert_eq!(b.recv().unwrap(), b"", "an empty message is a message");
    // A non-duplex pipe of CPython's dummy is duplex all the same.
    let (r, w) = pipe::<u8>(false);
    w.send(1).unwrap();
    r.send(2).unwrap();
    assert_eq!((r.recv().unwrap(), w.recv().unwrap()), (1, 2));
}

// Beyond CPython, whose dummy connection waits for ever: the end of the pipe.
#[test]
fn recv_after_the_other_end_went_is_eof_not_a_hang() {
    let (a, b) = pipe::<u32>(true);
    a.send(1).unwrap();
    let p = Process::new(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
    });
    p.start().unwrap();
    assert_eq!(b.recv().unwrap(), 1, "what was sent comes first");
    assert!(matches!(b.recv(), Err(Error::EOFError)));
    assert!(b.poll(None).unwrap(), "the end is something to take");
    p.join().unwrap();
    b.close();
    assert_eq!(b.send(3).unwrap_err().to_string(), "handle is closed");
}

#[test]
fn value_and_array_are_shared_by_the_threads_that_hold_them() {
    let total = Value::new(0u64);
    let cells = Array::<u64>::new(8);
    let pool = Pool::new(Some(4)).unwrap();
    let (sum, slots) = (total.clone(), cells.clone());
    pool.map(
        move |i: usize| {
            sum.update(|t| *t += i as u64);
            slots.set(i, (i * 10) as u64).unwrap();
        },
        0..8,
    )
    .unwrap();
    assert_eq!(total.get(), 28);
    assert_eq!(cells.to_vec(), [0, 10, 20, 30, 40, 50, 60, 70]);
    assert_eq!(cells.get_slice(6..), [60, 70]);
    assert_eq!(cells.set(8, 1).unwrap_err().to_string(), "invalid index");
    assert_eq!(format!("{total:?}"), "<Value(28)>");
}
