# The CPython side of `pyconc bench threadpool`: multiprocessing.pool.ThreadPool timed as
# threadpool.rs times pyconc's, printed as one JSON line of per-operation nanoseconds.
#
# usage: cat common.py threadpool.py > t.py; python3 t.py QUICK
from multiprocessing.pool import ThreadPool


def main(quick):
    rounds, big, small = map_sizes(quick)
    result = {}
    with ThreadPool(2) as pool:
        result["map_default_chunks"] = measure(map_op(pool, big, None), 1, *rounds)
        result["map_chunksize_1"] = measure(map_op(pool, small, 1), 1, *rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1")
