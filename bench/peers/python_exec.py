"""Python's side of bench/exec.c: concurrent.futures' pools doing what
weft's do there, measured the same way (bench.h's method: pybench.run for
the round trips; rounds of a fixed size for the rest, a first one that
starts the workers, then the median of 5, or of 3 for the throughput
rows), printed in Go's benchmark format:

  BenchmarkThreadPoolRoundTrip/python     ns per call of a no-op submitted
      to a ThreadPoolExecutor with its default workers (CPUs + 4, at most
      32, as weft's) and its result() waited for before the next submit
  BenchmarkThreadPoolThroughput/python    ns per call when 100,000 no-op
      calls are submitted, then each result() awaited in order: a tenth of
      weft's million (a round of a million would take some 10 s here); the
      figure is per call, so the two compare
  BenchmarkProcessPoolRoundTrip/python,
  BenchmarkProcessPoolThroughput/python   the same on a ProcessPoolExecutor
      (fork context, its default workers: one per CPU, as weft's), each call
      taking 64 bytes and returning them; the throughput rounds are 10,000
      calls (weft's: 100,000), per call again
  BenchmarkWorkload/kind=<cpu|io>/<runner>   ns per job, and the CPUs kept
      busy, of bench/exec.c's jobs: cpu hashes 1 MiB (FNV-1a over its
      64-bit words, the same buffer and hash as exec.c's, in Python's
      integers), io arms a timerfd for 1 ms and reads it (timerfd_create
      and timerfd_settime through ctypes, os.read for the read, which lets
      go of the GIL while it waits). A round is 1,000 io jobs, as weft's,
      but only 20 cpu jobs: one takes some 15 ms in pure Python, 1,000 would
      take 15 s a round; the figure is per job. Runners:
        python-threads   a ThreadPoolExecutor: as many workers as CPUs for
                         cpu (one runs Python at a time: the GIL), 100 for io
        python-procs     a ProcessPoolExecutor (fork context), as many
                         worker processes

The CPUs of a workload row are counted as bench/exec.c counts them: the CPU
time of this process (all its threads) and of its live children (the
pool's workers: the run time in /proc/<pid>/task/<tid>/schedstat) during
the rounds, over their wall time.

Plain CPython (no gevent)."""
import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import time

from pybench import FILTER, run

# --- the jobs --------------------------------------------------------------

M64 = (1 << 64) - 1
FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211


def fill_buffer():
    """bench/exec.c's 1 MiB: 131,072 words of the LCG with an xorshift."""
    words = []
    x = 1
    for _ in range((1 << 20) // 8):
        x = (x * 6364136223846793005 + 1442695040888963407) & M64
        words.append(x ^ (x >> 29))
    return words


WORDS = None  # filled in main, before any worker process is forked


def cpu_job(seed):
    h = FNV_OFFSET ^ seed
    for w in WORDS:
        h = ((h ^ w) * FNV_PRIME) & M64
    return h


libc = ctypes.CDLL(None, use_errno=True)
CLOCK_MONOTONIC = 1
TFD_CLOEXEC = 0o2000000


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


ONE_MS = Itimerspec(Timespec(0, 0), Timespec(0, 1000000))


def io_job(_=None):
    fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "timerfd_create")
    try:
        if libc.timerfd_settime(fd, 0, ctypes.byref(ONE_MS), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")
        assert len(os.read(fd, 8)) == 8
    finally:
        os.close(fd)


def noop():
    pass


ARG64 = b"sixty-four bytes of argument, sixty-four bytes".ljust(64, b"\0")


def echo64(arg):
    return bytes(arg)


# --- rows ------------------------------------------------------------------


def round_trip(ex, fn, *args):
    def rounds(n):
        t0 = time.perf_counter()
        for _ in range(n):
            ex.submit(fn, *args).result()
        return time.perf_counter() - t0

    return rounds


def batch(ex, fn, args, check=None):
    """A round: fn(args(i)) submitted for i in range(n), then each result
    awaited in order (and checked, with check)."""

    def rounds(n):
        t0 = time.perf_counter()
        fs = [ex.submit(fn, *args(i)) for i in range(n)]
        for i, f in enumerate(fs):
            r = f.result()
            if check:
                check(i, r)
        return time.perf_counter() - t0

    return rounds


def children_cpu():
    """CPU seconds of this process's live children, all their threads."""
    me = os.getpid()
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[1]) != me:
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def fixed(rows, n, rounds=5, cpus=False):
    """rows: (name, fn), fn(n) running n operations and returning the
    seconds it took. A first round of each, then `rounds` rounds of every
    row in turn; each row's median printed, with cpus the CPUs it kept
    busy."""
    rows = [(name, fn, [], [0.0, 0.0]) for name, fn in rows if FILTER.search(name)]
    for _, fn, _, _ in rows:
        fn(n)
    for _ in range(rounds):
        for name, fn, times, use in rows:
            kids0 = children_cpu() if cpus else 0
            self0 = time.process_time()
            dt = fn(n)
            self1 = time.process_time()
            kids1 = children_cpu() if cpus else 0
            use[0] += self1 - self0 + kids1 - kids0
            use[1] += dt
            times.append(dt * 1e9 / n)
    for name, fn, times, use in rows:
        times.sort()
        line = f"{name:<40} {n:12d} {times[len(times) // 2]:10.1f} ns/op"
        if cpus:
            line += f" {use[0] / use[1]:6.2f} CPUs"
        print(line, flush=True)


def selected(*names):
    return any(FILTER.search(name) for name in names)


def main():
    global WORDS
    fork = multiprocessing.get_context("fork")
    cpus = os.cpu_count() or 1

    if selected("BenchmarkThreadPoolRoundTrip/python", "BenchmarkThreadPoolThroughput/python"):
        with cf.ThreadPoolExecutor() as ex:
            run("BenchmarkThreadPoolRoundTrip/python", round_trip(ex, noop), start=100)
            fixed([("BenchmarkThreadPoolThroughput/python", batch(ex, noop, lambda i: ()))],
                  100_000, rounds=3)

    if selected("BenchmarkProcessPoolRoundTrip/python", "BenchmarkProcessPoolThroughput/python"):
        def check64(i, r):
            assert r == ARG64

        with cf.ProcessPoolExecutor(mp_context=fork) as ex:
            run("BenchmarkProcessPoolRoundTrip/python", round_trip(ex, echo64, ARG64), start=100)
            fixed([("BenchmarkProcessPoolThroughput/python",
                    batch(ex, echo64, lambda i: (ARG64,), check64))], 10_000, rounds=3)

    cpu_rows = [f"BenchmarkWorkload/kind=cpu/python-{r}" for r in ("threads", "procs")]
    if selected(*cpu_rows):
        WORDS = fill_buffer()
        expected = [cpu_job(i) for i in range(2)]  # a check of the first two

        def check_hash(i, r):
            assert i >= len(expected) or r == expected[i], (i, r)

        with cf.ThreadPoolExecutor(cpus) as threads, \
                cf.ProcessPoolExecutor(cpus, mp_context=fork) as procs:
            fixed([(name, batch(ex, cpu_job, lambda i: (i,), check_hash))
                   for name, ex in zip(cpu_rows, (threads, procs))], 20, cpus=True)

    io_rows = [f"BenchmarkWorkload/kind=io/python-{r}" for r in ("threads", "procs")]
    if selected(*io_rows):
        with cf.ThreadPoolExecutor(100) as threads, \
                cf.ProcessPoolExecutor(100, mp_context=fork) as procs:
            fixed([(name, batch(ex, io_job, lambda i: ()))
                   for name, ex in zip(io_rows, (threads, procs))], 1000, cpus=True)


if __name__ == "__main__":
    main()
