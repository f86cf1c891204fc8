//! The `multiprocessing` logger: CPython's `util.get_logger()` / `util.log_to_stderr()`
//! and the messages the library logs at CPython's points (`child process calling
//! self.run()`, `process shutting down`, `added worker`, ...).
//!
//! Every message goes to the [`log`] facade under the target `multiprocessing`, so a
//! program with a logger of its own (`env_logger`, `tracing-log`, ...) gets them there.
//! After [`log_to_stderr`] they are also written to stderr in CPython's format,
//! `[LEVEL/ProcessName] message`, whatever logger the program has (CPython adds a handler
//! to its logger the same way). The level decides for both: nothing below it is built.
//!
//! CPython's extra levels map onto `log`'s: `SUBDEBUG` (5) is [`Level::Trace`] and is
//! printed as `SUBDEBUG`; `SUBWARNING` (25) is not used by the library.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use log::{Level, LevelFilter};

/// The target every message of the library carries.
pub const TARGET: &str = "multiprocessing";

/// The logger's level (a `LevelFilter` as usize); `Off` until set, as CPython's
/// `multiprocessing` logger is silent until configured.
static LEVEL: AtomicUsize = AtomicUsize::new(LevelFilter::Off as usize);

/// Whether [`log_to_stderr`] added the stderr handler.
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// The current process's name for the stderr format (`multiprocessing` registers it).
static PROCESS_NAME: OnceLock<fn() -> String> = OnceLock::new();

/// The `multiprocessing` logger. Python: `multiprocessing.util.get_logger()`.
#[derive(Debug, Clone, Copy)]
pub struct Logger(());

/// The `multiprocessing` logger; its level is `Off` until set (CPython: `NOTSET` with no
/// handler, so nothing is shown).
pub fn get_logger() -> Logger {
    Logger(())
}

/// Makes the `multiprocessing` logger write to stderr in CPython's format, and sets its
/// level when one is given. Python: `multiprocessing.log_to_stderr(level=None)`.
pub fn log_to_stderr(level: Option<LevelFilter>) -> Logger {
    TO_STDERR.store(true, Ordering::Relaxed);
    if let Some(level) = level {
        get_logger().set_level(level);
    } else if get_logger().level() == LevelFilter::Off {
        // CPython's logger without a level passes everything on to its handler; here a
        // level of Off would show nothing, so the handler starts at WARNING, the root
        // logger's default that CPython's effective level falls back to.
        get_logger().set_level(LevelFilter::Warn);
    }
    get_logger()
}

impl Logger {
    /// Sets the level: messages below it are neither built nor shown.
    /// Python: `logger.setLevel(level)`.
    pub fn set_level(&self, level: LevelFilter) {
        LEVEL.store(level as usize, Ordering::Relaxed);
        // The facade's global filter must let them through too.
        if log::max_level() < level {
            log::set_max_level(level);
        }
    }

    /// The level. Python: `logger.level`.
    pub fn level(&self) -> LevelFilter {
        level_filter(LEVEL.load(Ordering::Relaxed))
    }

    /// Whether a message of `level` would be logged. Python: `logger.isEnabledFor(level)`.
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level()
    }
}

fn level_filter(raw: usize) -> LevelFilter {
    LevelFilter::iter().find(|f| *f as usize == raw).unwrap_or(LevelFilter::Off)
}

/// The logger's configuration, for a child that does not inherit the parent's memory
/// (spawn, forkserver: CPython passes `log_to_stderr` and the level in the preparation
/// data): the level, and whether it writes to stderr.
pub fn config() -> (LevelFilter, bool) {
    (get_logger().level(), TO_STDERR.load(Ordering::Relaxed))
}

/// Applies a parent's [`config`] in a child.
pub fn apply_config((level, to_stderr): (LevelFilter, bool)) {
    if to_stderr {
        log_to_stderr(Some(level));
    } else if level != LevelFilter::Off {
        get_logger().set_level(level);
    }
}

/// Tells the logger how to name the current process in the stderr format. The function
/// must not log.
pub fn set_process_name_source(name: fn() -> String) {
    let _ = PROCESS_NAME.set(name);
}

/// CPython's name of a level in the stderr format.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "SUBDEBUG",
    }
}

/// The line [`log_to_stderr`] writes for `message` at `level` in process `process`.
pub fn format_line(level: Level, process: &str, message: &str) -> String {
    format!("[{}/{process}] {message}\n", level_name(level))
}

/// Logs `message` (built only if the level lets it through) at `level`.
pub fn emit(level: Level, message: impl FnOnce() -> String) {
    if !get_logger().enabled(level) {
        return;
    }
    let message = message();
    if TO_STDERR.load(Ordering::Relaxed) {
        let process = PROCESS_NAME.get().map_or_else(|| "MainProcess".to_owned(), |name| name());
        // One write: lines of concurrent processes and threads do not interleave.
        let _ =
            std::io::stderr().lock().write_all(format_line(level, &process, &message).as_bytes());
    }
    log::log!(target: TARGET, level, "{message}");
}

/// `emit(Level::Debug, ..)`: CPython's `util.debug`.
pub fn debug(message: impl FnOnce() -> String) {
    emit(Level::Debug, message);
}

/// `emit(Level::Info, ..)`: CPython's `util.info`.
pub fn info(message: impl FnOnce() -> String) {
    emit(Level::Info, message);
}

/// `emit(Level::Trace, ..)`: CPython's `util.sub_debug` (level SUBDEBUG).
pub fn sub_debug(message: impl FnOnce() -> String) {
    emit(Level::Trace, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_cpythons_format() {
        assert_eq!(
            format_line(Level::Info, "Process-1", "process shutting down"),
            "[INFO/Process-1] process shutting down\n"
        );
        assert_eq!(format_line(Level::Trace, "MainProcess", "x"), "[SUBDEBUG/MainProcess] x\n");
        assert_eq!(format_line(Level::Warn, "P", "w"), "[WARNING/P] w\n");
    }
}
