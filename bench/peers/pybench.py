"""The measuring loop shared by the Python peers: the same method as weft's
bench.h (size a round to about 0.2 s, then the median of 5 rounds), printed
in Go's benchmark format."""
import re
import sys

FILTER = re.compile(sys.argv[1] if len(sys.argv) > 1 else ".")


def run(name, fn, start=1000, rate=None):
    """fn(n) runs the operation n times and returns the seconds it took.
    rate, if given, is the unit of a throughput printed after the ns/op:
    operations per second ("msg/s")."""
    if not FILTER.search(name):
        return
    n = start
    while True:
        dt = fn(n)
        if dt > 0.2:
            break
        n = max(n * 2, int(n * 0.25 / max(dt, 1e-6)))
    rounds = sorted(fn(n) * 1e9 / n for _ in range(5))
    line = f"{name:<40} {n:12d} {rounds[2]:10.1f} ns/op"
    if rate:
        line += f" {1e9 / rounds[2]:12.0f} {rate}"
    print(line, flush=True)
