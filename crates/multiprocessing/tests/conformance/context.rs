//! Start methods, ported from `TestStartMethod` (test_set_get, test_get_all,
//! test_context). The start method is process-wide, so each check runs in a fork child
//! that reports through its exit code.

use multiprocessing::{
    Process, StartMethod, get_all_start_methods, get_start_method, get_start_method_if_set,
    set_start_method, set_start_method_force,
};

use crate::support;

fn in_child(check: fn() -> bool) {
    let _serial = support::serial();
    let p = Process::builder().start_method(StartMethod::Fork).target(move || {
        std::process::exit(if check() { 0 } else { 7 });
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

/// test_get_all.
#[test]
fn all_start_methods_are_available_fork_first() {
    assert_eq!(
        get_all_start_methods(),
        [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer]
    );
}

/// test_set_get: the first set wins; a second set fails; force overrides.
#[test]
fn set_start_method_twice_fails_unless_forced() {
    in_child(|| {
        set_start_method_force(None);
        get_start_method_if_set().is_none()
            && set_start_method(StartMethod::Spawn).is_ok()
            && get_start_method() == StartMethod::Spawn
            && set_start_method(StartMethod::Fork).unwrap_err().to_string()
                == "context has already been set"
            && {
                set_start_method_force(StartMethod::ForkServer);
                get_start_method() == StartMethod::ForkServer
            }
    });
}

/// get_start_method() fixes the default (fork) when none was set.
#[test]
fn get_start_method_fixes_the_default() {
    in_child(|| {
        set_start_method_force(None);
        get_start_method() == StartMethod::Fork
            && get_start_method_if_set() == Some(StartMethod::Fork)
            && set_start_method(StartMethod::Spawn).is_err()
    });
}

fn child_reports_method(_: ()) {
    let code = match multiprocessing::get_start_method() {
        StartMethod::Fork => 10,
        StartMethod::Spawn => 11,
        StartMethod::ForkServer => 12,
    };
    std::process::exit(code);
}

/// The global method applies to processes without their own; a child started with
/// method M reports M (check_context).
#[test]
fn the_global_method_starts_children_and_children_report_it() {
    in_child(|| {
        set_start_method_force(StartMethod::Spawn);
        let p = Process::call(child_reports_method, ());
        p.start().is_ok() && p.join().is_ok() && p.exitcode() == Some(11)
    });
}

/// Issue 14, item 11: a child forked while another thread reads or sets the start method
/// finds it usable (before the fix it was a mutex, and a child forked while another
/// thread held it deadlocked on its first `get_start_method()` or `start()`). A thread
/// hammers the setting while the test forks children that read it; every child must end
/// by itself.
#[test]
fn a_child_forked_while_another_thread_sets_the_start_method_can_read_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    in_child(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    set_start_method_force(StartMethod::Fork);
                    let _ = get_start_method();
                }
            })
        };
        let mut wedged = 0;
        for _ in 0..100 {
            let p = Process::builder().start_method(StartMethod::Fork).target(|| {
                std::process::exit(if get_start_method() == StartMethod::Fork { 0 } else { 3 });
            });
            p.start().unwrap();
            if !p.join_timeout(Duration::from_secs(5)).unwrap() {
                wedged += 1;
                p.kill().unwrap();
                p.join().unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
        wedged == 0
    });
}

/// test_context: each method's context reports it and starts its processes and pools with
/// it (check_context), whatever the program's start method; an unknown name is refused.
#[test]
fn a_context_starts_processes_and_pools_with_its_method() {
    let _serial = support::serial();
    for (name, code) in [("fork", 10), ("spawn", 11), ("forkserver", 12)] {
        let ctx = multiprocessing::get_context(Some(name)).unwrap();
        assert_eq!(ctx.get_start_method().name(), name);
        let p = ctx.process().call(child_reports_method, ());
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(code), "{name}");
        let pool = ctx.pool().processes(Some(1)).build().unwrap();
        let method = pool.apply(|_: ()| multiprocessing::get_start_method().name().to_owned(), ());
        assert_eq!(method.unwrap(), name);
        let q = ctx.queue(0).unwrap();
        q.put(name.to_owned()).unwrap();
        assert_eq!(q.get().unwrap(), name);
    }
    let refused = multiprocessing::get_context(Some("bogus")).unwrap_err();
    assert!(matches!(refused, multiprocessing::Error::ValueError(_)));
    assert_eq!(refused.to_string(), "cannot find context for 'bogus'");
    assert_eq!(
        format!("{:?}", multiprocessing::get_context(Some("spawn")).unwrap()),
        "<multiprocessing.context.SpawnContext object>"
    );
}

/// get_context() without a name is the program's context, and fixes its method.
#[test]
fn the_default_context_is_the_programs_start_method() {
    in_child(|| {
        set_start_method_force(None);
        let ctx = multiprocessing::get_context(None).unwrap();
        ctx.get_start_method() == StartMethod::Fork
            && get_start_method_if_set() == Some(StartMethod::Fork)
    });
}
