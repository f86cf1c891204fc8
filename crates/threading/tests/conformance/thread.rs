//! `Thread`: lifecycle, names, daemon flag, idents. Source: test_threading.py ThreadTests.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use threading::{Runnable, Thread};

#[test]
fn lifecycle_is_initial_started_stopped() {
    // test_various_ops: repr goes initial -> started -> stopped; is_alive follows.
    let gate = Arc::new(Barrier::new(2));
    let inside = Arc::clone(&gate);
    let t = Thread::builder().name("worker").daemon(false).target(move || {
        inside.wait();
    });
    assert!(!t.is_alive());
    assert_eq!(format!("{t:?}"), "<Thread(worker, initial)>");
    assert_eq!(t.ident(), None);
    assert_eq!(t.native_id(), None);
    t.start().unwrap();
    assert!(t.is_alive());
    let ident = t.ident().unwrap();
    assert_eq!(format!("{t:?}"), format!("<Thread(worker, started {ident})>"));
    gate.wait();
    t.join().unwrap();
    assert!(!t.is_alive());
    assert_eq!(format!("{t:?}"), format!("<Thread(worker, stopped {ident})>"));
    assert_eq!(t.ident(), Some(ident), "the ident is kept after the thread ended");
}

#[test]
fn repr_says_daemon() {
    // test_repr_daemon
    let t = Thread::builder().name("d").daemon(true).target(|| {});
    assert_eq!(format!("{t:?}"), "<Thread(d, initial daemon)>");
}

#[test]
fn start_twice_fails_even_after_the_end() {
    // test_start_thread_again
    let t = Thread::new(|| {});
    t.start().unwrap();
    assert_eq!(t.start().unwrap_err().to_string(), "threads can only be started once");
    t.join().unwrap();
    assert_eq!(t.start().unwrap_err().to_string(), "threads can only be started once");
}

#[test]
fn daemon_flag_is_settable_only_before_start() {
    // test_daemonize_active_thread, test_daemon_param
    let t = Thread::new(|| {});
    t.set_daemon(true).unwrap();
    assert!(t.daemon());
    t.set_daemon(false).unwrap();
    assert!(!t.daemon());
    t.start().unwrap();
    assert!(t.set_daemon(true).is_err());
    t.join().unwrap();
    assert!(t.set_daemon(true).is_err(), "also after the thread ended");
    assert!(!t.daemon());
}

#[test]
fn daemon_flag_is_inherited_from_the_creating_thread() {
    // CPython: daemon=None inherits current_thread().daemon. A dummy (libtest) thread is
    // daemonic; inside a non-daemon thread new threads are non-daemon.
    assert!(Thread::new(|| {}).daemon(), "created in a dummy thread");
    let (tx, rx) = mpsc::channel();
    let parent = Thread::builder().daemon(false).target(move || {
        tx.send(Thread::new(|| {}).daemon()).unwrap();
        let d = Thread::builder().daemon(true).target(|| {});
        tx.send(d.daemon()).unwrap();
    });
    parent.start().unwrap();
    parent.join().unwrap();
    assert!(!rx.recv().unwrap());
    assert!(rx.recv().unwrap());
}

fn counter() {}

#[test]
fn default_names_number_threads_and_name_function_targets() {
    // test_name (3.10+): Thread-N, Thread-N (func); explicit and empty names.
    let a = Thread::new(|| {});
    let b = Thread::new(counter);
    let n_a: u64 = a.name().strip_prefix("Thread-").unwrap().parse().unwrap();
    let b_name = b.name();
    let (num, suffix) = b_name.strip_prefix("Thread-").unwrap().split_once(' ').unwrap();
    assert!(num.parse::<u64>().unwrap() > n_a, "one increasing counter");
    assert_eq!(suffix, "(counter)");
    assert_eq!(Thread::builder().name("123").target(|| {}).name(), "123");
    let empty = Thread::builder().name("").target(|| {}).name();
    assert!(empty.starts_with("Thread-") && !empty.contains(' '), "empty name: {empty}");
}

struct Counter(Arc<AtomicUsize>);

impl Runnable for Counter {
    fn run(self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn runnable_structs_run_once_and_get_no_name_suffix() {
    // A Thread subclass overriding run(): CPython names it Thread-N, no suffix.
    let count = Arc::new(AtomicUsize::new(0));
    let t = Thread::new(Counter(Arc::clone(&count)));
    assert!(!t.name().contains(' '), "{}", t.name());
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn set_name_renames_at_any_time() {
    let t = Thread::builder().name("before").daemon(false).target(|| {});
    t.set_name("during");
    t.start().unwrap();
    t.join().unwrap();
    t.set_name("after");
    assert_eq!(t.name(), "after");
    #[allow(deprecated, reason = "checks the obsolete CPython spellings")]
    {
        assert_eq!(t.get_name(), "after");
        assert!(!t.is_daemon());
    }
}

#[test]
fn idents_and_native_ids_are_distinct_and_match_inside() {
    // test_various_ops: 10 threads' native ids + the caller's are all distinct, and
    // ident == get_ident() inside each thread.
    let (tx, rx) = mpsc::channel();
    let gate = Arc::new(Barrier::new(10));
    let threads: Vec<Thread> = (0..10)
        .map(|_| {
            let tx = tx.clone();
            let gate = Arc::clone(&gate);
            Thread::new(move || {
                let me = threading::current_thread();
                tx.send((
                    me.ident() == Some(threading::get_ident()),
                    me.native_id() == Some(threading::get_native_id()),
                ))
                .unwrap();
                gate.wait(); // all alive at once, so ids cannot be reused
            })
        })
        .collect();
    for t in &threads {
        t.start().unwrap();
        assert!(t.ident().unwrap() != 0);
    }
    let mut natives: HashSet<u64> = threads.iter().map(|t| t.native_id().unwrap()).collect();
    natives.insert(threading::get_native_id());
    assert_eq!(natives.len(), 11);
    let idents: HashSet<u64> = threads.iter().map(|t| t.ident().unwrap()).collect();
    assert_eq!(idents.len(), 10);
    threading::joinall(&threads).unwrap();
    for _ in 0..10 {
        assert_eq!(rx.recv().unwrap(), (true, true));
    }
}

#[test]
fn handles_compare_by_identity() {
    let t = Thread::builder().name("same").target(|| {});
    let u = Thread::builder().name("same").target(|| {});
    assert_eq!(t, t.clone());
    assert_ne!(t, u, "equal names do not make equal threads");
    let set: HashSet<Thread> = [t.clone(), t.clone(), u].into_iter().collect();
    assert_eq!(set.len(), 2);
}

#[test]
fn join_timeout_from_several_threads_at_once() {
    // Joins are repeatable, from any thread, many at once (std's JoinHandle cannot).
    let release = Arc::new(Barrier::new(2));
    let inside = Arc::clone(&release);
    let target = Thread::new(move || {
        inside.wait();
    });
    target.start().unwrap();
    // While it runs: timed joins time out, never earlier than asked.
    let began = Instant::now();
    assert!(!target.join_timeout(Duration::from_millis(50)).unwrap());
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert!(!target.join_timeout(Duration::ZERO).unwrap());
    let joiners: Vec<Thread> = (0..4)
        .map(|i| {
            let target = target.clone();
            Thread::new(move || {
                if i % 2 == 0 {
                    target.join().unwrap();
                } else {
                    while !target.join_timeout(Duration::from_millis(5)).unwrap() {}
                }
                assert!(!target.is_alive());
            })
        })
        .collect();
    for j in &joiners {
        j.start().unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    assert!(joiners.iter().all(Thread::is_alive), "joiners wait while the target runs");
    release.wait();
    threading::joinall(&joiners).unwrap();
    assert!(target.join_timeout(Duration::ZERO).unwrap());
    target.join().unwrap();
}

#[test]
fn huge_join_timeout_is_clamped_not_an_error() {
    let t = Thread::new(|| {});
    t.start().unwrap();
    assert!(t.join_timeout(Duration::MAX).unwrap());
}

#[test]
fn join_returns_after_the_threads_thread_locals_are_destroyed() {
    // CPython's join waits for the thread state to be deleted; here: thread-local
    // destructors of the thread have run when join returns.
    struct SetOnDrop(Arc<AtomicUsize>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(30));
            self.0.store(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static SLOT: std::cell::RefCell<Option<SetOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    for timed in [false, true] {
        let flag = Arc::new(AtomicUsize::new(0));
        let theirs = Arc::clone(&flag);
        let t = Thread::new(move || SLOT.with(|s| *s.borrow_mut() = Some(SetOnDrop(theirs))));
        t.start().unwrap();
        if timed {
            while !t.join_timeout(Duration::from_millis(1)).unwrap() {}
        } else {
            t.join().unwrap();
        }
        assert_eq!(flag.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn run_calls_the_target_in_the_calling_thread() {
    // CPython: calling run() directly runs the target without a new thread.
    let (tx, rx) = mpsc::channel();
    let t = Thread::new(move || tx.send(threading::get_ident()).unwrap());
    t.run();
    assert_eq!(rx.recv().unwrap(), threading::get_ident());
    assert!(!t.is_alive());
}

#[test]
fn builder_stack_size_and_global_stack_size_are_used() {
    // test_thread.ThreadRunningTests.test_stack_size / test_nt_and_posix_stack_size
    let _settings = super::global_settings();
    assert_eq!(threading::stack_size(None).unwrap(), 0);
    assert_eq!(
        threading::stack_size(Some(4096)).unwrap_err().to_string(),
        "size not valid: 4096 bytes"
    );
    assert_eq!(threading::stack_size(Some(1 << 20)).unwrap(), 0);
    assert_eq!(threading::stack_size(None).unwrap(), 1 << 20);
    let t = Thread::new(|| {
        let big = [1u8; 512 * 1024];
        std::hint::black_box(&big);
    });
    t.start().unwrap();
    t.join().unwrap();
    assert_eq!(threading::stack_size(Some(0)).unwrap(), 1 << 20);
    let t = Thread::builder().stack_size(threading::STACK_SIZE_MIN).target(|| {});
    t.start().unwrap();
    t.join().unwrap();
}

/// The OS's name of the calling thread (`/proc/self/task/TID/comm`).
fn os_name_of_current_thread() -> String {
    let tid = threading::get_native_id();
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap().trim_end().to_owned()
}

#[test]
fn threads_carry_their_names_to_the_os() {
    // CPython 3.14 (gh-59705): the OS sees the thread's name, cut to 15 bytes.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let t = Thread::builder()
        .name("Thread-3 (worker)")
        .target(move || s.lock().unwrap().push(os_name_of_current_thread()));
    t.start().unwrap();
    t.join().unwrap();
    let s = Arc::clone(&seen);
    let renamed = Thread::new(move || {
        threading::current_thread().set_name("io");
        s.lock().unwrap().push(os_name_of_current_thread());
    });
    renamed.start().unwrap();
    renamed.join().unwrap();
    // A panic in a target would only reach the excepthook: compare here.
    assert_eq!(*seen.lock().unwrap(), ["Thread-3 (worke", "io"]);
}

#[test]
#[allow(deprecated)]
fn the_old_threading_api_is_still_there() {
    // test_old_threading_api (and the module-level aliases CPython 3.11 keeps).
    let t = Thread::builder().name("old").daemon(true).target(|| {});
    assert!(t.is_daemon());
    assert_eq!(t.get_name(), "old");
    let e = threading::Event::new();
    assert!(!e.isSet());
    e.set();
    assert!(e.isSet());
    let cond = threading::Condition::new();
    cond.acquire();
    cond.notifyAll().unwrap();
    cond.release().unwrap();
    assert_eq!(threading::currentThread(), threading::current_thread());
    assert_eq!(threading::activeCount(), threading::active_count());
}
