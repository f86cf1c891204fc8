//! `Queue`, `JoinableQueue`, `SimpleQueue`, ported from `_TestQueue` in CPython 3.11's
//! `_test_multiprocessing.py` (test_put, test_get, test_fork, test_qsize, test_task_done,
//! test_timeout, test_closed_queue_put_get_exceptions, test_empty) for each start method,
//! plus MPMC order/no-loss and a consumer SIGKILLed while it waits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multiprocessing::{Error, Event, JoinableQueue, Process, Queue, SimpleQueue, StartMethod};

use crate::each_start_method;
use crate::support::{self, call};

fn consume_n((queue, n, done): (Queue<u32>, u32, Event)) {
    for _ in 0..n {
        queue.get().unwrap();
    }
    done.set();
}

fn produce((queue, from, to): (Queue<u32>, u32, u32)) {
    for i in from..to {
        queue.put(i).unwrap();
    }
}

each_start_method! {
    bounded_put_waits_for_a_consumer => bounded_put_waits_for_a_consumer;
    get_takes_what_a_child_put => get_takes_what_a_child_put;
    items_put_before_start_reach_the_child_in_order => items_put_before_start_reach_the_child_in_order;
    many_producers_and_consumers_lose_nothing => many_producers_and_consumers_lose_nothing;
    task_done_and_join => task_done_and_join;
    a_consumer_killed_while_waiting_loses_nothing => a_consumer_killed_while_waiting_loses_nothing;
    simple_queue_carries_items_both_ways => simple_queue_carries_items_both_ways;
    large_items_go_through_the_feeder => large_items_go_through_the_feeder;
}

/// test_put.
fn bounded_put_waits_for_a_consumer(method: StartMethod) {
    let queue = Queue::<u32>::new(6).unwrap();
    assert!(queue.empty() && !queue.full());
    for i in 0..6 {
        queue.put_nowait(i).unwrap();
    }
    assert!(queue.full());
    assert_eq!(queue.qsize(), 6);
    assert!(matches!(queue.put_nowait(6), Err(Error::Full)));
    let began = Instant::now();
    assert!(matches!(queue.put_timeout(6, Duration::from_millis(100)), Err(Error::Full)));
    assert!(began.elapsed() >= Duration::from_millis(95));
    let done = Event::new();
    let p = call(method, consume_n, (queue.clone(), 8, done.clone()));
    p.start().unwrap();
    queue.put(6).unwrap(); // waits until the child takes one
    queue.put_timeout(7, Duration::from_secs(20)).unwrap();
    assert!(done.wait_timeout(Duration::from_secs(20)));
    p.join().unwrap();
    assert_eq!(queue.qsize(), 0);
    assert!(queue.empty());
}

/// test_get.
fn get_takes_what_a_child_put(method: StartMethod) {
    let queue = Queue::<u32>::new(0).unwrap();
    assert!(matches!(queue.get_nowait(), Err(Error::Empty)));
    let began = Instant::now();
    assert!(matches!(queue.get_timeout(Duration::from_millis(100)), Err(Error::Empty)));
    assert!(began.elapsed() >= Duration::from_millis(95));
    let p = call(method, produce, (queue.clone(), 1, 5));
    p.start().unwrap();
    assert_eq!(queue.get().unwrap(), 1);
    assert_eq!(queue.get_timeout(Duration::from_secs(20)).unwrap(), 2);
    p.join().unwrap();
    assert_eq!(queue.get_nowait().unwrap(), 3);
    assert_eq!(queue.get().unwrap(), 4);
    assert!(matches!(queue.get_nowait(), Err(Error::Empty)));
}

fn put_more(queue: Queue<u32>) {
    for i in 10..20 {
        queue.put(i).unwrap();
    }
}

/// test_fork: items put before the child starts are not duplicated by it.
fn items_put_before_start_reach_the_child_in_order(method: StartMethod) {
    let queue = Queue::<u32>::new(0).unwrap();
    for i in 0..10 {
        queue.put(i).unwrap();
    }
    let p = call(method, put_more, queue.clone());
    p.start().unwrap();
    let got: Vec<u32> =
        (0..20).map(|_| queue.get_timeout(Duration::from_secs(20)).unwrap()).collect();
    assert_eq!(got, (0..20).collect::<Vec<u32>>());
    p.join().unwrap();
    assert!(matches!(queue.get_timeout(Duration::from_millis(50)), Err(Error::Empty)));
}

fn tagged_producer((queue, tag): (Queue<(u32, u32)>, u32)) {
    for i in 0..500 {
        queue.put((tag, i)).unwrap();
    }
}

/// (producer tag, sequence number)
type Tagged = Queue<(u32, u32)>;

fn forwarding_consumer((input, output, n): (Tagged, Tagged, u32)) {
    for _ in 0..n {
        output.put(input.get().unwrap()).unwrap();
    }
}

/// MPMC: 3 producers, 2 consumers in processes; nothing lost or duplicated, and each
/// producer's items come in order to each consumer.
fn many_producers_and_consumers_lose_nothing(method: StartMethod) {
    let input = Queue::<(u32, u32)>::new(0).unwrap();
    let output = Queue::<(u32, u32)>::new(0).unwrap();
    let producers: Vec<Process> =
        (0..3).map(|tag| call(method, tagged_producer, (input.clone(), tag))).collect();
    let consumers: Vec<Process> = (0..2)
        .map(|_| call(method, forwarding_consumer, (input.clone(), output.clone(), 750)))
        .collect();
    for p in producers.iter().chain(&consumers) {
        p.start().unwrap();
    }
    let mut seen: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for _ in 0..1500 {
        let (tag, i) = output.get_timeout(Duration::from_secs(30)).unwrap();
        seen.entry(tag).or_default().push(i);
    }
    for p in producers.iter().chain(&consumers) {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    for tag in 0..3 {
        let mut items = seen.remove(&tag).unwrap();
        items.sort_unstable();
        assert_eq!(items, (0..500).collect::<Vec<u32>>(), "producer {tag}");
    }
}

fn worker((queue, results): (JoinableQueue<u32>, Queue<u32>)) {
    loop {
        let item = queue.get().unwrap();
        if item == u32::MAX {
            queue.task_done().unwrap();
            break;
        }
        results.put(item * 2).unwrap();
        queue.task_done().unwrap();
    }
}

/// test_task_done.
fn task_done_and_join(method: StartMethod) {
    let queue = JoinableQueue::<u32>::new(0).unwrap();
    let results = Queue::<u32>::new(0).unwrap();
    let workers: Vec<Process> =
        (0..2).map(|_| call(method, worker, (queue.clone(), results.clone()))).collect();
    for w in &workers {
        w.start().unwrap();
    }
    for i in 0..20 {
        queue.put(i).unwrap();
    }
    queue.join().unwrap();
    let mut doubled: Vec<u32> = (0..20).map(|_| results.get().unwrap()).collect();
    doubled.sort_unstable();
    assert_eq!(doubled, (0..20).map(|i| i * 2).collect::<Vec<u32>>());
    for _ in &workers {
        queue.put(u32::MAX).unwrap();
    }
    for w in &workers {
        w.join().unwrap();
        assert_eq!(w.exitcode(), Some(0));
    }
    queue.join().unwrap();
    assert_eq!(queue.task_done().unwrap_err().to_string(), "task_done() called too many times");
}

fn wait_for_an_item((queue, started): (Queue<u32>, Event)) {
    started.set();
    let _ = queue.get();
}

/// Beyond CPython: a consumer SIGKILLed while it waits (holding the reader lock) wedges
/// nobody, and no item is lost.
fn a_consumer_killed_while_waiting_loses_nothing(method: StartMethod) {
    let queue = Queue::<u32>::new(0).unwrap();
    let started = Event::new();
    let p = call(method, wait_for_an_item, (queue.clone(), started.clone()));
    p.start().unwrap();
    started.wait();
    std::thread::sleep(Duration::from_millis(50)); // let it block in get()
    p.kill().unwrap();
    p.join().unwrap();
    for i in 0..5 {
        queue.put(i).unwrap();
    }
    let got: Vec<u32> =
        (0..5).map(|_| queue.get_timeout(Duration::from_secs(10)).unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

fn simple_echo((requests, replies): (SimpleQueue<String>, SimpleQueue<String>)) {
    loop {
        let request = requests.get().unwrap();
        if request.is_empty() {
            break;
        }
        replies.put(request.to_uppercase()).unwrap();
    }
}

/// SimpleQueue: test_empty and a round trip.
fn simple_queue_carries_items_both_ways(method: StartMethod) {
    let requests = SimpleQueue::<String>::new().unwrap();
    let replies = SimpleQueue::<String>::new().unwrap();
    assert!(requests.empty());
    let p = call(method, simple_echo, (requests.clone(), replies.clone()));
    p.start().unwrap();
    for word in ["a", "bc", "def"] {
        requests.put(word.to_owned()).unwrap();
        assert_eq!(replies.get().unwrap(), word.to_uppercase());
    }
    requests.put(String::new()).unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

fn sum_large((queue, n): (Queue<Vec<u8>>, usize)) {
    for i in 0..n {
        let item = queue.get().unwrap();
        assert!(item.len() == 2 << 20 && item.iter().all(|&b| b == i as u8));
    }
}

/// Items larger than the pipe: put returns at once (the feeder writes them).
fn large_items_go_through_the_feeder(method: StartMethod) {
    let queue = Queue::<Vec<u8>>::new(0).unwrap();
    for i in 0..4u8 {
        queue.put(vec![i; 2 << 20]).unwrap();
    }
    let p = call(method, sum_large, (queue.clone(), 4));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

/// Many puts before any get, in one process (CPython's feeder case).
#[test]
fn ten_thousand_puts_before_a_get_do_not_block() {
    let _serial = support::serial();
    let queue = Queue::<u64>::new(0).unwrap();
    for i in 0..10_000 {
        queue.put(i).unwrap();
    }
    assert_eq!(queue.qsize(), 10_000);
    for i in 0..10_000 {
        assert_eq!(queue.get().unwrap(), i);
    }
}

/// test_closed_queue_put_get_exceptions, join_thread before close.
#[test]
fn a_closed_queue_refuses_with_cpythons_messages() {
    let _serial = support::serial();
    let queue = Queue::<u8>::new(0).unwrap();
    let err = queue.join_thread().unwrap_err();
    assert!(matches!(err, Error::AssertionError(_)));
    assert!(
        err.to_string().starts_with("Queue <Queue object at 0x")
            && err.to_string().ends_with("> not closed")
    );
    queue.put(1).unwrap();
    queue.close();
    queue.join_thread().unwrap();
    let err = queue.put(2).unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert!(err.to_string().ends_with("> is closed"), "{err}");
    assert!(queue.get().unwrap_err().to_string().ends_with("> is closed"));
}

/// A queue serialized outside a process start is refused.
#[test]
fn a_queue_cannot_be_serialized_outside_a_process_start() {
    let _serial = support::serial();
    let (a, _b) = multiprocessing::pipe(true).unwrap();
    let queue = Queue::<u8>::new(0).unwrap();
    assert_eq!(
        a.send(&queue).unwrap_err().to_string(),
        "Queue objects should only be shared between processes through inheritance"
    );
}
