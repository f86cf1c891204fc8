//! What a hostile environment, inherited fds or an unprivileged user can make a program
//! of this crate do (issue 14). Each test runs an example binary as a child process.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const MARKER: &str = "PYCONC_MULTIPROCESSING_FORK";
const NORMAL: &str = "main ran as a normal program\n";

fn example(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // deps/
    path.pop(); // <profile>/
    path.join("examples").join(name)
}

/// Runs `command` with `theirs` placed at fd 10 of the child, close-on-exec cleared —
/// what the parent of a spawned child does — and `ours`, the other end, closed once it
/// started.
fn run_with_fd_10(mut command: Command, theirs: impl AsRawFd, ours: impl Sized) -> Output {
    let fd = theirs.as_raw_fd();
    // SAFETY: between fork and exec the child only calls dup2, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 10) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("cannot run the example");
    drop((theirs, ours));
    child.wait_with_output().expect("cannot wait for the example")
}

fn marked(program: impl Into<PathBuf>, role: &str) -> Command {
    let mut command = Command::new(program.into());
    command.env(MARKER, format!("{role}:10")).env_remove("RUST_BACKTRACE");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The baseline: a genuine marker (our socket, we are the parent, same user) is honoured:
/// the child reads its payload instead of running `main`, and says it could not.
#[test]
fn a_genuine_marker_is_honoured() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let out = run_with_fd_10(marked(example("mp_marker"), "spawn"), theirs, ours);
    assert_eq!(text(&out.stdout), "", "main ran: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("could not read its target"), "{}", text(&out.stderr));
}

/// A marker whose fd is not a socket (a pipe) is ignored: `main` runs. (Before the fix
/// the child took the pipe as its payload channel and failed reading it.)
#[test]
fn a_marker_naming_a_pipe_is_ignored() {
    let (read, write) = std::io::pipe().unwrap();
    let out = run_with_fd_10(marked(example("mp_marker"), "spawn"), read, write);
    assert_eq!(text(&out.stdout), NORMAL, "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

/// A marker whose socket was made by a process other than the parent is ignored: here
/// the test makes the socket pair, and a shell (the example's parent) runs the example.
#[test]
fn a_marker_whose_socket_comes_from_another_process_is_ignored() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut command = marked("/bin/sh", "spawn");
    command.arg("-c").arg(format!("{}; exit $?", example("mp_marker").display()));
    let out = run_with_fd_10(command, theirs, ours);
    assert_eq!(text(&out.stdout), NORMAL, "{}", text(&out.stderr));
}

/// A marker naming a closed fd, a malformed one, or an unknown role is ignored.
#[test]
fn malformed_markers_are_ignored() {
    for value in ["spawn:99", "spawn:x", "spawn", "other:10", "spawn:1", ""] {
        let out = Command::new(example("mp_marker")).env(MARKER, value).output().unwrap();
        assert_eq!(text(&out.stdout), NORMAL, "{value}: {}", text(&out.stderr));
    }
}

/// The marker is not inherited as a live role: a genuine spawn child's own `Command`s
/// run programs that ignore it (the fd is close-on-exec once taken).
#[test]
fn a_taken_marker_does_not_reach_programs_the_child_runs() {
    let out = Command::new(example("mp_marker")).arg("spawn-a-child").output();
    let out = out.expect("cannot run mp_marker");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{NORMAL}grandchild: {NORMAL}"), "{}", text(&out.stderr));
}

/// The attack of issue 14: a set-user-ID program run by an unprivileged user who forged
/// the marker and handed it a socket. Secure-execution mode (`AT_SECURE`) ignores the
/// marker, even though the socket passes every other check (its peer is the parent and
/// runs as root, the program's effective user). Needs root to make the set-user-ID copy;
/// skipped elsewhere.
#[test]
fn a_set_user_id_program_ignores_the_marker() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return eprintln!("skipped: making a set-user-ID program needs root");
    }
    let dir = std::env::temp_dir().join(format!("pyconc-setuid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("mp_marker");
    std::fs::copy(example("mp_marker"), &program).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut command = marked(&program, "spawn");
    command.uid(65534).gid(65534);
    let out = run_with_fd_10(command, theirs, ours);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(text(&out.stdout), NORMAL, "{}", text(&out.stderr));
}

/// Issue 14, item 5: an fd that `Connection::close` keeps valid (pointing at /dev/null)
/// stays close-on-exec, and no fd of the crate's objects reaches a program run with
/// `Command`: the example lists the fds that a program it runs inherited. (Before the
/// fix, the closed end's `/dev/null` leaked.)
#[test]
fn no_fd_of_the_crate_leaks_into_exec_programs() {
    let out = Command::new(example("mp_fd_leak")).env_remove("RUST_BACKTRACE").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "leaked fds: []\n", "{}", text(&out.stderr));
}
