"""gevent's side of the hub benchmarks, measured like weft's (a median of
5 rounds of about 0.2 s): BenchmarkSpawnJoin/gevent (spawn a greenlet that
returns, join it) and BenchmarkYield/gevent (two greenlets alternating
through gevent.sleep(0)). Prints Go's benchmark format."""
import time

import gevent
from pybench import run


def spawn_join(n):
    t0 = time.perf_counter()
    for _ in range(n):
        gevent.spawn(lambda: None).join()
    return time.perf_counter() - t0


def yielder(n):
    for _ in range(n):
        gevent.sleep(0)


def yield_pingpong(n):
    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(yielder, n // 2), gevent.spawn(yielder, n // 2)])
    return time.perf_counter() - t0


run("BenchmarkSpawnJoin/gevent", spawn_join, start=100)
run("BenchmarkYield/gevent", yield_pingpong, start=100)
