//! Long stress runs, `#[ignore]`d: `cargo test -p pyconc-multiprocessing --test stress --
//! --ignored`. Several threads start, kill and join processes of every start method at
//! once; every exit code must be right and no child may be left a zombie.

multiprocessing::init_before_main!();

use std::time::Duration;

use multiprocessing::{Process, StartMethod, active_children};

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms))
}

fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 1 && fields[0] == "Z" && fields[1] == me
        })
        .count()
}

#[test]
#[ignore = "stress: 4000 rounds, a few seconds"]
fn concurrent_start_kill_join_under_every_start_method() {
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            std::thread::spawn(move || {
                for round in 0..1000u32 {
                    let method = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer]
                        [(round as usize + worker) % 3];
                    let code = (round % 7) as i32;
                    let p = Process::builder().start_method(method).call(exit_with, code);
                    p.start().unwrap();
                    let q = Process::builder()
                        .start_method(method)
                        .daemon(round % 2 == 0)
                        .call(sleep_ms, 10_000);
                    q.start().unwrap();
                    q.kill().unwrap();
                    p.join().unwrap();
                    q.join().unwrap();
                    assert_eq!(p.exitcode(), Some(code), "{method} round {round}");
                    assert_eq!(q.exitcode(), Some(-libc::SIGKILL), "{method} round {round}");
                    // Drop a running child's handle now and then: the reaper takes it.
                    if round % 10 == 0 {
                        Process::builder().start_method(method).call(sleep_ms, 5).start().unwrap();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (zombies() > 0 || !active_children().is_empty()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(zombies(), 0);
    assert!(active_children().is_empty());
}
