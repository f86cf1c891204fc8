//! `Queue`, `SimpleQueue` and `JoinableQueue`: CPython's `multiprocessing.queues`.
//!
//! As CPython's: a pipe carries one frame per item (its 4-byte length, then the item
//! serialized); a reader lock makes each frame go to one consumer whole, a writer lock
//! keeps producers' frames from interleaving; a bounded queue counts free places with a
//! semaphore. Beyond CPython, the frames travel through a ring buffer in shared memory
//! beside the pipe, as a one-way `Connection`'s do (see `connection/ring.rs`): the pipe
//! only wakes a consumer that went to sleep and reports EOF, so a small item costs copies
//! and atomics, not a `write(2)` and a `read(2)`; the ring's own reader and writer locks
//! take the place of the queue's (which remain for a pipe without a ring). Every lock is
//! a robust cross-process lock: a consumer killed while it waited (holding the reader
//! lock) does not wedge the others, and — the frame it waited for being still unread — no
//! item is lost.
//!
//! `Queue::put` never blocks on the pipe: a frame that fits the ring now is written at
//! once; otherwise (the ring is full, or the frame is large) it goes to this process's
//! *feeder* thread, which writes it when the pipe has room — CPython's feeder, but only
//! when needed. Items of one producer arrive in the order they were put. At exit (and at
//! the end of every child) a process waits until its feeders have written everything,
//! unless [`Queue::cancel_join_thread`] was called, as in CPython.
//!
//! The files: [`queues`] (the three queue types), [`channel`] (what they share: the pipe,
//! its transport and counters, and how a channel travels to a child) and [`feeder`] (the
//! thread that writes what does not fit the pipe now).

mod channel;
mod feeder;
mod queues;

pub use queues::{JoinableQueue, Queue, SimpleQueue};
