//! The per-process bookkeeping: CPython's `process._children`, `_current_process`,
//! `_parent_process` and `_process_counter`, and `util._exit_function`.
//!
//! Beyond CPython, a reaper thread reaps every child whose last `Process` handle was dropped
//! while it ran, so that no zombie outlives the child (CPython leaves it until the next
//! `start()` or `active_children()`). The thread starts with the first such child.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use pyconc_core::exit::AtExit;
use pyconc_core::fork::{ForkMutex, ForkMutexGuard};

use crate::StartMethod;
use crate::process::start::{ChildSpec, Waiter};
use crate::process::{Inner, Role};
use crate::sys::{self, Pid};

/// The bookkeeping of one process; reset in every child.
pub(crate) struct State {
    /// The last number handed out for a child's identity (CPython's `_process_counter`).
    counter: u32,
    /// Started children not yet known to have ended (CPython's `_children`).
    children: Vec<Arc<Inner>>,
    current: Option<Arc<Inner>>,
    parent: Option<Arc<Inner>>,
    /// Running children whose every handle was dropped; the reaper waits for them.
    orphans: Vec<Arc<Inner>>,
    /// The reaper thread's wake-up eventfd, once it runs.
    reaper: Option<Arc<OwnedFd>>,
}

impl State {
    /// In every forked child: the parent's children are not the child's, and threads do
    /// not survive a fork, so the reaper is gone too. (Who the child is, `current` and
    /// `parent`, is set by [`become_child`] in a child that `Process` started.)
    fn reset_in_child(&mut self) {
        self.counter = 0;
        self.children.clear();
        self.orphans.clear();
        self.reaper = None;
    }
}

/// Held across `fork()` first of this crate's locks (`pyconc_core::fork`'s order 10).
static STATE: ForkMutex<State> = ForkMutex::new(
    State {
        counter: 0,
        children: Vec::new(),
        current: None,
        parent: None,
        orphans: Vec::new(),
        reaper: None,
    },
    10,
    State::reset_in_child,
);

pub(crate) fn state() -> ForkMutexGuard<State> {
    STATE.lock()
}

/// The current process's name, for the logger's `[LEVEL/ProcessName]` lines.
fn current_name() -> String {
    current().name()
}

fn current_of(state: &mut State) -> Arc<Inner> {
    pyconc_core::logging::set_process_name_source(current_name);
    Arc::clone(state.current.get_or_insert_with(|| {
        Inner::new_self(
            "_MainProcess",
            "MainProcess".to_owned(),
            false,
            Vec::new(),
            Role::Current,
            sys::getpid(),
            None,
        )
    }))
}

/// The calling process's own object.
pub(crate) fn current() -> Arc<Inner> {
    current_of(&mut state())
}

/// The parent's object, in a child.
pub(crate) fn parent() -> Option<Arc<Inner>> {
    state().parent.clone()
}

/// The identity of a new child: the creator's identity plus the next counter value.
pub(crate) fn next_identity() -> Vec<u32> {
    let mut state = state();
    let mut identity = current_of(&mut state).identity.clone();
    state.counter += 1;
    identity.push(state.counter);
    identity
}

/// Who a new child is: its own record and its parent's, made from its [`ChildSpec`]
/// before [`become_child`] installs them. A forked child gets them from its parent, which
/// makes them before the fork: installing them then moves pointers into the bookkeeping,
/// and the child allocates, frees and compares nothing (each heap page it would write is a
/// copy-on-write fault; five of them were two thirds of what a fork child's start cost
/// beyond a raw fork's).
pub(crate) struct ChildRecords {
    current: Arc<Inner>,
    parent: Arc<Inner>,
    /// A second handle of `parent`, made beforehand so that the child need not write its
    /// reference count: the parent whose pidfd is opened on first use (not a fork-server
    /// child's, whose parent is opened at once).
    unopened: Option<Arc<Inner>>,
    authkey: Vec<u8>,
    logging: (pyconc_core::logging::LevelFilter, bool),
}

impl ChildRecords {
    /// The records of a child started with `spec`: made in the parent for a forked child,
    /// in the child itself for spawn and forkserver ones.
    pub(crate) fn new(spec: ChildSpec) -> ChildRecords {
        let current = Inner::new_self(
            "Process",
            spec.name,
            spec.daemon,
            spec.identity,
            Role::Current,
            sys::getpid(),
            None,
        );
        let parent_pid = Pid(spec.parent_pid);
        // A fork or spawn child is its parent's child: its parent's pidfd can be opened
        // safely later, when `parent_process()` first needs it (`sys::parent_pidfd`
        // checks that the pid still names the parent). A fork-server child's parent is the
        // server, so the pid of the process that asked for it is taken now, while that one
        // waits.
        let lazy = spec.method != StartMethod::ForkServer;
        let sentinel =
            if lazy { None } else { sys::pidfd_open(parent_pid).ok().map(Waiter::Pidfd) };
        let parent = Inner::new_self(
            "_ParentProcess",
            spec.parent_name,
            false,
            Vec::new(),
            Role::Parent,
            parent_pid,
            sentinel,
        );
        // The key the parent started this process with.
        *pyconc_core::sync::lock(&parent.authkey) = spec.authkey.clone();
        let unopened = lazy.then(|| {
            parent.defer_waiter();
            Arc::clone(&parent)
        });
        ChildRecords { current, parent, unopened, authkey: spec.authkey, logging: spec.logging }
    }
}

/// Makes the bookkeeping describe a new child: CPython's `_bootstrap` resetting
/// `_children`, `_process_counter`, `_current_process` and `_parent_process`. In a forked
/// child it writes only pages that the fork hooks wrote already (the bookkeeping's and
/// the key's locks) and, once, the unopened parent's slot.
pub(crate) fn become_child(records: ChildRecords) {
    let ChildRecords { current, parent, unopened, authkey, logging } = records;
    pyconc_core::logging::set_process_name_source(current_name);
    pyconc_core::logging::apply_config(logging);
    let mut state = state();
    super::authkey::install(authkey);
    state.reset_in_child();
    // The parent's own records (no fd in them) are let go of without a drop, which would
    // write their heap pages: copy-on-write faults for memory this child never uses.
    std::mem::forget(state.current.replace(current));
    std::mem::forget(state.parent.replace(parent));
    if let Some(parent) = unopened {
        std::mem::forget(pyconc_core::sync::lock(&UNOPENED_PARENT).replace(parent));
        register_parent_hook();
    }
}

/// The parent whose pidfd this child has not opened yet (see [`become_child`]).
static UNOPENED_PARENT: std::sync::Mutex<Option<Arc<Inner>>> = std::sync::Mutex::new(None);

static OPEN_PARENT_BEFORE_FORK: pyconc_core::fork::Registration =
    pyconc_core::fork::Registration::new();

/// Registers [`OpenParentBeforeFork`] in a parent about to fork a `Process` (it does
/// nothing there): a forked child then finds it registered, and its `become_child` writes
/// no page of the hook list (each page it writes is a copy-on-write fault).
pub(crate) fn register_parent_hook() {
    OPEN_PARENT_BEFORE_FORK.ensure(5, &OpenParentBeforeFork);
}

/// Before any fork of this process — the library's or a raw `fork()` — the parent's
/// pidfd is opened if it was not yet: only here can the pid be checked against
/// `getppid`, and a descendant forked without `Process` keeps this process's parent as
/// its `parent_process()`, with its sentinel, as in CPython.
struct OpenParentBeforeFork;

impl pyconc_core::fork::AtFork for OpenParentBeforeFork {
    fn prepare(&'static self) {
        let parent = pyconc_core::sync::lock(&UNOPENED_PARENT).take();
        if let Some(parent) = parent {
            let _ = parent.waiter();
        }
    }
    fn parent(&'static self) {}
    fn child(&'static self) {}
}

/// Records a started child.
pub(crate) fn add(child: Arc<Inner>) {
    state().children.push(child);
}

/// Forgets a child that has ended (or was closed).
pub(crate) fn remove(child: &Arc<Inner>) {
    let mut state = state();
    state.children.retain(|c| !Arc::ptr_eq(c, child));
    state.orphans.retain(|c| !Arc::ptr_eq(c, child));
}

/// The started children not yet known to have ended.
pub(crate) fn list() -> Vec<Arc<Inner>> {
    state().children.clone()
}

/// Reaps every child that has ended (CPython's `process._cleanup`).
pub(crate) fn cleanup() {
    for child in list() {
        if !matches!(child.poll_exit(), Ok(None)) {
            remove(&child);
        }
    }
}

/// The last handle of `child` was dropped: if it still runs, the reaper takes it.
pub(crate) fn last_handle_dropped(child: &Arc<Inner>) {
    if !child.running_child() {
        return;
    }
    let mut state = state();
    let known = |list: &[Arc<Inner>]| list.iter().any(|c| Arc::ptr_eq(c, child));
    // Only a started child not yet reaped; once (handles come and go, e.g. through
    // `active_children()`).
    if !known(&state.children) || known(&state.orphans) {
        return;
    }
    state.orphans.push(Arc::clone(child));
    let wake = match &state.reaper {
        Some(wake) => Arc::clone(wake),
        None => {
            let Ok(wake) = sys::eventfd() else { return };
            let wake = Arc::new(wake);
            let for_thread = Arc::clone(&wake);
            let spawned =
                pyconc_core::helper::spawn("pyconc-reaper", move || reap_orphans(&for_thread));
            if spawned.is_err() {
                // No thread: the orphan is reaped by the next start(), active_children()
                // or exit, as in CPython.
                return;
            }
            state.reaper = Some(Arc::clone(&wake));
            wake
        }
    };
    sys::eventfd_signal(wake.as_fd());
}

/// The reaper thread: sleeps on the orphans' sentinels and reaps each as it ends.
fn reap_orphans(wake: &OwnedFd) {
    loop {
        let orphans: Vec<(Arc<Inner>, Arc<Waiter>)> =
            state().orphans.iter().filter_map(|o| o.waiter().map(|w| (Arc::clone(o), w))).collect();
        let mut fds = vec![wake.as_fd()];
        fds.extend(orphans.iter().map(|(_, w)| w.sentinel()));
        if sys::wait_any_readable(&fds, None).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        sys::eventfd_clear(wake.as_fd());
        for (orphan, _) in orphans {
            if !matches!(orphan.poll_exit(), Ok(None)) {
                remove(&orphan);
            }
        }
    }
}

/// CPython's `_exit_function` terminates the daemonic children and joins every child
/// between the finalizers of priority >= 0 and the rest: here it is a finalizer of
/// priority 0, registered when a process starts its first child.
static EXIT_CHILDREN: AtExit = AtExit::new(exit_children, 0);

/// Registers [`exit_children`] as an exit finalizer, once per process.
pub(crate) fn install_exit_function() {
    EXIT_CHILDREN.install();
}

/// The children's part of CPython's `util._exit_function`, run at exit and at the end of
/// every child: terminate the daemonic children, then join every child.
fn exit_children() {
    for child in crate::active_children() {
        if child.daemon() {
            pyconc_core::logging::info(|| {
                format!("calling terminate() for daemon {}", child.name())
            });
            let _ = child.terminate();
        }
    }
    for child in crate::active_children() {
        pyconc_core::logging::info(|| format!("calling join() for process {}", child.name()));
        let _ = child.join();
    }
}
