//! One `pthread_atfork` registry: what every `fork()` of the process — `multiprocessing`'s
//! fork start method, std's `Command` when it forks, a user's `libc::fork` — holds across
//! the fork and resets in the child.
//!
//! Only the forking thread exists in a child. A lock that another thread held at the
//! moment of the fork would stay locked there forever, and the data it guards may be
//! half-written. So each library lock that a child may need is a [`ForkMutex`]: before the
//! fork the forking thread takes it (waiting for whoever holds it to finish), after the
//! fork both processes let go of it, and the child first makes the data describe itself
//! (its `in_child` function: "forget the parent's helper threads", "the forking thread is
//! now the main thread", ...). CPython does the same with `os.register_at_fork` and
//! `_at_fork_reinit`.
//!
//! Locks are taken in ascending `order`: code that holds one may take only locks of a
//! higher order, or a concurrent fork could deadlock against it. The orders in use:
//!
//! | order | lock | crate |
//! |---|---|---|
//! | 0 | lock-free per-process caches (helper-thread count, cached pid, `/proc` task fd) | both |
//! | 5 | a child's parent pidfd, opened before a fork if it was not yet | multiprocessing |
//! | 10 | the process table (children, current and parent process) | multiprocessing |
//! | 15 | the process's authkey | multiprocessing |
//! | 20 | the launcher thread's queue | multiprocessing |
//! | 30 | the fork-server connection | multiprocessing |
//! | 35 | the resource sharer (`send_handle`'s fds) | multiprocessing |
//! | 36 | the keys of known manager servers | multiprocessing |
//! | 37 | the resource tracker's socket (kept by the child) | multiprocessing |
//! | 40 | the queue feeders | multiprocessing |
//! | 50 | the pool's closure registry | multiprocessing |
//! | 60 | the registry of held `Lock`s | multiprocessing |
//! | 70 | the pool channels | multiprocessing |
//! | 71 | the spare mappings of fork pools' channels | multiprocessing |
//! | 100 | the thread registry | threading |
//! | 1000 | the exit finalizers | this crate |
//!
//! A `ForkMutex` that the forking thread itself holds (the resource tracker forks while
//! its slot is locked, say) is not taken again — that would deadlock — and is left
//! as it is in the child, where the same thread goes on holding it.
//!
//! The child handlers run after `fork()` returned in the child and before the code after
//! it: as CPython's `after_in_child` hooks, they are ordinary code (glibc keeps `malloc`
//! usable in the child), touching only what the held locks guard.

use std::cell::{RefCell, UnsafeCell};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};

use crate::sys;

/// Something that acts around every `fork()` of the process.
pub trait AtFork: Sync {
    /// Before `fork()`, in the forking thread: take what the child will need.
    fn prepare(&'static self);
    /// After `fork()`, in the parent: let go of it.
    fn parent(&'static self);
    /// After `fork()`, in the child, whose only thread is the forking one: make the state
    /// describe the child, and let go.
    fn child(&'static self);
}

/// Where a hook stands among the others: its order, then the registration sequence.
type Key = (u32, u64);

/// The registered hooks and the state of a fork in progress.
///
/// This lock is only ever held briefly — never while waiting for a hook — except across
/// the `fork()` call itself, when every hook is already held by the forking thread. So a
/// thread that holds a [`ForkMutex`] can always register another one: the design that
/// held the list's lock through the whole prepare step deadlocked when a thread holding
/// lock A registered lock B while a fork was waiting for A.
struct Registry {
    hooks: Vec<(Key, &'static dyn AtFork)>,
    next_sequence: u64,
    /// While a fork is being prepared: the key of the last hook it took (hooks at or below
    /// it are held or passed; a later registration below it must wait for the fork to
    /// end), and the forking thread.
    fork: Option<(Key, u64)>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { hooks: Vec::new(), next_sequence: 0, fork: None });

/// Held by the forking thread from `prepare` to `parent`/`child`: one fork at a time, and
/// what a registration that must wait for the fork in progress waits on.
static FORK_SERIAL: Mutex<()> = Mutex::new(());

/// How many forks this process has prepared ([`forks`]).
static FORKS: AtomicU64 = AtomicU64::new(0);

/// How many forks this process has prepared: each `fork()` that ran the `pthread_atfork`
/// handlers ([`install`]ed), counted at the end of its prepare step, when it holds every
/// [`ForkMutex`] and the `fork()` call itself follows.
///
/// So two reads that differ by exactly the forks the reader made itself tell that no
/// other thread forked in between, provided that the reader took a `ForkMutex` after its
/// first read: every fork holds it from its count to its end, so a fork counted before
/// the first read had ended by then. A forked child starts from its parent's count.
/// (`vfork` and a raw `clone` run no handlers and are not counted.)
///
/// # Examples
///
/// ```
/// pyconc_core::fork::install();
/// let before = pyconc_core::fork::forks();
/// // SAFETY: the child calls only `_exit`.
/// let pid = unsafe { libc::fork() };
/// if pid == 0 {
///     // SAFETY: `_exit` has no preconditions.
///     unsafe { libc::_exit(0) };
/// }
/// assert!(pyconc_core::fork::forks() > before);
/// // SAFETY: reaps the child just forked.
/// unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
/// ```
pub fn forks() -> u64 {
    FORKS.load(Ordering::SeqCst)
}

/// What the forking thread holds across `fork()`.
struct Forking {
    /// The hooks it prepared, in order.
    taken: Vec<&'static dyn AtFork>,
    registry: MutexGuard<'static, Registry>,
    _serial: MutexGuard<'static, ()>,
}

thread_local! {
    static FORKING: RefCell<Option<Forking>> = const { RefCell::new(None) };
    /// The list of hooks a fork took, emptied and kept for this thread's next fork: a
    /// list freed after the fork would write heap pages in both processes, each a
    /// copy-on-write fault (`malloc`'s bookkeeping and the list's own page).
    static TAKEN: RefCell<Vec<&'static dyn AtFork>> = const { RefCell::new(Vec::new()) };
}

/// Gives back the list of hooks a fork took, emptied, for the next fork (see `TAKEN`).
fn keep_for_next_fork(mut taken: Vec<&'static dyn AtFork>) {
    taken.clear();
    let _ = TAKEN.try_with(|slot| *slot.borrow_mut() = taken);
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a hook has been registered: [`Registration::ensure`] registers it once.
///
/// A flag rather than a `std::sync::Once`: a `Once` that another thread was running at the
/// moment of a fork stays "running" forever in the child.
#[derive(Debug)]
pub struct Registration(AtomicBool);

impl Registration {
    /// Not registered yet.
    pub const fn new() -> Registration {
        Registration(AtomicBool::new(false))
    }

    /// Registers `hook` at `order` (see the module docs) for every later `fork()`, unless
    /// this registration has done so already. Prepared in ascending order, released in
    /// descending order; equal orders in registration order.
    ///
    /// A call made while a fork is being prepared, for a hook that fork has already passed
    /// in the order, waits for that fork to end (its caller cannot hold a lock the fork
    /// still needs: by the ordering rule, every lock it may hold is below the hook, and so
    /// already held by the fork); one above the fork's position joins that fork.
    #[inline]
    pub fn ensure(&'static self, order: u32, hook: &'static dyn AtFork) {
        if !self.0.load(Ordering::Acquire) {
            self.register(order, hook);
        }
    }

    #[cold]
    fn register(&'static self, order: u32, hook: &'static dyn AtFork) {
        install();
        loop {
            let mut registry = registry();
            if self.0.load(Ordering::Relaxed) {
                return;
            }
            let key = (order, registry.next_sequence);
            let must_wait = registry
                .fork
                .is_some_and(|(passed, forker)| key <= passed && forker != sys::pthread_self());
            if must_wait {
                drop(registry);
                // The forking thread holds it until the fork has ended.
                drop(FORK_SERIAL.lock().unwrap_or_else(PoisonError::into_inner));
                continue;
            }
            registry.next_sequence += 1;
            let at = registry.hooks.partition_point(|(k, _)| *k <= key);
            registry.hooks.insert(at, (key, hook));
            self.0.store(true, Ordering::Release);
            return;
        }
    }
}

impl Default for Registration {
    fn default() -> Registration {
        Registration::new()
    }
}

/// Installs the `pthread_atfork` handlers, once per process ([`start`](crate::start) does
/// it before `main`; the first registration does it otherwise).
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        sys::atfork(prepare, parent, child);
    });
}

/// The `pthread_atfork` prepare handler: takes the hooks one by one in ascending order,
/// looking the next one up afresh each time (a hook registered meanwhile above the
/// position reached is taken too), then holds the registry across the fork.
extern "C" fn prepare() {
    let serial = FORK_SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let me = sys::pthread_self();
    let mut taken =
        TAKEN.try_with(|slot| std::mem::take(&mut *slot.borrow_mut())).unwrap_or_default();
    let mut passed: Option<Key> = None;
    let registry = loop {
        let mut registry = registry();
        let next = registry
            .hooks
            .iter()
            .find(|(key, _)| passed.is_none_or(|passed| *key > passed))
            .copied();
        let Some((key, hook)) = next else {
            registry.fork = Some(((u32::MAX, u64::MAX), me));
            break registry;
        };
        registry.fork = Some((key, me));
        drop(registry);
        hook.prepare();
        taken.push(hook);
        passed = Some(key);
    };
    // Counted last, holding every hook (see `forks`).
    FORKS.fetch_add(1, Ordering::SeqCst);
    let forking = Forking { taken, registry, _serial: serial };
    let _ = FORKING.try_with(|slot| *slot.borrow_mut() = Some(forking));
}

/// Ends the fork in progress (in the parent or the child): the registry is free again.
fn end_fork() -> Option<(Vec<&'static dyn AtFork>, MutexGuard<'static, ()>)> {
    let Forking { taken, mut registry, _serial } =
        FORKING.try_with(|slot| slot.borrow_mut().take()).ok().flatten()?;
    registry.fork = None;
    drop(registry);
    Some((taken, _serial))
}

/// The `pthread_atfork` parent handler.
extern "C" fn parent() {
    if let Some((taken, _serial)) = end_fork() {
        for hook in taken.iter().rev() {
            hook.parent();
        }
        keep_for_next_fork(taken);
    }
}

/// The `pthread_atfork` child handler. The hooks run with the registry free, so a child
/// handler may register another hook.
extern "C" fn child() {
    if let Some((taken, _serial)) = end_fork() {
        for hook in taken.iter().rev() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.child()));
        }
        keep_for_next_fork(taken);
    }
}

/// A mutex that every `fork()` holds across, and whose data a child resets.
///
/// Python: a lock re-initialised by `os.register_at_fork(after_in_child=...)`. Poisoning
/// is ignored (a panic while it was held leaves the data as the panicking code left it;
/// every user of these locks keeps its data valid at each step).
pub struct ForkMutex<T: 'static> {
    mutex: Mutex<T>,
    order: u32,
    in_child: fn(&mut T),
    registered: Registration,
    /// `pthread_self()` of the thread holding the lock through [`lock`](Self::lock), 0 if
    /// none: a fork by that very thread leaves the lock as it is.
    owner: AtomicU64,
    /// What the forking thread holds across `fork()`.
    held: UnsafeCell<Held<T>>,
}

enum Held<T: 'static> {
    Nothing,
    Guard(MutexGuard<'static, T>),
    /// The forking thread held the lock already.
    Skipped,
}

// SAFETY: the data is reached only through the mutex (so `T: Send` suffices, as for
// `Mutex<T>`); `held` is touched only by the forking thread between `prepare` and
// `parent`/`child`, and forks are serialized by `FORK_SERIAL`, held across them.
unsafe impl<T: Send> Sync for ForkMutex<T> {}

impl<T: Send> ForkMutex<T> {
    /// A mutex at `order` (see the module docs) whose data `in_child` resets in a child.
    pub const fn new(value: T, order: u32, in_child: fn(&mut T)) -> ForkMutex<T> {
        ForkMutex {
            mutex: Mutex::new(value),
            order,
            in_child,
            registered: Registration::new(),
            owner: AtomicU64::new(0),
            held: UnsafeCell::new(Held::Nothing),
        }
    }

    /// Registers its fork hook now, if it is not yet. [`lock`](Self::lock) does it on
    /// first use; a process that forks a child which will take this lock first calls it
    /// before the fork, so that the child does not register it itself (an insertion into
    /// the hook list: writes to pages the child shares with its parent, each a
    /// copy-on-write fault).
    #[inline]
    pub fn register(&'static self) {
        self.registered.ensure(self.order, self);
    }

    /// Locks it, waiting if another thread (or a fork in progress) holds it.
    pub fn lock(&'static self) -> ForkMutexGuard<T> {
        // Registered on first use, before it is first locked: a lock never taken guards
        // its initial value, which a child needs no reset of.
        self.register();
        let guard = self.mutex.lock().unwrap_or_else(PoisonError::into_inner);
        self.owner.store(sys::pthread_self(), Ordering::Relaxed);
        ForkMutexGuard { owner: &self.owner, guard }
    }

    /// Replaces what the forking thread holds across `fork()`, returning the old value.
    fn swap_held(&'static self, new: Held<T>) -> Held<T> {
        // SAFETY: only the forking thread calls this (from the fork hooks), and forks are
        // serialized by `FORK_SERIAL`, so no other reference to `held` exists.
        unsafe { std::mem::replace(&mut *self.held.get(), new) }
    }
}

impl<T: Send> AtFork for ForkMutex<T> {
    fn prepare(&'static self) {
        // Only this thread can have stored its own id; any other value means "not me".
        let mine = self.owner.load(Ordering::Relaxed) == sys::pthread_self();
        let held = if mine {
            Held::Skipped
        } else {
            Held::Guard(self.mutex.lock().unwrap_or_else(PoisonError::into_inner))
        };
        self.swap_held(held);
    }

    fn parent(&'static self) {
        self.swap_held(Held::Nothing);
    }

    fn child(&'static self) {
        if let Held::Guard(mut guard) = self.swap_held(Held::Nothing) {
            (self.in_child)(&mut guard);
        }
    }
}

/// A list of weak references, held across `fork()` and kept as it is in the child: the
/// objects of one kind that a process has (its pool channels, its `Lock` pages), for the
/// exit path or a forked child to visit. Dead entries are dropped as it grows, so that
/// they never outnumber the live ones by more than a few.
/// `in_child` sees the list in every forked child (it may register exit finalizers: the
/// finalizer registry, of a higher order, is reset before it runs).
pub struct WeakList<T: 'static> {
    list: ForkMutex<Vec<Weak<T>>>,
    /// The length at which [`add`](Self::add) drops the dead entries first: twice the
    /// live ones at the last pruning, at least [`PRUNE_AT_LEAST`] (changed under the lock).
    prune_at: AtomicUsize,
}

/// The least length at which a [`WeakList`] drops its dead entries.
const PRUNE_AT_LEAST: usize = 8;

impl<T: Send + Sync> WeakList<T> {
    /// An empty list, held across `fork()` at `order`.
    pub const fn new(order: u32, in_child: fn(&mut Vec<Weak<T>>)) -> WeakList<T> {
        WeakList {
            list: ForkMutex::new(Vec::new(), order, in_child),
            prune_at: AtomicUsize::new(PRUNE_AT_LEAST),
        }
    }

    /// Adds `item`. Dropping the dead entries when the list has doubled since it last did
    /// keeps each call O(1) on average.
    pub fn add(&'static self, item: &Arc<T>) {
        let mut list = self.list.lock();
        if list.len() >= self.prune_at.load(Ordering::Relaxed) {
            list.retain(|weak| weak.strong_count() > 0);
            self.prune_at.store((2 * list.len()).max(PRUNE_AT_LEAST), Ordering::Relaxed);
        }
        list.push(Arc::downgrade(item));
    }

    /// The items still alive.
    pub fn live(&'static self) -> Vec<Arc<T>> {
        self.list.lock().iter().filter_map(Weak::upgrade).collect()
    }

    /// In a forked child: visits the items still alive, emptying the list. Nothing is
    /// freed: the list's memory, its dead entries and the items stay as the parent left
    /// them (the items belong to the parent's state, which the child leaves alone), and
    /// freeing would write to pages the child shares with its parent — each page written
    /// is a copy-on-write fault.
    pub fn drain_in_child(&'static self, visit: impl FnMut(&T)) {
        drain_in_child(&mut self.list.lock(), visit);
    }

    /// Registers its fork hook now, if it is not yet (see [`ForkMutex::register`]): a
    /// child forked before the first [`add`](Self::add) then runs `in_child` too.
    pub fn register(&'static self) {
        self.list.register();
    }
}

/// [`WeakList::drain_in_child`] of a list's entries, for a list's `in_child` function,
/// which gets them with the list's lock held.
pub fn drain_in_child<T>(list: &mut Vec<Weak<T>>, mut visit: impl FnMut(&T)) {
    for item in list.iter().filter_map(Weak::upgrade) {
        visit(&item);
        std::mem::forget(item);
    }
    std::mem::forget(std::mem::take(list));
}

impl<T> fmt::Debug for WeakList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakList").field("order", &self.list.order).finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ForkMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForkMutex").field("order", &self.order).finish_non_exhaustive()
    }
}

/// The guard of a [`ForkMutex`]: unlocks when dropped.
pub struct ForkMutexGuard<T: 'static> {
    owner: &'static AtomicU64,
    guard: MutexGuard<'static, T>,
}

impl<T> Drop for ForkMutexGuard<T> {
    fn drop(&mut self) {
        // Before the unlock (the field drops after this): from then on a fork by this
        // thread must take the lock again.
        self.owner.store(0, Ordering::Relaxed);
    }
}

impl<T> Deref for ForkMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for ForkMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> fmt::Debug for ForkMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForkMutexGuard { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static COUNTER: ForkMutex<u32> = ForkMutex::new(0, 500, |n| *n += 1000);

    fn fork_and_report(read: fn() -> u32) -> u32 {
        let mut fds = [0; 2];
        // SAFETY: a pipe into a two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child writes 4 bytes and `_exit`s; what it reads was reset by the
        // fork hooks, which is what this test checks.
        match unsafe { libc::fork() } {
            0 => {
                let value = read().to_ne_bytes();
                // SAFETY: writes 4 bytes from a live buffer to the pipe, then exits.
                unsafe {
                    libc::write(fds[1], value.as_ptr().cast(), 4);
                    libc::_exit(0);
                }
            }
            pid => {
                let mut value = [0u8; 4];
                // SAFETY: reads 4 bytes into a live buffer; waits for our own child.
                unsafe {
                    libc::close(fds[1]);
                    assert_eq!(libc::read(fds[0], value.as_mut_ptr().cast(), 4), 4);
                    libc::close(fds[0]);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                u32::from_ne_bytes(value)
            }
        }
    }

    #[test]
    fn the_list_of_hooks_taken_is_kept_empty_for_the_next_fork() {
        *COUNTER.lock() = 3;
        assert_eq!(fork_and_report(|| *COUNTER.lock()), 1003);
        let (len, capacity) = TAKEN.with(|taken| (taken.borrow().len(), taken.borrow().capacity()));
        assert_eq!(len, 0, "emptied after the fork");
        assert!(capacity > 0, "kept, not freed");
        // (Other tests may register hooks meanwhile and grow it: only its keeping is
        // checked, not its address.)
        assert_eq!(fork_and_report(|| *COUNTER.lock()), 1003);
        assert!(TAKEN.with(|taken| taken.borrow().capacity()) >= capacity);
    }

    /// A fork is counted before it happens: its child starts from a count that holds its
    /// own fork, and the parent's count has grown by it (other tests fork too).
    #[test]
    fn a_fork_is_counted_before_it_happens_and_its_child_starts_from_the_count() {
        install();
        let before = forks();
        let seen = u64::from(fork_and_report(|| forks() as u32));
        assert!(seen > before, "the child's count {seen} holds its fork (before: {before})");
        assert!(forks() >= seen);
    }

    #[test]
    fn a_child_finds_the_data_reset_and_the_lock_free() {
        *COUNTER.lock() = 7;
        assert_eq!(fork_and_report(|| *COUNTER.lock()), 1007);
        assert_eq!(*COUNTER.lock(), 7, "the parent's data is untouched");
    }

    #[test]
    fn a_fork_by_the_thread_holding_the_lock_does_not_deadlock() {
        static HELD: ForkMutex<u32> = ForkMutex::new(1, 510, |n| *n += 1000);
        let guard = HELD.lock();
        // The child's only thread is this one, which holds the lock: it reads through
        // its own guard, not reset.
        let seen = fork_and_report(|| 0);
        assert_eq!(seen, 0);
        assert_eq!(*guard, 1);
    }

    /// Runs `body` on a thread and waits up to 20 s for it: a deadlock fails the test
    /// instead of hanging it.
    fn within_20_s<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(body()));
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("deadlocked")
    }

    #[test]
    fn a_thread_holding_a_lock_can_register_another_while_a_fork_waits_for_the_first() {
        static FIRST: ForkMutex<u32> = ForkMutex::new(0, 600, |_| {});
        static SECOND: ForkMutex<u32> = ForkMutex::new(0, 610, |n| *n += 1000);
        within_20_s(|| {
            let first = FIRST.lock();
            // The fork's prepare step blocks on FIRST, held here.
            let forker = std::thread::spawn(|| fork_and_report(|| *SECOND.lock()));
            std::thread::sleep(std::time::Duration::from_millis(100));
            // First use of SECOND while holding FIRST: registers it (this deadlocked when
            // the prepare step held the registry while waiting).
            *SECOND.lock() = 5;
            drop(first);
            // The fork took SECOND too (it is above FIRST): the child saw it reset.
            assert_eq!(forker.join().unwrap(), 1005);
        });
    }

    #[test]
    fn a_registration_below_a_fork_in_progress_waits_for_the_fork_to_end() {
        static BLOCKER: ForkMutex<u32> = ForkMutex::new(0, 700, |_| {});
        static BELOW: ForkMutex<u32> = ForkMutex::new(0, 690, |n| *n += 1000);
        within_20_s(|| {
            let blocker = BLOCKER.lock();
            let forker = std::thread::spawn(|| fork_and_report(|| *BELOW.lock()));
            std::thread::sleep(std::time::Duration::from_millis(100));
            // BELOW's first use, from a thread holding nothing below it, while the fork
            // waits at BLOCKER: it waits for the fork (which already passed order 690).
            let late = std::thread::spawn(|| {
                *BELOW.lock() = 5;
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(blocker);
            late.join().unwrap();
            let seen = forker.join().unwrap();
            // Either the registration came before the fork reached 690 (then the child
            // reset 5 to 1005), or it waited for the fork (the child saw the initial 0).
            assert!(seen == 0 || seen == 1005, "the child saw {seen}");
            assert_eq!(*BELOW.lock(), 5);
        });
    }

    #[test]
    fn a_weak_list_keeps_its_dead_entries_fewer_than_its_live_ones_and_a_few() {
        static LIST: WeakList<u32> = WeakList::new(800, |_| {});
        let live: Vec<Arc<u32>> = (0..10).map(Arc::new).collect();
        for item in &live {
            LIST.add(item);
        }
        for n in 0..1000 {
            // Each dropped at once: dead when the next is added.
            LIST.add(&Arc::new(n));
            let len = LIST.list.lock().len();
            assert!(len <= 2 * live.len() + PRUNE_AT_LEAST + 1, "{len} entries for 10 live");
        }
        assert_eq!(LIST.live().len(), live.len());
    }

    #[test]
    fn draining_a_weak_list_in_a_child_visits_the_live_items_and_empties_it() {
        static LIST: WeakList<u32> = WeakList::new(810, |_| {});
        let kept = [Arc::new(1), Arc::new(2)];
        for item in &kept {
            LIST.add(item);
        }
        LIST.add(&Arc::new(3)); // dead
        let mut seen = Vec::new();
        LIST.drain_in_child(|item| seen.push(*item));
        assert_eq!(seen, [1, 2]);
        assert!(LIST.live().is_empty(), "emptied");
        // Nothing was freed or released: the visited items keep the count their visit
        // took (the child's copy of the parent's state is left as it was).
        assert_eq!(Arc::strong_count(&kept[0]), 2);
    }
}
