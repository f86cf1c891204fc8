# The mpi4py side of `pyconc bench pool --mpi`: MPIPoolExecutor.map with chunksize 1,
# run as `mpirun -n 3 python3 -m mpi4py.futures mpi4py.py QUICK ITEMS`; prints the
# per-item nanoseconds of the rounds as one JSON line (common.py's `stats`).
from mpi4py.futures import MPIPoolExecutor


def square(n):
    return n * n


def main(quick, items):
    rounds = 3 if quick else 7
    with MPIPoolExecutor() as pool:
        list(pool.map(square, range(100)))  # warm-up: workers started
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            list(pool.map(square, range(items), chunksize=1))
            samples.append((time.perf_counter_ns() - t0) / items)
    print(json.dumps({"wall_ns": stats(samples)}))


if __name__ == "__main__":
    main(sys.argv[1] == "1", int(sys.argv[2]))
