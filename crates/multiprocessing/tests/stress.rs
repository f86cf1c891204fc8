//! Long stress runs, `#[ignore]`d: `cargo test -p pyconc-multiprocessing --test stress --
//! --ignored`. Several threads start, kill and join processes of every start method at
//! once; every exit code must be right and no child may be left a zombie. Pool workers
//! and one-way pipes are killed while in use.

multiprocessing::init_before_main!();

use std::time::Duration;

use multiprocessing::{Process, StartMethod, active_children};

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms))
}

/// One stress test at a time: each counts this process's zombies, so another's children
/// must not be in flight.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let _serial = serial();
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

/// Kills its worker when `x` is 3 (by SIGKILL, abort or exit, as `how` says).
fn die_on_three((x, how): (u64, u8)) -> u64 {
    if x == 3 {
        match how {
            0 => {
                let pid = std::process::id().to_string();
                let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
                sleep_ms(30_000);
            }
            1 => std::process::abort(),
            _ => std::process::exit(3),
        }
    }
    x * x
}

fn square(x: u64) -> u64 {
    x * x
}

fn announce_then_sleep(path: String) -> u64 {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).unwrap();
    sleep_ms(30_000);
    0
}

/// The pool fault tests (conformance/pool.rs: worker_dies_in_map, worker_dies_in_imap,
/// worker_killed_during_apply_async), 20 rounds each per start method on one pool.
#[test]
#[ignore = "stress: pool workers killed 20 times per fault per start method, ~20 s"]
fn pool_survives_workers_dying_again_and_again() {
    let _serial = serial();
    use multiprocessing::{Error, Pool};
    let expected: Vec<u64> = (0..8).map(square).collect();
    for method in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        let pool = Pool::builder().processes(Some(2)).start_method(method).build().unwrap();
        for round in 0..20u64 {
            let how = (round % 3) as u8;
            let items: Vec<(u64, u8)> = (0..8).map(|i| (i, how)).collect();
            // map: the item fails, the call fails, nothing hangs.
            let err = pool.map_chunked(die_on_three, items.clone(), 1).unwrap_err();
            assert!(matches!(err, Error::WorkerDied(_)), "{method:?} round {round}: {err:?}");
            // imap: only item 3 fails.
            let got: Vec<Result<u64, Error>> = pool.imap(die_on_three, items).unwrap().collect();
            for (i, r) in got.iter().enumerate() {
                match r {
                    Ok(v) => assert_eq!(*v, expected[i], "{method:?} round {round}"),
                    Err(e) => assert!(
                        i == 3 && matches!(e, Error::WorkerDied(_)),
                        "{method:?} {i}: {e:?}"
                    ),
                }
            }
            // apply_async: killed from outside while it runs.
            let path =
                std::env::temp_dir().join(format!("pyconc-stress-pool-{}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let result = pool.apply_async(announce_then_sleep, path.to_string_lossy().into_owned());
            let victim = loop {
                if let Some(pid) =
                    std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<i32>().ok())
                {
                    break pid;
                }
                sleep_ms(2);
            };
            let _ = std::fs::remove_file(&path);
            let killed = std::time::Instant::now();
            // SAFETY: kills the pool worker that announced its pid.
            unsafe { libc::kill(victim, libc::SIGKILL) };
            let err = result.get_timeout(Duration::from_secs(5)).unwrap_err();
            assert!(matches!(err, Error::WorkerDied(_)), "{method:?} round {round}: {err:?}");
            assert!(
                killed.elapsed() < Duration::from_secs(1),
                "{method:?}: {:?}",
                killed.elapsed()
            );
            assert_eq!(pool.map(square, 0..8).unwrap(), expected, "{method:?} round {round}");
        }
        let stats = pool.stats();
        assert_eq!((stats.running, stats.failed), (0, 60), "{method:?}: {stats:?}");
        pool.close();
        pool.join().unwrap();
    }
}

/// A message of a one-way-pipe stress run: writer `id`'s `seq`th, its bytes derived from
/// both, mostly small, one in 16 larger than the pipe's 1 MiB ring (moved in pieces).
fn stress_message(id: u32, seq: u32) -> Vec<u8> {
    let size = if seq % 16 == 7 { 1_100_000 } else { (seq as usize * 977) % 4000 };
    let mut bytes: Vec<u8> = (0..size + 8).map(|k| (k as u32 ^ seq ^ id) as u8).collect();
    bytes[..4].copy_from_slice(&id.to_le_bytes());
    bytes[4..8].copy_from_slice(&seq.to_le_bytes());
    bytes
}

/// Exit codes of the stress children.
const GARBLED: i32 = 1;
const BROKEN: i32 = 2;
const OTHER: i32 = 3;

fn exit_for(error: &multiprocessing::Error) -> ! {
    let code = if error.to_string().contains("stream is broken") { BROKEN } else { OTHER };
    std::process::exit(code)
}

#[test]
#[ignore = "stress: 150 rounds of a one-way pipe whose readers and writers get killed, ~1 min"]
fn one_way_pipes_survive_killed_readers_and_writers() {
    let _serial = serial();
    use std::sync::Arc;

    use multiprocessing::{Value, pipe};

    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % bound
    };
    for round in 0..150 {
        let (reader, writer) = pipe(false).unwrap();
        let (reader, writer) = (Arc::new(reader), Arc::new(writer));
        let progress = Value::new(0u64).unwrap();
        let fork = |body: Box<dyn FnOnce() + Send>| {
            let p = Process::builder().start_method(StartMethod::Fork).target(body);
            p.start().unwrap();
            p
        };
        let mut writers = Vec::new();
        for id in 0..2u32 {
            let writer = Arc::clone(&writer);
            writers.push(fork(Box::new(move || {
                for seq in 0.. {
                    if let Err(error) = writer.send_bytes(&stress_message(id, seq)) {
                        exit_for(&error);
                    }
                }
            })));
        }
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (reader, progress) = (Arc::clone(&reader), progress.clone());
            readers.push(fork(Box::new(move || {
                let mut last = [None::<u32>; 2];
                loop {
                    let bytes = match reader.recv_bytes() {
                        Ok(bytes) => bytes,
                        Err(error) => exit_for(&error),
                    };
                    let id = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                    let seq = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
                    let in_order = last[id as usize & 1].is_none_or(|l| seq > l);
                    if id > 1 || !in_order || bytes != stress_message(id, seq) {
                        std::process::exit(GARBLED);
                    }
                    last[id as usize] = Some(seq);
                    progress.update(|n| *n += 1);
                }
            })));
        }
        drop((reader, writer));
        sleep_ms(5 + next(25));
        let victim = next(4) as usize;
        let killed_writer = victim < 2;
        let p = if killed_writer { &writers[victim] } else { &readers[victim - 2] };
        p.kill().unwrap();
        p.join().unwrap();
        // The survivors go on (unless the victim died in the middle of a large frame:
        // then they all stop with "stream is broken").
        sleep_ms(150);
        let before = progress.get();
        sleep_ms(300);
        let after = progress.get();
        for p in writers.iter().chain(&readers) {
            let _ = p.kill();
            p.join().unwrap();
        }
        let codes: Vec<i32> =
            writers.iter().chain(&readers).map(|p| p.exitcode().unwrap()).collect();
        assert!(
            codes.iter().all(|&c| c == -libc::SIGKILL || c == BROKEN),
            "round {round}, victim {victim}: exit codes {codes:?} (1: garbled, 3: other error)"
        );
        if !codes.contains(&BROKEN) {
            assert!(after > before, "round {round}, victim {victim}: no progress after the kill");
        }
        assert_eq!(zombies(), 0);
    }
}
