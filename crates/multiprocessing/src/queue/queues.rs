//! `Queue`, `JoinableQueue` and `SimpleQueue`: CPython's `multiprocessing.queues` classes.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyconc_core::sync::{Futex, SharedWord, lock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::channel::{Channel, GETS, Outgoing, PUTS, UNFINISHED, frame_of, small_frame_of};
use super::feeder::{feeder_of, flush, send};
use crate::Error;
use crate::codec::{self};
use crate::error::TASK_DONE_TOO_MANY;
use crate::synchronize::deadline_after;

/// A multi-producer, multi-consumer FIFO queue across processes: Python's
/// `multiprocessing.Queue`.
///
/// `T` travels serialized (serde). Clones share the queue; hand it to a child by moving a
/// clone into a fork child's closure, or in `Process::call`'s arguments.
///
/// # Differences from CPython
/// - Items are serialized with serde (postcard), not pickled: a received item can never make
///   this process run code.
/// - `put` never blocks on a full pipe: a frame that does not fit now goes to this
///   process's feeder thread (CPython sends every item through it).
/// - Every lock of the queue is robust: a consumer killed while it waited does not wedge
///   the others, and no item is lost.
/// - `get(block, timeout)` is [`get`](Queue::get), [`get_nowait`](Queue::get_nowait) and
///   [`get_timeout`](Queue::get_timeout); `put` likewise.
///
/// # Examples
///
/// ```
/// use multiprocessing::{Process, Queue};
///
/// let q = Queue::<String>::new(0)?;
/// let producer = q.clone();
/// let p = Process::new(move || {
///     for word in ["hello", "world"] {
///         producer.put(word.to_owned()).unwrap();
///     }
/// });
/// p.start()?;
/// assert_eq!(q.get()?, "hello");
/// assert_eq!(q.get()?, "world");
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Queue<T> {
    channel: Arc<Channel>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue { channel: Arc::clone(&self.channel), _items: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Queue<T> {
    /// A queue that holds at most `maxsize` items; 0: unbounded.
    /// Python: `multiprocessing.Queue(maxsize)`.
    ///
    /// # Errors
    /// [`Error::OsError`] when the OS refuses the pipe or shared memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, Queue};
    ///
    /// let q: Queue<String> = Queue::new(0)?; // 0: unbounded
    /// let theirs = q.clone();
    /// let p = Process::new(move || theirs.put("from the child".to_owned()).unwrap());
    /// p.start()?;
    /// assert_eq!(q.get()?, "from the child");
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<Queue<T>, Error> {
        Ok(Queue { channel: Arc::new(Channel::new(maxsize)?), _items: PhantomData })
    }

    fn put_until(&self, item: &T, deadline: Option<Instant>, block: bool) -> Result<(), Error> {
        self.channel.check_open(self)?;
        let frame = match small_frame_of(item) {
            Some(block) => Outgoing::Small(block),
            None => Outgoing::Large(frame_of(item)?),
        };
        if let Some(slots) = &self.channel.slots {
            let free = if block { slots.acquire_until(deadline) } else { slots.try_acquire() };
            if !free {
                return Err(Error::Full);
            }
        }
        self.channel.counters.word(PUTS).fetch_add(1, Ordering::Relaxed);
        let sent = send(&self.channel, frame);
        if sent.is_err() {
            // Nothing was queued: give the place and the count back.
            self.channel.counters.word(PUTS).fetch_sub(1, Ordering::Relaxed);
            if let Some(slots) = &self.channel.slots {
                let _ = slots.release();
            }
        }
        sent
    }

    /// Puts `item`, waiting for a free place in a full bounded queue.
    /// Python: `Queue.put(obj)`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::PicklingError`] (only this item fails).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put((1, "one".to_owned()))?; // any serde type
    /// assert_eq!(q.get()?, (1, "one".to_owned()));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.put_until(&item, None, true)
    }

    /// Puts `item`, waiting at most `timeout` for a free place.
    /// Python: `Queue.put(obj, timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Full`] if no place freed in time; as [`put`](Queue::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiprocessing::Queue::new(1)?;
    /// q.put_timeout(1u8, Duration::from_millis(10))?;
    /// let full = q.put_timeout(2u8, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(full, multiprocessing::Error::Full));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.put_until(&item, deadline_after(timeout), true)
    }

    /// Puts `item` if there is a free place now. Python: `Queue.put_nowait(obj)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue: multiprocessing::Queue<String> = multiprocessing::Queue::new(1)?;
    /// queue.put_nowait("a".to_owned())?;
    /// assert!(matches!(queue.put_nowait("b".to_owned()), Err(multiprocessing::Error::Full)));
    /// assert_eq!(queue.get()?, "a");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Full`]; as [`put`](Queue::put).
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.put_until(&item, None, false)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, Error> {
        self.channel.check_open(self)?;
        match self.channel.get_item(deadline)? {
            Some(frame) => codec::decode(frame.bytes()),
            None => Err(Error::Empty),
        }
    }

    /// Takes the next item, waiting for one. Python: `Queue.get()`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::UnpicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put(vec![1u32, 2, 3])?;
    /// assert_eq!(q.get()?, [1, 2, 3]);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.get_until(None)
    }

    /// Takes the next item, waiting at most `timeout`. Python: `Queue.get(timeout=t)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue: multiprocessing::Queue<u32> = multiprocessing::Queue::new(0)?;
    /// assert!(matches!(queue.get_timeout(Duration::from_millis(10)), Err(multiprocessing::Error::Empty)));
    /// queue.put(5)?;
    /// assert_eq!(queue.get_timeout(Duration::from_secs(5))?, 5);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Empty`] if none came in time; as [`get`](Queue::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.get_until(
            deadline_after(timeout).or(Some(Instant::now() + Duration::from_secs(u32::MAX as u64))),
        )
    }

    /// Takes the next item if one is there now. Python: `Queue.get_nowait()`.
    ///
    /// # Errors
    /// [`Error::Empty`]; as [`get`](Queue::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::<u8>::new(0)?;
    /// assert!(matches!(q.get_nowait(), Err(multiprocessing::Error::Empty)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.get_until(Some(Instant::now()))
    }

    /// The approximate number of items in the queue. Python: `Queue.qsize()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put(1u8)?;
    /// q.put(2u8)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        let counters = &self.channel.counters;
        let (puts, gets) = (
            counters.word(PUTS).load(Ordering::Relaxed),
            counters.word(GETS).load(Ordering::Relaxed),
        );
        // Approximate, as CPython's: a get may be counted before its put.
        puts.wrapping_sub(gets).min(i32::MAX as u32) as usize
    }

    /// Whether no item can be read now (approximate, as CPython's). Python: `Queue.empty()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// assert!(q.empty());
    /// q.put('x')?;
    /// q.get()?;
    /// assert!(q.empty());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        !self.channel.readable_now()
    }

    /// Whether a bounded queue has no free place (approximate). Python: `Queue.full()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(1)?;
    /// q.put(0u8)?;
    /// assert!(q.full());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn full(&self) -> bool {
        self.channel.slots.as_ref().is_some_and(|s| s.value() == 0)
    }

    /// The bound given to [`new`](Queue::new) (0: unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::Queue::<u8>::new(8)?.maxsize(), 8);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        self.channel.maxsize
    }

    /// This process will put no more items; its feeder ends once it has written what is
    /// pending. Python: `Queue.close()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put(1u8)?;
    /// q.close(); // no more puts from this process; what was put is still delivered
    /// q.join_thread()?;
    /// assert!(q.put(2u8).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) {
        self.channel.closed.store(true, Ordering::Release);
        let feeder = feeder_of(&self.channel);
        lock(&feeder.state).closing = true;
        feeder.changed.notify_all();
    }

    /// Waits until the feeder has written every pending item; only after
    /// [`close`](Queue::close). Python: `Queue.join_thread()`.
    ///
    /// # Errors
    /// [`Error::AssertionError`] `Queue <...> not closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put(1u8)?;
    /// assert!(q.join_thread().is_err(), "not closed yet");
    /// q.close();
    /// q.join_thread()?; // the item has been flushed to the pipe
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join_thread(&self) -> Result<(), Error> {
        if !self.channel.closed.load(Ordering::Acquire) {
            return Err(Error::AssertionError(crate::error::queue_not_closed(self).into()));
        }
        flush(&feeder_of(&self.channel));
        Ok(())
    }

    /// Lets this process exit without waiting for the feeder (pending items may be lost).
    /// Python: `Queue.cancel_join_thread()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::Queue::new(0)?;
    /// q.put(1u8)?;
    /// q.cancel_join_thread(); // exiting will not wait for the feeder to flush
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn cancel_join_thread(&self) {
        self.channel.cancel_join.store(true, Ordering::Relaxed);
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Queue object at {:p}>", Arc::as_ptr(&self.channel))
    }
}

/// A [`Queue`] that counts unfinished tasks: Python's `multiprocessing.JoinableQueue`.
///
/// Every `put` adds a task; a consumer calls [`task_done`](JoinableQueue::task_done) per
/// item it has finished; [`join`](JoinableQueue::join) waits until no task is unfinished.
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> JoinableQueue<T> {
        JoinableQueue { queue: self.queue.clone() }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> JoinableQueue<T> {
    /// As [`Queue::new`]. Python: `multiprocessing.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{JoinableQueue, Process};
    ///
    /// let tasks: JoinableQueue<u32> = JoinableQueue::new(0)?;
    /// let worker = tasks.clone();
    /// let p = Process::new(move || {
    ///     for _ in 0..3 {
    ///         let n = worker.get().unwrap();
    ///         println!("processed {n}");
    ///         worker.task_done().unwrap();
    ///     }
    /// });
    /// p.start()?;
    /// for n in 0..3 {
    ///     tasks.put(n)?;
    /// }
    /// tasks.join()?; // every task was marked done
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<JoinableQueue<T>, Error> {
        Ok(JoinableQueue { queue: Queue::new(maxsize)? })
    }

    fn unfinished(&self) -> &std::sync::atomic::AtomicU32 {
        self.queue.channel.counters.word(UNFINISHED)
    }

    fn counted(&self, outcome: Result<(), Error>) -> Result<(), Error> {
        if outcome.is_err() {
            self.task_done_quietly();
        }
        outcome
    }

    fn task_done_quietly(&self) {
        let _ = self
            .unfinished()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// As [`Queue::put`], adding a task. Python: `JoinableQueue.put(obj)`.
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put("task".to_owned())?;
    /// assert_eq!(q.get()?, "task");
    /// q.task_done()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put(item))
    }

    /// As [`Queue::put_timeout`].
    ///
    /// # Errors
    /// As [`Queue::put_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiprocessing::JoinableQueue::new(1)?;
    /// q.put_timeout(1u8, Duration::from_millis(10))?;
    /// assert!(q.put_timeout(2u8, Duration::from_millis(10)).is_err(), "full");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put_timeout(item, timeout))
    }

    /// As [`Queue::put_nowait`].
    ///
    /// # Errors
    /// As [`Queue::put_nowait`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(1)?;
    /// q.put_nowait(1u8)?;
    /// assert!(matches!(q.put_nowait(2u8), Err(multiprocessing::Error::Full)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.unfinished().fetch_add(1, Ordering::AcqRel);
        self.counted(self.queue.put_nowait(item))
    }

    /// As [`Queue::get`].
    ///
    /// # Errors
    /// As [`Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put(5i64)?;
    /// assert_eq!(q.get()?, 5);
    /// q.task_done()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.queue.get()
    }

    /// As [`Queue::get_timeout`].
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiprocessing::JoinableQueue::<u8>::new(0)?;
    /// let empty = q.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(empty, multiprocessing::Error::Empty));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.queue.get_timeout(timeout)
    }

    /// As [`Queue::get_nowait`].
    ///
    /// # Errors
    /// As [`Queue::get_nowait`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::<u8>::new(0)?;
    /// assert!(q.get_nowait().is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.queue.get_nowait()
    }

    /// Marks one task finished. Python: `JoinableQueue.task_done()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `task_done() called too many times`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::<u8>::new(0)?;
    /// let refused = q.task_done().unwrap_err();
    /// assert_eq!(refused.to_string(), "task_done() called too many times");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        let word = self.unfinished();
        match word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
            Err(_) => Err(Error::value(TASK_DONE_TOO_MANY)),
            Ok(1) => {
                SharedWord::from_atomic(word).wake_all();
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Waits until every task put is done. Python: `JoinableQueue.join()`.
    ///
    /// # Errors
    /// None so far; `Result` for the contract's shape.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put(1u8)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?; // returns at once: nothing is unfinished
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        let word = self.unfinished();
        loop {
            let n = word.load(Ordering::Acquire);
            if n == 0 {
                return Ok(());
            }
            SharedWord::from_atomic(word).wait(n, None);
        }
    }

    /// As [`Queue::qsize`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put(1u8)?;
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// As [`Queue::empty`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(multiprocessing::JoinableQueue::<u8>::new(0)?.empty());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// As [`Queue::full`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(1)?;
    /// q.put(1u8)?;
    /// assert!(q.full());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn full(&self) -> bool {
        self.queue.full()
    }

    /// As [`Queue::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.close();
    /// assert!(q.put(1u8).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) {
        self.queue.close()
    }

    /// As [`Queue::join_thread`].
    ///
    /// # Errors
    /// As [`Queue::join_thread`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put(1u8)?;
    /// q.close();
    /// q.join_thread()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join_thread(&self) -> Result<(), Error> {
        self.queue.join_thread()
    }

    /// As [`Queue::cancel_join_thread`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::JoinableQueue::new(0)?;
    /// q.put(1u8)?;
    /// q.cancel_join_thread();
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn cancel_join_thread(&self) {
        self.queue.cancel_join_thread()
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<JoinableQueue object at {:p}>", Arc::as_ptr(&self.queue.channel))
    }
}

/// A simple queue across processes: Python's `multiprocessing.SimpleQueue`.
///
/// No feeder thread and no size: `put` writes the item itself, and waits while the pipe
/// (1 MiB here) is full.
pub struct SimpleQueue<T> {
    channel: Arc<Channel>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> SimpleQueue<T> {
        SimpleQueue { channel: Arc::clone(&self.channel), _items: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SimpleQueue<T> {
    /// An empty queue. Python: `multiprocessing.SimpleQueue()`.
    ///
    /// # Errors
    /// As [`Queue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::{Process, SimpleQueue};
    ///
    /// let q: SimpleQueue<u64> = SimpleQueue::new()?;
    /// let theirs = q.clone();
    /// let p = Process::new(move || theirs.put(42).unwrap());
    /// p.start()?;
    /// assert_eq!(q.get()?, 42);
    /// p.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new() -> Result<SimpleQueue<T>, Error> {
        Ok(SimpleQueue { channel: Arc::new(Channel::new(0)?), _items: PhantomData })
    }

    /// Puts `item`. Python: `SimpleQueue.put(obj)`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::PicklingError`]; [`Error::OsError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::new()?;
    /// q.put("no feeder thread: written at once".to_owned())?;
    /// assert_eq!(q.get()?, "no feeder thread: written at once");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.channel.check_open(self)?;
        let frame = frame_of(&item)?;
        let written = self.channel.write_frame(&frame);
        self.channel.counters.word(PUTS).fetch_add(1, Ordering::Relaxed);
        written
    }

    /// Takes the next item, waiting for one. Python: `SimpleQueue.get()`.
    ///
    /// # Errors
    /// `Queue <...> is closed`; [`Error::UnpicklingError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::new()?;
    /// q.put(Some(1u8))?;
    /// assert_eq!(q.get()?, Some(1));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.channel.check_open(self)?;
        match self.channel.get_item(None)? {
            Some(frame) => codec::decode(frame.bytes()),
            None => Err(Error::Empty),
        }
    }

    /// Whether no item can be read now. Python: `SimpleQueue.empty()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::new()?;
    /// assert!(q.empty());
    /// q.put(1u8)?;
    /// assert!(!q.empty());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        !self.channel.readable_now()
    }

    /// Closes the queue in this process. Python: `SimpleQueue.close()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = multiprocessing::SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(q.put(1).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn close(&self) {
        self.channel.closed.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<SimpleQueue object at {:p}>", Arc::as_ptr(&self.channel))
    }
}

macro_rules! queue_serde {
    ($($queue:ident),*) => {$(
        impl<T> Serialize for $queue<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                queue_channel(self).serialize(serializer)
            }
        }
    )*};
}

fn queue_channel<Q: HasChannel>(queue: &Q) -> &Channel {
    queue.channel()
}

trait HasChannel {
    fn channel(&self) -> &Channel;
}

impl<T> HasChannel for Queue<T> {
    fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl<T> HasChannel for SimpleQueue<T> {
    fn channel(&self) -> &Channel {
        &self.channel
    }
}

impl<T> HasChannel for JoinableQueue<T> {
    fn channel(&self) -> &Channel {
        &self.queue.channel
    }
}

queue_serde!(Queue, SimpleQueue, JoinableQueue);

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Queue<T>, D::Error> {
        Ok(Queue { channel: Arc::new(Channel::deserialize(deserializer)?), _items: PhantomData })
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SimpleQueue<T>, D::Error> {
        Ok(SimpleQueue {
            channel: Arc::new(Channel::deserialize(deserializer)?),
            _items: PhantomData,
        })
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JoinableQueue<T>, D::Error> {
        Ok(JoinableQueue { queue: Queue::deserialize(deserializer)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::channel::Transport;

    /// The transport where shared memory cannot be had: the bare pipe, as CPython's.
    fn queue_over_the_pipe<T>(maxsize: usize) -> Queue<T> {
        let channel = Channel::with_ring(maxsize, None).unwrap();
        assert!(matches!(channel.transport, Transport::Pipe { .. }));
        Queue { channel: Arc::new(channel), _items: PhantomData }
    }

    #[test]
    fn a_queue_without_shared_memory_carries_small_and_large_items_in_order() {
        let queue = queue_over_the_pipe::<Vec<u32>>(0);
        assert!(queue.empty());
        let items: Vec<Vec<u32>> = (0..200).map(|i| vec![i; (i as usize * 97) % 5000]).collect();
        for item in &items {
            queue.put(item.clone()).unwrap();
        }
        for item in &items {
            assert_eq!(&queue.get().unwrap(), item);
        }
        assert!(matches!(queue.get_timeout(Duration::from_millis(20)), Err(Error::Empty)));
    }

    #[test]
    fn a_bounded_queue_without_shared_memory_counts_its_places() {
        let queue = queue_over_the_pipe::<u8>(2);
        queue.put(1).unwrap();
        queue.put(2).unwrap();
        assert!(matches!(queue.put_nowait(3), Err(Error::Full)));
        assert_eq!(queue.get_nowait().unwrap(), 1);
        queue.put_nowait(3).unwrap();
        assert_eq!((queue.get().unwrap(), queue.get().unwrap()), (2, 3));
    }
}
