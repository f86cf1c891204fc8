//! A thread pool's submission: its items, each handed out once in chunks, and where its
//! results go — for `map`, straight into their places in the returned `Vec`.
//!
//! Written by hand, with `unsafe`: the chunks of a submission are claimed with one atomic
//! add (no lock and no allocation per chunk, so `chunksize` 1 stays cheap), and a `map`'s
//! workers write each result once into the final `Vec`'s buffer, so there is no copy at
//! the end — rayon's `collect` does the same inside its own scheduler, and no crate offers
//! it for a FIFO of independent submissions as CPython's pool has.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::result::{ImapSink, Slot, lock};
use crate::Error;

/// The items of one submission, handed out in chunks, each chunk to one worker.
pub(crate) struct Items<T> {
    /// The buffer of the `Vec<T>` the items came in: `len` items, room for `capacity`.
    buffer: NonNull<T>,
    len: usize,
    capacity: usize,
    /// Whether a [`Gather`] writes the results into this buffer and owns it.
    lent: bool,
    chunksize: usize,
    chunks: usize,
    /// The next chunk to hand out (may run past `chunks`).
    next: AtomicUsize,
}

// SAFETY: `Items` owns its items (a `Vec<T>`'s), which may move to another thread when
// `T: Send`.
unsafe impl<T: Send> Send for Items<T> {}
// SAFETY: `&Items` only gives out an item through a `Claim`, and each chunk is claimed
// once (one `fetch_add`/`swap` of `next` returns each chunk number at most once), so no
// two threads touch one place; an item moves to the claiming thread, hence `T: Send`.
unsafe impl<T: Send> Sync for Items<T> {}

impl<T> Items<T> {
    /// `items` in chunks of `chunksize` (at least 1).
    pub(crate) fn new(items: Vec<T>, chunksize: usize) -> Items<T> {
        let chunksize = chunksize.max(1);
        let chunks = items.len().div_ceil(chunksize);
        let mut items = ManuallyDrop::new(items);
        Items {
            // A `Vec`'s pointer is never null (dangling, aligned when it has no room).
            buffer: NonNull::new(items.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            len: items.len(),
            capacity: items.capacity(),
            lent: false,
            chunksize,
            chunks,
            next: AtomicUsize::new(0),
        }
    }

    /// How many items there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether every chunk was handed out.
    pub(crate) fn exhausted(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.chunks
    }

    /// Hands out the next chunk, if one is left.
    pub(crate) fn claim(&self) -> Option<Claim<'_, T>> {
        // Checked first so that workers polling an exhausted batch do not move `next`.
        if self.exhausted() {
            return None;
        }
        let chunk = self.next.fetch_add(1, Ordering::Relaxed);
        (chunk < self.chunks).then(|| self.claim_from(chunk * self.chunksize, self.chunksize))
    }

    /// Hands out every chunk no one has taken, as one claim (to cancel them).
    pub(crate) fn claim_rest(&self) -> Option<Claim<'_, T>> {
        let chunk = self.next.swap(self.chunks, Ordering::Relaxed);
        (chunk < self.chunks).then(|| self.claim_from(chunk * self.chunksize, self.len()))
    }

    fn claim_from(&self, start: usize, count: usize) -> Claim<'_, T> {
        let end = start.saturating_add(count).min(self.len());
        Claim { items: self.buffer, range: start..end, last: None, _items: PhantomData }
    }
}

impl<T> Drop for Items<T> {
    fn drop(&mut self) {
        // The items of chunks never handed out; a claim takes (or drops) all of its own.
        let first = self.next.load(Ordering::Relaxed).min(self.chunks) * self.chunksize;
        let first = first.min(self.len);
        // SAFETY: no chunk at or after `next` was handed out, so the items from `first`
        // on were never read; `&mut self` means no claim is alive. Their places are
        // still items even when the buffer is lent: a `Gather` writes only places of
        // claimed items.
        unsafe {
            let rest = std::ptr::slice_from_raw_parts_mut(
                self.buffer.as_ptr().add(first),
                self.len - first,
            );
            rest.drop_in_place();
        }
        if !self.lent {
            // SAFETY: the buffer of a `Vec<T>` of this capacity, whose items were all
            // moved out or dropped; freed once, here.
            drop(unsafe { Vec::from_raw_parts(self.buffer.as_ptr(), 0, self.capacity) });
        }
    }
}

/// Items one worker claimed: it takes them in order; those it did not take are dropped
/// with the claim.
pub(crate) struct Claim<'a, T> {
    /// The items' buffer (copied here, so that a hot loop keeps it in a register).
    items: NonNull<T>,
    range: Range<usize>,
    /// The index of the item taken last.
    last: Option<usize>,
    /// Borrows the `Items` the claim is from.
    _items: PhantomData<&'a Items<T>>,
}

impl<T> Claim<'_, T> {
    /// The indices this claim covers, taken or not.
    pub(crate) fn len(&self) -> usize {
        self.range.len() + usize::from(self.last.is_some())
    }

    /// The index of the item taken last (the one a panic interrupted).
    pub(crate) fn last_taken(&self) -> Option<usize> {
        self.last
    }

    /// The indices not taken yet.
    pub(crate) fn rest(&self) -> Range<usize> {
        self.range.clone()
    }

    /// Takes every item left, in order, giving each with its index to `each`, in a loop
    /// over locals that the compiler can unroll (the claim's fields are written back
    /// once, at the end). Should `each` panic, the claim stands after the item it was
    /// given (see [`last_taken`](Claim::last_taken)).
    pub(crate) fn take_each(&mut self, mut each: impl FnMut(usize, T)) {
        /// Writes the progress back into the claim, also when `each` unwinds.
        struct Progress<'c, 'a, T> {
            claim: &'c mut Claim<'a, T>,
            next: usize,
        }
        impl<T> Drop for Progress<'_, '_, T> {
            fn drop(&mut self) {
                if self.next > self.claim.range.start {
                    self.claim.last = Some(self.next - 1);
                    self.claim.range.start = self.next;
                }
            }
        }
        let (items, end) = (self.items, self.range.end);
        let mut progress = Progress { next: self.range.start, claim: self };
        while progress.next < end {
            let index = progress.next;
            progress.next = index + 1;
            // SAFETY: `index < end` lies in this claim's range, which no other claim
            // covers (see `Items`); `next` moves past it before the item is handed on, and
            // the claim's range starts after it from then on, so it is read once. The
            // item was initialized in the `Vec` and not read since (reads happen only
            // here and in `Items::drop`, which runs after every claim is gone and skips
            // claimed chunks).
            let item = unsafe { items.as_ptr().add(index).read() };
            each(index, item);
        }
    }
}

impl<T> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        // The items not taken are dropped: each is read once, whatever happens.
        self.take_each(|_, item| drop(item));
    }
}

/// Where the outcomes of a submission's items go.
pub(crate) trait Output<R>: Send + Sync {
    /// Whether nothing becomes visible before the last item's outcome: then a worker
    /// calls `done` once for all the chunks it ran in a row.
    const ANNOUNCES_AT_END: bool = false;

    /// Item `index` gave `value`.
    ///
    /// # Safety
    /// `index` is within the submission, and no other call of `put` or `fail` names it:
    /// the caller claimed it.
    unsafe fn put(&self, index: usize, value: R);
    /// Where `put` writes item `index`'s value, when it writes it straight into memory
    /// at `index` places from here: the hot loop then writes there itself, keeping the
    /// pointer in a register.
    fn direct(&self) -> Option<NonNull<R>> {
        None
    }
    /// The items at `indices` failed (claimed by the caller, as for `put`).
    fn fail(&self, indices: Range<usize>, error: &dyn Fn() -> Error);
    /// The outcomes of `count` more items were given: they become visible to the
    /// submitter now (after the pool counted them), not at `put`.
    fn done(&self, count: usize);
}

/// `apply`: one item, into its [`Slot`].
pub(crate) struct ToSlot<R> {
    slot: Arc<Slot<R>>,
    /// The outcome, until `done` publishes it.
    staged: Mutex<Option<Result<R, Error>>>,
}

impl<R> ToSlot<R> {
    pub(crate) fn new(slot: Arc<Slot<R>>) -> ToSlot<R> {
        ToSlot { slot, staged: Mutex::new(None) }
    }
}

impl<R: Send> Output<R> for ToSlot<R> {
    unsafe fn put(&self, _: usize, value: R) {
        *lock(&self.staged) = Some(Ok(value));
    }

    fn fail(&self, _: Range<usize>, error: &dyn Fn() -> Error) {
        *lock(&self.staged) = Some(Err(error()));
    }

    fn done(&self, _: usize) {
        if let Some(outcome) = lock(&self.staged).take() {
            self.slot.set(outcome);
        }
    }
}

/// `imap`: items from `first` on, into the iterator's [`ImapSink`].
pub(crate) struct ToImap<R> {
    sink: Arc<ImapSink<R>>,
    first: usize,
    /// Outcomes of chunks not finished yet, until `done` publishes them.
    staged: Mutex<Vec<(usize, Result<R, Error>)>>,
}

impl<R> ToImap<R> {
    pub(crate) fn new(sink: Arc<ImapSink<R>>, first: usize) -> ToImap<R> {
        ToImap { sink, first, staged: Mutex::new(Vec::new()) }
    }
}

impl<R: Send> Output<R> for ToImap<R> {
    unsafe fn put(&self, index: usize, value: R) {
        lock(&self.staged).push((self.first + index, Ok(value)));
    }

    fn fail(&self, indices: Range<usize>, error: &dyn Fn() -> Error) {
        let mut staged = lock(&self.staged);
        for index in indices {
            staged.push((self.first + index, Err(error())));
        }
    }

    fn done(&self, _: usize) {
        // Publishes what every chunk finished so far staged (other workers' too): a
        // result never waits for a slower chunk.
        let staged = std::mem::take(&mut *lock(&self.staged));
        self.sink.publish(staged);
    }
}

/// `map`: the results, written in place into the buffer of the `Vec` the [`Slot`] gets
/// (the items' buffer when the types allow, see [`Gather::new`]).
pub(crate) struct Gather<R> {
    /// A `Vec<R>`'s buffer with room for `len` values.
    buffer: NonNull<R>,
    len: usize,
    capacity: usize,
    /// Items whose outcome is still to come.
    left: AtomicUsize,
    failed: Mutex<Failed>,
    /// Whether the buffer was handed on (or freed).
    finished: AtomicBool,
    slot: Arc<Slot<Vec<R>>>,
}

/// The items of a `map` without a result.
#[derive(Default)]
struct Failed {
    holes: Vec<Range<usize>>,
    /// The failure of the lowest-numbered failed item (CPython's `map` raises that one).
    first: Option<(usize, Error)>,
}

// SAFETY: `Gather` owns the values in its buffer (a `Vec<R>`'s, or one with the layout of
// a `Vec<R>`'s, moved between threads when `R: Send`); threads write distinct places
// (`Output::put`'s contract) and the one that takes `left` to zero reads them after
// every write (acquire-release on `left`).
unsafe impl<R: Send> Send for Gather<R> {}
// SAFETY: as for `Send`: every access through `&Gather` is a write to a place its
// caller claimed, or the final hand-over, which runs once.
unsafe impl<R: Send> Sync for Gather<R> {}

impl<R> Gather<R> {
    /// Where the results of `items` go: into the items' own buffer when an `R` takes the
    /// place of a `T` exactly (same size and alignment: `u64` to `u64`, as std's in-place
    /// `collect` does), which saves an allocation and its page faults; else a new one.
    /// The `Vec` goes to `slot` when all are in (at once for none).
    pub(crate) fn new<T>(items: &mut Items<T>, slot: Arc<Slot<Vec<R>>>) -> Gather<R> {
        let len = items.len;
        let same_layout = std::alloc::Layout::new::<T>() == std::alloc::Layout::new::<R>();
        let (buffer, capacity) = if same_layout && std::mem::size_of::<R>() > 0 && len > 0 {
            // Each item's place is read (by its claim) before its result is written there.
            items.lent = true;
            (items.buffer.cast::<R>(), items.capacity)
        } else {
            let mut fresh = ManuallyDrop::new(Vec::<R>::with_capacity(len));
            // A `Vec`'s pointer is never null (dangling, aligned when it has no room).
            (NonNull::new(fresh.as_mut_ptr()).unwrap_or(NonNull::dangling()), fresh.capacity())
        };
        let gather = Gather {
            buffer,
            len,
            capacity,
            left: AtomicUsize::new(len),
            failed: Mutex::new(Failed::default()),
            finished: AtomicBool::new(false),
            slot,
        };
        if len == 0 {
            gather.finish();
        }
        gather
    }

    /// Hands the results (or the first failure) to the slot. Runs once: for the call
    /// that took `left` to zero.
    fn finish(&self) {
        let failed = std::mem::take(&mut *lock(&self.failed));
        self.finished.store(true, Ordering::Relaxed);
        let Some((_, error)) = failed.first else {
            // SAFETY: every place below `len` was written once (`left` reached zero
            // with no hole; the acquire in `done` made the writes visible), and the
            // buffer is a `Vec<R>`'s with this capacity, handed on only here.
            let values =
                unsafe { Vec::from_raw_parts(self.buffer.as_ptr(), self.len, self.capacity) };
            self.slot.set(Ok(values));
            return;
        };
        let mut holes = failed.holes;
        holes.sort_by_key(|hole| hole.start);
        let mut index = 0;
        for hole in holes.iter().chain(std::iter::once(&(self.len..self.len))) {
            for written in index..hole.start {
                // SAFETY: outside every hole, each place was written once and is
                // dropped once here.
                unsafe { self.buffer.as_ptr().add(written).drop_in_place() };
            }
            index = hole.end;
        }
        // SAFETY: the buffer of a `Vec<R>` with this capacity, its values dropped above;
        // freed once, here.
        drop(unsafe { Vec::from_raw_parts(self.buffer.as_ptr(), 0, self.capacity) });
        self.slot.set(Err(error));
    }
}

impl<R: Send> Output<R> for Gather<R> {
    const ANNOUNCES_AT_END: bool = true;

    unsafe fn put(&self, index: usize, value: R) {
        debug_assert!(index < self.len);
        // SAFETY: `index < len` places were reserved, and the caller claimed `index`
        // (this method's contract), so no one else writes or reads it before `finish`.
        unsafe { self.buffer.as_ptr().add(index).write(value) };
    }

    fn direct(&self) -> Option<NonNull<R>> {
        Some(self.buffer)
    }

    fn fail(&self, indices: Range<usize>, error: &dyn Fn() -> Error) {
        if indices.is_empty() {
            return;
        }
        let mut failed = lock(&self.failed);
        if failed.first.as_ref().is_none_or(|(first, _)| indices.start < *first) {
            failed.first = Some((indices.start, error()));
        }
        failed.holes.push(indices);
    }

    fn done(&self, count: usize) {
        if self.left.fetch_sub(count, Ordering::AcqRel) == count {
            self.finish();
        }
    }
}

impl<R> Drop for Gather<R> {
    fn drop(&mut self) {
        // Every batch hands out or cancels all its items before it drops its output (see
        // `Batch::drop`), so the results were handed on. Were they not, which places hold
        // values would be unknown: they are leaked rather than guessed at.
        debug_assert!(*self.finished.get_mut(), "a map's results were never finished");
    }
}
