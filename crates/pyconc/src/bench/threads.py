# The CPython side of `pyconc bench threads`: the same operations as threads.rs, timed the
# same way (alternating is not possible across processes, so rounds run back to back), and
# printed as one JSON line of per-operation nanoseconds.
#
# usage: python3 -c "$(cat common.py threads.py)" ops QUICK | many
import json
import resource
import sys
import threading
import time


def empty():
    pass


def start_join(n):
    for _ in range(n):
        t = threading.Thread(target=empty)
        t.start()
        t.join()


def current(n):
    ct = threading.current_thread
    for _ in range(n):
        ct()


def timer_cancel(n):
    for _ in range(n):
        t = threading.Timer(1.0, empty)
        t.start()
        t.cancel()
        t.join()


def lock_acquire_release(n):
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()


def event_ping_pong(n):
    ping, pong = threading.Event(), threading.Event()

    def peer():
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    t = threading.Thread(target=peer)
    t.start()
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    t.join()


def many():
    start = time.perf_counter_ns()
    threads = [threading.Thread(target=empty) for _ in range(1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter_ns() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"time_ns": elapsed, "peak_rss_kib": rss}))


def ops(quick):
    if quick:
        rounds = (5, 15, 0.6)
    else:
        rounds = (15, 101, 4.0)
    result = {
        "thread_start_join": measure(start_join, 20, *rounds),
        "current_thread": measure(current, 100000, *rounds),
        "timer_cancel": measure(timer_cancel, 20, *rounds),
        "lock_acquire_release": measure(lock_acquire_release, 100000, *rounds),
        "event_ping_pong": measure(event_ping_pong, 2000, *rounds),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "many":
        many()
    else:
        ops(sys.argv[2] == "1")
