//! `Queue`: Python's `queue.Queue`, which `multiprocessing.dummy` uses as its `Queue` and
//! `JoinableQueue` — items moved between threads, never serialized.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyconc_core::sync::{lock, wait, wait_timeout};

use crate::Error;
use crate::error::TASK_DONE_TOO_MANY;

/// A FIFO queue between threads of this process; bounded when `maxsize > 0`.
///
/// Python: `queue.Queue` (`multiprocessing.dummy.Queue` and `JoinableQueue`). Clones share
/// one queue; `Send + Sync` when `T: Send`. Items are moved, not serialized, so any `Send`
/// type travels.
///
/// # Examples
///
/// ```
/// use multiprocessing::dummy::{Process, Queue};
///
/// let queue = Queue::new(0);
/// let producer = queue.clone();
/// let p = Process::new(move || {
///     for i in 0..3 {
///         producer.put(vec![i; i]).unwrap();
///     }
/// });
/// p.start()?;
/// assert_eq!(queue.get()?, Vec::<usize>::new());
/// assert_eq!(queue.get()?, vec![1]);
/// assert_eq!(queue.get()?, vec![2, 2]);
/// p.join()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

/// `multiprocessing.dummy.JoinableQueue` is `queue.Queue` itself: [`task_done`](Queue::task_done)
/// and [`join`](Queue::join) are on every queue.
pub type JoinableQueue<T> = Queue<T>;

struct Inner<T> {
    maxsize: usize,
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_tasks_done: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    unfinished_tasks: usize,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue { inner: Arc::clone(&self.inner) }
    }
}

impl<T> Queue<T> {
    /// A queue that holds at most `maxsize` items (0: no bound). Python: `Queue(maxsize)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(1);
    /// queue.put_nowait('a')?;
    /// assert!(queue.full());
    /// assert!(matches!(queue.put_nowait('b'), Err(multiprocessing::Error::Full)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Queue<T> {
        Queue {
            inner: Arc::new(Inner {
                maxsize,
                state: Mutex::new(State { items: VecDeque::new(), unfinished_tasks: 0 }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                all_tasks_done: Condvar::new(),
            }),
        }
    }

    /// Waits for a free place (or `deadline`), then appends `item`.
    fn put_until(&self, item: T, deadline: Option<Option<Instant>>) -> Result<(), Error> {
        let mut state = lock(&self.inner.state);
        while self.is_full(&state) {
            state = match deadline {
                Some(None) => wait(&self.inner.not_full, state),
                None => return Err(Error::Full),
                Some(Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Full);
                    }
                    wait_timeout(&self.inner.not_full, state, left).0
                }
            };
        }
        state.items.push_back(item);
        state.unfinished_tasks += 1;
        drop(state);
        self.inner.not_empty.notify_one();
        Ok(())
    }

    fn is_full(&self, state: &MutexGuard<'_, State<T>>) -> bool {
        self.inner.maxsize > 0 && state.items.len() >= self.inner.maxsize
    }

    /// Appends `item`, waiting for a free place in a bounded queue. Python: `put(item)`.
    ///
    /// # Errors
    /// None in practice; the `Result` keeps the shape of [`crate::Queue::put`].
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(0);
    /// queue.put(1)?;
    /// assert_eq!(queue.qsize(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), Error> {
        self.put_until(item, Some(None))
    }

    /// Appends `item`, waiting at most `timeout` for a free place.
    /// Python: `put(item, timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Full`] when no place came free in time (the item is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue = multiprocessing::dummy::Queue::new(1);
    /// queue.put(1)?;
    /// let full = queue.put_timeout(2, Duration::from_millis(10));
    /// assert!(matches!(full, Err(multiprocessing::Error::Full)));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Error> {
        self.put_until(item, Some(Instant::now().checked_add(timeout)))
    }

    /// Appends `item` if there is a free place now. Python: `put_nowait(item)`.
    ///
    /// # Errors
    /// [`Error::Full`] (the item is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(1);
    /// queue.put_nowait(1)?;
    /// assert!(queue.put_nowait(2).is_err());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), Error> {
        self.put_until(item, None)
    }

    fn get_until(&self, deadline: Option<Option<Instant>>) -> Result<T, Error> {
        let mut state = lock(&self.inner.state);
        loop {
            if let Some(item) = state.items.pop_front() {
                drop(state);
                self.inner.not_full.notify_one();
                return Ok(item);
            }
            state = match deadline {
                Some(None) => wait(&self.inner.not_empty, state),
                None => return Err(Error::Empty),
                Some(Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Empty);
                    }
                    wait_timeout(&self.inner.not_empty, state, left).0
                }
            };
        }
    }

    /// Removes and returns the first item, waiting for one. Python: `get()`.
    ///
    /// # Errors
    /// None in practice; the `Result` keeps the shape of [`crate::Queue::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(0);
    /// queue.put("first")?;
    /// queue.put("second")?;
    /// assert_eq!(queue.get()?, "first");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, Error> {
        self.get_until(Some(None))
    }

    /// Removes and returns the first item, waiting at most `timeout`.
    /// Python: `get(timeout=t)`.
    ///
    /// # Errors
    /// [`Error::Empty`] when no item came in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue: multiprocessing::dummy::Queue<u8> = multiprocessing::dummy::Queue::new(0);
    /// let empty = queue.get_timeout(Duration::from_millis(10));
    /// assert!(matches!(empty, Err(multiprocessing::Error::Empty)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.get_until(Some(Instant::now().checked_add(timeout)))
    }

    /// Removes and returns the first item if there is one. Python: `get_nowait()`.
    ///
    /// # Errors
    /// [`Error::Empty`].
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(0);
    /// assert!(queue.get_nowait().is_err());
    /// queue.put(5)?;
    /// assert_eq!(queue.get_nowait()?, 5);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T, Error> {
        self.get_until(None)
    }

    /// Marks one item taken with `get` as processed. Python: `task_done()`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `task_done() called too many times`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::JoinableQueue::new(0);
    /// queue.put(1)?;
    /// queue.get()?;
    /// queue.task_done()?;
    /// queue.join(); // every item was processed
    /// assert_eq!(queue.task_done().unwrap_err().to_string(), "task_done() called too many times");
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        let mut state = lock(&self.inner.state);
        if state.unfinished_tasks == 0 {
            return Err(Error::value(TASK_DONE_TOO_MANY));
        }
        state.unfinished_tasks -= 1;
        if state.unfinished_tasks == 0 {
            self.inner.all_tasks_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put was marked processed with [`task_done`](Queue::task_done).
    /// Python: `join()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::dummy::{JoinableQueue, Process};
    ///
    /// let queue = JoinableQueue::new(0);
    /// let worker_queue = queue.clone();
    /// let worker = Process::new(move || {
    ///     while let Ok(n) = worker_queue.get() {
    ///         if n == 0 { worker_queue.task_done().unwrap(); break; }
    ///         worker_queue.task_done().unwrap();
    ///     }
    /// });
    /// worker.start()?;
    /// for n in [3, 2, 1, 0] {
    ///     queue.put(n)?;
    /// }
    /// queue.join();
    /// worker.join()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn join(&self) {
        let mut state = lock(&self.inner.state);
        while state.unfinished_tasks > 0 {
            state = wait(&self.inner.all_tasks_done, state);
        }
    }

    /// The number of items in the queue. Python: `qsize()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(0);
    /// queue.put(())?;
    /// assert_eq!(queue.qsize(), 1);
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        lock(&self.inner.state).items.len()
    }

    /// Whether the queue holds no item. Python: `empty()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue: multiprocessing::dummy::Queue<u8> = multiprocessing::dummy::Queue::new(0);
    /// assert!(queue.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue has no free place. Python: `full()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = multiprocessing::dummy::Queue::new(1);
    /// assert!(!queue.full());
    /// queue.put(1)?;
    /// assert!(queue.full());
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn full(&self) -> bool {
        self.is_full(&lock(&self.inner.state))
    }

    /// The bound given to [`new`](Queue::new) (0: none). Python: `maxsize`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multiprocessing::dummy::Queue::<u8>::new(4).maxsize(), 4);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.inner.maxsize)
            .field("qsize", &self.qsize())
            .finish()
    }
}
