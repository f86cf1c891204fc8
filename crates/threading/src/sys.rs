//! The libc calls `threading` makes itself: naming the calling thread for the OS, and
//! whether a thread is parked inside `exit`. Thread identities come from
//! `pyconc_core::sys`, which also installs the exit and fork hooks.

pub(crate) use pyconc_core::sys::{getpid, gettid, pthread_self};

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

/// The longest thread name Linux keeps, in bytes (`TASK_COMM_LEN` − 1).
const OS_NAME_MAX: usize = 15;

/// `name` cut to what the kernel keeps: at most 15 bytes, at a character boundary, and
/// without NULs (which would end it early).
pub(crate) fn os_thread_name(name: &str) -> std::ffi::CString {
    let mut end = name.len().min(OS_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let bytes: Vec<u8> = name.as_bytes()[..end].iter().copied().filter(|&b| b != 0).collect();
    std::ffi::CString::new(bytes).unwrap_or_default()
}

/// Names the calling thread for the OS (`top -H`, `ps -L`, `gdb`, `perf`), as CPython 3.14
/// does at thread start: `name` truncated to what the kernel keeps. Best effort: a refusal
/// changes nothing else.
pub(crate) fn set_os_thread_name(name: &str) {
    let name = os_thread_name(name);
    // SAFETY: names the calling thread (its own pthread_t) with a NUL-terminated string of
    // at most 15 bytes, as pthread_setname_np requires; the string outlives the call.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::os_thread_name;

    #[test]
    fn os_names_are_cut_to_15_bytes_at_a_character_boundary() {
        assert_eq!(os_thread_name("Thread-3 (worker)").to_bytes(), b"Thread-3 (worke");
        assert_eq!(os_thread_name("short").to_bytes(), b"short");
        // 'é' is two bytes: 14 ASCII bytes and 'é' would be 16, so 'é' goes.
        assert_eq!(os_thread_name("abcdefghijklmné").to_bytes(), b"abcdefghijklmn");
        assert_eq!(os_thread_name("a\0b").to_bytes(), b"ab");
    }
}
