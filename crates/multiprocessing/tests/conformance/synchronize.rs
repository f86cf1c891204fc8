//! The cross-process primitives. Source: lock_tests.py BaseLockTests (the generic bodies
//! of the threading crate's `lock_tests.rs`, run here on `multiprocessing`'s types), and
//! `_test_multiprocessing.py` `_TestLock`, `_TestSemaphore`, `_TestCondition`,
//! `_TestEvent`, `_TestBarrier` for each start method; plus the robust-lock tests.

use std::time::{Duration, Instant};

use multiprocessing::{
    Barrier, BoundedSemaphore, Condition, Error, Event, Lock, Process, RLock, Semaphore,
    StartMethod,
};

use super::barrier_tests::{BarrierApi, barrier_tests, impl_barrier_api};
use super::lock_tests::{LockApi, base_lock_tests, impl_lock_api};
use super::semaphore_event_tests::{
    BoundedApi, EventApi, SemaphoreApi, impl_semaphore_event_api, semaphore_event_tests,
};
use crate::each_start_method;
use crate::support::{self, call};

impl_lock_api!(guard, Error; Lock, RLock, Condition);

impl_barrier_api!(multiprocessing::Barrier, multiprocessing::Error);
barrier_tests!(barrier_bodies; multiprocessing::Barrier);
base_lock_tests!(base_lock, multiprocessing::Lock);
base_lock_tests!(base_rlock, multiprocessing::RLock);
base_lock_tests!(base_condition_as_rlock, multiprocessing::Condition);

// BaseSemaphoreTests, SemaphoreTests, BoundedSemaphoreTests and EventTests: the threading
// crate's bodies, on the cross-process types (threads of one process share them here).
impl_semaphore_event_api!(
    multiprocessing::Error, "semaphore or lock released too many times";
    multiprocessing::Semaphore, multiprocessing::BoundedSemaphore, multiprocessing::Event
);
semaphore_event_tests!(
    shared_semaphore_event;
    multiprocessing::Semaphore, multiprocessing::BoundedSemaphore, multiprocessing::Event
);

/// _TestLock.test_lock: release of an unlocked Lock.
#[test]
fn lock_released_too_many_times_says_so() {
    let lock = Lock::new();
    assert!(lock.try_acquire());
    assert!(!lock.try_acquire());
    lock.release().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert_eq!(err.to_string(), "semaphore or lock released too many times");
}

/// _TestLock.test_rlock.
#[test]
fn rlock_counts_levels_and_refuses_foreign_release() {
    let lock = RLock::new();
    lock.acquire();
    lock.acquire();
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    let err = lock.release().unwrap_err();
    assert!(matches!(err, Error::AssertionError(_)));
    assert_eq!(err.to_string(), "attempt to release recursive lock not owned by thread");
    lock.acquire();
    let theirs = lock.clone();
    let from_other = std::thread::spawn(move || theirs.release().unwrap_err().to_string());
    assert_eq!(from_other.join().unwrap(), "attempt to release recursive lock not owned by thread");
    lock.release().unwrap();
}

/// _TestSemaphore.test_semaphore / test_bounded_semaphore.
#[test]
fn semaphores_count_and_bounded_ones_refuse_overflow() {
    let sem = Semaphore::new(2);
    assert!(sem.try_acquire() && sem.try_acquire() && !sem.try_acquire());
    sem.release();
    assert_eq!(sem.value(), 1);
    let began = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(10)));
    assert!(!sem.acquire_timeout(Duration::from_millis(100)));
    assert!(began.elapsed() >= Duration::from_millis(95));
    let bounded = BoundedSemaphore::new(1);
    assert_eq!(
        bounded.release().unwrap_err().to_string(),
        "semaphore or lock released too many times"
    );
    bounded.acquire();
    bounded.release().unwrap();
    assert_eq!(sem.release_n(0).unwrap_err().to_string(), "n must be one or more");
}

/// _TestCondition.test_notify / wait outside the lock.
#[test]
fn condition_checks_ownership_with_cpythons_messages() {
    let cond = Condition::new();
    assert_eq!(
        cond.wait().unwrap_err().to_string(),
        "must acquire() condition before using wait()"
    );
    assert_eq!(cond.notify(1).unwrap_err().to_string(), "lock is not owned");
    cond.acquire();
    let began = Instant::now();
    assert!(!cond.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(began.elapsed() >= Duration::from_millis(95));
    cond.release().unwrap();
}

/// _TestBarrier.test_abort / test_reset (single process).
#[test]
fn barrier_abort_and_reset() {
    let barrier = Barrier::new(2);
    let theirs = barrier.clone();
    let waiter = std::thread::spawn(move || theirs.wait());
    while barrier.n_waiting() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    barrier.abort();
    assert!(matches!(waiter.join().unwrap(), Err(Error::BrokenBarrierError)));
    assert!(barrier.broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrierError)));
    barrier.reset();
    assert!(!barrier.broken());
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(50)),
        Err(Error::BrokenBarrierError)
    ));
    assert_eq!(Barrier::try_new(0).unwrap_err().to_string(), "parties must be > 0");
}

// ---- across processes ----

fn hold_then_release((lock, done): (Lock, Event)) {
    lock.acquire();
    done.set();
    std::thread::sleep(Duration::from_millis(200));
    lock.release().unwrap();
}

fn child_waits_for_event((event, out): (Event, Semaphore)) {
    if event.wait_timeout(Duration::from_secs(20)) {
        out.release();
    }
}

fn notify_after_wait((cond, waiting): (Condition, Semaphore)) {
    cond.acquire();
    waiting.release();
    let notified = cond.wait_timeout(Duration::from_secs(20)).unwrap();
    cond.release().unwrap();
    std::process::exit(if notified { 0 } else { 3 });
}

fn barrier_party(barrier: Barrier) {
    let index = barrier.wait_timeout(Duration::from_secs(20)).unwrap();
    std::process::exit(10 + index as i32);
}

fn hold_forever((lock, rlock, held): (Lock, RLock, Event)) {
    lock.acquire();
    rlock.acquire();
    held.set();
    std::thread::sleep(Duration::from_secs(60));
}

each_start_method! {
    lock_is_shared_with_a_child => lock_is_shared_with_a_child;
    event_set_in_the_parent_wakes_the_child => event_set_in_the_parent_wakes_the_child;
    condition_notify_wakes_a_child => condition_notify_wakes_a_child;
    barrier_releases_parties_in_several_processes => barrier_releases_parties_in_several_processes;
    a_lock_whose_holder_is_killed_is_taken_over => a_lock_whose_holder_is_killed_is_taken_over;
    a_lock_left_by_a_child_that_exited_normally_stays_held => a_lock_left_by_a_child_that_exited_normally_stays_held;
    a_holder_whose_liveness_cannot_be_read_counts_as_alive => a_holder_whose_liveness_cannot_be_read_counts_as_alive;
}

/// _TestLock across processes: the parent waits while the child holds the lock.
fn lock_is_shared_with_a_child(method: StartMethod) {
    let lock = Lock::new();
    let held = Event::new();
    let p = call(method, hold_then_release, (lock.clone(), held.clone()));
    p.start().unwrap();
    held.wait();
    assert!(lock.locked());
    assert!(!lock.try_acquire());
    let began = Instant::now();
    lock.acquire();
    assert!(began.elapsed() >= Duration::from_millis(50));
    assert!(!lock.owner_died());
    lock.release().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

/// _TestEvent.test_event.
fn event_set_in_the_parent_wakes_the_child(method: StartMethod) {
    let event = Event::new();
    let woke = Semaphore::new(0);
    let p = call(method, child_waits_for_event, (event.clone(), woke.clone()));
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!event.is_set());
    event.set();
    assert!(woke.acquire_timeout(Duration::from_secs(20)));
    p.join().unwrap();
}

/// _TestCondition.test_notify.
fn condition_notify_wakes_a_child(method: StartMethod) {
    let cond = Condition::new();
    let waiting = Semaphore::new(0);
    let p = call(method, notify_after_wait, (cond.clone(), waiting.clone()));
    p.start().unwrap();
    waiting.acquire();
    cond.acquire(); // the child is in wait() once it released the lock
    cond.notify(1).unwrap();
    cond.release().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0), "the child was notified");
}

/// _TestBarrier.test_barrier: three processes and the parent.
fn barrier_releases_parties_in_several_processes(method: StartMethod) {
    let barrier = Barrier::new(4);
    let procs: Vec<Process> =
        (0..3).map(|_| call(method, barrier_party, barrier.clone())).collect();
    for p in &procs {
        p.start().unwrap();
    }
    let mine = barrier.wait_timeout(Duration::from_secs(20)).unwrap();
    let mut indices: Vec<i32> = vec![mine as i32];
    for p in &procs {
        p.join().unwrap();
        indices.push(p.exitcode().unwrap() - 10);
    }
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2, 3]);
}

/// Beyond CPython: robust locks. The holder is SIGKILLed; the parent takes the Lock and
/// the RLock over, and learns that their owner died.
fn a_lock_whose_holder_is_killed_is_taken_over(method: StartMethod) {
    let lock = Lock::new();
    let rlock = RLock::new();
    let held = Event::new();
    let p = call(method, hold_forever, (lock.clone(), rlock.clone(), held.clone()));
    p.start().unwrap();
    held.wait();
    p.kill().unwrap();
    p.join().unwrap();
    let began = Instant::now();
    assert!(lock.acquire_timeout(Duration::from_secs(10)), "the Lock stayed wedged");
    assert!(lock.owner_died());
    lock.release().unwrap();
    assert!(!lock.owner_died());
    assert!(rlock.acquire_timeout(Duration::from_secs(10)), "the RLock stayed wedged");
    assert!(rlock.owner_died());
    rlock.release().unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
}

fn take_and_return(lock: Lock) {
    lock.acquire();
}

fn take_and_panic(lock: Lock) {
    lock.acquire();
    panic!("the target panics holding the lock");
}

fn take_and_exit(lock: Lock) {
    lock.acquire();
    std::process::exit(3);
}

/// Issue 14, item 9 (CPython's `Lock` is a semaphore, not owned): a child that took the
/// Lock and exited through its exit path — returning, panicking or calling `exit` —
/// leaves it held; no waiter takes it over as if it had crashed, and another process
/// may release it. (Before the fix, the parent's `acquire_timeout` took it over after
/// 0.1 s.)
fn a_lock_left_by_a_child_that_exited_normally_stays_held(method: StartMethod) {
    for (target, code) in
        [(take_and_return as fn(Lock), 0), (take_and_panic, 1), (take_and_exit, 3)]
    {
        let lock = Lock::new();
        let p = call(method, target, lock.clone());
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(code));
        assert!(lock.locked(), "the child's exit released the Lock (exit code {code})");
        assert!(
            !lock.acquire_timeout(Duration::from_millis(400)),
            "the Lock was taken over (exit code {code})"
        );
        assert!(!lock.owner_died());
        lock.release().unwrap();
        assert!(lock.try_acquire());
        assert!(!lock.owner_died());
        lock.release().unwrap();
    }
}

fn wait_without_fds((lock, held): (Lock, Event)) {
    assert!(held.wait_timeout(Duration::from_secs(20)));
    // Use up every fd this process may open: `/proc/PID/stat` cannot be read now.
    let mut fds = Vec::new();
    // SAFETY: dup of fd 2 returns a new fd or -1; the fds are never used.
    while let fd @ 0.. = unsafe { libc::dup(2) } {
        fds.push(fd);
    }
    assert!(std::fs::File::open("/proc/self/stat").is_err());
    let taken = lock.acquire_timeout(Duration::from_millis(500));
    std::process::exit(if taken { 5 } else { 0 });
}

fn hold_until((lock, held, done): (Lock, Event, Event)) {
    lock.acquire();
    held.set();
    done.wait_timeout(Duration::from_secs(60));
    lock.release().unwrap();
}

/// Issue 14, item 7: a waiter that cannot read the holder's `/proc` entry (no fds left)
/// does not decide that the holder died: it waits. (Before the fix, the unreadable
/// `/proc/PID/stat` counted as a dead holder, and two processes held the Lock.)
fn a_holder_whose_liveness_cannot_be_read_counts_as_alive(method: StartMethod) {
    let (lock, held, done) = (Lock::new(), Event::new(), Event::new());
    let holder = call(method, hold_until, (lock.clone(), held.clone(), done.clone()));
    holder.start().unwrap();
    let waiter = call(method, wait_without_fds, (lock.clone(), held.clone()));
    waiter.start().unwrap();
    waiter.join().unwrap();
    done.set();
    holder.join().unwrap();
    assert_eq!(waiter.exitcode(), Some(0), "the waiter took the Lock of a live holder");
    assert_eq!(holder.exitcode(), Some(0));
    assert!(!lock.locked());
}

/// Issue 14, item 8: pid and tid reuse. In a pid namespace of its own (`unshare -pf`,
/// root only; skipped elsewhere), the test steers the kernel's next pid
/// (`ns_last_pid`) so that a new process gets the pid of a killed holder. Its Lock is
/// still taken over (the new process started at another time), and the new process's
/// thread, whose tid is the dead RLock holder's, does not "already own" the RLock.
/// (Before the fix, the Lock's waiter wedged while the stranger ran, and the stranger's
/// `RLock` recursion count was 2.)
#[test]
fn a_reused_pid_or_tid_is_not_mistaken_for_the_holder() {
    const INSIDE: &str = "PYCONC_TEST_IN_PID_NAMESPACE";
    if std::env::var_os(INSIDE).is_some() {
        return pid_reuse_inside_namespace();
    }
    let _serial = support::serial();
    let name = "synchronize::a_reused_pid_or_tid_is_not_mistaken_for_the_holder";
    let output = std::process::Command::new("unshare")
        .args(["-pf", "--mount-proc"])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return eprintln!("skipped: cannot run unshare ({e})"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("unshare failed") || stderr.contains("Operation not permitted") {
        return eprintln!("skipped: no pid namespace here (needs root): {stderr}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "in the pid namespace:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the test did not run inside:\n{stdout}");
}

fn pid_reuse_inside_namespace() {
    let (lock, rlock, held) = (Lock::new(), RLock::new(), Event::new());
    let first = {
        let (lock, rlock, held) = (lock.clone(), rlock.clone(), held.clone());
        Process::new(move || hold_forever((lock, rlock, held)))
    };
    first.start().unwrap();
    assert!(held.wait_timeout(Duration::from_secs(20)));
    let pid = first.pid().unwrap();
    first.kill().unwrap();
    first.join().unwrap();
    // A process is told apart from an earlier one of the same pid by its start time,
    // counted in clock ticks (10 ms): the kernel cycles through every other pid before it
    // hands one out again, but here the test steers it, so it first lets a tick pass.
    std::thread::sleep(Duration::from_millis(30));
    // The next process gets `pid` again.
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
    let (checked, done) = (Event::new(), Event::new());
    let stranger = {
        let (rlock, checked, done) = (rlock.clone(), checked.clone(), done.clone());
        Process::new(move || {
            let code = if rlock.is_owned() || rlock.recursion_count() != 0 {
                10 // the stranger "already owns" the dead thread's RLock
            } else if !rlock.acquire_timeout(Duration::from_secs(10)) {
                11
            } else if !rlock.owner_died() || rlock.recursion_count() != 1 {
                12
            } else {
                rlock.release().unwrap();
                0
            };
            checked.set();
            done.wait_timeout(Duration::from_secs(60));
            std::process::exit(code);
        })
    };
    stranger.start().unwrap();
    assert_eq!(stranger.pid(), Some(pid), "the kernel did not hand out the pid again");
    assert!(checked.wait_timeout(Duration::from_secs(20)));
    // The stranger runs with the dead holder's pid: the Lock is still taken over.
    let taken = lock.acquire_timeout(Duration::from_secs(10));
    done.set();
    stranger.join().unwrap();
    assert!(taken, "the Lock stayed wedged: its dead holder's pid runs another process");
    assert!(lock.owner_died());
    lock.release().unwrap();
    assert_eq!(
        stranger.exitcode(),
        Some(0),
        "10: owned by a stranger; 11: wedged; 12: no owner_died"
    );
}

/// A primitive serialized outside a process start is refused with CPython's message.
#[test]
fn primitives_cannot_be_serialized_outside_a_process_start() {
    let _serial = support::serial();
    let (a, _b) = multiprocessing::pipe(true).unwrap();
    for (err, name) in [
        (a.send(&Lock::new()).unwrap_err(), "Lock"),
        (a.send(&Semaphore::new(1)).unwrap_err(), "Semaphore"),
        (a.send(&Event::new()).unwrap_err(), "Event"),
    ] {
        assert_eq!(
            err.to_string(),
            format!("{name} objects should only be shared between processes through inheritance")
        );
    }
}
