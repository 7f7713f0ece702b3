#!/usr/bin/env bash
# Writes docs/bench/README.md and its plots (bench/report.py) from a run
# of the benchmarks: a new one, saved to docs/bench/run.txt with the
# machine, the date and the load, or a saved one (copied there).
# Usage: bench/report.sh <build-dir> [regex] [saved-run]
set -euo pipefail
build=$1
filter=${2:-.}
saved=${3:-}
out=docs/bench
mkdir -p "$out"
if [ -n "$saved" ]; then
  if [ ! -r "$saved" ]; then
    echo "bench-report: cannot read $saved" >&2
    exit 1
  fi
  if [ "$(realpath "$saved")" != "$(realpath -m "$out/run.txt")" ]; then
    cp "$saved" "$out/run.txt"
  fi
else
  {
    echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "# machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "# cpus: $(nproc)"
    echo "# kernel: $(uname -r)"
    echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    bench/run.sh "$build" "$filter"
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# ended: $(date -u '+%H:%M UTC')"
  } > "$out/run.txt.new"
  mv "$out/run.txt.new" "$out/run.txt"
fi
/usr/bin/python3 bench/report.py "$out/run.txt" "$out"
echo "bench-report: wrote $out/README.md"
