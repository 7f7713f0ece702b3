"""Python's generators, measured like weft's: BenchmarkSwitch/python-generator
(one send() round trip) and BenchmarkGenCreate/python-generator (create, run
to completion). Prints Go's benchmark format; the median of 5 rounds."""
import time

from pybench import run


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


run("BenchmarkSwitch/python-generator", bench_send)
run("BenchmarkGenCreate/python-generator", bench_create)
