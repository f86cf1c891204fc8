//! The libc call `threading` makes itself: whether a thread is parked inside `exit`.
//! Thread identities and naming a thread for the OS come from `pyconc_core::sys`, which
//! also installs the exit and fork hooks.

pub(crate) use pyconc_core::sys::{getpid, gettid, pthread_self, set_thread_name};

/// Whether thread `tid` of this process sleeps in `pause()`: where Rust parks every thread
/// that calls `std::process::exit` after another thread began exiting (std's guard against
/// concurrent `exit()`), never to return. Read from `/proc/self/task/TID/syscall`, whose
/// first field is the number of the system call the thread is blocked in.
pub(crate) fn parked_in_exit(tid: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let mut fields = text.split_whitespace();
    let number = fields.next().and_then(|n| n.parse::<i64>().ok());
    #[cfg(target_arch = "x86_64")]
    {
        number == Some(libc::SYS_pause)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // No pause system call: glibc's pause() is ppoll(NULL, 0, NULL, NULL).
        number == Some(libc::SYS_ppoll) && fields.take(4).all(|arg| arg == "0x0")
    }
}
