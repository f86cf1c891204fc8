//! `pyconc bench processes`: pyconc's `Process` vs raw `fork`/`exec` vs CPython's
//! `multiprocessing.Process`, start+join of an empty target, per start method.
//!
//! | operation | pyconc | raw baseline | CPython |
//! |---|---|---|---|
//! | fork start+join | `Process::builder().start_method(Fork).target(\|\| {})` | `fork()`, `_exit(0)` in the child, `waitpid` | `get_context("fork").Process(target=empty)` |
//! | spawn start+join | `...start_method(Spawn).call(empty, ())` | `Command::new("/proc/self/exe")` that exits at once, `wait` | `get_context("spawn")` |
//! | forkserver start+join | `...start_method(ForkServer).call(empty, ())` | `fork()`+`waitpid` (what the server does) | `get_context("forkserver")` |
//! | fork / forkserver / spawn start+join, 1 GiB parent | the same, from a parent holding 1 GiB of touched memory | `fork()`+`waitpid` from that parent: what copying its page tables costs | the same, from a CPython parent holding 1 GiB |

use multiprocessing::{Process, StartMethod};

use super::measure::{Operation, Report, Row, Settings, compare};
use super::python::{Python, python_figures};

const SCRIPT: &str = include_str!("processes.py");
const GROUP: &str = "processes";

/// Makes the raw spawn baseline's child (this program, run again) exit at once.
pub(crate) const RAW_SPAWN_PROBE: &str = "PYCONC_BENCH_RAW_SPAWN";

fn empty(_: ()) {}

/// `bytes` of memory with every page written: resident, so that `fork` must copy its
/// page tables.
fn touched(bytes: usize) -> Vec<u8> {
    let mut ballast = vec![0u8; bytes];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    ballast
}

struct PyconcStartJoin(StartMethod);
impl Operation for PyconcStartJoin {
    fn name(&self) -> &'static str {
        match self.0 {
            StartMethod::Fork => "multiprocessing::Process (fork)",
            StartMethod::Spawn => "multiprocessing::Process (spawn)",
            StartMethod::ForkServer => "multiprocessing::Process (forkserver)",
        }
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            let p = Process::builder().start_method(self.0).call(empty, ());
            p.start().expect("start");
            p.join().expect("join");
        }
    }
}

struct RawForkWaitpid;
impl Operation for RawForkWaitpid {
    fn name(&self) -> &'static str {
        "libc fork+_exit+waitpid"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            // SAFETY: the child calls only `_exit`, which is async-signal-safe.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: ends the child at once, as the baseline should.
                unsafe { libc::_exit(0) };
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waits for the child just created; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    }
}

struct RawSpawnOwnBinary;
impl Operation for RawSpawnOwnBinary {
    fn name(&self) -> &'static str {
        "Command::new(own binary)+wait"
    }
    fn run(&self, iterations: u64) {
        for _ in 0..iterations {
            std::process::Command::new("/proc/self/exe")
                .env(RAW_SPAWN_PROBE, "1")
                .status()
                .expect("spawn own binary");
        }
    }
}

pub(crate) fn run(
    settings: &Settings,
    python: &Python,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let quick = if settings.quick { "1" } else { "0" };
    let python_ops = python.run_script_file("processes.py", SCRIPT, &[quick]);
    let (fork, spawn, server) = (
        PyconcStartJoin(StartMethod::Fork),
        PyconcStartJoin(StartMethod::Spawn),
        PyconcStartJoin(StartMethod::ForkServer),
    );
    let rows: [(&'static str, &'static str, u64, &dyn Operation, &dyn Operation); 3] = [
        ("fork start+join", "fork_start_join", 20, &fork, &RawForkWaitpid),
        ("spawn start+join", "spawn_start_join", 4, &spawn, &RawSpawnOwnBinary),
        ("forkserver start+join", "forkserver_start_join", 20, &server, &RawForkWaitpid),
    ];
    let mut push = |operation, key, batch, pyconc: &dyn Operation, raw: &dyn Operation| {
        let (pyconc, raw) = compare(settings, batch, pyconc, raw);
        report.push(Row {
            group: GROUP,
            operation,
            pyconc,
            raw,
            python: python_figures(&python_ops, key, "CPython multiprocessing"),
        });
    };
    for (operation, key, batch, pyconc, raw) in rows {
        push(operation, key, batch, pyconc, raw);
    }
    // Start-up that should not grow with the parent: fork copies the parent's page tables,
    // spawn and forkserver should not.
    let ballast = touched(1 << 30);
    let big: [(&'static str, &'static str, u64, &dyn Operation); 3] = [
        ("fork start+join, 1 GiB parent", "fork_1gib", 2, &fork),
        ("forkserver start+join, 1 GiB parent", "forkserver_1gib", 8, &server),
        ("spawn start+join, 1 GiB parent", "spawn_1gib", 2, &spawn),
    ];
    for (operation, key, batch, pyconc) in big {
        push(operation, key, batch, pyconc, &RawForkWaitpid);
    }
    drop(std::hint::black_box(ballast));
    Ok(())
}
