# The CPython side of `pyconc bench scaling`: a CPU-bound job of equal tasks run one after
# another, on 1..N threads and on a Pool of 1..N processes. Under the GIL the threads do
# not speed it up; the processes do. Printed as one JSON line of per-job nanoseconds.
#
# usage: cat common.py scaling.py > s.py; python3 s.py QUICK TASKS STEPS MAX_WORKERS
import multiprocessing as mp
import threading




def sequential(tasks, steps):
    def op(n):
        for _ in range(n):
            for _ in range(tasks):
                spin(steps)

    return op


def on_threads(workers, tasks, steps):
    def op(n):
        for _ in range(n):
            left = [tasks]
            lock = threading.Lock()

            def work():
                while True:
                    with lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                    spin(steps)

            threads = [threading.Thread(target=work) for _ in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

    return op


def on_pool(pool, tasks, steps):
    def op(n):
        for _ in range(n):
            pool.map(spin, [steps] * tasks, 1)

    return op


def main(quick, tasks, steps, max_workers):
    rounds = (3, 5, 0.5) if quick else (5, 15, 3.0)
    result = {"sequential": measure(sequential(tasks, steps), 1, *rounds), "threads": {}, "processes": {}}
    ctx = mp.get_context("fork")
    for workers in range(1, max_workers + 1):
        result["threads"][str(workers)] = measure(on_threads(workers, tasks, steps), 1, *rounds)
        with ctx.Pool(workers) as pool:
            result["processes"][str(workers)] = measure(on_pool(pool, tasks, steps), 1, *rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
