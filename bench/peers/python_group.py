"""Python's asyncio.TaskGroup (3.11), measured like weft's task groups:
BenchmarkGroup/members=<n>/python makes a TaskGroup, starts n tasks that
return at once, and leaves the block (which waits for them); ns per group.
Prints Go's benchmark format; the median of 5 rounds."""
import asyncio
import sys
import time

from pybench import run


async def nothing():
    return None


async def groups(count, members):
    for _ in range(count):
        async with asyncio.TaskGroup() as tg:
            for _ in range(members):
                tg.create_task(nothing())


def bench(members):
    def timed(n):
        t0 = time.perf_counter()
        asyncio.run(groups(n, members))
        return time.perf_counter() - t0
    return timed


if sys.version_info < (3, 11):
    for members in (1, 100, 10000):
        print(f"# skip BenchmarkGroup/members={members}/python: "
              "asyncio.TaskGroup needs Python 3.11")
else:
    for members in (1, 100, 10000):
        run(f"BenchmarkGroup/members={members}/python", bench(members),
            start=1)
