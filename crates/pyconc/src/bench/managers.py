# The CPython side of `pyconc bench managers`: a multiprocessing.Manager()'s proxies timed
# as managers.rs times pyconc's, and the plain Value/Queue for contrast, printed as one
# JSON line of per-operation nanoseconds.
#
# usage: cat common.py managers.py > m.py; python3 m.py QUICK
import multiprocessing as mp


def main(quick):
    rounds = (3, 5, 0.5) if quick else (5, 31, 2.0)
    batch = 200 if quick else 2000
    ctx = mp.get_context("fork")
    result = {}
    with ctx.Manager() as manager:
        d = manager.dict()
        lst = manager.list()
        ns = manager.Namespace()
        ns.x = 1
        q = manager.Queue()
        lock = manager.Lock()

        def dict_set(n):
            for i in range(n):
                d[i % 100] = i

        def dict_get(n):
            for i in range(n):
                d.get(i % 100)

        def list_append(n):
            for i in range(n):
                lst.append(i)

        def namespace_get(n):
            for _ in range(n):
                ns.x

        def queue_put_get(n):
            for i in range(n):
                q.put(i)
                q.get()

        def lock_acquire_release(n):
            for _ in range(n):
                lock.acquire()
                lock.release()

        for key, op in [
            ("dict_set", dict_set),
            ("dict_get", dict_get),
            ("list_append", list_append),
            ("namespace_get", namespace_get),
            ("queue_put_get", queue_put_get),
            ("lock_acquire_release", lock_acquire_release),
        ]:
            result[key] = measure(op, batch, *rounds)
    value = ctx.Value("q", 0)
    queue = ctx.Queue()

    def value_set_get(n):
        for i in range(n):
            value.value = i
            value.value

    def plain_queue(n):
        for i in range(n):
            queue.put(i)
            queue.get()

    result["value_set_get"] = measure(value_set_get, batch, *rounds)
    result["plain_queue_put_get"] = measure(plain_queue, batch, *rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1")
