//! What runs in every child, whatever started it: CPython's `BaseProcess._bootstrap`.
//!
//! 1. stdin is pointed at `/dev/null` (CPython closes `sys.stdin` and opens `os.devnull`);
//! 2. the target runs; a panic (or a target that could not be decoded) makes the exit
//!    code 1, otherwise it is 0 (`std::process::exit(n)` inside the target exits with `n`
//!    after the same clean-up, through the threading crate's exit hook);
//! 3. CPython's `_exit_function` (`pyconc_core::exit`): the exit finalizers run — pools are
//!    terminated, daemonic children terminated and every child joined, queue feeders
//!    flushed;
//! 4. a panic is reported to stderr as `Process NAME:` and the panic (CPython prints the
//!    traceback after that line) — after step 3, as CPython does;
//! 5. `threading._shutdown()`: the child waits for its non-daemon threads;
//! 6. stdout and stderr are flushed and the process exits: with `_exit` for fork and
//!    forkserver children (they must not run the parent's `atexit` handlers or return into
//!    the parent's stack), with `std::process::exit` for spawn children (a fresh program,
//!    whose own exit handlers run, as CPython's `sys.exit`).

use std::io::Write;

use pyconc_core::logging;

use crate::Error;
use crate::sys;

/// How a child process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `_exit(code)`: fork and forkserver children.
    Immediate,
    /// `std::process::exit(code)`: spawn children.
    Normal,
}

/// Runs a child's target and ends the process. The bookkeeping must already describe the
/// child (`children::become_child`).
pub(crate) fn run(ending: Ending, body: impl FnOnce() -> Result<(), Error>) -> ! {
    let _ = sys::stdin_from_dev_null();
    let mut failure: Option<String> = None;
    logging::info(|| "child process calling self.run()".to_owned());
    let outcome = pyconc_core::panic::catch_panic(|| {
        if let Err(error) = body() {
            failure = Some(format!("{error}\n"));
        }
    });
    if let Err(caught) = outcome {
        failure = Some(caught.describe());
    }
    let code = i32::from(failure.is_some());
    pyconc_core::exit::exit_function();
    if let Some(report) = failure {
        let name = crate::current_process().name();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "Process {name}:\n{report}");
        let _ = stderr.flush();
    }
    threading::shutdown();
    logging::info(|| format!("process exiting with exitcode {code}"));
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match ending {
        Ending::Immediate => sys::exit_now(code),
        Ending::Normal => std::process::exit(code),
    }
}
