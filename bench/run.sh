#!/usr/bin/env bash
# Runs every benchmark whose name matches the regex in $2, weft and its
# peers in the same run. Usage: bench/run.sh <build-dir> [regex]
set -u
build=$1
export BENCH_FILTER=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)
echo "# weft benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$build/bench/bench-switch"
if command -v python3 >/dev/null 2>&1; then
  python3 "$here/peers/python_generator.py" "$BENCH_FILTER"
else
  echo "# skip BenchmarkSwitch/python-generator: python3 not installed"
fi
"$build/bench/bench-gen"
"$build/bench/bench-timers"
"$build/bench/bench-hub"
if command -v go >/dev/null 2>&1; then
  (cd "$here/peers/go" && GOFLAGS=-mod=mod GO111MODULE=off go run hub.go "$BENCH_FILTER")
else
  echo "# skip BenchmarkSpawnJoin/go, BenchmarkYield/go: go not installed (make bench-peers)"
fi
# gevent from Debian's python3-gevent lives in the system Python, which may
# not be the first python3 on PATH.
gevent_python=
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import gevent' >/dev/null 2>&1; then
    gevent_python=$py
    break
  fi
done
if [ -n "$gevent_python" ]; then
  "$gevent_python" "$here/peers/gevent_hub.py" "$BENCH_FILTER"
else
  echo "# skip BenchmarkSpawnJoin/gevent, BenchmarkYield/gevent: python3-gevent not installed (make bench-peers)"
fi
