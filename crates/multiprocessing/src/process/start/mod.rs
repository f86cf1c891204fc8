//! Starting a child: what every start method shares (CPython's `Popen` classes).
//!
//! [`launch`] hands a [`ChildSpec`] (who the child is) and a [`Target`] (what it runs) to
//! one of the three methods, and gets back the child's pid and a [`Waiter`]: the
//! sentinel fd that becomes readable when the child ends, and the way to read its exit
//! status. The child side of every method ends in [`bootstrap`](crate::process::bootstrap).
//!
//! A daemonic child is killed by the kernel when its parent dies (`PR_SET_PDEATHSIG`). The
//! kernel ties that to the *thread* that created the child, so a daemonic child started
//! from any thread but the main one is created by a long-lived launcher thread instead.

pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod spawn;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::process::children::ChildRecords;
use pyconc_core::fork::ForkMutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::LAUNCHER_ENDED;
use crate::start_method::StartMethod;
use crate::sys::{self, ExitStatus, Pid};
use crate::{codec, reduction};

/// Who a child is: what CPython pickles of the process object for spawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChildSpec {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) identity: Vec<u32>,
    pub(crate) method: StartMethod,
    pub(crate) parent_pid: i32,
    pub(crate) parent_name: String,
    /// The key the child starts with (its `Process` object's).
    pub(crate) authkey: Vec<u8>,
    /// The parent's logger: its level and whether it writes to stderr.
    pub(crate) logging: (pyconc_core::logging::LevelFilter, bool),
    /// Where the program's resource tracker's socket is in the fds sent with the target
    /// (spawn and forkserver children; a forked child inherits it).
    pub(crate) tracker: Option<u32>,
}

/// What a child runs.
pub(crate) enum Target {
    /// Nothing: `Process()` without a target; the child exits with 0.
    Nothing,
    /// A closure; only a forked child can run it.
    Closure(Box<dyn RunOnce>),
    /// `function(args)`; can cross `exec` as a [`Portable`].
    Call(Box<dyn CallTarget>),
}

impl Target {
    pub(crate) fn closure<F: FnOnce() + Send + 'static>(closure: F) -> Target {
        Target::Closure(Box::new(Closure(closure)))
    }

    pub(crate) fn call<A>(function: fn(A), args: A) -> Target
    where
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        Target::Call(Box::new(Call { function, args }))
    }

    /// Runs the target in this process.
    pub(crate) fn run_here(self) {
        match self {
            Target::Nothing => {}
            Target::Closure(closure) => closure.run(),
            Target::Call(call) => call.run(),
        }
    }

    /// Runs the target in a forked child, which ends in `_exit`: its box, which the
    /// parent allocated, is not freed (a free writes `malloc`'s pages, each one a
    /// copy-on-write fault in a child).
    pub(crate) fn run_in_fork_child(self) {
        match self {
            Target::Nothing => {}
            Target::Closure(closure) => closure.run_keeping_box(),
            Target::Call(call) => call.run_keeping_box(),
        }
    }

    /// The target in a form that a new program (this binary, run again) can run. Objects
    /// in the arguments that own fds put them in the current fd table
    /// ([`reduction`](crate::reduction)); `self` must live until they are sent.
    pub(crate) fn portable(&self) -> Result<Portable, Error> {
        match self {
            Target::Nothing => Ok(Portable::new(run_nothing, 0, Vec::new())),
            Target::Closure(_) => Err(Error::value(crate::error::CLOSURE_NEEDS_FORK)),
            Target::Call(call) => call.portable(),
        }
    }
}

/// A target that runs once, type-erased.
pub(crate) trait RunOnce: Send {
    /// Runs it; its box is freed.
    fn run(self: Box<Self>);
    /// Runs it; its box is left allocated (see [`Target::run_in_fork_child`]).
    fn run_keeping_box(self: Box<Self>);
}

/// Moves the value out of `boxed` without freeing the box's memory: a leak, for a forked
/// child that is about to `_exit`.
fn take_keeping_box<T>(boxed: Box<T>) -> T {
    let boxed = std::mem::ManuallyDrop::new(boxed);
    // SAFETY: the box holds an initialised `T`. The `ManuallyDrop` never drops the box,
    // and nothing reads it after this, so the value is moved out exactly once and its
    // memory is simply never freed.
    unsafe { std::ptr::read(&**boxed) }
}

/// A closure target.
struct Closure<F>(F);

impl<F: FnOnce() + Send> RunOnce for Closure<F> {
    fn run(self: Box<Self>) {
        (self.0)()
    }

    fn run_keeping_box(self: Box<Self>) {
        (take_keeping_box(self).0)()
    }
}

/// A `fn(A)` with its arguments, type-erased.
pub(crate) trait CallTarget: RunOnce {
    fn portable(&self) -> Result<Portable, Error>;
}

struct Call<A> {
    function: fn(A),
    args: A,
}

impl<A: Send> RunOnce for Call<A> {
    fn run(self: Box<Self>) {
        (self.function)(self.args)
    }

    fn run_keeping_box(self: Box<Self>) {
        let Call { function, args } = take_keeping_box(self);
        function(args)
    }
}

impl<A: Serialize + DeserializeOwned + Send + 'static> CallTarget for Call<A> {
    fn portable(&self) -> Result<Portable, Error> {
        let args = codec::encode(&self.args)?;
        Ok(Portable::new(run_call::<A>, self.function as usize, args))
    }
}

/// The entry point of a [`Portable`]: given the function's offset and the serialized
/// arguments, deserializes and calls.
type Entry = fn(u64, &[u8]) -> Result<(), Error>;

/// A target that crosses `exec`: code addresses as offsets from an anchor function of this
/// binary (the child is the same binary, loaded at another address), plus the arguments
/// serialized. This is how a function reference "travels over the pipe".
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Portable {
    /// The offset of a second anchor: a child whose layout differs refuses to run.
    layout: u64,
    /// The offset of the monomorphized [`Entry`].
    entry: u64,
    /// The offset of the user's `fn(A)` (0 for none).
    function: u64,
    args: Vec<u8>,
}

#[inline(never)]
fn anchor() {}

#[inline(never)]
fn layout_anchor() -> u8 {
    1
}

/// The offset of a second anchor of this binary: two processes whose offsets differ do not
/// run the same code, and must not exchange code offsets (spawn checks it per target; the
/// MPI pool at start-up).
pub(crate) fn layout() -> u64 {
    offset(layout_anchor as *const () as usize)
}

/// A code address of this binary as an offset from its anchor: the same number names the
/// same code in every process running this binary (the pool sends task functions so).
pub(crate) fn offset(address: usize) -> u64 {
    (address as u64).wrapping_sub(anchor as *const () as usize as u64)
}

/// The code address in this process of an [`offset`].
pub(crate) fn address(offset: u64) -> usize {
    (anchor as *const () as usize as u64).wrapping_add(offset) as usize
}

/// The function of type `F` at code offset `offset` of this binary: how a function that
/// travelled as an [`offset`] (a process target, a pool task, its initializer, the entry
/// that runs them) is called again in the process that received it. Every such call in
/// the crate goes through here.
///
/// # Safety
/// `F` must be a function-pointer type (`fn(A)`, `fn(T) -> R`, ...), and `offset` must
/// have been made by [`offset`] from a function of exactly the type `F`, in a process
/// running this very executable: this process itself, a forked child, a spawned or
/// fork-server child (whose layout `Portable::run` checked against the parent's), or a
/// rank of the same `mpirun` job (whose executable the MPI pool checked at start-up).
/// Only then does the offset name, here, the code of that function.
pub(crate) unsafe fn function_at<F: Copy>(offset: u64) -> F {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<usize>()) };
    let address = address(offset);
    // SAFETY: by the caller's promise, `address` is the entry of a function of type `F`
    // in this process, and `F` is a function-pointer type of the size of an address.
    unsafe { std::mem::transmute_copy::<usize, F>(&address) }
}

fn run_nothing(_: u64, _: &[u8]) -> Result<(), Error> {
    Ok(())
}

fn run_call<A: DeserializeOwned>(function: u64, args: &[u8]) -> Result<(), Error> {
    let args: A = codec::decode(args)?;
    // SAFETY: the parent took `function` from a `fn(A)` (`Call::portable`) with `offset`,
    // and `Portable::run` checked that this process runs the parent's executable; this
    // entry was monomorphized for the same `A`.
    let function: fn(A) = unsafe { function_at::<fn(A)>(function) };
    function(args);
    Ok(())
}

impl Portable {
    fn new(entry: Entry, function: usize, args: Vec<u8>) -> Portable {
        Portable {
            layout: layout(),
            entry: offset(entry as usize),
            function: if function == 0 { 0 } else { offset(function) },
            args,
        }
    }

    /// Runs the target in this process (a child of the same binary); `fds` are the fds
    /// that came with it, for the objects in its arguments.
    pub(crate) fn run(self, fds: Vec<OwnedFd>) -> Result<(), Error> {
        if self.layout != layout() {
            return Err(Error::UnpicklingError(
                "the target comes from a different program: spawn and forkserver children \
                 must run the parent's own executable"
                    .to_owned(),
            ));
        }
        // SAFETY: `entry` is the offset of an `Entry` (see `Portable::new`), and the layout
        // check above shows that this process runs the parent's executable.
        let entry: Entry = unsafe { function_at::<Entry>(self.entry) };
        reduction::providing_fds(fds, || entry(self.function, &self.args))
    }
}

/// Serializes the [`Payload`] that starts a spawn or forkserver child, refusing one that
/// the child would refuse to read ([`codec::MAX_FRAME`]) before anything starts.
pub(crate) fn encode_payload(spec: ChildSpec, target: Portable) -> Result<Vec<u8>, Error> {
    let payload = codec::encode(&Payload { spec, target })?;
    if payload.len() > codec::MAX_FRAME {
        return Err(Error::PicklingError(format!(
            "the target and its arguments take {} bytes, over the {}-byte limit of what \
             starts a process (pass large data through shared memory or a Queue)",
            payload.len(),
            codec::MAX_FRAME
        )));
    }
    Ok(payload)
}

/// What a spawn or forkserver child reads first: who it is and what to run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) spec: ChildSpec,
    pub(crate) target: Portable,
}

/// A started child as its parent sees it.
pub(crate) struct Launched {
    pub(crate) pid: Pid,
    /// How the parent learns of its end; `None` for a forked child, whose pidfd is opened
    /// when first needed (a timed join, its sentinel, the reaper). A `pidfd_open` costs
    /// ~4 µs with its `close`, and a join without a timeout, the most common, needs none
    /// (`sys::wait_ended`). Opening it late is safe: the pid stays the child's until this
    /// process reaps it, and one reaped by someone else is caught (`sys::child_pidfd`).
    pub(crate) waiter: Option<Waiter>,
    /// The parent's copy of the records a forked child got (`children::ChildRecords`),
    /// freed with the child's status (after it ended, as a rule), not at once: freeing
    /// writes heap pages that the running child still shares, and each one written is
    /// copied. (The target is not kept: it may hold the parent's end of a pipe, which
    /// must close at `start()`, as CPython drops its reference to the target there.)
    pub(crate) records: Option<ChildRecords>,
}

/// How the parent learns that a child ended.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A pidfd of our own child (fork, spawn): readable once it ends; `waitpid` reaps it.
    Pidfd(OwnedFd),
    /// The fork server's status socket: it sends the raw wait status when the child ends.
    Server(UnixStream),
    /// A sentinel that is readable already: the read end of a pipe whose write end is
    /// closed, for a parent found ended when `parent_process()` first asked about it, or
    /// for a child whose pidfd was to be opened late but which someone else had reaped
    /// (`waitpid` then tells the caller so).
    Ended(OwnedFd),
}

impl Waiter {
    /// The fd that becomes readable when the child ends.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        match self {
            Waiter::Pidfd(fd) | Waiter::Ended(fd) => fd.as_fd(),
            Waiter::Server(socket) => socket.as_fd(),
        }
    }

    /// The exit status if the child has ended (reaping it), without blocking.
    pub(crate) fn try_status(&self, pid: Pid) -> io::Result<Option<ExitStatus>> {
        match self {
            // (A parent's status is never asked for: only a child is reaped.)
            Waiter::Pidfd(_) | Waiter::Ended(_) => sys::try_wait(pid),
            Waiter::Server(socket) => {
                // The first status to come: the child's own, written just before its
                // `_exit`, or the server's, after it reaped the child. Peeked, not read:
                // it stays in the socket, so the sentinel stays readable from now on.
                let mut raw = [0u8; 4];
                match sys::peek(socket.as_fd(), &mut raw)? {
                    Some(4) => Ok(Some(ExitStatus::from_raw(i32::from_ne_bytes(raw)))),
                    Some(0) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the fork server ended without reporting the child's exit status",
                    )),
                    // Nothing yet, or part of it: the rest is on its way.
                    _ => Ok(None),
                }
            }
        }
    }
}

/// Starts a child with `method`.
pub(crate) fn launch(
    method: StartMethod,
    mut spec: ChildSpec,
    target: Target,
) -> Result<Launched, Error> {
    // The parent-death signal follows the creating thread: create daemonic children from
    // a thread that lives as long as the process. (Fork-server children are created by the
    // single-threaded server.)
    let long_lived_thread_needed =
        spec.daemon && method != StartMethod::ForkServer && !sys::on_main_thread();
    let here = move || {
        // The program's resource tracker runs before its first child starts, so that a
        // child's shared-memory segments outlive the child (CPython ensures it for spawn
        // and forkserver; here for fork too). Without one (out of fds, say) the child
        // still starts, and would start a tracker of its own.
        let _ = crate::resource_tracker::ensure_running();
        if method == StartMethod::Fork {
            return fork::launch(spec, target);
        }
        let (portable, mut fds) =
            reduction::to_child(|| reduction::collecting_fds(|| target.portable()));
        // The child talks to the program's resource tracker, as CPython passes its fd.
        let tracker = crate::resource_tracker::fd_for_child();
        if let Some(fd) = &tracker {
            spec.tracker = u32::try_from(fds.len()).ok();
            fds.push(std::os::fd::AsRawFd::as_raw_fd(fd));
        }
        let launched = match method {
            StartMethod::Spawn => spawn::launch(spec, portable?, &fds),
            _ => forkserver::launch(spec, portable?, &fds),
        };
        // The arguments own the fds just sent: drop them only now.
        drop(target);
        drop(tracker);
        launched
    };
    if long_lived_thread_needed { on_launcher_thread(here) } else { here() }
}

type Job = Box<dyn FnOnce() + Send>;
type LauncherSlot = Option<(Pid, mpsc::Sender<Job>)>;

/// The launcher thread's queue, with the pid of the process that started it. A forked
/// child has no launcher thread: it forgets the queue's sender and starts its own
/// launcher when it needs one. Forgets, not drops: dropping the last sender disconnects
/// the channel, which takes the channel's internal lock — held forever in the child if
/// the parent's launcher thread held it at the fork (a stress run hung there).
static LAUNCHER: ForkMutex<LauncherSlot> =
    ForkMutex::new(None, 20, |slot| std::mem::forget(slot.take()));

/// Runs `launch` on the launcher thread (started on first use); on this thread if no
/// launcher thread can be started.
fn on_launcher_thread(
    launch: impl FnOnce() -> Result<Launched, Error> + Send + 'static,
) -> Result<Launched, Error> {
    let (reply, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = reply.send(launch());
    });
    let unsent = match launcher() {
        Some(sender) => sender.send(job).err().map(|mpsc::SendError(job)| {
            *LAUNCHER.lock() = None;
            job
        }),
        None => Some(job),
    };
    if let Some(job) = unsent {
        job();
    }
    result.recv().unwrap_or_else(|_| Err(Error::OsError(io::Error::other(LAUNCHER_ENDED))))
}

fn launcher() -> Option<mpsc::Sender<Job>> {
    let mut slot = LAUNCHER.lock();
    let me = sys::getpid();
    if let Some((pid, sender)) = &*slot {
        if *pid == me {
            return Some(sender.clone());
        }
    }
    let (sender, jobs) = mpsc::channel::<Job>();
    pyconc_core::helper::spawn("pyconc-launcher", move || jobs.into_iter().for_each(|job| job()))
        .ok()?;
    *slot = Some((me, sender.clone()));
    Some(sender)
}

/// Whether `init()` ran in this process (or in the parent it was forked from).
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// Spawn and forkserver refuse to start a child of a program that does not call `init()`.
pub(crate) fn init_called() -> bool {
    INIT_CALLED.load(Ordering::Acquire)
}

/// Called by `init()`.
pub(crate) fn note_init_called() {
    INIT_CALLED.store(true, Ordering::Release);
}
