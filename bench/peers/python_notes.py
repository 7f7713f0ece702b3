"""Python's side of bench/notes.c, the questions of the notes: the same
CPU-bound and I/O-bound jobs in Python's threads, processes and asyncio,
measured like weft's in bench.h (each row sized to rounds of about 0.2 s,
then 5 rounds taken in turn, row after row, so that a busy moment of the
machine hurts every row alike; the median printed), in Go's benchmark
format:

  BenchmarkCPUBound/workers=<w>/<impl>   ns per job of pure computation
      (1,000 steps of the 64-bit LCG with an xorshift that bench/notes.c
      computes: the same arithmetic, in Python's integers), n jobs split
      among w workers:
        python-serial    the calling thread
        python-threads   w threading.Thread: one runs at a time (the GIL)
        python-procs     w multiprocessing.Process (fork context)

  BenchmarkIOBound/waiters=<w>/<impl>    ns per job that waits for I/O:
      arm a timerfd to expire 1 ms later and read it, as bench/notes.c does
      (timerfd_create and timerfd_settime through ctypes, os.read for the
      read; both let go of the GIL while they wait), n jobs split among w
      waiters, each with a timerfd of its own:
        python-serial    the calling thread
        python-procs     w multiprocessing.Process (fork context)
        python-threads   w threading.Thread
        python-asyncio   w coroutines on one asyncio loop, each waiting for
                         its fd with loop.add_reader

Each row also prints the CPUs it kept busy, as bench/notes.c does: the CPU
time of the process (all its threads) and of its children over the wall
time, summed over the 5 rounds.

Plain CPython (no gevent)."""
import asyncio
import ctypes
import multiprocessing
import os
import resource
import threading
import time

from pybench import FILTER

M64 = (1 << 64) - 1


def cpu_job(x):
    for _ in range(1000):
        x = (x * 6364136223846793005 + 1442695040888963407) & M64
        x ^= x >> 29
    return x


def cpu_part(jobs, seed):
    x = seed
    for _ in range(jobs):
        x = cpu_job(x)
    return x


# --- timerfds through ctypes (os.timerfd_create is Python 3.13's) ---------

libc = ctypes.CDLL(None, use_errno=True)
CLOCK_MONOTONIC = 1
TFD_CLOEXEC = 0o2000000


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


ONE_MS = Itimerspec(Timespec(0, 0), Timespec(0, 1000000))


def timer_open():
    fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "timerfd_create")
    return fd


def timer_arm(fd):
    if libc.timerfd_settime(fd, 0, ctypes.byref(ONE_MS), None) != 0:
        raise OSError(ctypes.get_errno(), "timerfd_settime")


def io_part(jobs):
    fd = timer_open()
    try:
        for _ in range(jobs):
            timer_arm(fd)
            assert len(os.read(fd, 8)) == 8
    finally:
        os.close(fd)


# --- spreading n jobs over w workers --------------------------------------


def split(n, w):
    return [n // w + (i < n % w) for i in range(w)]


def serial(part):
    def fn(n):
        t0 = time.perf_counter()
        part(n)
        return time.perf_counter() - t0

    return fn


def on_threads(w, part):
    def fn(n):
        t0 = time.perf_counter()
        ts = [threading.Thread(target=part, args=(jobs,)) for jobs in split(n, w)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - t0

    return fn


def on_procs(w, part):
    Process = multiprocessing.get_context("fork").Process

    def fn(n):
        t0 = time.perf_counter()
        ps = [Process(target=part, args=(jobs,)) for jobs in split(n, w)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
            assert p.exitcode == 0, p.exitcode
            p.close()
        return time.perf_counter() - t0

    return fn


async def io_coroutine(jobs):
    loop = asyncio.get_running_loop()
    fd = timer_open()
    os.set_blocking(fd, False)
    try:
        for _ in range(jobs):
            timer_arm(fd)
            ready = loop.create_future()
            loop.add_reader(fd, ready.set_result, None)
            await ready
            loop.remove_reader(fd)
            assert len(os.read(fd, 8)) == 8
    finally:
        os.close(fd)


def on_asyncio(w):
    async def all_of(n):
        await asyncio.gather(*(io_coroutine(jobs) for jobs in split(n, w)))

    def fn(n):
        t0 = time.perf_counter()
        asyncio.run(all_of(n))
        return time.perf_counter() - t0

    return fn


def cpu(jobs):
    cpu_part(jobs, 1)


def cpu_seconds():
    """CPU time of this process's threads and its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_group(rows):
    """rows: (name, fn, start), fn(n) running n jobs and returning the
    seconds it took. bench.h's bench_group: size each row, then 5 rounds
    of every row in turn; print each row's median, and the CPUs it kept
    busy."""
    rows = [r for r in rows if FILTER.search(r[0])]
    sized = []
    for name, fn, n in rows:
        while True:
            dt = fn(n)
            if dt > 0.2:
                break
            n = max(n * 2, int(n * 0.25 / max(dt, 1e-6)))
        sized.append((name, fn, n, [], [0.0, 0.0]))
    for _ in range(5):
        for name, fn, n, times, use in sized:
            c0 = cpu_seconds()
            dt = fn(n)
            use[0] += cpu_seconds() - c0
            use[1] += dt
            times.append(dt * 1e9 / n)
    for name, fn, n, times, use in sized:
        times.sort()
        print(f"{name:<40} {n:12d} {times[2]:10.1f} ns/op {use[0] / use[1]:6.2f} CPUs",
              flush=True)


if __name__ == "__main__":
    run_group([
        ("BenchmarkCPUBound/workers=1/python-serial", serial(cpu), 10),
        ("BenchmarkCPUBound/workers=2/python-threads", on_threads(2, cpu), 10),
        ("BenchmarkCPUBound/workers=2/python-procs", on_procs(2, cpu), 10),
    ])
    run_group([
        ("BenchmarkIOBound/waiters=1/python-serial", serial(io_part), 10),
        ("BenchmarkIOBound/waiters=2/python-procs", on_procs(2, io_part), 10),
        ("BenchmarkIOBound/waiters=100/python-threads", on_threads(100, io_part), 100),
        ("BenchmarkIOBound/waiters=100/python-asyncio", on_asyncio(100), 100),
    ])
