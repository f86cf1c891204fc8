//! The lock state machine of both crates: `threading::Lock` (and through it `RLock`,
//! `Condition`, `Barrier`), `multiprocessing::Lock`/`RLock` and the robust locks of the
//! pipe rings, written once, generic over the word it sleeps on ([`Futex`]) and over its
//! [`Owner`]: who may hold it and what is known about the holder.
//!
//! # State word
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0–29 | holder | 0: unlocked; otherwise the holder's id ([`Owner::id`]: 1 for an anonymous lock, a pid or a thread id for a robust one) |
//! | 30 | [`HANDOFF`] | `release` gave the (still held) lock to the next sleeper: only a woken waiter may take it |
//! | 31 | [`CONTENDED`] | a waiter may be sleeping on the word: `release` must wake one |
//!
//! An uncontended acquire and release are one compare-and-swap (or swap) each, no system
//! call. Waiters sleep on the futex word; a waiter that wakes up acquires with `CONTENDED`
//! set, so that the sleepers after it are woken in turn (Drepper's "futexes are tricky"
//! mutex). A short read-only spin precedes sleeping, as in std's futex mutex.
//!
//! # Fairness (owners with [`Owner::FAIR`])
//!
//! A released lock is normally up for grabs: a running thread may take it before the woken
//! sleeper gets the CPU (barging), which is fastest, but a thread that releases and
//! re-acquires in a loop could starve a sleeper. So, as parking_lot does, once at least
//! [`FAIR_INTERVAL`] has passed since the lock last did so, `release` hands the lock to a
//! sleeper instead ([`HANDOFF`]). A waiter then waits at most about that long plus one
//! critical section. The check costs a thread-local count per release and a clock read on
//! every 32nd.
//!
//! # Robustness (owners with a [`LIVENESS_CHECK`](Owner::LIVENESS_CHECK))
//!
//! A sleeper wakes at that interval and asks the owner whether the holder still runs
//! ([`Owner::holder_gone`]); if it is definitely gone, the sleeper takes the lock over
//! ([`Acquired::FromDeadOwner`]).

use std::time::{Duration, Instant};

use super::futex::Futex;
use super::primitive::{AtomicU32, AtomicU64, Ordering};

/// Bit 31: a waiter may sleep on the word.
pub const CONTENDED: u32 = 1 << 31;
/// Bit 30: the lock was handed to a sleeper, which has not taken it yet.
pub const HANDOFF: u32 = 1 << 30;
/// The bits of the holder's id.
pub const HOLDER: u32 = HANDOFF - 1;

#[cfg(not(loom))]
const SPINS: u32 = 100;
#[cfg(loom)]
const SPINS: u32 = 0;

/// How long a contended fair lock may favour barging threads before `release` hands it to
/// a sleeping waiter.
pub const FAIR_INTERVAL: Duration = Duration::from_millis(1);

/// How an acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Taken.
    Yes,
    /// Taken over from a holder that is gone (robust owners only).
    FromDeadOwner,
    /// The deadline passed first.
    TimedOut,
}

impl Acquired {
    /// Whether the lock was taken.
    #[inline]
    pub fn taken(self) -> bool {
        self != Acquired::TimedOut
    }
}

/// Who holds a [`RawLock`], and what the lock records about the holder.
///
/// The value stored in the lock (`self`) is that record: nothing for a plain lock, the
/// fairness clock for a fair one, the holder's start-time slot for a robust one. The
/// caller's identity is a [`Caller`](Owner::Caller) passed to each acquire.
pub trait Owner {
    /// Who is acquiring: `()` when any caller is as good as any other.
    type Caller: Copy;
    /// Whether `release` hands the lock to a sleeper now and then (see the module docs).
    const FAIR: bool = false;
    /// How often a sleeper asks whether the holder still runs; `None`: never.
    const LIVENESS_CHECK: Option<Duration> = None;

    /// The id the word holds while `caller` holds the lock: nonzero, at most [`HOLDER`].
    fn id(caller: Self::Caller) -> u32;

    /// Right after `caller` took the word.
    #[inline]
    fn acquired(&self, caller: Self::Caller) {
        let _ = caller;
    }

    /// Right before the word is let go.
    #[inline]
    fn releasing(&self) {}

    /// Whether the holder whose id is `holder` is definitely gone (a check that cannot
    /// tell says no). Asked at the [`LIVENESS_CHECK`](Owner::LIVENESS_CHECK) interval.
    fn holder_gone(&self, holder: u32) -> bool {
        let _ = holder;
        false
    }

    /// Whether this release should hand the lock to a sleeper ([`FAIR`](Owner::FAIR)
    /// owners; asked on a contended release only).
    fn handoff_due(&self) -> bool {
        false
    }

    /// Whether `caller` holds the lock whose state word is `word` (for reentrant locks:
    /// only the holder itself can get "yes", so no ordering is needed).
    #[inline]
    fn holds(&self, caller: Self::Caller, word: &AtomicU32) -> bool {
        word.load(Ordering::Relaxed) & HOLDER == Self::id(caller)
    }
}

/// An owner record kept beside the lock (`RawLock<&WaitWord, &Owned>`).
impl<O: Owner> Owner for &O {
    type Caller = O::Caller;
    const FAIR: bool = O::FAIR;
    const LIVENESS_CHECK: Option<Duration> = O::LIVENESS_CHECK;

    #[inline]
    fn id(caller: O::Caller) -> u32 {
        O::id(caller)
    }
    #[inline]
    fn acquired(&self, caller: O::Caller) {
        (**self).acquired(caller);
    }
    #[inline]
    fn releasing(&self) {
        (**self).releasing();
    }
    fn holder_gone(&self, holder: u32) -> bool {
        (**self).holder_gone(holder)
    }
    fn handoff_due(&self) -> bool {
        (**self).handoff_due()
    }
    #[inline]
    fn holds(&self, caller: O::Caller, word: &AtomicU32) -> bool {
        (**self).holds(caller, word)
    }
}

/// The owner of a lock that anyone may release and nobody is recorded as holding:
/// `multiprocessing`'s internal use aside, not fair.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

impl Owner for Anonymous {
    type Caller = ();

    #[inline]
    fn id((): ()) -> u32 {
        1
    }
}

/// An anonymous owner that keeps the lock fair (`threading.Lock`): it records when the
/// lock last handed itself to a sleeper.
#[derive(Debug)]
pub struct Fair {
    /// When the lock last handed itself over, in ns since [`epoch`].
    #[cfg_attr(loom, allow(dead_code, reason = "the loom model hands off every time"))]
    last_handoff: AtomicU64,
}

impl Fair {
    /// A lock that has never handed itself over.
    #[cfg(not(loom))]
    pub const fn new() -> Fair {
        Fair { last_handoff: AtomicU64::new(0) }
    }

    /// A lock that has never handed itself over.
    #[cfg(loom)]
    pub fn new() -> Fair {
        Fair { last_handoff: AtomicU64::new(0) }
    }
}

impl Default for Fair {
    fn default() -> Fair {
        Fair::new()
    }
}

#[cfg(not(loom))]
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Owner for Fair {
    type Caller = ();
    const FAIR: bool = true;

    #[inline]
    fn id((): ()) -> u32 {
        1
    }

    /// Whether at least [`FAIR_INTERVAL`] passed since this lock last handed itself over
    /// (and if so, records now). Always under loom: the hand-off is the intricate path.
    fn handoff_due(&self) -> bool {
        #[cfg(loom)]
        {
            true
        }
        #[cfg(not(loom))]
        {
            let now = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
            let last = self.last_handoff.load(Ordering::Relaxed);
            let interval = FAIR_INTERVAL.as_nanos() as u64;
            now.saturating_sub(last) >= interval
                && self
                    .last_handoff
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
        }
    }
}

/// The fair owner of a reentrant lock held by a thread of this process
/// (`threading.RLock`): the holder's ident (`pthread_self()`, CPython's `get_ident()`) is
/// kept beside the word, which holds the anonymous id 1. Unlike a kernel thread id, an
/// ident survives `fork()` in the forking thread, so a lock it held stays its own in the
/// child, as in CPython.
#[derive(Debug, Default)]
pub struct Owned {
    ident: AtomicU64,
    fair: Fair,
}

/// The caller of an [`Owned`] lock: the calling thread, whose ident is read only where it
/// is compared or stored (after the owner record is loaded, so that the two overlap).
#[derive(Debug, Clone, Copy)]
pub struct CurrentThread;

impl Owned {
    /// Held by nobody.
    #[cfg(not(loom))]
    pub const fn new() -> Owned {
        Owned { ident: AtomicU64::new(0), fair: Fair::new() }
    }

    /// Held by nobody.
    #[cfg(loom)]
    pub fn new() -> Owned {
        Owned { ident: AtomicU64::new(0), fair: Fair::new() }
    }

    /// The holder's ident, 0 when none.
    pub fn ident(&self) -> u64 {
        self.ident.load(Ordering::Relaxed)
    }
}

impl Owner for Owned {
    type Caller = CurrentThread;
    const FAIR: bool = true;

    #[inline]
    fn id(_: CurrentThread) -> u32 {
        1
    }

    #[inline]
    fn acquired(&self, _: CurrentThread) {
        self.ident.store(crate::sys::pthread_self(), Ordering::Relaxed);
    }

    #[inline]
    fn releasing(&self) {
        self.ident.store(0, Ordering::Relaxed);
    }

    fn handoff_due(&self) -> bool {
        self.fair.handoff_due()
    }

    /// Only the holder itself can find its own ident there (the word is not read; a free
    /// lock is answered without asking for the caller's ident).
    #[inline]
    fn holds(&self, _: CurrentThread, _word: &AtomicU32) -> bool {
        let holder = self.ident.load(Ordering::Relaxed);
        holder != 0 && holder == crate::sys::pthread_self()
    }
}

/// Whether this release should look at fairness at all: on every 32nd release of the
/// calling thread (a thread-local count: no shared cache line is written for it, and the
/// clock is read only then). Always under loom, whose model has no clock.
#[inline]
fn fairness_check_due() -> bool {
    #[cfg(loom)]
    {
        true
    }
    #[cfg(not(loom))]
    {
        thread_local! {
            static RELEASES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        RELEASES
            .try_with(|count| {
                let n = count.get().wrapping_add(1);
                count.set(n);
                n % 32 == 0
            })
            .unwrap_or(false)
    }
}

/// A lock word `F` with its owner record `O`: the state machine of the module docs.
///
/// `multiprocessing` builds one on the fly over words in shared memory
/// (`RawLock<&SharedWord, _>`); `threading::Lock` stores one.
#[derive(Debug)]
pub struct RawLock<F, O> {
    word: F,
    owner: O,
}

impl<F: Futex, O: Owner> RawLock<F, O> {
    /// The lock on `word` (0 when unlocked) with the owner record `owner`.
    #[inline]
    pub const fn new(word: F, owner: O) -> RawLock<F, O> {
        RawLock { word, owner }
    }

    /// The owner record.
    #[inline]
    pub fn owner(&self) -> &O {
        &self.owner
    }

    /// Whether `caller` holds the lock (see [`Owner::holds`]).
    #[inline]
    pub fn held_by(&self, caller: O::Caller) -> bool {
        self.owner.holds(caller, self.word.atomic())
    }

    /// Takes the lock for `caller` if it is free, without waiting.
    #[inline]
    pub fn try_acquire(&self, caller: O::Caller) -> bool {
        let word = self.word.atomic();
        let id = O::id(caller);
        let mut state = 0;
        loop {
            match word.compare_exchange_weak(
                state,
                state | id,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.owner.acquired(caller);
                    return true;
                }
                Err(seen) if seen & HOLDER == 0 => state = seen,
                Err(_) => return false,
            }
        }
    }

    /// Takes the lock for `caller`, waiting until `deadline` (`None`: forever); takes it
    /// over from a holder that is gone (robust owners). A deadline already past makes it
    /// a try: no spinning, no sleeping.
    #[inline]
    pub fn acquire(&self, caller: O::Caller, deadline: Option<Instant>) -> Acquired {
        if self.try_acquire(caller) {
            return Acquired::Yes;
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Acquired::TimedOut;
        }
        self.acquire_slow(caller, deadline)
    }

    #[cold]
    fn acquire_slow(&self, caller: O::Caller, deadline: Option<Instant>) -> Acquired {
        let word = self.word.atomic();
        let id = O::id(caller);
        let mut state = self.spin();
        if state & HOLDER == 0
            && word
                .compare_exchange(state, state | id, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            self.owner.acquired(caller);
            return Acquired::Yes;
        }
        let mut check_at = O::LIVENESS_CHECK.map(|every| Instant::now() + every);
        loop {
            state = word.load(Ordering::Relaxed);
            if state & HOLDER == 0 {
                // Free: take it, keeping CONTENDED so that later sleepers get woken.
                if word
                    .compare_exchange(
                        state,
                        state | id | CONTENDED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    self.owner.acquired(caller);
                    return Acquired::Yes;
                }
                continue;
            }
            if state & CONTENDED == 0
                && word
                    .compare_exchange(
                        state,
                        state | CONTENDED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            let wake_by = match (deadline, check_at) {
                (Some(d), Some(c)) => Some(d.min(c)),
                (d, c) => d.or(c),
            };
            self.word.wait(state | CONTENDED, wake_by);
            // Whoever wakes first takes a handed-off lock (even one that just timed out:
            // acquiring at the last moment is still acquiring).
            if O::FAIR && self.take_handoff(id) {
                self.owner.acquired(caller);
                return Acquired::Yes;
            }
            if wake_by.is_none() {
                continue;
            }
            let now = Instant::now();
            if let (Some(at), Some(every)) = (check_at, O::LIVENESS_CHECK)
                && now >= at
            {
                if self.take_over_if_gone(id) {
                    self.owner.acquired(caller);
                    return Acquired::FromDeadOwner;
                }
                check_at = Some(now + every);
            }
            if deadline.is_some_and(|d| now >= d) {
                // This waiter may have consumed the wake-up meant to pass the free lock on
                // to the next sleeper: pass it on.
                if word.load(Ordering::Relaxed) & HOLDER == 0 {
                    self.word.wake(1);
                }
                return Acquired::TimedOut;
            }
        }
    }

    /// Reads the word until the lock is free, someone sleeps, or the spin budget is spent.
    fn spin(&self) -> u32 {
        let word = self.word.atomic();
        let mut budget = SPINS;
        loop {
            let state = word.load(Ordering::Relaxed);
            if state & HOLDER == 0 || state & CONTENDED != 0 || budget == 0 {
                return state;
            }
            budget -= 1;
            std::hint::spin_loop();
        }
    }

    /// Takes a lock handed to the sleepers, as holder `id`.
    fn take_handoff(&self, id: u32) -> bool {
        let word = self.word.atomic();
        let mut state = word.load(Ordering::Relaxed);
        while state & HANDOFF != 0 {
            let taken = (state & !(HANDOFF | HOLDER)) | id;
            match word.compare_exchange_weak(state, taken, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => state = seen,
            }
        }
        false
    }

    /// If the holder is definitely gone, takes the word as `id`.
    fn take_over_if_gone(&self, id: u32) -> bool {
        let word = self.word.atomic();
        let seen = word.load(Ordering::Acquire);
        let holder = seen & HOLDER;
        holder != 0
            && self.owner.holder_gone(holder)
            && word
                .compare_exchange(
                    seen,
                    (seen & !(HOLDER | HANDOFF)) | id | CONTENDED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Releases the lock, whoever holds it; `false` if it was not held.
    #[inline]
    pub fn release(&self) -> bool {
        self.owner.releasing();
        let word = self.word.atomic();
        if !O::FAIR || !fairness_check_due() {
            // The common path, one atomic swap (as std's mutex): an unlocked word has no
            // holder, so swapping 0 into it changes nothing that matters and reports it.
            let old = word.swap(0, Ordering::Release);
            if old & (CONTENDED | HANDOFF) != 0 {
                // (A pending hand-off is cancelled too: a release now unlocks the lock,
                // and the woken sleeper competes for it as usual.)
                self.word.wake(1);
            }
            return old & HOLDER != 0;
        }
        let mut state = word.load(Ordering::Relaxed);
        loop {
            if state & HOLDER == 0 {
                return false;
            }
            if state & (CONTENDED | HANDOFF) != 0 {
                self.release_contended(state);
                return true;
            }
            match word.compare_exchange_weak(state, 0, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => state = seen,
            }
        }
    }

    fn release_contended(&self, state: u32) {
        let word = self.word.atomic();
        if state & HANDOFF != 0 {
            // Handed to a sleeper that has not taken it yet; a release now unlocks it, and
            // the woken sleeper competes for it as usual.
            word.fetch_and(!(HOLDER | HANDOFF), Ordering::Release);
            self.word.wake(1);
            return;
        }
        if self.owner.handoff_due() {
            // Hand the lock over: it stays held, and only a woken waiter may take it.
            word.fetch_or(HANDOFF, Ordering::Release);
            if self.word.wake(1) > 0 {
                return;
            }
            // Nobody was asleep to take it; a waiter about to sleep sees the changed word
            // and takes it, else take the offer back.
            let offered = (state & HOLDER) | CONTENDED | HANDOFF;
            if word.compare_exchange(offered, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
                self.word.wake(1);
            }
            return;
        }
        word.swap(0, Ordering::Release);
        self.word.wake(1);
    }

    /// The holder's id, if the lock is held.
    #[inline]
    pub fn holder(&self) -> Option<u32> {
        let id = self.word.load() & HOLDER;
        (id != 0).then_some(id)
    }

    /// Whether the lock is held.
    #[inline]
    pub fn locked(&self) -> bool {
        self.holder().is_some()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::WaitWord;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32};

    /// An owner whose holders are ids and whose "gone" holders are listed.
    struct Robust {
        gone: AtomicU32,
    }

    impl Owner for Robust {
        type Caller = u32;
        const LIVENESS_CHECK: Option<Duration> = Some(Duration::from_millis(20));
        fn id(caller: u32) -> u32 {
            caller
        }
        fn holder_gone(&self, holder: u32) -> bool {
            self.gone.load(Ordering::Relaxed) == holder
        }
    }

    #[test]
    fn the_word_holds_the_holders_id() {
        let lock = RawLock::new(WaitWord::new(0), Robust { gone: AtomicU32::new(0) });
        assert!(lock.try_acquire(42));
        assert_eq!(lock.holder(), Some(42));
        assert!(!lock.try_acquire(7));
        assert!(lock.release());
        assert!(!lock.release(), "a second release finds it unlocked");
        assert_eq!(lock.holder(), None);
    }

    #[test]
    fn a_waiter_takes_over_from_a_gone_holder_and_says_so() {
        let lock = Arc::new(RawLock::new(WaitWord::new(0), Robust { gone: AtomicU32::new(0) }));
        assert!(lock.try_acquire(42));
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || lock.acquire(7, None))
        };
        std::thread::sleep(Duration::from_millis(50));
        lock.owner().gone.store(42, Ordering::Relaxed);
        assert_eq!(waiter.join().unwrap(), Acquired::FromDeadOwner);
        assert_eq!(lock.holder(), Some(7));
    }

    #[test]
    fn a_live_holder_is_never_taken_over() {
        let lock = RawLock::new(WaitWord::new(0), Robust { gone: AtomicU32::new(0) });
        assert!(lock.try_acquire(42));
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(lock.acquire(7, Some(deadline)), Acquired::TimedOut);
        assert_eq!(lock.holder(), Some(42));
    }

    #[test]
    fn a_fair_lock_hands_itself_to_a_sleeper_under_a_barging_loop() {
        let lock = Arc::new(RawLock::new(WaitWord::new(0), Fair::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let barger = {
            let (lock, stop) = (Arc::clone(&lock), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    lock.acquire((), None);
                    lock.release();
                }
            })
        };
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_secs(10);
            assert_eq!(lock.acquire((), Some(deadline)), Acquired::Yes);
            assert!(lock.release());
        }
        stop.store(true, Ordering::Relaxed);
        barger.join().unwrap();
    }
}
