"""gevent's side of the many-tasks benchmark, BenchmarkManyTasks/gevent:
100,000 greenlets alive at once (a tenth of the others' million, as gevent
is slow), each waiting on an Event until all are spawned, then sleeping
1 ms; main joins them all. Prints Go's benchmark format:

    BenchmarkManyTasks/gevent   100000   <wall time / N> ns/op   <B> B/task

B/task is the peak resident memory (VmHWM) less the resident memory before
the first spawn (VmRSS), divided by N. The peak is the process's, so each
round runs in a process of its own (this script again, with --round); the
medians of 3 rounds are printed. Usage: gevent_many.py [regex]"""
import gc
import os
import subprocess
import sys
import time

import gevent
import gevent.event

from pybench import status_kb

NAME = "BenchmarkManyTasks/gevent"
TASKS = 100_000
ROUNDS = 3


def task(gate):
    gate.wait()
    gevent.sleep(0.001)


def one_round():
    """Runs the benchmark once in this process; returns ns and bytes per
    task."""
    gevent.sleep(0)  # start the hub before measuring
    gc.collect()
    before = status_kb("VmRSS")
    t0 = time.perf_counter()
    gate = gevent.event.Event()
    greenlets = [gevent.spawn(task, gate) for _ in range(TASKS)]
    gevent.sleep(0)  # they all start and block at the gate
    gate.set()
    gevent.joinall(greenlets)
    dt = time.perf_counter() - t0
    peak = status_kb("VmHWM")
    return dt * 1e9 / TASKS, (peak - before) * 1024 / TASKS


def main():
    if sys.argv[1:2] == ["--round"]:
        print(*one_round())
        return
    from pybench import FILTER

    if not FILTER.search(NAME):
        return
    if status_kb("VmHWM") < 0:
        print(f"# skip {NAME}: no VmHWM in /proc/self/status", flush=True)
        return
    ns, size = [], []
    for _ in range(ROUNDS):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--round"],
                             stdout=subprocess.PIPE, timeout=600, check=False)
        try:
            n, b = map(float, out.stdout.split())
        except ValueError:
            print(f"# skip {NAME}: the round failed", flush=True)
            return
        ns.append(n)
        size.append(b)
    ns.sort()
    size.sort()
    print(f"{NAME:<40} {TASKS:12d} {ns[ROUNDS // 2]:10.1f} ns/op "
          f"{size[ROUNDS // 2]:10.0f} B/task", flush=True)


if __name__ == "__main__":
    main()
