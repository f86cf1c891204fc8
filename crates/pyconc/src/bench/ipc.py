# The CPython side of `pyconc bench ipc`: the same four operations as ipc.rs, between the
# parent and one forked child, printed as one JSON line of per-operation nanoseconds.
#
# usage: cat common.py ipc.py > i.py; python3 i.py QUICK
import multiprocessing as mp
import os

# Placement as in ipc.rs: round trips run with both sides on the first CPU; throughput
# rows where the scheduler puts them.
FIRST = {0}

SMALL = b"x" * 64
BIG = b"y" * (1 << 20)


def sink(data, acks):
    # Receives `n` messages after each count, then acknowledges.
    while True:
        n = data.recv()
        if n is None:
            return
        for _ in range(n):
            data.recv_bytes()
        acks.send(True)


def echo(conn):
    os.sched_setaffinity(0, FIRST)
    while True:
        msg = conn.recv_bytes()
        if not msg:
            return
        conn.send_bytes(msg)


def queue_sink(q, ack):
    while True:
        n = q.get()
        if n is None:
            return
        for _ in range(n):
            q.get()
        ack.put(True)


def messages(message, batch, rounds, duplex):
    # As the Rust rows: small messages on os.pipe (Pipe(False)), 1 MiB ones on a
    # socket pair (Pipe(True)).
    ctx = mp.get_context("fork")
    their_data, data = ctx.Pipe(duplex)
    acks, their_acks = ctx.Pipe(False)
    p = ctx.Process(target=sink, args=(their_data, their_acks))
    p.start()

    def op(n):
        data.send(n)
        for _ in range(n):
            data.send_bytes(message)
        acks.recv()

    result = measure(op, batch, *rounds)
    data.send(None)
    p.join()
    return result


def round_trip(quick, rounds):
    ctx = mp.get_context("fork")
    conn, child = ctx.Pipe(True)
    p = ctx.Process(target=echo, args=(child,))
    p.start()
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, FIRST)

    def op(n):
        for _ in range(n):
            conn.send_bytes(SMALL)
            conn.recv_bytes()

    result = measure(op, 500, *rounds)
    os.sched_setaffinity(0, everywhere)
    conn.send_bytes(b"")
    p.join()
    return result


def queue_small(quick, rounds):
    ctx = mp.get_context("fork")
    q, ack = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=queue_sink, args=(q, ack))
    p.start()

    def op(n):
        q.put(n)
        for i in range(n):
            q.put(i)
        ack.get()

    result = measure(op, 2000, *rounds)
    q.put(None)
    p.join()
    return result


def shm_attach(size, rounds):
    # Attach by name and close, as ipc.rs's attach rows (3.11 registers an attached block
    # with its resource tracker: part of its cost; unregistered once afterwards).
    from multiprocessing import resource_tracker, shared_memory
    block = shared_memory.SharedMemory(create=True, size=size)

    def op(n):
        for _ in range(n):
            shared_memory.SharedMemory(block.name).close()

    result = measure(op, 200, *rounds)
    block.close()
    block.unlink()
    return result


def main(quick):
    rounds = (3, 10, 0.6) if quick else (10, 51, 4.0)
    result = {
        "pipe_small": messages(SMALL, 2000, rounds, False),
        "queue_small": queue_small(quick, rounds),
        "pipe_1mib": messages(BIG, 8, rounds, True),
        "round_trip": round_trip(quick, rounds),
        # The handoff row's CPython column: the same bytes through its Pipe.
        "shm_handoff": messages(b"z" * ((32 if quick else 256) << 20), 1, rounds, True),
        "shm_attach_1mib": shm_attach(1 << 20, rounds),
        "shm_attach_1gib": shm_attach(1 << 30, rounds),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1] == "1")
