//! The Pool over MPI (feature `mpi`), run as users run it: the `mpi_pool` example under
//! `mpirun -n 3` on this machine (rank 0 runs main, ranks 1 and 2 serve), and the same
//! binary without `mpirun`, which must refuse with a message that says how to launch.
//! Skipped with a message where `mpirun` is not installed.
#![cfg(feature = "mpi")]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // deps/
    path.pop(); // <profile>/
    path.join("examples").join("mpi_pool")
}

fn have_mpirun() -> bool {
    Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// `mpirun -n 3 mpi_pool MODE`, allowed to run as root and on fewer cores than ranks.
fn mpirun(mode: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "3"])
        .arg(example())
        .arg(mode)
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .output()
        .expect("mpirun runs");
    (out, started.elapsed())
}

#[test]
fn the_mpi_pool_maps_over_the_other_ranks() {
    if !have_mpirun() {
        eprintln!("mpirun is not installed: skipping the MPI pool test");
        return;
    }
    let (out, took) = mpirun("--fast");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < Duration::from_secs(60), "{took:?}");
    for line in [
        "MPI pool of 2 worker ranks",
        "map: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "imap_unordered, sorted: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "apply_async: 144",
        "a task panicked: 7 is odd",
        "ran on: MPIPoolWorker-1, MPIPoolWorker-2",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("items/s, local process pool"), "{text}");
    // The local pool is forked by the fork server, not by this process, whose MPI threads
    // run: no fork-with-threads warning.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("multi-threaded, use of fork()"), "{stderr}");
}

#[test]
fn without_mpirun_the_mpi_pool_says_how_to_launch() {
    let out = Command::new(example()).arg("--fast").output().expect("the example runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.starts_with(
            "the MPI pool runs under mpirun: launch the program as `mpirun -n N program`"
        ),
        "{text}"
    );
}

/// The failure model: a rank that dies ends the whole job (MPI cannot replace it), and a
/// task past the pool's deadline aborts it — neither hangs.
#[test]
fn a_dead_rank_or_a_hung_task_ends_the_job() {
    if !have_mpirun() {
        eprintln!("mpirun is not installed: skipping the MPI pool test");
        return;
    }
    for (mode, within) in [("--die", Duration::from_secs(15)), ("--hang", Duration::from_secs(20))]
    {
        let (out, took) = mpirun(mode);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{mode}: {text}");
        assert!(text.contains("failing on purpose"), "{mode}: {text}");
        assert!(!text.contains("unreachable"), "{mode}: {text}");
        assert!(took < within, "{mode}: took {took:?}");
        if mode == "--hang" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("held a task for more than 1s; aborting the job"), "{err}");
        }
    }
}

/// Issue 14, item 3: the pool sends code offsets to the other ranks, meaningful only in
/// the same executable. A job whose ranks 1 and 2 run another program (`mp_marker`,
/// through mpirun's `:` syntax) is aborted at start-up with a message naming both
/// executables, before any offset is used. (Before the fix those ranks would have called
/// whatever code the offsets named in their binary.)
#[test]
fn a_rank_running_another_executable_aborts_the_job() {
    if !have_mpirun() {
        eprintln!("mpirun is not installed: skipping the MPI pool test");
        return;
    }
    let other = example().with_file_name("mp_marker");
    let started = Instant::now();
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "1"])
        .arg(example())
        .arg("--fast")
        .args([":", "-n", "2"])
        .arg(&other)
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .output()
        .expect("mpirun runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the job ran: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("runs a different executable than rank 0"), "{stderr}");
    assert!(stderr.contains("rank 0: executable sha256 "), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
