"""gevent's side of the echo benchmark, BenchmarkEcho/conns=<n>/gevent: a
TCP echo over 127.0.0.1, n connections each writing 64 bytes and reading
them back, over and over; ns per round trip. Prints Go's benchmark format.

The server (a greenlet per accepted connection, reading up to 64 bytes and
writing back what it read until EOF) is this script again, run with
--server in a second process, so that the server and the clients each have
one OS thread. It writes its port on its stdout and exits when its parent
is gone.

The connections are all made before the timing starts. A round is R round
trips, R/n on each connection; R is sized so that a round takes about 0.2 s
(at least 2 round trips on each connection), and the median of 5 rounds is
printed. Usage: gevent_echo.py [regex]"""
import os
import resource
import signal
import socket as stdsocket
import struct
import subprocess
import sys
import time

import gevent
import gevent.event
from gevent import socket

from pybench import raise_file_limit

MSG = b"x" * 64
SIZES = (1, 100, 10000)


def nodelay(sock):
    sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)


def serve():
    raise_file_limit()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    print(listener.getsockname()[1], flush=True)
    parent = os.getppid()

    def orphan_watch():
        while os.getppid() == parent:
            gevent.sleep(1)
        os._exit(0)

    def handle(conn):
        nodelay(conn)
        try:
            while True:
                data = conn.recv(64)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        conn.close()

    gevent.spawn(orphan_watch)
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            gevent.sleep(0.01)  # EMFILE and the like: the client will notice
            continue
        gevent.spawn(handle, conn)


def round_trip(sock):
    sock.sendall(MSG)
    got = 0
    while got < 64:
        data = sock.recv(64 - got)
        if not data:
            raise EOFError("the echo server closed the connection")
        got += len(data)


def dial(port, n):
    """n connections, in batches that each do one round trip on every
    connection (a greenlet each) before the next batch, so the server has
    accepted every connection of a batch before more arrive and the listen
    backlog never overflows. The connections go into conns as they are
    made."""
    conns = []
    try:
        while len(conns) < n:
            batch = []
            for _ in range(min(500, n - len(conns))):
                sock = socket.create_connection(("127.0.0.1", port))
                conns.append(sock)
                nodelay(sock)
                batch.append(sock)
            trips = [gevent.spawn(round_trip, sock) for sock in batch]
            gevent.joinall(trips, raise_error=True)
    except BaseException:
        close_all(conns)
        raise
    return conns


def close_all(conns):
    """Closes with a reset, so that 10,000 connections leave no TIME_WAIT
    behind."""
    for sock in conns:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def one_round(conns, k):
    """k round trips on every connection, a greenlet each; returns the
    seconds it took. The greenlets wait at a gate, so that starting them is
    not timed."""
    gate = gevent.event.Event()

    def client(sock):
        gate.wait()
        for _ in range(k):
            round_trip(sock)

    greenlets = [gevent.spawn(client, sock) for sock in conns]
    gevent.sleep(0)  # let them reach the gate
    t0 = time.perf_counter()
    gate.set()
    gevent.joinall(greenlets)
    dt = time.perf_counter() - t0
    if not all(g.successful() for g in greenlets):
        sys.exit("gevent_echo.py: a client failed")
    return dt


def bench(name, port, n):
    limit = raise_file_limit()
    if limit != resource.RLIM_INFINITY and limit < n + 64:
        print(f"# skip {name}: RLIMIT_NOFILE is {limit}, {n} connections need more",
              flush=True)
        return
    try:
        conns = dial(port, n)
    except (OSError, EOFError) as e:
        print(f"# skip {name}: connecting: {e}", flush=True)
        return
    try:
        k = 2
        while True:
            dt = one_round(conns, k)
            if dt > 0.2:
                break
            nxt = int(k * 0.25 / dt) if dt > 0.001 else k * 100
            k = nxt if nxt > k else k * 2
        rounds = sorted(one_round(conns, k) * 1e9 / (k * n) for _ in range(5))
        print(f"{name:<40} {k * n:12d} {rounds[2]:10.1f} ns/op", flush=True)
    finally:
        close_all(conns)


def main():
    if sys.argv[1:2] == ["--server"]:
        serve()
        return
    from pybench import FILTER

    todo = [(f"BenchmarkEcho/conns={n}/gevent", n) for n in SIZES]
    todo = [(name, n) for name, n in todo if FILTER.search(name)]
    if not todo:
        return
    signal.alarm(600)  # everything is bounded: SIGALRM ends this process
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--server"],
                              stdout=subprocess.PIPE)
    try:
        line = server.stdout.readline()
        try:
            port = int(line)
        except ValueError:
            print("# skip BenchmarkEcho/*/gevent: no port from the server", flush=True)
            return
        for name, n in todo:
            bench(name, port, n)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
