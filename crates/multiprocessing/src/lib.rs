//! Python's `multiprocessing` module in Rust.
//!
//! `use multiprocessing::cpu_count;` is `from multiprocessing import cpu_count`. This crate
//! grows into `Process` (fork, spawn, forkserver), `Pipe`, `Queue`, `Pool`, shared
//! `Value`/`Array` and cross-process locks, with the same API shape as the `threading`
//! crate; so far it has the module's helper functions that need no child process.
//!
//! | Python                      | Rust            |
//! |-----------------------------|-----------------|
//! | `multiprocessing.cpu_count()` | [`cpu_count`] |
#![warn(missing_docs)]

/// The number of CPUs the system has online.
///
/// Python: `multiprocessing.cpu_count()` (which is `os.cpu_count()`): the CPUs of the
/// system, not those this process may use (for those, see
/// `std::thread::available_parallelism`). At least 1.
///
/// # Examples
///
/// ```
/// assert!(multiprocessing::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|ranges| count_cpu_list(ranges.trim()))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// Counts a kernel CPU list such as `0-3,8,10-11`.
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut total = 0;
    for part in list.split(',') {
        total += match part.split_once('-') {
            Some((first, last)) => {
                last.parse::<usize>().ok()?.checked_sub(first.parse().ok()?)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::count_cpu_list;

    #[test]
    fn cpu_lists_are_counted_like_the_kernel_writes_them() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }
}
