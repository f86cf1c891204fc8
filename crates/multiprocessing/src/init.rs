//! The program's entry hook: CPython's `multiprocessing.freeze_support()`, and what a
//! spawned child, the fork server and an MPI rank run instead of `main`. The top layer of
//! the crate: it hands the process to the start methods or the MPI pool.

use crate::process::start;

/// The entry hook for spawn and forkserver children: the first line of `main`.
///
/// Python: `multiprocessing.freeze_support()` — what a frozen executable calls first so
/// that a child started with `--multiprocessing-fork` runs its target instead of `main`.
///
/// In the parent it only notes that the program calls it (spawn and forkserver refuse to
/// start a child of a program that does not). In a child started by spawn it receives
/// the target over a pipe, runs it and exits the process; in the fork server it serves
/// forever.
///
/// # Call it first: code before it runs in every child
///
/// Spawn and forkserver children run this very program again. **Everything `main` does
/// before it calls `init()` also runs in every such child** — Rust has no
/// `if __name__ == "__main__"` guard — so `init()` must be `main`'s first line. A process
/// started by code that runs before `init()` in a spawned child fails with CPython's
/// "An attempt has been made to start a new process before the current process has
/// finished its bootstrapping phase" error, instead of starting processes without end.
///
/// A program that never calls `init()` cannot use spawn or forkserver: `start()` says so
/// instead of running `main` a second time in the child. Test binaries, whose `main` is
/// libtest's, put [`init_before_main!()`](crate::init_before_main) at the top of the test
/// crate instead.
///
/// # Examples
///
/// ```no_run
/// fn square(n: u64) {
///     println!("{}", n * n);
/// }
///
/// fn main() -> Result<(), multiprocessing::Error> {
///     multiprocessing::init(); // a spawned child runs its target here, then exits
///     multiprocessing::set_start_method(multiprocessing::StartMethod::Spawn)?;
///     let p = multiprocessing::Process::call(square, 12);
///     p.start()?;
///     p.join()
/// }
/// ```
pub fn init() {
    pyconc_core::start::ensure_started();
    start::note_init_called();
    if let Some(role) = start::spawn::take_child_role() {
        start::spawn::run_child_role(role);
    }
    // Under mpirun, ranks other than 0 become pool workers here and never return.
    #[cfg(feature = "mpi")]
    crate::pool::mpi::init();
}

/// Calls [`init()`] before `main`, for programs whose `main` is not theirs to edit: test
/// binaries (libtest's `main`) and benches. Put it once at the top level of the crate.
///
/// It adds an ELF `.init_array` entry (as the `ctor` crate does), so a spawned child runs
/// its target before `main` starts, and `main` (the test harness) never runs in it.
///
/// # Examples
///
/// ```no_run
/// // tests/spawn.rs
/// multiprocessing::init_before_main!();
///
/// fn work(n: u32) {
///     assert_eq!(n, 7);
/// }
///
/// #[test]
/// fn spawn_runs_work() {
///     let p = multiprocessing::Process::builder()
///         .start_method(multiprocessing::StartMethod::Spawn)
///         .call(work, 7);
///     p.start().unwrap();
///     p.join().unwrap();
///     assert_eq!(p.exitcode(), Some(0));
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! init_before_main {
    () => {
        const _: () = {
            extern "C" fn __multiprocessing_init_before_main() {
                $crate::init();
            }
            // SAFETY: `.init_array` holds `extern "C" fn()`s that the loader calls once, on
            // the main thread, before `main`; `init` is written to run that early.
            #[unsafe(link_section = ".init_array")]
            #[used]
            static __MULTIPROCESSING_INIT_BEFORE_MAIN: extern "C" fn() =
                __multiprocessing_init_before_main;
        };
    };
}
