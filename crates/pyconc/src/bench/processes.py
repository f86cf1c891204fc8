# The CPython side of `pyconc bench processes`: Process start+join per start method, timed
# as processes.rs times pyconc, printed as one JSON line of per-operation nanoseconds.
# Run as a file (spawn and forkserver children re-import the main module to find `empty`).
#
# usage: python3 processes.py QUICK
import json
import multiprocessing as mp
import sys
import time


def stats(samples):
    samples = sorted(samples)
    n = len(samples)
    median = samples[n // 2] if n % 2 else (samples[n // 2 - 1] + samples[n // 2]) / 2
    return {"min": samples[0], "median": median, "max": samples[-1]}


def measure(op, batch, min_rounds, max_rounds, budget):
    op(max(1, batch // 4))  # warm-up (starts the fork server)
    wall, cpu = [], []
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (rounds < max_rounds and time.perf_counter() - start < budget):
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        op(batch)
        wall.append((time.perf_counter_ns() - t0) / batch)
        cpu.append((time.process_time_ns() - c0) / batch)
        rounds += 1
    return {"wall_ns": stats(wall), "cpu_ns": stats(cpu)["median"]}


def empty():
    pass


def start_join(method):
    ctx = mp.get_context(method)

    def op(n):
        for _ in range(n):
            p = ctx.Process(target=empty)
            p.start()
            p.join()

    return op


def main(quick):
    if quick:
        rounds = (3, 10, 0.6)
    else:
        rounds = (10, 51, 4.0)
    result = {
        "fork_start_join": measure(start_join("fork"), 8, *rounds),
        "spawn_start_join": measure(start_join("spawn"), 1, *rounds),
        "forkserver_start_join": measure(start_join("forkserver"), 4, *rounds),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1")
