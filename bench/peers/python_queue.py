"""Python's side of the queue benchmark (weft's and a plain pipe's are in
bench/queue.c), measured like them (a median of 5 rounds of about 0.2 s),
printed in Go's benchmark format:

  BenchmarkQueue/producers=N/python-mp  64-byte bytes objects through one
                                        multiprocessing.Queue() (unbounded,
                                        its default) from N producer
                                        processes to N consumer processes,
                                        all made with the fork context, as
                                        weft_proc_start forks; ns per
                                        message, then msg/s

As in queue.c, every process waits at a gate (a pipe that each closes)
before the clock starts (their start is not timed), and it stops at the
latest time.monotonic() (the same CLOCK_MONOTONIC in every process) that a
consumer read after a message. Once the producers have exited (and so
flushed their queue's feeder threads), the parent puts one None per
consumer, which comes after every message; each consumer stops at its first
None. Each message carries its producer and its sequence number, at its
head and (inverted) at its tail; a round that loses, duplicates or tears
one prints a FAIL line and exits 1.

Plain CPython: these are OS processes."""
import multiprocessing
import os
import struct
import sys
import time

from pybench import run

# producer, padding, seq, 40 filler bytes, ~seq: 64 bytes
MSG = struct.Struct("<I4xQ40xQ")
assert MSG.size == 64
MASK = (1 << 64) - 1


def pass_gate(gate, ready):
    """Tells the parent that this child is at the gate, then blocks until
    every process of the round has closed the gate."""
    os.close(gate[1])
    os.write(ready, b"r")
    got = os.read(gate[0], 1)
    os.close(gate[0])
    assert got == b"", got


def produce(q, gate, ready, me, share):
    pack, put = MSG.pack, q.put
    pass_gate(gate, ready)
    for seq in range(share):
        put(pack(me, seq, ~seq & MASK))


def consume(q, gate, ready, reports, shares):
    unpack, get, now = MSG.unpack, q.get, time.monotonic
    producers = len(shares)
    got, total, nxt = [0] * producers, [0] * producers, [0] * producers
    last, bad, why = 0.0, 0, ""
    pass_gate(gate, ready)
    while True:
        m = get()
        t = now()
        if m is None:
            break
        last = t
        if type(m) is not bytes or len(m) != MSG.size:
            bad, why = bad + 1, why or f"a message {m!r:.40}"
            continue
        p, seq, tail = unpack(m)
        if p >= producers or tail != ~seq & MASK:
            bad += 1
            why = why or f"a torn message: producer {p}, seq {seq}"
            continue
        if seq < nxt[p] or seq >= shares[p]:
            bad += 1
            why = why or f"producer {p}'s message {seq} after {nxt[p]}"
            continue
        nxt[p] = seq + 1
        got[p] += 1
        total[p] += seq
    reports.put((got, total, last, bad, why))


def fail(name, why):
    print(f"--- FAIL: {name}: {why}", flush=True)
    print(f"python_queue.py: FAIL {name}: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


def transfer(producers):
    name = f"BenchmarkQueue/producers={producers}/python-mp"

    def bench(n):
        ctx = multiprocessing.get_context("fork")
        q, reports = ctx.Queue(), ctx.SimpleQueue()
        gate, (ready_r, ready_w) = os.pipe(), os.pipe()
        # n messages in all, shared out as evenly as they go
        shares = [n // producers + (i < n % producers)
                  for i in range(producers)]
        # consumers first, so that the producers find them there
        consumers = [
            ctx.Process(target=consume,
                        args=(q, gate, ready_w, reports, shares))
            for _ in range(producers)
        ]
        for c in consumers:
            c.start()
        makers = [
            ctx.Process(target=produce,
                        args=(q, gate, ready_w, i, shares[i]))
            for i in range(producers)
        ]
        for p in makers:
            p.start()
        os.close(gate[0])
        os.close(ready_w)
        at_gate = 0
        while at_gate < 2 * producers:
            got = len(os.read(ready_r, 2 * producers - at_gate))
            if not got:
                fail(name, "a child did not come to the gate")
            at_gate += got
        os.close(ready_r)
        t0 = time.monotonic()
        os.close(gate[1])
        for i, p in enumerate(makers):
            p.join()
            if p.exitcode != 0:
                fail(name, f"producer {i} exited with {p.exitcode}")
        for _ in consumers:
            q.put(None)
        got, total, t1 = [0] * producers, [0] * producers, t0
        for _ in consumers:
            g, s, last, bad, why = reports.get()
            if bad:
                fail(name, f"{bad} bad messages; the first: {why}")
            got = [a + b for a, b in zip(got, g)]
            total = [a + b for a, b in zip(total, s)]
            t1 = max(t1, last)
        for i, c in enumerate(consumers):
            c.join()
            if c.exitcode != 0:
                fail(name, f"consumer {i} exited with {c.exitcode}")
        for p, s in enumerate(shares):
            if got[p] != s or total[p] != s * (s - 1) // 2:
                fail(name, f"producer {p} sent {s} messages, {got[p]} arrived")
        # no feeder thread of the parent's is left for the next round's forks
        q.close()
        q.join_thread()
        reports.close()
        return t1 - t0

    return name, bench


if __name__ == "__main__":
    for n in (1, 4):
        name, bench = transfer(n)
        run(name, bench, start=1000, rate="msg/s")
