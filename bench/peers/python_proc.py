"""Python's side of the process benchmarks (weft's and the raw system
calls' are in bench/proc.c), measured like weft's (a median of 5 rounds of
about 0.2 s), printed in Go's benchmark format:

  BenchmarkProcessStartJoin/python-mp  multiprocessing.Process(target=f)
                                       start() + join() of an f that
                                       returns at once, with the fork
                                       context (multiprocessing.get_context(
                                       "fork")), as weft_proc_start forks

Plain CPython: these are OS processes."""
import multiprocessing
import time

from pybench import run


def returns_at_once():
    pass


def process_start_join(n):
    Process, f = multiprocessing.get_context("fork").Process, returns_at_once
    t0 = time.perf_counter()
    for _ in range(n):
        p = Process(target=f)
        p.start()
        p.join()
        assert p.exitcode == 0, p.exitcode
        p.close()
    return time.perf_counter() - t0


if __name__ == "__main__":
    run("BenchmarkProcessStartJoin/python-mp", process_start_join, start=10)
