//! `multiprocessing.managers` — ported from CPython 3.11's `_TestContainers` (list, dict,
//! namespace, nested proxies), `_TestRemoteManager`, `TestManagerRestart`,
//! `_TestManagerRestart`-style shutdown, and the `manager` runs of `_TestQueue`/`_TestLock`
//! (`ManagerMixin`), plus what CPython leaves to chance: a server killed under a call,
//! malformed requests, many clients at once, and reference counts across processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use multiprocessing::connection::{Address, client};
use multiprocessing::managers::{DictProxy, ListProxy, Manager, QueueProxy};
use multiprocessing::{Error, Process, StartMethod, active_children};

use crate::each_start_method;
use crate::support::serial;

fn tcp() -> Address {
    Address::Tcp("127.0.0.1:0".parse().unwrap())
}

// _TestContainers.test_list
#[test]
fn a_list_behaves_as_pythons() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let a = manager.list::<i64>().unwrap();
    a.extend(0..10).unwrap();
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(a.len().unwrap(), 10);
    assert_eq!(a.get(3).unwrap(), 3);
    a.set(3, 33).unwrap();
    a.insert(0, -1).unwrap();
    a.insert(100, 100).unwrap();
    assert_eq!(a.get(0).unwrap(), -1);
    assert_eq!(a.get(4).unwrap(), 33);
    assert_eq!(a.pop().unwrap(), 100);
    assert_eq!(a.pop_at(0).unwrap(), -1);
    assert_eq!(a.index(&33).unwrap(), 3);
    assert_eq!(a.count(&5).unwrap(), 1);
    a.remove(&33).unwrap();
    assert_eq!(a.len().unwrap(), 9);
    let err = a.get(100).unwrap_err();
    assert!(matches!(err, Error::IndexError(_)));
    assert_eq!(err.to_string(), "list index out of range");
    assert_eq!(a.set(100, 1).unwrap_err().to_string(), "list assignment index out of range");
    assert_eq!(a.remove(&1000).unwrap_err().to_string(), "list.remove(x): x not in list");
    assert_eq!(a.index(&1000).unwrap_err().to_string(), "1000 is not in list");
    a.clear().unwrap();
    assert_eq!(a.pop().unwrap_err().to_string(), "pop from empty list");
}

// _TestContainers.test_dict, test_dict_iter
#[test]
fn a_dict_keeps_insertion_order_and_says_which_key_is_missing() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let keys = ["z", "a", "m"];
    for (i, key) in keys.iter().enumerate() {
        d.set((*key).into(), i as i64).unwrap();
    }
    assert_eq!(d.keys().unwrap(), keys);
    assert_eq!(d.values().unwrap(), [0, 1, 2]);
    assert_eq!(d.items().unwrap()[1], ("a".to_string(), 1));
    d.set("z".into(), 10).unwrap();
    assert_eq!(d.keys().unwrap(), keys, "overwriting keeps the place");
    assert_eq!(d.remove(&"a".into()).unwrap(), 1);
    let err = d.remove(&"missing".into()).unwrap_err();
    assert!(matches!(err, Error::KeyError(_)));
    assert_eq!(err.to_string(), "'missing'");
    assert!(d.contains_key(&"m".into()).unwrap());
    assert_eq!(d.get(&"nope".into()).unwrap(), None);
    assert_eq!(d.setdefault("n".into(), 5).unwrap(), 5);
    assert_eq!(d.len().unwrap(), 3);
    let tuple_keys = manager.dict::<(u8, String), ()>().unwrap();
    let err = tuple_keys.remove(&(1, "x".into())).unwrap_err();
    assert_eq!(err.to_string(), "(1, 'x')");
}

// _TestContainers.test_namespace
#[test]
fn a_namespace_holds_attributes_of_any_type() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let n = manager.namespace().unwrap();
    n.set("name", &"Bob").unwrap();
    n.set("job", &"Builder").unwrap();
    n.set("_hidden", &"hidden").unwrap();
    assert_eq!(n.get::<String>("name").unwrap(), "Bob");
    assert_eq!(n.names().unwrap(), ["name", "job", "_hidden"]);
    n.del("job").unwrap();
    let err = n.get::<String>("job").unwrap_err();
    assert!(matches!(err, Error::AttributeError(_)));
    assert_eq!(err.to_string(), "'Namespace' object has no attribute 'job'");
    assert!(n.get::<u64>("name").is_err(), "another type than was stored");
}

// _TestContainers.test_list_proxy_in_list, test_dict_proxy_nested
#[test]
fn proxies_stored_in_containers_keep_their_objects() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let outer = manager.list::<ListProxy<i64>>().unwrap();
    for _ in 0..3 {
        let inner = manager.list::<i64>().unwrap();
        inner.extend(0..3).unwrap();
        outer.append(inner).unwrap(); // the stored proxy keeps it alive
    }
    assert_eq!(manager.number_of_objects().unwrap(), 4);
    let first = outer.get(0).unwrap();
    first.set(0, 55).unwrap();
    assert_eq!(outer.get(0).unwrap().to_vec().unwrap(), [55, 1, 2]);
    for inner in outer.to_vec().unwrap() {
        assert_eq!(inner.len().unwrap(), 3);
    }
    let popped = outer.pop().unwrap();
    drop(outer);
    drop(first);
    assert_eq!(popped.to_vec().unwrap(), [0, 1, 2], "the popped proxy owns its object");
    let nested = manager.dict::<String, DictProxy<String, i64>>().unwrap();
    let pets = manager.dict::<String, i64>().unwrap();
    pets.set("ferrets".into(), 2).unwrap();
    nested.set("pets".into(), pets).unwrap();
    let got = nested.get(&"pets".into()).unwrap().unwrap();
    assert_eq!(got.get(&"ferrets".into()).unwrap(), Some(2));
}

// BaseProxy's reference counts: an object goes with its last proxy, in any process.
fn drop_after_use(list: ListProxy<u8>) {
    list.append(1).unwrap();
}

fn objects_are_freed_with_their_last_proxy(method: StartMethod) {
    let manager = Manager::builder().start_method(method).start().unwrap();
    let list = manager.list::<u8>().unwrap();
    let clone = list.clone();
    drop(list);
    assert_eq!(manager.number_of_objects().unwrap(), 1, "a clone still refers to it");
    let child = Process::builder().start_method(method).call(drop_after_use, clone.clone());
    child.start().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
    assert_eq!(clone.to_vec().unwrap(), [1]);
    assert_eq!(manager.number_of_objects().unwrap(), 1, "the child gave its reference back");
    drop(child); // it holds its arguments, a clone among them
    drop(clone);
    assert_eq!(manager.number_of_objects().unwrap(), 0);
}

fn fill(args: (DictProxy<u32, String>, QueueProxy<u32>, multiprocessing::managers::LockProxy)) {
    let (dict, queue, lock) = args;
    lock.acquire().unwrap();
    for i in 0..3 {
        dict.set(i, format!("from {}", std::process::id())).unwrap();
        queue.put(i).unwrap();
    }
    lock.release().unwrap();
}

// Proxies in Process::call's arguments under every start method (spawn and forkserver
// children get the manager's key with them).
fn children_reach_the_same_server(method: StartMethod) {
    let manager = Manager::builder().authkey(b"not the process key").start().unwrap();
    let (dict, queue, lock) =
        (manager.dict().unwrap(), manager.queue(0).unwrap(), manager.lock().unwrap());
    lock.acquire().unwrap();
    let child = Process::builder()
        .start_method(method)
        .call(fill, (dict.clone(), queue.clone(), lock.clone()));
    child.start().unwrap();
    assert!(matches!(queue.get_timeout(Duration::from_millis(200)), Err(Error::Empty)));
    lock.release().unwrap();
    let got: Vec<u32> =
        (0..3).map(|_| queue.get_timeout(Duration::from_secs(20)).unwrap()).collect();
    assert_eq!(got, [0, 1, 2]);
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
    assert_eq!(dict.len().unwrap(), 3);
}

each_start_method! {
    refcounts_across_processes => objects_are_freed_with_their_last_proxy;
    proxies_in_children => children_reach_the_same_server;
}

// A fork child that captures proxies takes references of its own.
#[test]
fn a_fork_child_captures_proxies() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let counter = manager.value(0u64).unwrap();
    let lock = manager.lock().unwrap();
    let children: Vec<Process> = (0..3)
        .map(|_| {
            let (counter, lock) = (counter.clone(), lock.clone());
            Process::new(move || {
                for _ in 0..20 {
                    lock.acquire().unwrap();
                    counter.set(counter.get().unwrap() + 1).unwrap();
                    lock.release().unwrap();
                }
            })
        })
        .collect();
    for child in &children {
        child.start().unwrap();
    }
    for child in &children {
        child.join().unwrap();
        assert_eq!(child.exitcode(), Some(0));
    }
    assert_eq!(counter.get().unwrap(), 60);
    assert_eq!(manager.number_of_objects().unwrap(), 2);
}

fn use_remote(address: Address) {
    let manager = Manager::connect(address, Some(b"remote key")).unwrap();
    let board = manager.dict::<String, u32>().unwrap();
    board.set("spawned".into(), 1).unwrap();
    let queue = manager.queue::<DictProxy<String, u32>>(0).unwrap();
    // Hand the dict back over a queue the main process watches: found by its id.
    let shared = manager.list::<QueueProxy<DictProxy<String, u32>>>().unwrap();
    drop((queue, shared));
    let lists = manager.namespace().unwrap();
    lists.set("who", &"a spawned client").unwrap();
    let found: Vec<String> = lists.names().unwrap();
    assert_eq!(found, ["who"]);
}

// _TestRemoteManager.test_remote: a manager on TCP reached by another process with the
// key; a wrong key is refused with CPython's text.
#[test]
fn a_remote_manager_is_reached_over_tcp_with_its_key() {
    let _serial = serial();
    let manager = Manager::builder().address(tcp()).authkey(b"remote key").start().unwrap();
    let address = manager.address();
    let Address::Tcp(bound) = address.clone() else { panic!("{address:?}") };
    assert_ne!(bound.port(), 0);
    let child =
        Process::builder().start_method(StartMethod::Spawn).call(use_remote, address.clone());
    child.start().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
    let connected = Manager::connect(address.clone(), Some(b"remote key")).unwrap();
    let d = connected.dict::<u8, u8>().unwrap();
    d.set(1, 2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
    let err = Manager::connect(address, Some(b"wrong key")).unwrap_err();
    assert!(matches!(err, Error::AuthenticationError(_)), "{err:?}");
    assert_eq!(err.to_string(), "digest sent was rejected");
}

// TestManagerRestart: a manager at the address of one shut down starts again.
#[test]
fn a_manager_restarts_at_the_same_address() {
    let _serial = serial();
    let address = Address::Abstract(format!("pyconc-restart-{}", std::process::id()).into_bytes());
    let first = Manager::builder().address(address.clone()).start().unwrap();
    let d = first.dict::<u8, u8>().unwrap();
    d.set(1, 1).unwrap();
    first.shutdown().unwrap();
    assert!(d.len().is_err(), "the first server is gone");
    drop(d);
    drop(first);
    let second = Manager::builder().address(address.clone()).start().unwrap();
    assert_eq!(second.address(), address);
    assert_eq!(second.dict::<u8, u8>().unwrap().len().unwrap(), 0);
}

#[test]
fn the_server_process_is_named_and_ends_with_its_handle() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let server = manager.process().unwrap().clone();
    assert!(server.name().starts_with("SyncManager-"), "{}", server.name());
    assert!(active_children().iter().any(|p| p.pid() == server.pid()));
    let d = manager.dict::<u8, u8>().unwrap();
    drop(manager);
    assert!(!server.is_alive());
    assert_eq!(server.exitcode(), Some(0), "it exited on the shutdown request");
    assert!(!active_children().iter().any(|p| p.pid() == server.pid()));
    assert!(d.len().is_err());
}

// A server killed under a blocking call: the call fails at once, later calls too.
#[test]
fn a_killed_server_fails_calls_instead_of_hanging() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let queue = manager.queue::<u8>(0).unwrap();
    let server = manager.process().unwrap().clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        server.kill().unwrap();
        server.join().unwrap();
    });
    let started = Instant::now();
    let err = queue.get().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(err, Error::EOFError | Error::OsError(_)), "{err:?}");
    killer.join().unwrap();
    let started = Instant::now();
    assert!(queue.qsize().is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
}

// One client's blocking call stalls no other; many threads at once.
#[test]
fn many_clients_at_once_and_a_blocking_call_stalls_no_other() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let queue = manager.queue::<u8>(0).unwrap();
    let blocked = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.get().unwrap())
    };
    let counter = manager.dict::<String, u64>().unwrap();
    let lock = manager.lock().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (counter, lock, done) = (counter.clone(), lock.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    counter.set(format!("{t}-{i}"), i).unwrap();
                    lock.acquire().unwrap();
                    lock.release().unwrap();
                }
                done.load(Ordering::Relaxed)
            })
        })
        .collect();
    for worker in workers {
        assert!(!worker.join().unwrap());
    }
    assert_eq!(counter.len().unwrap(), 400);
    queue.put(9).unwrap();
    assert_eq!(blocked.join().unwrap(), 9);
}

// A malformed request gets an error; the server goes on.
#[test]
fn a_malformed_request_is_answered_with_an_error() {
    let _serial = serial();
    let manager = Manager::builder().address(tcp()).authkey(b"k").start().unwrap();
    let conn = client(manager.address(), Some(b"k")).unwrap();
    conn.send_bytes(&[0]).unwrap(); // Hello::Stay: go on over this connection
    conn.send_bytes(&[0xff, 0xff, 0xff]).unwrap();
    let reply = conn.recv_bytes().unwrap();
    assert!(!reply.is_empty(), "an error reply");
    let garbage = client(manager.address(), Some(b"k")).unwrap();
    garbage.send_bytes(b"\x07not a hello").unwrap();
    assert!(garbage.recv_bytes().is_err(), "the server hung up on it");
    let d = manager.dict::<u8, u8>().unwrap();
    d.set(1, 1).unwrap();
    assert_eq!(d.len().unwrap(), 1, "the server goes on");
}

// The synchronization proxies, as ManagerMixin runs _TestLock, _TestSemaphore,
// _TestEvent, _TestCondition, _TestBarrier.
#[test]
fn the_sync_proxies_behave_as_threadings() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let lock = manager.lock().unwrap();
    assert!(lock.try_acquire().unwrap());
    assert!(!lock.acquire_timeout(Duration::from_millis(10)).unwrap());
    lock.release().unwrap();
    assert_eq!(lock.release().unwrap_err().to_string(), "release unlocked lock");
    let rlock = manager.rlock().unwrap();
    rlock.acquire().unwrap();
    rlock.acquire().unwrap();
    rlock.release().unwrap();
    rlock.release().unwrap();
    assert_eq!(rlock.release().unwrap_err().to_string(), "cannot release un-acquired lock");
    let sem = manager.bounded_semaphore(2).unwrap();
    assert!(sem.try_acquire().unwrap() && sem.try_acquire().unwrap());
    assert!(!sem.try_acquire().unwrap());
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.release().unwrap_err().to_string(), "Semaphore released too many times");
    let event = manager.event().unwrap();
    let setter = {
        let event = event.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            event.set().unwrap();
        })
    };
    assert!(event.wait_timeout(Duration::from_secs(20)).unwrap());
    setter.join().unwrap();
    let cond = manager.condition().unwrap();
    let waiter = {
        let cond = cond.clone();
        std::thread::spawn(move || {
            cond.acquire().unwrap();
            let woken = cond.wait_timeout(Duration::from_secs(20)).unwrap();
            cond.release().unwrap();
            woken
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    cond.acquire().unwrap();
    cond.notify(1).unwrap();
    cond.release().unwrap();
    assert!(waiter.join().unwrap());
    let barrier = manager.barrier(3).unwrap();
    let parties: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || barrier.wait().unwrap())
        })
        .collect();
    let mine = barrier.wait().unwrap();
    let mut indices: Vec<usize> = parties.into_iter().map(|p| p.join().unwrap()).collect();
    indices.push(mine);
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2]);
    barrier.abort().unwrap();
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrierError)));
}

/// CPython's `FooBar` of `_TestMyManager`, in Rust.
pub(crate) struct FooBar {
    calls: u32,
}

impl FooBar {
    fn new(start: u32) -> FooBar {
        FooBar { calls: start }
    }
    fn f(&mut self) -> String {
        self.calls += 1;
        "f()".to_owned()
    }
    fn g(&self) -> String {
        panic!("g() was called")
    }
    fn add(&mut self, a: u32, b: u32) -> u32 {
        self.calls += 1;
        a + b
    }
    fn calls(&self) -> u32 {
        self.calls
    }
}

multiprocessing::shared_type! {
    /// `FooBar` in a manager.
    pub(crate) proxy FooBarProxy for FooBar {
        fn f(&mut self) -> String;
        fn g(&self) -> String;
        fn add(&mut self, a: u32, b: u32) -> u32;
        fn calls(&self) -> u32;
    }
}

fn call_f(foobar: FooBarProxy) {
    assert_eq!(foobar.f().unwrap(), "f()");
}

// _TestMyManager.test_mymanager (and its _context and _start variants): a registered type
// under every start method of the server; methods run there, one exposed method panics.
fn a_registered_type_runs_its_methods_in_the_server(method: StartMethod) {
    let manager = Manager::builder()
        .start_method(method)
        .register::<FooBarProxy, u32>(FooBar::new)
        .start()
        .unwrap();
    let err = manager.create::<FooBarProxy, _>(10).unwrap_err();
    assert_eq!(err.to_string(), "'FooBar' is made from a u32, not a i32");
    let foobar: FooBarProxy = manager.create(10u32).unwrap();
    assert_eq!(foobar.f().unwrap(), "f()");
    assert_eq!(foobar.add(2, 3).unwrap(), 5);
    let err = foobar.g().unwrap_err();
    assert!(matches!(err, Error::RuntimeError(_)), "{err:?}");
    assert!(err.to_string().contains("g() was called"), "{err}");
    assert_eq!(foobar.calls().unwrap(), 12, "the server goes on, the object too");
    let child = Process::builder().start_method(method).call(call_f, foobar.clone());
    child.start().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(0));
    assert_eq!(foobar.calls().unwrap(), 13);
    assert!(format!("{foobar:?}").starts_with("<FooBarProxy object, typeid 'FooBar', id "));
    drop(foobar);
    assert_eq!(manager.number_of_objects().unwrap(), 0);
}

each_start_method! {
    registered_types => a_registered_type_runs_its_methods_in_the_server;
}

// An unexposed or unknown method is refused (CPython: AttributeError), and a type the
// server was not started with cannot be made there.
#[test]
fn only_registered_types_and_exposed_methods_run() {
    let _serial = serial();
    use multiprocessing::managers::SharedType;
    let manager = Manager::builder().register::<FooBarProxy, u32>(FooBar::new).start().unwrap();
    let foobar: FooBarProxy = manager.create(0u32).unwrap();
    let raw = foobar.0.clone(); // the untyped reference the proxy wraps
    let err = raw.call::<(), String>("h", &()).unwrap_err();
    assert!(matches!(err, Error::AttributeError(_)));
    assert_eq!(err.to_string(), "'FooBar' object has no attribute 'h'");
    let err = raw.call::<(u8,), String>("f", &(1,)).unwrap_err();
    assert!(matches!(err, Error::ValueError(_)), "wrong arguments: {err:?}");
    let plain = Manager::new().unwrap();
    let err = plain.create::<FooBarProxy, u32>(0).unwrap_err();
    assert_eq!(err.to_string(), "the manager's server has no type 'FooBar' registered");
    assert_eq!(FooBarProxy::TYPEID, "FooBar");
}

fn add_to(
    (total, lock, i): (
        multiprocessing::managers::ValueProxy<u64>,
        multiprocessing::managers::LockProxy,
        u64,
    ),
) {
    lock.acquire().unwrap();
    total.set(total.get().unwrap() + i).unwrap();
    lock.release().unwrap();
}

// Proxies in a Pool's task arguments (serialized per item, each taking a reference the
// worker gives back): every worker reaches the same server.
#[test]
fn proxies_travel_in_pool_arguments() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    let total = manager.value(0u64).unwrap();
    let lock = manager.lock().unwrap();
    let pool = multiprocessing::Pool::builder()
        .processes(Some(2))
        .start_method(StartMethod::Spawn)
        .build()
        .unwrap();
    let items: Vec<_> = (0..10).map(|i| (total.clone(), lock.clone(), i)).collect();
    pool.map(add_to, items).unwrap();
    assert_eq!(total.get().unwrap(), 45);
    pool.close();
    pool.join().unwrap();
    assert_eq!(manager.number_of_objects().unwrap(), 2, "the workers gave their references back");
}

// What the docs promise: every handle and proxy can be shared between threads.
#[test]
fn managers_and_proxies_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Manager>();
    shareable::<DictProxy<String, Vec<u8>>>();
    shareable::<ListProxy<std::rc::Rc<u8>>>(); // the proxy holds no T
    shareable::<QueueProxy<u8>>();
    shareable::<multiprocessing::managers::Namespace>();
    shareable::<multiprocessing::managers::ConditionProxy>();
    shareable::<FooBarProxy>();
    shareable::<multiprocessing::ThreadPool>();
    shareable::<multiprocessing::dummy::Queue<u8>>();
    shareable::<multiprocessing::dummy::Connection<u8>>();
}
