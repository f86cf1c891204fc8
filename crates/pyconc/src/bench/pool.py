# The CPython side of `pyconc bench pool`: multiprocessing.Pool timed as pool.rs times
# pyconc's, printed as one JSON line of per-operation nanoseconds.
#
# usage: cat common.py pool.py > p.py; python3 p.py QUICK
import multiprocessing as mp



def create_map_close_join(n):
    ctx = mp.get_context("fork")
    for _ in range(n):
        pool = ctx.Pool(2)
        pool.map(trivial, range(2))
        pool.close()
        pool.join()


def apply_op(pool):
    # `pool.apply` of `trivial`, one call after another (pool.rs's `PyconcApply`).
    def op(n):
        for i in range(n):
            pool.apply(trivial, (i,))

    return op


def cpu_op(pool, steps):
    def op(n):
        for _ in range(n):
            pool.map(spin, [steps] * 4, 1)

    return op


def sequential_op(steps):
    def op(n):
        for _ in range(n):
            for _ in range(4):
                spin(steps)

    return op


def main(quick, spin_steps):
    rounds, big, small = map_sizes(quick)
    ctx = mp.get_context("fork")
    result = {"create_map_close_join": measure(create_map_close_join, 4, *rounds)}
    with ctx.Pool(2) as pool:
        result["apply_round_trip"] = measure(apply_op(pool), 100, *rounds)
    with ctx.Pool(2) as pool:
        result["map_default_chunks"] = measure(map_op(pool, big, None), 1, *rounds)
        result["map_chunksize_1"] = measure(map_op(pool, small, 1), 1, *rounds)
        result["cpu_bound_4_tasks"] = measure(cpu_op(pool, spin_steps), 1, *rounds)
    result["cpu_bound_sequential"] = measure(sequential_op(spin_steps), 1, *rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1", int(sys.argv[2]))
