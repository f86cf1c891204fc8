# The CPython side of `pyconc bench processes`: Process start+join per start method, timed
# as processes.rs times pyconc, printed as one JSON line of per-operation nanoseconds.
# Run as a file (spawn and forkserver children re-import the main module to find `empty`).
#
# usage: cat common.py processes.py > p.py; python3 p.py QUICK
import json
import multiprocessing as mp
import sys
import time


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
    # The same from a parent holding 1 GiB of touched memory (processes.rs's ballast).
    ballast = bytearray(1 << 30)
    ballast[::4096] = b"\x01" * (len(ballast) // 4096)
    result["fork_1gib"] = measure(start_join("fork"), 2, *rounds)
    result["forkserver_1gib"] = measure(start_join("forkserver"), 4, *rounds)
    result["spawn_1gib"] = measure(start_join("spawn"), 1, *rounds)
    del ballast
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1")
