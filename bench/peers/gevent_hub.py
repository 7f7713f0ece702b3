"""gevent's side of the hub benchmarks, measured like weft's (a median of
5 rounds of about 0.2 s): BenchmarkSpawnJoin/gevent (spawn a greenlet that
returns, join it) and BenchmarkYield/gevent (two greenlets alternating
through gevent.sleep(0)). Prints Go's benchmark format."""
import re
import sys
import time

import gevent

FILTER = re.compile(sys.argv[1] if len(sys.argv) > 1 else ".")


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


def run(name, fn):
    if not FILTER.search(name):
        return
    n = 100
    while True:
        dt = fn(n)
        if dt > 0.2:
            break
        n = max(n * 2, int(n * 0.25 / max(dt, 1e-6)))
    rounds = sorted(fn(n) * 1e9 / n for _ in range(5))
    print(f"{name:<40} {n:12d} {rounds[2]:10.1f} ns/op", flush=True)


run("BenchmarkSpawnJoin/gevent", spawn_join)
run("BenchmarkYield/gevent", yield_pingpong)
