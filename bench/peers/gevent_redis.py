"""gevent's side of BenchmarkRedisGet, BenchmarkRedisGet/clients=<n>/gevent:
n greenlets, each with a redis-py client and connection of its own, making
GETs of one 64-byte value, one at a time; ns per GET and resident bytes per
client. Prints Go's benchmark format.

redis-py is unmodified (Debian's python3-redis), made cooperative by
monkey.patch_all() before it is imported: gevent's counterpart of weft's
hooks. The server is the one bench/run.sh started (bench-redis-server), on
the port in $REDIS_PORT; the value is SET once before the rows. Every reply
is checked. As in weft's rows (bench/redis-client.h): B/client is VmRSS
once every client has connected and made one GET, less VmRSS before the
first connected, over n, and kstack-B/client the kernel stacks the clients
added over the same span (/proc/meminfo's KernelStack), over n, each row in a process of its own (this script
again, the regex followed by --row n); a round's GETs are sized so that it
takes about 0.2 s, spread evenly over the clients, and the median of 5
rounds is printed.
Usage: gevent_redis.py [regex]"""
from gevent import monkey

# Before anything else is imported, as gevent asks: redis-py then finds
# gevent's socket and select where the standard library's were.
monkey.patch_all()

import gc
import os
import resource
import subprocess
import sys
import time

import gevent
import gevent.event
import redis

from pybench import FILTER, meminfo_kb, raise_file_limit, run, status_kb

# The key and value of bench/redis-client.h.
KEY = "weft:bench:get"
VALUE = b"0123456789abcdef" * 4
SIZES = (1, 100, 1000)


def get(client):
    got = client.get(KEY)
    if got != VALUE:
        raise ValueError(f"GET: {got!r}, not the value set")


class Clients:
    """n greenlets, each owning a client, that make their share of a
    round's GETs whenever it starts. `go` is the round's event: a new one
    is in place before the old one is set, so a client that wakes finds the
    next round's event to wait on. `left` counts the clients still busy."""

    def __init__(self, port, n):
        self.n = n
        self.error = None
        self.stopping = False
        self.shares = [0] * n
        self.go = gevent.event.Event()
        self.start_round()
        self.greenlets = [gevent.spawn(self.client, port, i) for i in range(n)]
        self.done.wait()

    def start_round(self):
        self.left = self.n
        self.done = gevent.event.Event()

    def finish(self, error):
        if error is not None and self.error is None:
            self.error = error
        self.left -= 1
        if self.left == 0:
            self.done.set()

    def client(self, port, i):
        go = self.go
        conn = None
        try:
            conn = redis.Redis(host="127.0.0.1", port=port,
                               single_connection_client=True)
            get(conn)
            error = None
        except Exception as e:
            error = e
        self.finish(error)
        while True:
            go.wait()
            go = self.go
            if self.stopping:
                break
            try:
                for _ in range(self.shares[i] if error is None else 0):
                    get(conn)
            except Exception as e:
                error = e
            self.finish(error)
        if conn is not None:
            conn.close()

    def round(self, gets):
        """gets GETs, spread over the clients; returns the seconds."""
        q, r = divmod(gets, self.n)
        self.shares = [q + (i < r) for i in range(self.n)]
        self.start_round()
        t0 = time.perf_counter()
        self.release()
        self.done.wait()
        return time.perf_counter() - t0

    def release(self):
        go, self.go = self.go, gevent.event.Event()
        go.set()

    def stop(self):
        self.stopping = True
        self.release()
        gevent.joinall(self.greenlets)


def row(port, n):
    name = f"BenchmarkRedisGet/clients={n}/gevent"
    limit = raise_file_limit()
    if limit != resource.RLIM_INFINITY and limit < n + 64:
        print(f"# skip {name}: RLIMIT_NOFILE is {limit}, {n} connections "
              "need more", flush=True)
        return
    gevent.sleep(0)  # start the hub before measuring
    gc.collect()
    before, kstack_before = status_kb("VmRSS"), meminfo_kb("KernelStack")
    clients = Clients(port, n)
    after, kstack_after = status_kb("VmRSS"), meminfo_kb("KernelStack")
    try:
        if clients.error is not None:
            raise clients.error

        def gets(k):
            dt = clients.round(k)
            if clients.error is not None:
                raise clients.error
            return dt

        run(name, gets, start=n,
            extra=f"{(after - before) * 1024 / n:10.0f} B/client "
                  f"{(kstack_after - kstack_before) * 1024 / n:8.0f} "
                  "kstack-B/client")
    except Exception as e:
        print(f"# {name} failed: {e}", flush=True)
    finally:
        clients.stop()


def main():
    if sys.argv[2:3] == ["--row"]:
        row(int(os.environ["REDIS_PORT"]), int(sys.argv[3]))
        return
    todo = [n for n in SIZES
            if FILTER.search(f"BenchmarkRedisGet/clients={n}/gevent")]
    if not todo:
        return
    if not os.environ.get("REDIS_PORT", "").isdigit():
        print("# skip BenchmarkRedisGet/*/gevent: no server (REDIS_PORT)",
              flush=True)
        return
    port = int(os.environ["REDIS_PORT"])
    try:
        redis.Redis(host="127.0.0.1", port=port).set(KEY, VALUE)
    except redis.RedisError as e:
        print(f"# BenchmarkRedisGet/*/gevent failed: SET: {e}", flush=True)
        return
    for n in todo:
        subprocess.run([sys.executable, os.path.abspath(__file__),
                        FILTER.pattern, "--row", str(n)],
                       timeout=600, check=False)


if __name__ == "__main__":
    main()
