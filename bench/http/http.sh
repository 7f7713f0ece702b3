#!/usr/bin/env bash
# The HTTP benchmarks: weft's examples/httpd against nginx, on loopback,
# each server started here on a free port with the same settings and
# stopped when its row is done. Usage: bench/http/http.sh <build-dir>, with
# the filter in $BENCH_FILTER (bench/run.sh sets it).
#
#   BenchmarkHTTP/workers=<w>/conns=<c>/<impl>        GET /hello, 12 bytes
#   BenchmarkHTTPStatic/workers=<w>/conns=100/<impl>  GET of a 64 KiB file
#       wrk -t1 --latency, keep-alive, a warm-up run and then the measured
#       one. Columns: requests done, 1e9 / (requests per second) as ns/op,
#       requests per second, and the 99th percentile of latency in us;
#       then the server's CPU time per request, the share of it spent in
#       user space (srv-usr-%; the rest is the kernel's), and the CPUs wrk
#       kept busy.
#       That percentile is wrk's after its correction for coordinated
#       omission (stats_correct in wrk.c): a response that took n times a
#       connection's mean interval between responses adds samples of n - 1,
#       n - 2, ... down to 2 intervals. One stall of the server or of wrk,
#       say 300 ms while another process has the CPU, thus weighs hundreds
#       of samples, and p99 is the column that noise on the machine moves
#       most.
#   BenchmarkHTTPIdle/conns=100000/<impl>
#       The server's resident memory per idle keep-alive connection: its
#       worker's VmRSS before and after 100,000 connections have each had
#       one answer and gone quiet (bench-http-client idle, client.c), with
#       one worker (nginx, weft) or GOMAXPROCS=1 (go: a net/http server,
#       bench/peers/go/httpd.go). The connections come from several
#       loopback addresses, and need a descriptor limit above 100,000,
#       which this script raises where it may (as root).
#
# Placement. The benchmarks want a CPU for the load generator apart from
# the server's: with workers=w and more than w CPUs, the server (all its
# processes) is pinned to the first w CPUs and wrk to the next one. With no
# CPU to spare (workers=2 on a 2-CPU machine), the server may use all of
# them and wrk runs unpinned beside it: three busy threads on two CPUs, so
# those rows are oversubscribed and measure one core's worth of efficiency
# shared by two workers, not scaling. weft and nginx are placed alike, and
# when a row is repeated (HTTP_RUNS) the two take turns, nginx then weft,
# so that a noisy moment hurts both. The idle rows are not pinned: they
# measure memory, not time.
#
# Pinning is no shield against other work on the machine: a pinned server
# cannot leave a CPU that another process keeps busy, so on a shared
# machine compare rows of one run only, and look at the load printed at its
# start and end. HTTP_PIN=0 runs everything unpinned.
#
# Knobs: WRK_SECONDS (10) and WRK_WARMUP (2), each run's length; HTTP_RUNS
# (1), runs of each row; HTTP_IDLE_CONNS (100000); HTTP_IDLE_SETTLE_MS
# (2000), how long the idle connections stay quiet before the memory is
# read; HTTP_REUSEPORT=1, an SO_REUSEPORT listener per worker in both
# servers instead of one shared listener (nginx's and weft's default);
# HTTPD, the httpd binary (default <build>/examples/httpd/httpd).
set -u
build=$1
here=$(cd "$(dirname "$0")" && pwd)
filter=${BENCH_FILTER:-.}
client=$build/bench/http/bench-http-client
httpd=${HTTPD:-$build/examples/httpd/httpd}
seconds=${WRK_SECONDS:-10}
warmup=${WRK_WARMUP:-2}
runs=${HTTP_RUNS:-1}
idle_conns=${HTTP_IDLE_CONNS:-100000}
settle_ms=${HTTP_IDLE_SETTLE_MS:-2000}
reuseport=${HTTP_REUSEPORT:-0}
impls=(nginx weft)
idle_impls=(nginx weft go)

# Servers and clients need a descriptor per connection, and the idle
# connections are more than the usual limits: raised as far as allowed
# (root may raise the hard limit too, unless a container withholds
# CAP_SYS_RESOURCE). Where the limit stays lower and HTTP_IDLE_CONNS was
# not given, the idle rows hold as many thousands as fit, and say so.
ulimit -n $((idle_conns + 1024)) 2>/dev/null || ulimit -n 65536 2>/dev/null ||
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576
idle_note=
if [ -z "${HTTP_IDLE_CONNS:-}" ] && [ "$nofile" -lt $((idle_conns + 1024)) ]; then
  # nginx needs an eighth more than the idle connections (nginx_conf).
  fit=$(((nofile - 1024) * 8 / 9 / 1000 * 1000))
  idle_note="# HTTP: the descriptor limit is $nofile (not raised: $(ulimit -Hn) is the hard limit), so the idle rows hold $fit connections, not $idle_conns"
  idle_conns=$fit
fi

wanted() {
  local name
  for name in "$@"; do
    if printf '%s\n' "$name" | grep -Eq -- "$filter"; then
      return 0
    fi
  done
  return 1
}

hello_names() { # IMPL...
  local w c i
  for w in 1 2; do for c in 100 1000; do for i in "$@"; do
    echo "BenchmarkHTTP/workers=$w/conns=$c/$i"
  done; done; done
}
static_names() {
  local w i
  for w in 1 2; do for i in "$@"; do
    echo "BenchmarkHTTPStatic/workers=$w/conns=100/$i"
  done; done
}
idle_names() {
  local i
  for i in "$@"; do
    echo "BenchmarkHTTPIdle/conns=$idle_conns/$i"
  done
}

# skip WHY NAME...: one skip line for the names that match the filter.
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

# shellcheck disable=SC2046 # the names have no spaces
if ! wanted $(hello_names "${impls[@]}") $(static_names "${impls[@]}") $(idle_names "${idle_impls[@]}"); then
  exit 0
fi
echo "# HTTP: uptime: $(uptime 2>/dev/null || cat /proc/loadavg)"
[ -n "$idle_note" ] && wanted $(idle_names "${idle_impls[@]}") && echo "$idle_note"

# What can run: a missing tool or server skips its rows, each row once.
have_wrk=1 have_nginx=1 have_weft=1
if ! command -v wrk >/dev/null 2>&1; then
  have_wrk=0
  # shellcheck disable=SC2046
  skip "wrk not installed (make bench-peers)" $(hello_names "${impls[@]}") $(static_names "${impls[@]}")
fi
if ! command -v nginx >/dev/null 2>&1; then
  have_nginx=0
  # shellcheck disable=SC2046
  skip "nginx not installed (make bench-peers)" $([ "$have_wrk" = 1 ] && hello_names nginx && static_names nginx) $(idle_names nginx)
fi
if [ ! -x "$httpd" ]; then
  have_weft=0
  # shellcheck disable=SC2046
  skip "httpd is not built ($httpd)" $([ "$have_wrk" = 1 ] && hello_names weft && static_names weft) $(idle_names weft)
fi
if [ ! -x "$client" ]; then
  # shellcheck disable=SC2046
  skip "bench-http-client is not built in $build" $(hello_names "${impls[@]}") $(static_names "${impls[@]}") $(idle_names "${idle_impls[@]}")
  exit 0
fi
nginx_bin=$(command -v nginx 2>/dev/null)
have_go=1
if ! command -v go >/dev/null 2>&1; then
  have_go=0
  # shellcheck disable=SC2046
  skip "go not installed (make bench-peers)" $(idle_names go)
fi


tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-http.XXXXXX") || exit 1
srv_pid='' srv_kids='' fg_pid='' port=''
srv_pin=() wrk_pin=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [ -n "$fg_pid" ]; then
    kill -TERM "$fg_pid" 2>/dev/null
    wait "$fg_pid" 2>/dev/null
  fi
  stop_server
  rm -rf "$tmp"
}
# run_fg COMMAND...: runs a client (wrk, the idle client) in the background
# and waits for it, so that a signal to this script is handled at once
# (bash runs traps only between foreground commands) and the cleanup can
# stop the client too.
run_fg() {
  "$@" &
  fg_pid=$!
  wait "$fg_pid"
  local rc=$?
  fg_pid=
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The documents: /hello's answer (what it must be; the servers route it)
# and the static file, in the root both servers serve.
mkdir -p "$tmp/root" "$tmp/nginx"
printf 'Hello, world' >"$tmp/hello.expected"
head -c 65536 /dev/urandom >"$tmp/root/64k.bin"

# cpu_list: the CPUs this script may use, one a line ("0-3,6" expanded).
cpu_list() {
  local list item a b
  list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
  for item in ${list//,/ }; do
    a=${item%-*} b=${item#*-}
    seq "$a" "$b"
  done
}
mapfile -t cpus < <(cpu_list)
if [ "${HTTP_PIN:-1}" = 0 ]; then
  cpus=()
  echo "# HTTP: HTTP_PIN=0: nothing is pinned"
elif ! command -v taskset >/dev/null 2>&1 || ! taskset -c "${cpus[0]:-0}" true 2>/dev/null; then
  cpus=()
  echo "# HTTP: taskset not found or not allowed: nothing is pinned"
fi

# place W: sets srv_pin and wrk_pin, the commands that pin the server with
# W workers and wrk (see the top of this file), and prints the placement
# once per W.
placed=
place() {
  local w=$1 n=${#cpus[@]} srv
  srv_pin=() wrk_pin=()
  if [ "$n" -gt "$w" ]; then
    srv=$(printf '%s,' "${cpus[@]:0:$w}")
    srv_pin=(taskset -c "${srv%,}")
    wrk_pin=(taskset -c "${cpus[$w]}")
  fi
  case " $placed " in
  *" $w "*) ;;
  *)
    placed="$placed $w"
    if [ "${#srv_pin[@]}" -gt 0 ]; then
      echo "# HTTP workers=$w: servers on CPU ${srv%,}, wrk -t1 on CPU ${cpus[$w]}"
    elif [ "$n" -gt 0 ]; then
      echo "# HTTP workers=$w: servers and wrk -t1 unpinned on the same $n CPUs (oversubscribed)"
    fi
    ;;
  esac
}

# nginx_conf W PORT: nginx set up to do what weft's httpd does: W workers,
# no access log, keep-alive connections that neither side closes during a
# run, /hello answered from the configuration, files from the root with
# sendfile; otherwise nginx's defaults.
nginx_conf() {
  # Room for the idle connections and an eighth more: nginx closes idle
  # keep-alive connections to reuse them once fewer than a sixteenth of its
  # worker_connections are free.
  local w=$1 port=$2 conns=$((idle_conns + idle_conns / 8 + 1024)) backlog listen_opts
  # The backlog weft's listeners take (SOMAXCONN), not nginx's 511.
  backlog=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)
  listen_opts=" backlog=$backlog"
  [ "$conns" -gt "$nofile" ] && conns=$nofile
  [ "$reuseport" = 1 ] && listen_opts="$listen_opts reuseport"
  # As root, nginx's workers would switch to the user nobody, who may not
  # read the temporary root; they stay the user who runs the benchmark.
  if [ "$(id -u)" = 0 ]; then
    echo "user root;"
  fi
  cat <<EOF
worker_processes $w;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
worker_rlimit_nofile $nofile;
events {
  worker_connections $conns;
}
http {
  access_log off;
  default_type text/plain;
  sendfile on;
  keepalive_requests 1000000000;
  keepalive_timeout 75s;
  client_body_temp_path $tmp/nginx/client_body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port$listen_opts;
    root $tmp/root;
    location = /hello {
      return 200 "Hello, world";
    }
  }
}
EOF
}

# start_server IMPL W: starts the server pinned by srv_pin, on a free port
# (in $port), and waits until it answers and its W workers are up; sets
# srv_pid. On failure prints why and returns 1.
start_server() {
  local impl=$1 w=$2 i
  port=$("$client" port) || return 1
  case $impl in
  nginx)
    nginx_conf "$w" "$port" >"$tmp/nginx/nginx.conf"
    : >"$tmp/nginx/error.log"
    "${srv_pin[@]}" "$nginx_bin" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" \
      -e "$tmp/nginx/error.log" </dev/null >"$tmp/server.log" 2>&1 &
    srv_log=$tmp/nginx/error.log
    ;;
  go)
    if [ ! -x "$tmp/go-httpd" ]; then
      (cd "$here/../peers/go" && GOFLAGS=-mod=mod GO111MODULE=off \
        go build -o "$tmp/go-httpd" httpd.go) >"$tmp/server.log" 2>&1 ||
        { echo "# go build httpd.go failed:"; sed 's/^/#   /' "$tmp/server.log"; return 1; }
    fi
    GOMAXPROCS=$w "${srv_pin[@]}" "$tmp/go-httpd" -listen "127.0.0.1:$port" \
      </dev/null >"$tmp/server.log" 2>&1 &
    srv_log=$tmp/server.log
    ;;
  weft)
    local opts=()
    [ "$reuseport" = 1 ] && opts+=(--reuseport)
    "${srv_pin[@]}" "$httpd" --listen "127.0.0.1:$port" --root "$tmp/root" \
      --workers "$w" "${opts[@]}" </dev/null >"$tmp/server.log" 2>&1 &
    srv_log=$tmp/server.log
    ;;
  esac
  srv_pid=$!
  srv_kids=''
  for i in $(seq 100); do
    if ! kill -0 "$srv_pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$srv_pid/status" 2>/dev/null; then
      break
    fi
    srv_kids=$("$client" children "$srv_pid")
    if { [ "$impl" = go ] || [ "$(printf '%s' "$srv_kids" | grep -c .)" -ge "$w" ]; } &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "# $impl did not start on port $port with workers=$w; its log:"
  if [ "$srv_log" != "$tmp/server.log" ]; then
    tail -n 10 "$srv_log" | sed 's/^/#   /'
  fi
  tail -n 10 "$tmp/server.log" | sed 's/^/#   /'
  stop_server
  return 1
}

# stop_server: SIGTERM (nginx: fast stop; weft: graceful, with nothing left
# to drain), then SIGKILL after 5 s; and any worker left behind by id.
stop_server() {
  local i kid
  [ -n "$srv_pid" ] || return 0
  srv_kids="$srv_kids $("$client" children "$srv_pid" 2>/dev/null)"
  kill -TERM "$srv_pid" 2>/dev/null
  for i in $(seq 50); do
    if [ ! -e "/proc/$srv_pid" ] || grep -q '^State:.*Z' "/proc/$srv_pid/status" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  kill -KILL "$srv_pid" 2>/dev/null
  wait "$srv_pid" 2>/dev/null
  for kid in $srv_kids; do
    kill -KILL "$kid" 2>/dev/null
  done
  srv_pid='' srv_kids=''
}

# cpu_ns PID...: the CPU time the processes have used so far, in ns (the
# first field of /proc/PID/schedstat), summed; a process gone counts 0.
cpu_ns() {
  local sum=0 p v
  for p in "$@"; do
    if read -r v _ <"/proc/$p/schedstat" 2>/dev/null; then
      sum=$((sum + v))
    fi
  done
  echo "$sum"
}

# user_ticks PID...: the user-mode CPU time of the processes so far, in
# clock ticks (field 14 of /proc/PID/stat; the name in field 2 has no
# spaces here), summed; a process gone counts 0.
user_ticks() {
  local sum=0 p f
  for p in "$@"; do
    if read -r -a f <"/proc/$p/stat" 2>/dev/null; then
      sum=$((sum + f[13]))
    fi
  done
  echo "$sum"
}

# children_cpu_ms: the CPU time of this shell's children that it has
# waited for, in ms (the second line of `times`: user and system), in
# $children_ms. Not in a command substitution: its subshell has no
# children of its own.
children_cpu_ms() {
  times >"$tmp/times"
  children_ms=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) {
      split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60000 + p[2] * 1000
    }
    printf "%d\n", t
  }' "$tmp/times")
}

# wrk_row NAME IMPL W CONNS PATH EXPECTED: one measured row. Besides wrk's
# figures, the CPU time the server used per request (srv-ns/req: the
# supervisor or master and its workers, over the measured run) and the
# CPUs wrk kept busy (wrk-CPUs): a row whose wrk is near 1.00 measured the
# client as much as the server, and its servers are best compared by
# their CPU per request.
wrk_row() {
  local name=$1 impl=$2 w=$3 c=$4 path=$5 expected=$6 url
  if ! wanted "$name"; then
    return
  fi
  case $impl in
  nginx) [ "$have_nginx" = 1 ] || return 0 ;;
  weft) [ "$have_weft" = 1 ] || return 0 ;;
  go) [ "$have_go" = 1 ] || return 0 ;;
  esac
  place "$w"
  start_server "$impl" "$w" || { echo "# $name failed: no server"; return; }
  # The answer is checked once per server and path: right status, right
  # body, and a connection kept alive; the line shows the headers.
  local key="$impl $path"
  if [[ "$checked" != *"|$key|"* ]]; then
    if ! "$client" check "$port" "$path" "$expected" "$impl"; then
      echo "# $name failed: wrong answer"
      stop_server
      return
    fi
    checked="$checked|$key|"
  fi
  url=http://127.0.0.1:$port$path
  run_fg "${wrk_pin[@]}" wrk -t1 -c"$c" -d"${warmup}s" "$url" >/dev/null 2>&1
  local srv_before wrk_before srv_used wrk_used usr_before usr_used
  srv_kids=$("$client" children "$srv_pid" 2>/dev/null)
  srv_before=$(cpu_ns "$srv_pid" $srv_kids)
  usr_before=$(user_ticks "$srv_pid" $srv_kids)
  children_cpu_ms
  wrk_before=$children_ms
  run_fg "${wrk_pin[@]}" wrk -t1 -c"$c" -d"${seconds}s" --latency "$url" >"$tmp/wrk.out" 2>&1
  local rc=$?
  srv_used=$(($(cpu_ns "$srv_pid" $srv_kids) - srv_before))
  usr_used=$(($(user_ticks "$srv_pid" $srv_kids) - usr_before))
  children_cpu_ms
  wrk_used=$((children_ms - wrk_before))
  stop_server
  if [ "$rc" != 0 ]; then
    echo "# $name failed: wrk exited with $rc"
    sed 's/^/#   /' "$tmp/wrk.out" | head -n 5
    return
  fi
  # wrk prints, among other lines:
  #      99%    1.21ms
  #   1234567 requests in 10.00s, 176.61MB read
  #   Socket errors: connect 0, read 0, write 0, timeout 12
  #   Non-2xx or 3xx responses: 3
  #   Requests/sec: 123456.78
  awk -v name="$name" -v srv_ns="$srv_used" -v wrk_ms="$wrk_used" -v secs="$seconds" -v usr_ns="$((usr_used * 1000000000 / $(getconf CLK_TCK)))" '
    $1 == "99%" {
      v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
      f = u == "us" ? 1 : u == "ms" ? 1e3 : u == "s" ? 1e6 : u == "m" ? 6e7 : -1
      p99 = f > 0 ? v * f : -1
    }
    $2 == "requests" && $3 == "in" { reqs = $1 }
    $1 == "Requests/sec:" { rps = $2 }
    $1 == "Socket" && $2 == "errors:" { errs = $0; sub(/^ */, "", errs) }
    $1 == "Non-2xx" { bad = $NF }
    END {
      if (reqs == "" || rps <= 0 || p99 == "" || p99 < 0) {
        printf "# %s failed: could not read wrk'"'"'s output\n", name
        exit
      }
      if (bad > 0) {
        printf "# %s failed: %d answers were not 2xx or 3xx\n", name, bad
        exit
      }
      if (errs != "")
        printf "# %s: %s\n", name, errs
      usr_pct = srv_ns > 0 ? 100 * usr_ns / srv_ns : 0
      printf "%-48s %12d %10.1f ns/op %10.0f req/s %8.0f p99-us %7.0f srv-ns/req %5.0f srv-usr-%% %5.2f wrk-CPUs\n", name, reqs, 1e9 / rps, rps, p99, srv_ns / reqs, usr_pct, wrk_ms / 1000 / secs
    }' "$tmp/wrk.out"
}

# idle_row NAME IMPL W: one BenchmarkHTTPIdle row, the server unpinned.
idle_row() {
  local name=$1 impl=$2 w=$3
  if ! wanted "$name"; then
    return
  fi
  case $impl in
  nginx) [ "$have_nginx" = 1 ] || return 0 ;;
  weft) [ "$have_weft" = 1 ] || return 0 ;;
  go) [ "$have_go" = 1 ] || return 0 ;;
  esac
  if [ "$nofile" -lt $((idle_conns + 64)) ]; then
    echo "# skip $name: RLIMIT_NOFILE is $nofile, too low for $idle_conns connections"
    return
  fi
  srv_pin=()
  start_server "$impl" "$w" || { echo "# $name failed: no server"; return; }
  run_fg "$client" idle "$port" "$idle_conns" "$srv_pid" "$name" "$settle_ms"
  stop_server
}

checked=
if [ "$have_wrk" = 1 ]; then
  for w in 1 2; do
    for c in 100 1000; do
      for _ in $(seq "$runs"); do
        for impl in "${impls[@]}"; do
          wrk_row "BenchmarkHTTP/workers=$w/conns=$c/$impl" "$impl" "$w" "$c" /hello "$tmp/hello.expected"
        done
      done
    done
  done
  for w in 1 2; do
    for _ in $(seq "$runs"); do
      for impl in "${impls[@]}"; do
        wrk_row "BenchmarkHTTPStatic/workers=$w/conns=100/$impl" "$impl" "$w" 100 /64k.bin "$tmp/root/64k.bin"
      done
    done
  done
fi
for _ in $(seq "$runs"); do
  for impl in "${idle_impls[@]}"; do
    idle_row "BenchmarkHTTPIdle/conns=$idle_conns/$impl" "$impl" 1
  done
done
echo "# HTTP: load average $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
# A failed row is a comment line above; the run as a whole goes on.
exit 0
