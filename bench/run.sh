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
