#!/usr/bin/env bash
# Runs every benchmark whose name matches the regex in $2, weft and its
# peers in the same run. Usage: bench/run.sh <build-dir> [regex]
set -u
build=$1
export BENCH_FILTER=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)

# wanted NAME...: does any of the names match the filter?
wanted() {
  local name
  for name in "$@"; do
    if printf '%s\n' "$name" | grep -Eq -- "$BENCH_FILTER"; then
      return 0
    fi
  done
  return 1
}

# skip WHY NAME...: a skip line for the names that match the filter.
skip() {
  local why=$1 name names=
  shift
  for name in "$@"; do
    if wanted "$name"; then
      names=${names:+$names, }$name
    fi
  done
  if [ -n "$names" ]; then
    echo "# skip $names: $why"
  fi
}

# weft_bench PROGRAM NAME...: one of weft's benchmark programs, if built.
weft_bench() {
  local prog=$1
  shift
  if ! wanted "$@"; then
    return
  fi
  if [ -x "$build/bench/$prog" ]; then
    ${PIN:-} "$build/bench/$prog"
  else
    skip "$prog is not built in $build" "$@"
  fi
}

# The Go peers in peers/go, each run by name with measure.go, the loop
# they share.
go_peer() {
  local file=$1
  shift
  if ! wanted "$@"; then
    return
  fi
  if command -v go >/dev/null 2>&1; then
    (cd "$here/peers/go" && GOFLAGS=-mod=mod GO111MODULE=off ${PIN:-} go run "$file" measure.go "$BENCH_FILTER")
  else
    skip "go not installed (make bench-peers)" "$@"
  fi
}

# The plain-Python peers (no gevent) in peers/, each run by name.
python_peer() {
  local file=$1
  shift
  if ! wanted "$@"; then
    return
  fi
  if command -v python3 >/dev/null 2>&1; then
    ${PIN:-} python3 "$here/peers/$file" "$BENCH_FILTER"
  else
    skip "python3 not installed" "$@"
  fi
}

# gevent from Debian's python3-gevent lives in the system Python, which may
# not be the first python3 on PATH.
gevent_python=
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import gevent' >/dev/null 2>&1; then
    gevent_python=$py
    break
  fi
done
gevent_peer() {
  local file=$1
  shift
  if ! wanted "$@"; then
    return
  fi
  if [ -n "$gevent_python" ]; then
    ${PIN:-} "$gevent_python" "$here/peers/$file" "$BENCH_FILTER"
  else
    skip "python3-gevent not installed (make bench-peers)" "$@"
  fi
}

# The state-threads peers, built by CMake when st.h and libst are found.
st_peer() {
  local prog=bench-st-$1
  shift
  if ! wanted "$@"; then
    return
  fi
  if [ -x "$build/bench/$prog" ]; then
    ${PIN:-} "$build/bench/$prog" "$BENCH_FILTER"
  else
    skip "state-threads not installed (make bench-peers, then rebuild)" "$@"
  fi
}

# redis_benchmark_row N: redis-benchmark's GETs from N clients on the
# server at $REDIS_PORT (the value SET with redis-cli first: redis-benchmark
# -t get would GET a key nobody set, a nil reply). A run's GETs are sized
# as bench.h sizes a round, to about 0.25 s, and the median of 5 runs is
# printed; redis-benchmark's time starts once its clients are made.
redis_benchmark_row() {
  local n=$1 name="BenchmarkRedisGet/clients=$1/redis-benchmark" rps gets i
  local value=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  if ! wanted "$name"; then
    return
  fi
  if [ "$(redis-cli -p "$REDIS_PORT" SET weft:bench:get "$value")" != OK ]; then
    echo "# $name failed: SET with redis-cli"
    return
  fi
  # rps GETS: one run's GETs per second.
  rps() {
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null
     ${redis_client_pin:-} redis-benchmark -p "$REDIS_PORT" -c "$n" -n "$1" -P 1 --csv \
       GET weft:bench:get | awk -F'"' 'NR == 2 { print $4 }')
  }
  rps=$(rps $((n * 20 > 20000 ? n * 20 : 20000)))
  if [ -z "$rps" ]; then
    echo "# $name failed: redis-benchmark gave no figure"
    return
  fi
  gets=$(awk -v r="$rps" -v n="$n" 'BEGIN { g = int(r / 4); print (g > 2 * n ? g : 2 * n) }')
  local runs=()
  for i in 1 2 3 4 5; do
    runs+=("$(rps "$gets")")
  done
  rps=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n 3p)
  awk -v name="$name" -v gets="$gets" -v r="$rps" \
    'BEGIN { if (r > 0) printf "%-40s %12d %10.1f ns/op\n", name, gets, 1e9 / r;
             else printf "# %s failed: redis-benchmark gave no figure\n", name }'
}

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
weft_bench bench-idle BenchmarkWakeHibernated/{,cycle/}{weft,awake}
go_peer hub.go BenchmarkSpawnJoin/go BenchmarkYield/go
gevent_peer gevent_hub.py BenchmarkSpawnJoin/gevent BenchmarkYield/gevent
st_peer hub BenchmarkSpawnJoin/st BenchmarkYield/st

# Task groups: n members that return at once, spawned into a group and
# waited for, beside Python's asyncio.TaskGroup and Go's errgroup (Debian's
# golang-golang-x-sync-dev, a GOPATH package, as the Go peers build).
weft_bench bench-group BenchmarkGroup/members={1,100,10000}/weft
python_peer python_group.py BenchmarkGroup/members={1,100,10000}/python
group_gopath=
if command -v go >/dev/null 2>&1; then
  group_gopath="$(go env GOPATH):/usr/share/gocode"
fi
if [ -n "$group_gopath" ] && GOPATH=$group_gopath GO111MODULE=off \
  go list golang.org/x/sync/errgroup >/dev/null 2>&1; then
  GOPATH=$group_gopath go_peer group.go BenchmarkGroup/members={1,100,10000}/go
else
  skip "go or golang.org/x/sync not installed (make bench-peers)" \
    BenchmarkGroup/members={1,100,10000}/go
fi

# The sync layer: a lock uncontended and fought over by 2 and 4 threads,
# Go's channels, a thread's start and join. Python's threads run under the
# GIL, so its contended rows are not a lock fought over in parallel.
weft_bench bench-sync BenchmarkLockUncontended/{weft,pthread} \
  BenchmarkLockContended/threads={2,4}/{weft,pthread} BenchmarkLockTasks/weft \
  BenchmarkChanPingPong/weft-{tasks,threads} BenchmarkChanPingPong/pthread-cond \
  BenchmarkChanPingPong/load=busy/{weft-threads,pthread-cond}
weft_bench bench-thread BenchmarkThreadStartJoin/{weft,pthread} \
  BenchmarkThreadStartJoin/load=busy/{weft,pthread}
go_peer sync.go BenchmarkLockUncontended/go BenchmarkLockContended/threads={2,4}/go \
  BenchmarkChanPingPong/go-P{1,2} BenchmarkChanPingPong/go-P2-threads \
  BenchmarkChanPingPong/load=busy/go-P2-threads BenchmarkThreadStartJoin/go
python_peer python_sync.py BenchmarkLockUncontended/python \
  BenchmarkLockContended/threads={2,4}/python BenchmarkThreadStartJoin/python

# The process layer: a child that returns at once started and joined (weft,
# fork + waitpid, Python's multiprocessing with the fork context), and
# /bin/true run and joined (weft, posix_spawn + waitpid).
weft_bench bench-proc BenchmarkProcessStartJoin/{weft,fork-waitpid} \
  BenchmarkProcessExec/{weft,posix-spawn}
python_peer python_proc.py BenchmarkProcessStartJoin/python-mp

# The notes' questions (docs/notes.md): the same CPU-bound job (pure
# arithmetic) and I/O-bound job (a timerfd read 1 ms after it is armed)
# spread over tasks, threads and processes, weft's and Python's, each row
# with the CPUs it kept busy; and a token handed back and forth between two
# tasks, and between two threads on one CPU. Not pinned as a whole: using
# both CPUs is the point of the CPU-bound rows (the hand-off's threads pin
# themselves).
weft_bench bench-notes \
  BenchmarkCPUBound/workers={1,2,4}/{serial,weft-tasks,weft-threads,weft-procs} \
  BenchmarkIOBound/waiters={1,2,100,1000}/{serial,weft-procs,weft-threads,weft-tasks,weft-tasks-blocking-read} \
  BenchmarkHandOff/{weft-tasks,pipe-threads-1cpu}
python_peer python_notes.py \
  BenchmarkCPUBound/workers={1,2}/python-{serial,threads,procs} \
  BenchmarkIOBound/waiters={1,2,100}/python-{serial,procs,threads,asyncio}

# Futures and pools (bench/exec.c says what each row measures): a no-op
# submitted to a thread pool and its result awaited, one call at a time
# (RoundTrip) and a million calls submitted, then awaited (Throughput;
# Python's rounds are 100,000 calls), ns per call: weft_thread_pool,
# Python's ThreadPoolExecutor and a Go worker pool (goroutines fed by a
# channel, GOMAXPROCS every CPU); the same on a process pool with 64-byte
# arguments and results (weft_proc_pool, ProcessPoolExecutor with fork; no
# Go row); and 1,000 CPU-bound jobs (a hash over 1 MiB; Python: 20 jobs) or
# I/O-bound ones (a timerfd read 1 ms after it is armed) run on each
# runner, ns per job and the CPUs kept busy. Not pinned: the pools' workers
# are meant to run on every CPU, and a wake-up across CPUs (through the
# hypervisor in a VM) is part of what a round trip costs.
weft_bench bench-exec BenchmarkThreadPool{RoundTrip,Throughput}/weft \
  BenchmarkProcessPool{RoundTrip,Throughput}/weft \
  BenchmarkWorkload/kind={cpu,io}/weft-{thread-pool,proc-pool,tasks}
go_peer exec.go BenchmarkThreadPool{RoundTrip,Throughput}/go
python_peer python_exec.py BenchmarkThreadPool{RoundTrip,Throughput}/python \
  BenchmarkProcessPool{RoundTrip,Throughput}/python \
  BenchmarkWorkload/kind={cpu,io}/python-{threads,procs}

# The notes' "combine processes with coroutines" (docs/notes.md): a server
# whose requests are CPU-bound (27 us of arithmetic each, 8 bytes each
# way) as weft's cluster with 1 and 2 worker processes, and as one hub in
# one process, loaded by 16 keep-alive connections from one hub in the
# benchmark's process, with the CPUs each server kept busy and the scaling
# from 1 to 2 workers. Not pinned: using both CPUs is the point. The client
# shares them, as wrk does in the HTTP rows, but needs a fraction of a CPU
# (its share is printed) where the server needs both.
weft_bench bench-cluster BenchmarkClusterCPU/{workers={1,2},one-hub}/weft

# 64-byte messages from 1 producer process to 1 consumer, and from 4 to 4:
# weft's process-safe queue, one plain pipe, Python's multiprocessing.Queue
# (fork context). Not pinned, unlike the echo rows: a queue between
# processes is there so that producers and consumers run at once on
# different CPUs, and the wake-ups across CPUs are part of what it costs.
# Pinned to one CPU, a row would time puts and gets taking turns on it
# instead.
weft_bench bench-queue BenchmarkQueue/producers={1,4}/{weft,pipe}
python_peer python_queue.py BenchmarkQueue/producers={1,4}/python-mp

# TCP echo over 127.0.0.1 on 1, 100 and 10,000 connections; each program
# starts its server in a second process and stops it when done. Both
# processes of every implementation are pinned to one CPU: in a virtual
# machine a wake-up across CPUs goes through the hypervisor (about 70 us
# here, varying two- to threefold from run to run), which would swamp what
# the runtimes themselves cost. Pinned, each side still has one thread.
pin=
if command -v taskset >/dev/null 2>&1; then
  pin="taskset -c $(($(nproc) - 1))"
else
  echo "# note: taskset not found, the echo benchmarks run unpinned"
fi
$pin true 2>/dev/null || pin=
PIN=$pin weft_bench bench-echo BenchmarkEcho/conns={1,100,10000}/weft
PIN=$pin go_peer echo.go BenchmarkEcho/conns={1,100,10000}/go
PIN=$pin gevent_peer gevent_echo.py BenchmarkEcho/conns={1,100,10000}/gevent
PIN=$pin st_peer echo BenchmarkEcho/conns={1,100,10000}/st

# What the hooks add to a read that need not wait (bench/hooked-read.c): a
# byte written into a pipe and read back, the read through the hooks in a
# task (a program linked with libweft-hook), through weft_io_read in a
# task, and as read(2) on a plain thread (both in a program without them).
weft_bench bench-hooked-read BenchmarkHookedRead/hooked
weft_bench bench-read BenchmarkHookedRead/{weft_io_read,read}

# BenchmarkRedisGet (bench/redis-client.h says what a row measures): n
# clients (1, 100, 1,000), each with a connection of its own, making GETs
# of one 64-byte value one at a time, every reply checked; ns per GET over
# all clients (1/throughput), and the resident memory a client adds.
# weft: tasks on one hub, hiredis's synchronous API through the hooks;
# pthread: the same client on a thread each, without the hooks; gevent:
# redis-py, monkey-patched; go: redigo, GOMAXPROCS=1; redis-benchmark:
# redis' own load generator, an event loop in C on one thread, as the
# reference (it records each reply's latency and checks none). One
# redis-server serves every row:
# bench-redis-server starts it here on a free loopback port (REDIS_PORT
# tells the rows) and stops it once they are done.
#
# Placement: the server shares the machine's 2 CPUs with the clients. By
# default (REDIS_PIN=split) the server is pinned to the first CPU and every
# client program to the last, so that each side has one CPU of its own
# (the pthread row's threads share theirs, as weft's tasks, Go's
# GOMAXPROCS=1 and gevent's hub share one thread). At 100 and 1,000
# clients a row's ns/op is then what its client spends on a GET, as long
# as the server keeps up: it does here, the fastest client (go) getting
# about 4.5 us a GET, while the others are slower on a CPU they saturate.
# With 1 client each GET waits for two wake-ups across CPUs, which in this
# VM go through the hypervisor (some 70 us a GET, in every row alike): that
# row measures the machine more than the clients. REDIS_PIN=one pins the
# server and the clients to the same CPU, as the echo rows are (1 client:
# about 9 us a GET; every row then also holds the server's CPU time, the
# same in all, which narrows the ratios between them); REDIS_PIN=0 leaves
# everything unpinned.
redis_rows=(BenchmarkRedisGet/clients={1,100,1000}/{weft,pthread,gevent,go,redis-benchmark})
if wanted "${redis_rows[@]}"; then
  redis_server_pin=
  redis_client_pin=
  if [ -n "$pin" ]; then
    case ${REDIS_PIN:-split} in
    split) redis_server_pin="taskset -c 0" redis_client_pin=$pin ;;
    one) redis_server_pin=$pin redis_client_pin=$pin ;;
    esac
  fi
  # The server's helper prints the port, then stops the server when its
  # stdin (this script's end of the coprocess's pipe) closes. bash forgets
  # a coprocess's fds once it has ended: a helper that failed leaves none.
  coproc redis_server { $redis_server_pin "$build/bench/bench-redis-server"; }
  redis_server_pid=${redis_server_PID:-}
  REDIS_PORT=
  if [ -n "${redis_server[0]:-}" ]; then
    read -r REDIS_PORT <&"${redis_server[0]}"
  fi
  if [ -z "$REDIS_PORT" ]; then
    wait "$redis_server_pid"
    if [ $? = 2 ]; then
      skip "redis-server not installed (make bench-peers)" "${redis_rows[@]}"
    else
      skip "bench-redis-server could not start redis-server" "${redis_rows[@]}"
    fi
  else
    export REDIS_PORT
    if [ -x "$build/bench/bench-redis" ]; then
      PIN=$redis_client_pin weft_bench bench-redis BenchmarkRedisGet/clients={1,100,1000}/weft
      PIN=$redis_client_pin weft_bench bench-redis-pthread BenchmarkRedisGet/clients={1,100,1000}/pthread
    else
      skip "hiredis not installed (make bench-peers, then rebuild)" \
        BenchmarkRedisGet/clients={1,100,1000}/{weft,pthread}
    fi
    if [ -n "$gevent_python" ] && "$gevent_python" -c 'import redis' >/dev/null 2>&1; then
      PIN=$redis_client_pin gevent_peer gevent_redis.py BenchmarkRedisGet/clients={1,100,1000}/gevent
    else
      skip "python3-gevent or python3-redis not installed (make bench-peers)" \
        BenchmarkRedisGet/clients={1,100,1000}/gevent
    fi
    # Debian's redigo is a GOPATH package, as the Go peers build
    # (GO111MODULE=off).
    redis_gopath=
    if command -v go >/dev/null 2>&1; then
      redis_gopath="$(go env GOPATH):/usr/share/gocode"
    fi
    if [ -n "$redis_gopath" ] && GOPATH=$redis_gopath GO111MODULE=off \
      go list github.com/gomodule/redigo/redis >/dev/null 2>&1; then
      GOPATH=$redis_gopath PIN=$redis_client_pin go_peer redis.go BenchmarkRedisGet/clients={1,100,1000}/go
    else
      skip "go or redigo not installed (make bench-peers)" \
        BenchmarkRedisGet/clients={1,100,1000}/go
    fi
    if command -v redis-benchmark >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
      for n in 1 100 1000; do
        redis_benchmark_row "$n"
      done
    else
      skip "redis-tools not installed (make bench-peers)" \
        BenchmarkRedisGet/clients={1,100,1000}/redis-benchmark
    fi
  fi
  if [ -n "${redis_server[1]:-}" ]; then
    exec {redis_server[1]}>&-
  fi
  wait "$redis_server_pid" 2>/dev/null
fi

# A million tasks alive at once (gevent: 100,000), each program in a
# process of its own for its peak memory.
weft_bench bench-many BenchmarkManyTasks/weft
go_peer many.go BenchmarkManyTasks/go
gevent_peer gevent_many.py BenchmarkManyTasks/gevent
st_peer many BenchmarkManyTasks/st

# HTTP on loopback (bench/http/http.sh): weft's examples/httpd and nginx,
# configured alike and started there on a free port, loaded by wrk -t1
# (GET /hello and a 64 KiB file, keep-alive, 100 and 1,000 connections),
# and the memory of 100,000 idle keep-alive connections, Go's net/http
# beside them. Placement: wrk
# needs a CPU of its own, so a server with 1 worker is pinned to the first
# CPU and wrk to the second; with 2 workers on a 2-CPU machine the server
# gets both CPUs and wrk runs unpinned beside it (oversubscribed: those
# rows show one core's efficiency shared by two workers, not scaling).
# nginx and weft are placed alike and take turns. WRK_SECONDS (10) and
# WRK_WARMUP (2) set each run's length, HTTP_RUNS (1) the runs per row,
# HTTP_PIN=0 leaves everything unpinned; more in http.sh.
"$here/http/http.sh" "$build"
