"""The measuring loop shared by the Python peers: the same method as weft's
bench.h (size a round to about 0.2 s, then the median of 5 rounds), printed
in Go's benchmark format; and what several peers need of the process (its
memory, its fd limit)."""
import re
import resource
import sys

FILTER = re.compile(sys.argv[1] if len(sys.argv) > 1 else ".")


def run(name, fn, start=1000, rate=None, extra=None):
    """fn(n) runs the operation n times and returns the seconds it took.
    rate, if given, is the unit of a throughput printed after the ns/op:
    operations per second ("msg/s"). extra, if given, is printed at the
    end of the line: further figures ("4096 B/client")."""
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
    if extra:
        line += f" {extra}"
    print(line, flush=True)


def status_kb(field):
    """A field of /proc/self/status ("VmRSS") in KiB, or -1."""
    return proc_kb("/proc/self/status", field)


def meminfo_kb(field):
    """A field of /proc/meminfo ("KernelStack") in KiB, or -1: the whole
    machine's."""
    return proc_kb("/proc/meminfo", field)


def proc_kb(path, field):
    """A "Name:  <n> kB" field of a /proc file in KiB, or -1."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def raise_file_limit():
    """Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft
    limit it got."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
