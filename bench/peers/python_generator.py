"""Python's generators, measured like weft's: BenchmarkSwitch/python-generator
(one send() round trip) and BenchmarkGenCreate/python-generator (create, run
to completion). Prints Go's benchmark format; the median of 5 rounds."""
import re
import sys
import time

FILTER = re.compile(sys.argv[1] if len(sys.argv) > 1 else ".")


def counter():
    i = 0
    while True:
        yield i
        i += 1


def returns_at_once():
    return None
    yield  # makes it a generator


def bench_send(n):
    g = counter()
    next(g)
    send = g.send
    t0 = time.perf_counter()
    for _ in range(n):
        send(None)
    return time.perf_counter() - t0


def bench_create(n):
    make = returns_at_once
    t0 = time.perf_counter()
    for _ in range(n):
        for _ in make():
            pass
    return time.perf_counter() - t0


def run(name, fn):
    if not FILTER.search(name):
        return
    n = 1000
    while True:
        dt = fn(n)
        if dt > 0.2:
            break
        n = max(n * 2, int(n * 0.25 / max(dt, 1e-6)))
    rounds = sorted(fn(n) * 1e9 / n for _ in range(5))
    print(f"{name:<40} {n:12d} {rounds[2]:10.1f} ns/op", flush=True)


run("BenchmarkSwitch/python-generator", bench_send)
run("BenchmarkGenCreate/python-generator", bench_create)
