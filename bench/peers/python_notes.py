"""Python's side of bench/notes.c, the questions of the notes: the same
CPU-bound and I/O-bound jobs in Python's threads, processes and asyncio,
measured like weft's (a median of 5 rounds of about 0.2 s), printed in
Go's benchmark format:

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

Plain CPython (no gevent)."""
import asyncio
import ctypes
import multiprocessing
import os
import threading
import time

from pybench import run

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


if __name__ == "__main__":
    run("BenchmarkCPUBound/workers=1/python-serial", serial(cpu), start=10)
    run("BenchmarkCPUBound/workers=2/python-threads", on_threads(2, cpu), start=10)
    run("BenchmarkCPUBound/workers=2/python-procs", on_procs(2, cpu), start=10)
    run("BenchmarkIOBound/waiters=1/python-serial", serial(io_part), start=10)
    run("BenchmarkIOBound/waiters=2/python-procs", on_procs(2, io_part), start=10)
    run("BenchmarkIOBound/waiters=100/python-threads", on_threads(100, io_part), start=100)
    run("BenchmarkIOBound/waiters=100/python-asyncio", on_asyncio(100), start=100)
