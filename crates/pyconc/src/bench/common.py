# Shared by the CPython sides of `pyconc bench`: the timing loop, as measure.rs times
# pyconc (warm-up, then rounds until a time budget; per-operation wall and CPU time), and
# the work of the pool, threadpool and scaling groups.
# python.rs puts this text in front of each group's script.
import json
import sys
import time


def stats(samples):
    samples = sorted(samples)
    n = len(samples)
    median = samples[n // 2] if n % 2 else (samples[n // 2 - 1] + samples[n // 2]) / 2
    return {"min": samples[0], "median": median, "max": samples[-1]}


def measure(op, batch, min_rounds, max_rounds, budget):
    op(max(1, batch // 4))  # warm-up
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


def spin(n):
    # CPU-bound work, the same loop as scaling.rs's `spin`: an xorshift generator, n steps.
    x = 88172645463325252
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
    return x


def trivial(x):
    # The trivial task of the pool and threadpool groups (pool.rs's `trivial`).
    return x + 1


def map_sizes(quick):
    # The map rows of the pool and threadpool groups: (rounds, big map's items, small
    # map's items), as pool.rs and threadpool.rs size them.
    if quick:
        return (3, 5, 0.5), 20_000, 2_000
    return (5, 31, 4.0), 200_000, 20_000


def map_op(pool, items, chunksize):
    # `pool.map` of `trivial` over `range(items)`, n times: a pool or a ThreadPool.
    def op(n):
        for _ in range(n):
            pool.map(trivial, range(items), chunksize)

    return op
