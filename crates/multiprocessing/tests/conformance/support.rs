//! Helpers shared by the process tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use multiprocessing::{Process, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

static FORK: Mutex<()> = Mutex::new(());

/// Held by every test that starts a process (a `Process`, a `Pool`'s workers, a
/// `Manager`'s server): one test forks at a time, and no other test's children are about
/// when this one's are counted. On drop, checks that no zombie child is left.
pub(crate) struct Serial {
    _guard: MutexGuard<'static, ()>,
}

pub(crate) fn serial() -> Serial {
    Serial { _guard: FORK.lock().unwrap_or_else(PoisonError::into_inner) }
}

impl Drop for Serial {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // One snapshot both decides and is reported: a second one could find a zombie
        // that a test running beside this one made a moment ago (and reaps soon).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut left = zombies();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            left = zombies();
        }
        assert!(left.is_empty(), "zombie children left behind: {}", describe_zombies(&left));
    }
}

/// `/proc/PID/stat` (`path`) read and split: the command name (between the parentheses,
/// which may hold spaces) and the fields after it, the state first.
fn read_stat(path: impl AsRef<std::path::Path>) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(').map_or("", |(_, name)| name).to_owned();
    Some((name, rest.split_whitespace().map(str::to_owned).collect()))
}

/// Each zombie's pid and the name it was forked under (a forked child keeps the name of
/// the thread that forked it, here a test's name, until it runs another program), and
/// for how long it has existed: who left it behind.
pub(crate) fn describe_zombies(pids: &[i32]) -> String {
    let ticks = 100.0; // USER_HZ: /proc's clock ticks per second on Linux.
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0);
    let one = |pid: i32| {
        let stat = read_stat(format!("/proc/{pid}/stat"));
        // `starttime` is field 22 of the line, the 20th after the name.
        let start = stat.as_ref().and_then(|(_, fields)| fields.get(19)?.parse::<f64>().ok());
        let age = start.map(|s| format!("{:.1} s", uptime - s / ticks)).unwrap_or_default();
        let name = stat.map_or_else(|| "?".to_owned(), |(name, _)| name);
        format!("{pid} ({name:?}, started {age} ago)")
    };
    pids.iter().map(|&pid| one(pid)).collect::<Vec<_>>().join(", ")
}

/// The pids of this process's children that have ended but were not reaped.
pub(crate) fn zombies() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some((_, fields)) = read_stat(entry.path().join("stat")) else { continue };
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == me {
            found.extend(entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
        }
    }
    found
}

/// A process of `method` running `function(args)`.
pub(crate) fn call<A>(method: StartMethod, function: fn(A), args: A) -> Process
where
    A: Serialize + DeserializeOwned + Send + 'static,
{
    Process::builder().start_method(method).call(function, args)
}

/// A fresh path in the temporary directory (removed when the value drops).
pub(crate) struct TempPath(pub(crate) PathBuf);

impl TempPath {
    pub(crate) fn new(tag: &str) -> TempPath {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("pyconc-mp-{}-{tag}-{n}", std::process::id())))
    }

    pub(crate) fn arg(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    pub(crate) fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }

    /// Waits until the file holds at least `lines` lines.
    pub(crate) fn wait_lines(&self, lines: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.read();
            if text.lines().count() >= lines || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Appends a line to the file at `path` (children report through files).
pub(crate) fn append(path: &str, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    // One write (O_APPEND): lines of concurrent writers never interleave.
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Whether process `pid` is gone (or a zombie: it has ended, whoever reaps it).
pub(crate) fn process_ended(pid: i32) -> bool {
    match read_stat(format!("/proc/{pid}/stat")) {
        None => true,
        Some((_, fields)) => fields.first().is_some_and(|state| state == "Z"),
    }
}

/// What `/proc` says about a process and its threads (state, wait channel, kernel stack,
/// command line): for the message of a test that found a process alive when it should
/// have ended.
pub(crate) fn describe_process(pid: i32) -> String {
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
    let mut out = format!(
        "process {pid}: cmdline {:?}\n",
        read(format!("/proc/{pid}/cmdline")).replace('\0', " ")
    );
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    for task in tasks.into_iter().flatten().flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let at = |file: &str| read(format!("/proc/{pid}/task/{tid}/{file}"));
        let state = at("status").lines().find(|l| l.starts_with("State:")).unwrap_or("").to_owned();
        out += &format!(
            "  thread {tid} {:?} {state} wchan {:?}\n{}",
            at("comm").trim(),
            at("wchan"),
            at("stack")
        );
    }
    out + &user_stacks(pid)
}

/// The user-space stacks of every thread of `pid`, from `gdb` if this machine has it
/// (where a hung child waits, which its kernel stack does not tell); else nothing.
fn user_stacks(pid: i32) -> String {
    let gdb = std::process::Command::new("timeout")
        .args(["30", "gdb", "-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 40"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match gdb {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let frames: Vec<&str> =
                text.lines().filter(|l| l.starts_with('#') || l.starts_with("Thread ")).collect();
            format!("user-space stacks (gdb):\n{}\n", frames.join("\n"))
        }
        _ => String::new(),
    }
}

/// Defines `mod NAME { fn fork(); fn spawn(); fn forkserver(); }` tests calling `body(method)`.
#[macro_export]
macro_rules! each_start_method {
    ($($name:ident => $body:ident;)*) => {
        $(
            mod $name {
                use multiprocessing::StartMethod;

                #[test]
                fn fork() {
                    let _serial = $crate::support::serial();
                    super::$body(StartMethod::Fork);
                }

                #[test]
                fn spawn() {
                    let _serial = $crate::support::serial();
                    super::$body(StartMethod::Spawn);
                }

                #[test]
                fn forkserver() {
                    let _serial = $crate::support::serial();
                    super::$body(StartMethod::ForkServer);
                }
            }
        )*
    };
}

/// Whether `python3` is missing here; says so on stderr, for the CPython
/// interoperability tests, which then skip.
pub(crate) fn python_missing() -> bool {
    let runs = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        eprintln!("python3 is not installed: skipping the CPython interoperability test");
    }
    !runs
}
