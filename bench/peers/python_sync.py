"""Python's side of the sync benchmarks (weft's and pthreads' are in
bench/sync.c), measured like weft's (a median of 5 rounds of about 0.2 s),
printed in Go's benchmark format:

  BenchmarkLockUncontended/python          threading.Lock acquire + release,
                                           one thread
  BenchmarkLockContended/threads=N/python  N threading.Threads adding to one
                                           counter under a threading.Lock;
                                           ns per add (the wall time of the
                                           round, starting and joining the
                                           threads included, over all adds)
  BenchmarkThreadStartJoin/python          threading.Thread(target=f) start()
                                           + join() of an f that returns at
                                           once

Plain CPython, no gevent: these are OS threads."""
import threading
import time

from pybench import run


def uncontended(n):
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(n):
        acquire()
        release()
    return time.perf_counter() - t0


# Under the GIL only one of the threads runs Python code at a time, so the
# threads do not add in parallel: the running one keeps the GIL for its
# switch interval (sys.getswitchinterval(), 5 ms by default) and takes and
# releases the lock uncontended over and over. The lock is contended only
# when the GIL passes to another thread while the lock is held; that thread
# then blocks in acquire() (letting the GIL go) until the holder releases.
# So the figure is mostly the uncontended cost plus the interpreter's
# handing of the GIL between threads, not that of a lock fought over by
# threads on several CPUs as in weft's, pthreads' and Go's rows.
def contended(threads):
    def bench(n):
        lock = threading.Lock()
        counter = [0]

        def adder(adds):
            acquire, release = lock.acquire, lock.release
            for _ in range(adds):
                acquire()
                counter[0] += 1
                release()

        # n adds in all, shared out as evenly as they go
        shares = [n // threads + (i < n % threads) for i in range(threads)]
        t0 = time.perf_counter()
        workers = [threading.Thread(target=adder, args=(k,)) for k in shares]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        dt = time.perf_counter() - t0
        assert counter[0] == n, (counter[0], n)
        return dt

    return bench


def returns_at_once():
    pass


def thread_start_join(n):
    Thread, f = threading.Thread, returns_at_once
    t0 = time.perf_counter()
    for _ in range(n):
        t = Thread(target=f)
        t.start()
        t.join()
    return time.perf_counter() - t0


run("BenchmarkLockUncontended/python", uncontended)
run("BenchmarkLockContended/threads=2/python", contended(2))
run("BenchmarkLockContended/threads=4/python", contended(4))
run("BenchmarkThreadStartJoin/python", thread_start_join, start=100)
