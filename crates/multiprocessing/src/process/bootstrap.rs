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
use std::os::unix::net::UnixStream;

use pyconc_core::logging;

use crate::Error;
use crate::sys;

/// How a child process ends.
#[derive(Debug)]
pub(crate) enum Ending {
    /// `_exit(code)`: fork children.
    Immediate,
    /// `_exit(code)`, after writing the wait status of that exit into the socket its
    /// parent waits on (fork-server children): the parent learns the end at once, not
    /// after the server noticed it. The server still reaps the child and writes the
    /// status it got; the parent keeps the first to come.
    Reported(UnixStream),
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
        Ending::Reported(socket) => {
            // The raw wait status of `_exit(code)`, as the server reports it.
            let raw = sys::ExitStatus::Exited(code).to_raw();
            let _ = (&socket).write_all(&raw.to_ne_bytes());
            sys::exit_now(code)
        }
        Ending::Normal => std::process::exit(code),
    }
}
